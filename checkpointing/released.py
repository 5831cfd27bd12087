"""Released checkpoints <-> our state dicts: the conversion behind tools/import_checkpoint.py.

The command:
    python -m tools.import_checkpoint --from scgan --src G.pth [--src_D D.pth] [--src_E E.pth] \
        --name NAME --dataset_mode ade20k|coco|celebamaskhq [options test.py takes]
    python -m tools.import_checkpoint --from spade --src G.pth [--src_D D.pth] --name NAME --dataset_mode coco
    python -m tools.import_checkpoint --to scgan --name NAME --dst G.pth [--dst_D D.pth] [--dst_E E.pth]

Import builds our networks from test options (the released configuration of the family and dataset, from
checkpointing/released_layouts.py, then the user's options), converts the file into our state dict and writes
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
import torch
from torch import nn

from checkpointing.released_layouts import SCC_CANDIDATES, SCGAN_PREFIXES, SCN_PARAMETERS, SPECTRAL_SUFFIXES
from checkpointing.storage import CheckpointError
from models.networks.discriminator import MultiscaleDiscriminator
from models.networks.fpse_discriminator import FPSEDiscriminator
from models.networks.generator import SPADEGenerator
from models.networks.normalization import SPADE
from models.networks.scgan import SCGANGenerator
from models.networks.semantic_composition import SCConv2d, SCNorm

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
