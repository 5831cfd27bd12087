"""Import released checkpoints into our layout, and export ours to theirs.

    python -m util.import_checkpoint --from scgan --src G.pth [--src_D D.pth] [--src_E E.pth] \
        --name NAME --dataset_mode ade20k|coco|celebamaskhq [options test.py takes]
    python -m util.import_checkpoint --from spade --src G.pth [--src_D D.pth] --name NAME --dataset_mode coco
    python -m util.import_checkpoint --to scgan --name NAME --dst G.pth [--dst_D D.pth] [--dst_E E.pth]

Import builds our networks from test options (the released configuration of the family and dataset, from
util/checkpoint_layouts.py, then the user's options), converts the file into our state dict and writes
checkpoints/NAME/{which_epoch}_net_{G,D,E}.pth and the option files, so `python test.py --name NAME` runs the
released model. Export reads checkpoints/NAME (its saved options) and writes files in the authors' layout.

Conversion (our state dict <-> theirs) is a plan of entries, one per group of tensors:
  ('same',  (our_key,),            (their_key,))          renamed, e.g. spectral norm `...original` <-> `weight_orig`
  ('stack', (our_key,),            (their_key_0, ...))    SCC candidates: our (n, ...) <-> n of theirs
  ('split', (scale_key, shift_key), (their_key,))         SCN: our two (n, C) <-> their (n, 2C)
built from our network, so both directions and the refusal of a file that does not fit share one source.
Files are read with torch.load(weights_only=True); anything needing full unpickling is refused unless
--trust_pickle is given.
"""
import argparse
import contextlib
import io
import os
import sys

import torch
from torch import nn

import data
from data.pix2pix_dataset import Pix2pixDataset
from models import networks
from models.networks.discriminator import MultiscaleDiscriminator
from models.networks.fpse_discriminator import FPSEDiscriminator
from models.networks.generator import SPADEGenerator
from models.networks.normalization import SPADE
from models.networks.scgan import SCGANGenerator
from models.networks.semantic_composition import SCConv2d, SCNorm
from util.checkpoint import CheckpointError, atomic_torch_save, load_network, read_state_dict, save_network
from util.checkpoint_layouts import (LABEL_ORDER, RELEASED_OPTIONS, SCC_CANDIDATES, SCGAN_PREFIXES,
                                     SCN_PARAMETERS, SPECTRAL_SUFFIXES)

FAMILIES = ("scgan", "spade")
ORIGINAL = "parametrizations.weight.original"


# ----------------------------------------------------------------------------------------------------------
# the plan: our keys <-> their keys

def _their_name(key: str) -> str:
    """Our key -> their key for plain renames: hook-based spectral-norm suffixes and SC-GAN's SVG prefixes."""
    for ours, theirs in SPECTRAL_SUFFIXES.items():
        if key.endswith(ours):
            key = key[: -len(ours)] + theirs
            break
    if key.startswith("svg.stages."):
        index, rest = key[len("svg.stages."):].split(".", 1)
        key = SCGAN_PREFIXES["svg.stages.{i}."].format(j=int(index) + 1) + rest
    elif key.startswith("svg.to_image."):
        key = SCGAN_PREFIXES["svg.to_image."] + key[len("svg.to_image."):]
    return key


def layout_plan(net: nn.Module):
    """-> list of (kind, our_keys, their_keys, their_shapes) covering every tensor of net.state_dict()."""
    state = net.state_dict()
    sccs = {name for name, m in net.named_modules() if isinstance(m, SCConv2d)}
    scns = {name for name, m in net.named_modules() if isinstance(m, SCNorm)}
    plan, done = [], set()
    for key, value in state.items():
        if key in done:
            continue
        module, _, leaf = key.rpartition(".")
        owner = key.split(".parametrizations.")[0] if ".parametrizations." in key else module
        if owner in sccs:  # (n, ...) candidates <-> conv_bases.i.<leaf>
            their_leaf = SPECTRAL_SUFFIXES.get(key[len(owner) + 1:], leaf)
            names = tuple(_their_name(f"{owner}.{SCC_CANDIDATES}.{i}.{their_leaf}") for i in range(value.shape[0]))
            plan.append(("stack", (key,), names, [list(value.shape[1:])] * len(names)))
        elif module in scns and leaf in ("scale", "shift"):
            scale, shift = f"{module}.scale", f"{module}.shift"
            n, c = state[scale].shape
            plan.append(("split", (scale, shift), (_their_name(f"{module}.{SCN_PARAMETERS}"),), [[n, 2 * c]]))
            done.update((scale, shift))
        else:
            plan.append(("same", (key,), (_their_name(key),), [list(value.shape)]))
    return plan


def expected_keys(net: nn.Module):
    """{their key: shape} a released file must hold to fit `net`."""
    return {k: s for _, _, theirs, shapes in layout_plan(net) for k, s in zip(theirs, shapes)}


def export_state_dict(net: nn.Module, label_order=None):
    """Our network -> a state dict in the released layout (their label channel order when given)."""
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    if label_order is not None:
        permute_label_inputs(net, state, label_order, to_ours=False)
    out = {}
    for kind, ours, theirs, _ in layout_plan(net):
        if kind == "same":
            out[theirs[0]] = state[ours[0]]
        elif kind == "stack":
            out.update({name: t.clone() for name, t in zip(theirs, state[ours[0]].unbind(0))})
        else:
            out[theirs[0]] = torch.cat([state[ours[0]], state[ours[1]]], dim=1)
    return out


def import_state_dict(net: nn.Module, theirs: dict, source: str = "the file", label_order=None):
    """Load a released state dict into `net` (strict), after checking that it fits; returns net."""
    theirs = strip_data_parallel(theirs)
    check_fits(net, theirs, source)
    state = {}
    for kind, ours, their_keys, _ in layout_plan(net):
        if kind == "same":
            state[ours[0]] = theirs[their_keys[0]]
        elif kind == "stack":
            state[ours[0]] = torch.stack([theirs[k] for k in their_keys])
        else:
            both = theirs[their_keys[0]]
            c = both.shape[1] // 2
            state[ours[0]], state[ours[1]] = both[:, :c], both[:, c:]
    if label_order is not None:
        permute_label_inputs(net, state, label_order, to_ours=True)
    net.load_state_dict(state, strict=True)
    return net


def strip_data_parallel(state: dict):
    """Drop the `module.` prefix DataParallel leaves on every key."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def check_fits(net: nn.Module, theirs: dict, source: str):
    """Raise one CheckpointError naming the first missing key, the first unexpected key and the first shape
    difference, if any. A missing `num_batches_tracked` (older PyTorch) is filled with 0: eval ignores it."""
    expected = expected_keys(net)
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in theirs:
            theirs[key] = torch.tensor(0)
    problems = []
    missing = [k for k in expected if k not in theirs]
    unexpected = [k for k in theirs if k not in expected]
    differing = [k for k in expected if k in theirs and list(theirs[k].shape) != expected[k]]
    if missing:
        problems.append(f"missing key '{missing[0]}' (expected shape {expected[missing[0]]})"
                        + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    if unexpected:
        problems.append(f"unexpected key '{unexpected[0]}' (shape {list(theirs[unexpected[0]].shape)})"
                        + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""))
    if differing:
        k = differing[0]
        problems.append(f"key '{k}' has shape {list(theirs[k].shape)} in the file but {expected[k]} is expected"
                        + (f" ({len(differing) - 1} more shapes differ)" if len(differing) > 1 else ""))
    if problems:
        raise CheckpointError(f"{source} does not fit {type(net).__name__} as the options build it: "
                              f"{'; '.join(problems)}. Check --dataset_mode and the size options (--ngf, "
                              f"--crop_size, --label_nc, --no_instance, --use_vae, ...) against the release.")


# ----------------------------------------------------------------------------------------------------------
# label channels

def label_input_convs(net: nn.Module, semantic_nc: int):
    """-> [(module name, first label channel)] of every conv that reads the one-hot layout."""
    found = [(f"{name}.mlp_shared.0", 0) for name, m in net.named_modules() if isinstance(m, SPADE)]
    if isinstance(net, SCGANGenerator):
        for i, stage in enumerate(net.svg.stages):
            conv = stage[0] if i == 0 else stage[1]  # the layout level is concatenated last
            found.append((f"svg.stages.{i}.{0 if i == 0 else 1}", conv.in_channels - semantic_nc))
    if isinstance(net, (SCGANGenerator, SPADEGenerator)) and isinstance(net.fc, nn.Conv2d):
        found.append(("fc", 0))
    if isinstance(net, MultiscaleDiscriminator):
        found += [(f"{name}.model0.0", 0) for name, _ in net.named_children()]
    if isinstance(net, FPSEDiscriminator):
        found.append(("embedding", 0))
    return found


def permute_label_inputs(net: nn.Module, state: dict, order, to_ours: bool):
    """Reorder the label input channels of `state` (our keys) in place: their channel j is our channel order[j].
    Spectral-norm v vectors are reordered with their weights, so the estimated norm is unchanged."""
    n = len(order)
    theirs_of_ours = torch.empty(n, dtype=torch.long)
    theirs_of_ours[torch.tensor(order)] = torch.arange(n)
    index = theirs_of_ours if to_ours else torch.tensor(order)
    for name, start in label_input_convs(net, n):
        spectral = f"{name}.{ORIGINAL}" in state
        wkey = f"{name}.{ORIGINAL}" if spectral else f"{name}.weight"
        w = state[wkey].clone()
        w[:, start:start + n] = w[:, start:start + n][:, index]
        state[wkey] = w
        if spectral:
            vkey = f"{name}.parametrizations.weight.0._v"
            v = state[vkey].clone().view(w.shape[1], -1)
            v[start:start + n] = v[start:start + n][index]
            state[vkey] = v.flatten()


# ----------------------------------------------------------------------------------------------------------
# files

def build_options(family: str, user_argv, train: bool = False, released: bool = True):
    """Options for `family`: with `released`, the released configuration for --dataset_mode (required) comes
    before the user's options; else the experiment's saved options are the defaults (test options read them).
    Test options ignore the user's training-only options (e.g. --ndf), which only the discriminator reads."""
    from options.test_options import TestOptions
    from options.train_options import TrainOptions
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--dataset_mode")
    probe.add_argument("--netG")
    known, _ = probe.parse_known_args(user_argv)
    if known.netG not in (None, family):
        raise CheckpointError(f"--netG {known.netG} contradicts --from/--to {family}")
    argv = ["--netG", family]
    if released:
        if known.dataset_mode is None:
            raise CheckpointError("--dataset_mode is required: the released configuration depends on the "
                                  f"dataset ({', '.join(RELEASED_OPTIONS[family])} for --from {family})")
        check_paired(known.dataset_mode, family)
        argv += RELEASED_OPTIONS[family].get(known.dataset_mode, [])
    argv += list(user_argv)
    with contextlib.redirect_stdout(io.StringIO()):
        if train:
            options = TrainOptions()
            return options, options.parse(argv + ([] if released else ["--load_from_opt_file"]),
                                          save=False, verbose=False)
        train_parser = TrainOptions()
        train_parser.parse(argv, save=False, verbose=False)
        options = TestOptions()
        options.requires_experiment = released is False  # an import creates the experiment
        accepted = _test_option_strings(argv, train_parser.parser)
        opt = options.parse(_drop_unknown(argv, train_parser.parser, accepted), save=False, verbose=False)
    return options, opt


def paired_modes():
    """The dataset modes that give a label map per image (data/pix2pix_dataset.py), which a released
    generator synthesizes from."""
    return [name for name in data.DATASETS.names() if issubclass(data.DATASETS.get(name), Pix2pixDataset)]


def check_paired(dataset_mode: str, family: str):
    """Refuse a mode without label maps (the unaligned ones, for --model unpaired): no released generator
    reads it. An unknown mode is left to the option parser, which lists the registered ones."""
    if dataset_mode in data.DATASETS and dataset_mode not in paired_modes():
        raise CheckpointError(f"--dataset_mode {dataset_mode} holds unpaired images without label maps (for --model "
                              f"unpaired), and a released {family} generator synthesizes images from label maps: "
                              f"import it with a paired mode ({', '.join(paired_modes())}; custom for your own "
                              f"label maps)")


def _test_option_strings(argv, full_parser):
    """Option strings test.py accepts for the generator and dataset named in argv (hooks add some).

    The probe parses a few naming options, plus the values of every option `full_parser` (the training parser
    built for argv) requires: a hook may add a required one (--label_dir of --dataset_mode custom), and a probe
    without it would stop at argparse's "the following arguments are required"."""
    from options.test_options import TestOptions
    probe = argparse.ArgumentParser(add_help=False)
    for name in ("--netG", "--dataset_mode", "--model", "--netE", "--checkpoints_dir", "--name"):
        probe.add_argument(name)
    probe.add_argument("--use_vae", action="store_true")
    known, _ = probe.parse_known_args(argv)
    minimal = ["--use_vae"] if known.use_vae else []
    for name in ("netG", "dataset_mode", "model", "netE", "checkpoints_dir", "name"):
        if getattr(known, name) is not None:
            minimal += [f"--{name}", getattr(known, name)]
    required = {s for action in full_parser._actions if action.required for s in action.option_strings}
    minimal += _drop_unknown(argv, full_parser, required)
    options = TestOptions()
    options.requires_experiment = False  # only the option names are wanted
    options.parse(minimal, save=False, verbose=False)
    return {s for action in options.parser._actions for s in action.option_strings}


def _drop_unknown(argv, full_parser, accepted):
    """argv without the options (and their values) that are not in `accepted`, using `full_parser` to know how
    many values each option takes."""
    nargs = {s: a.nargs for a in full_parser._actions for s in a.option_strings}
    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        name = token.split("=", 1)[0]
        takes_value = token.startswith("--") and "=" not in token and nargs.get(name) != 0
        if token.startswith("--") and name not in accepted:
            i += 2 if takes_value else 1
            continue
        out.append(token)
        if takes_value:
            out.append(argv[i + 1])
            i += 1
        i += 1
    return out


def import_checkpoint(family: str, src: str, user_argv, src_D=None, src_E=None, trust_pickle=False):
    """Convert released files into checkpoints/NAME/; returns the options used."""
    options, opt = build_options(family, user_argv)
    order = LABEL_ORDER.get(family, {}).get(opt.dataset_mode)
    if opt.use_vae and src_E is None:
        raise CheckpointError(f"this configuration uses the VAE (--use_vae): test.py encodes the real image, "
                              f"so pass the release's encoder file with --src_E")
    if src_E is not None and not opt.use_vae:
        raise CheckpointError("--src_E given but the options build no encoder: add --use_vae")
    folder = os.path.join(opt.checkpoints_dir, opt.name)
    nets = [("G", src, "--src", networks.define_G(opt, verbose=False))]
    if src_E is not None:
        nets.append(("E", src_E, "--src_E", networks.define_E(opt, verbose=False)))
    if src_D is not None:  # the discriminator's options exist only at training time
        _, train_opt = build_options(family, user_argv, train=True)
        nets.append(("D", src_D, "--src_D", networks.define_D(train_opt, verbose=False)))
    converted = []
    for label, path, option, net in nets:
        state = read_state_dict(path, option, trust_pickle)
        import_state_dict(net, state, f"{option} {path}", order if label != "E" else None)
        converted.append((label, net))
    os.makedirs(folder, exist_ok=True)
    for label, net in converted:
        save_network(net, folder, opt.which_epoch, label)
    options.save_options(opt)
    return opt


def export_checkpoint(family: str, user_argv, dst: str, dst_D=None, dst_E=None):
    """Write checkpoints/NAME/{which_epoch}_net_*.pth (built from its saved options) in the released layout."""
    options, opt = build_options(family, user_argv, released=False)
    order = LABEL_ORDER.get(family, {}).get(opt.dataset_mode)
    folder = os.path.join(opt.checkpoints_dir, opt.name)
    jobs = [("G", dst, lambda: networks.define_G(opt, verbose=False))]
    if dst_E is not None:
        jobs.append(("E", dst_E, lambda: networks.define_E(opt, verbose=False)))
    if dst_D is not None:
        _, train_opt = build_options(family, user_argv, train=True, released=False)
        jobs.append(("D", dst_D, lambda: networks.define_D(train_opt, verbose=False)))
    for label, path, build in jobs:
        net = load_network(build(), folder, opt.which_epoch, label)
        atomic_torch_save(export_state_dict(net, order if label != "E" else None), path)
    return opt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Other options are test.py's (--name, --dataset_mode, ...).")
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument("--from", dest="from_family", choices=FAMILIES, help="import released files")
    direction.add_argument("--to", dest="to_family", choices=FAMILIES, help="export checkpoints/NAME")
    parser.add_argument("--src", help="released generator file (with --from)")
    parser.add_argument("--src_D", help="released discriminator file (optional)")
    parser.add_argument("--src_E", help="released VAE encoder file (needed with --use_vae)")
    parser.add_argument("--dst", help="generator file to write (with --to)")
    parser.add_argument("--dst_D", help="discriminator file to write (optional)")
    parser.add_argument("--dst_E", help="encoder file to write (optional)")
    parser.add_argument("--trust_pickle", action="store_true",
                        help="allow files that need full unpickling (runs code stored in them: trusted files only)")
    args, rest = parser.parse_known_args(argv)
    try:
        if args.from_family:
            if not args.src:
                parser.error("--from needs --src (the released generator file)")
            opt = import_checkpoint(args.from_family, args.src, rest, args.src_D, args.src_E, args.trust_pickle)
            data_option = f"--label_dir {opt.label_dir}" if opt.dataset_mode == "custom" else "--dataroot DATAROOT"
            print(f"imported into {os.path.join(opt.checkpoints_dir, opt.name)}; run: "
                  f"python test.py --name {opt.name} {data_option}")
        else:
            if not args.dst:
                parser.error("--to needs --dst (the generator file to write)")
            export_checkpoint(args.to_family, rest, args.dst, args.dst_D, args.dst_E)
            print(f"wrote {', '.join(p for p in (args.dst, args.dst_D, args.dst_E) if p)}")
    except CheckpointError as e:
        raise SystemExit(f"error: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
