"""Import released checkpoints into checkpoints/NAME, and export ours to the authors' layout.

    python -m tools.import_checkpoint --from scgan --src G.pth [--src_D D.pth] [--src_E E.pth] \\
        --name NAME --dataset_mode ade20k|coco|celebamaskhq [options test.py takes]
    python -m tools.import_checkpoint --from spade --src G.pth [--src_D D.pth] --name NAME --dataset_mode coco
    python -m tools.import_checkpoint --to scgan --name NAME --dst G.pth [--dst_D D.pth] [--dst_E E.pth]

Import builds our networks from test options (the released configuration of the family and dataset, from
checkpointing/released_layouts.py, then the user's options), converts the file into our state dict
(checkpointing/released.py) and writes checkpoints/NAME/{which_epoch}_net_{G,D,E}.pth and the option files, so
`python test.py --name NAME` runs the released model. Export reads checkpoints/NAME (its saved options) and
writes files in the authors' layout.
"""
import argparse
import contextlib
import io
import os
import sys

import data
from checkpointing.released import FAMILIES, export_state_dict, import_state_dict
from checkpointing.released_layouts import LABEL_ORDER, RELEASED_OPTIONS
from checkpointing.storage import CheckpointError, atomic_torch_save, load_network, read_state_dict, save_network
from data.pix2pix_dataset import Pix2pixDataset
from models import networks
from options.test_options import TestOptions
from options.train_options import TrainOptions


def build_options(family: str, user_argv, train: bool = False, released: bool = True):
    """Options for `family`: with `released`, the released configuration for --dataset_mode (required) comes
    before the user's options; else the experiment's saved options are the defaults (test options read them).
    Test options ignore the user's training-only options (e.g. --ndf), which only the discriminator reads."""


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
        raise CheckpointError("this configuration uses the VAE (--use_vae): test.py encodes the real image, "
                              "so pass the release's encoder file with --src_E")
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


def released_synthesizer(family, src, name, dataset_mode, checkpoints_dir="./checkpoints", src_E=None, options=(),
                         **kwargs):
    """A released generator file (--from scgan|spade) -> inference.Synthesizer. The file is imported into
    checkpoints_dir/name first (its options from the release's configuration for `dataset_mode`, then
    `options`, a list of command-line options); kwargs go to `Synthesizer.from_experiment`."""
    from inference import Synthesizer
    argv = ["--name", name, "--checkpoints_dir", str(checkpoints_dir), "--dataset_mode", dataset_mode,
            "--gpu_ids", "-1", *map(str, options)]
    opt = import_checkpoint(family, str(src), argv, src_E=src_E)
    return Synthesizer.from_experiment(os.path.join(opt.checkpoints_dir, opt.name), which_epoch=opt.which_epoch,
                                       **kwargs)


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
