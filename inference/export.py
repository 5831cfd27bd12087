"""ONNX export of an experiment's folded generator, with a sidecar JSON saying what its inputs must be.

`export_onnx(netG, opt, path)` writes path (the ONNX graph of the generator in eval mode, spectral norms
folded, batch dimension dynamic) and path + '.json'. The graph draws no random numbers: a --use_vae model takes
its style code as the input `z`, OASIS's 3-D noise (--oasis_noise_nc) comes as the input `noise`, one vector per
image, as models/networks/generator.py (`with_3d_noise`) draws it. Inputs, batch B dynamic, float32 but for ids:

  label-to-image generators   ids (B, H, W) int64 class ids and, unless no_instance, instance (B, H, W) int64
                              instance ids, read by lookup in the graph (models/networks/layout_lookup.py); or,
                              with layout_input 'one_hot', layout (B, semantic_nc, H, W): the one-hot over
                              label_nc (+ 1, the dontcare class, with contain_dontcare_label) then, unless
                              no_instance, one channel of instance edges (models/pix2pix_model.py,
                              `semantic_layout`); z (B, z_dim) with --use_vae; noise (B, noise_nc) with
                              --oasis_noise_nc
  scgan_unpaired              reference (B, 3, H, W) and source (B, 3, H, W), images in [-1, 1]
Output: image (B, 3, H, W) in [-1, 1]. Needs the packages of requirements-export.txt.
"""
import copy
import json
import warnings

import torch
from torch import nn

from checkpointing.storage import atomic_write_bytes
from models.networks.layout_lookup import Layout, set_layout_path
from models.networks.scgan_unpaired import SCGANUnpairedGenerator
from models.pix2pix_model import instance_edges

from .folding import fold_spectral_norms
from .synthesizer import model_size

OPSET = 18
# what the exported graph of a label-to-image generator takes: the class ids, read by lookup (the default: ONNX
# Runtime ran it at 1.07-1.19x the speed of the other, docs/inference.md), or the one-hot layout, convolved
LAYOUT_INPUTS = ("ids", "one_hot")


class LabelToImage(nn.Module):
    """netG with its random inputs made inputs: forward(layout, [z], [noise]) -> image; with layout_input 'ids'
    forward(ids, [instance], [z], [noise]), the graph reading the class ids by lookup."""

    def __init__(self, netG, use_vae: bool, layout_input: str = LAYOUT_INPUTS[0], num_classes: int = 0,
                 instance_edges: bool = False):
        super().__init__()
        if layout_input not in LAYOUT_INPUTS:
            raise ValueError(f"layout_input {layout_input!r}: expected one of {', '.join(LAYOUT_INPUTS)}")
        self.netG, self.use_vae = netG, use_vae
        self.layout_input, self.num_classes, self.instance_edges = layout_input, num_classes, instance_edges
        # the noise comes in as an input and is put before the layout here, as with_3d_noise would
        self.noise_nc, netG.noise_nc = getattr(netG, "noise_nc", 0), 0

    def forward(self, layout, *extra):
        """layout: (B, semantic_nc, H, W) float, or (B, H, W) int64 class ids; extra: the instance ids (B, H, W)
        with ids and instance edges, z (B, z_dim) with the VAE, then noise (B, noise_nc)."""
        extra = list(extra)
        if self.layout_input == "ids":
            edges = instance_edges(extra.pop(0)[:, None]) if self.instance_edges else None
            layout = Layout.from_ids(layout, self.num_classes, edges, torch.float32)
        z = extra.pop(0) if self.use_vae else None
        if self.noise_nc:
            noise = extra.pop(0)
            b, _, h, w = layout.shape
            noise = noise[:, :, None, None].expand(b, self.noise_nc, h, w)
            layout = layout.with_before(noise) if isinstance(layout, Layout) else torch.cat([noise, layout], dim=1)
        return self.netG(layout, z=z)


class Translator(nn.Module):
    """scgan_unpaired: forward(reference, source) -> image."""

    def __init__(self, netG):
        super().__init__()
        self.netG = netG

    def forward(self, reference, source):
        return self.netG(reference, source)


def exported_module(netG, opt, layout_input=LAYOUT_INPUTS[0]):
    """-> (module to export, {input name: (shape with 'B' for the batch, dtype)}, sidecar's input description)."""
    h, w = model_size(opt)
    if isinstance(netG, SCGANUnpairedGenerator):
        image = (["B", opt.output_nc, h, w], "float32")
        return Translator(netG), {"reference": image, "source": image}, {
            "reference": "a target-domain image whose style the result takes, RGB in [-1, 1]",
            "source": "the source-domain image to translate, RGB in [-1, 1]"}
    edges = not opt.no_instance
    module = LabelToImage(netG, opt.use_vae, layout_input, opt.label_nc + int(opt.contain_dontcare_label), edges)
    if layout_input == "ids":
        inputs = {"ids": (["B", h, w], "int64")}
        described = {"ids": f"class ids 0..{opt.label_nc - 1}" +
                            (f", {opt.label_nc} for dontcare" if opt.contain_dontcare_label else "")}
        if edges:
            inputs["instance"] = (["B", h, w], "int64")
            described["instance"] = "instance ids (any integers; the graph finds their edges); without instance " \
                                    "maps, the class ids"
    else:
        inputs = {"layout": (["B", opt.semantic_nc, h, w], "float32")}
        described = {"layout": "one-hot label map, then the instance edges when instance_edges is true"}
    if opt.use_vae:
        inputs["z"] = (["B", opt.z_dim], "float32")
        described["z"] = "style code, z ~ N(0, I) for a random style"
    if module.noise_nc:
        inputs["noise"] = (["B", module.noise_nc], "float32")
        described["noise"] = "OASIS's 3-D noise: N(0, 1), one vector per image, repeated over the pixels"
    return module, inputs, described


def sidecar(opt, shapes, described):
    """What the ONNX file's inputs must be and what its output is."""
    h, w = model_size(opt)
    info = {
        "format": "onnx", "opset": OPSET, "netG": opt.netG, "name": opt.name,
        "inputs": {name: {"shape": shape, "dtype": dtype, "meaning": described[name]}
                   for name, (shape, dtype) in shapes.items()},
        "output": {"name": "image", "shape": ["B", opt.output_nc, h, w], "dtype": "float32", "range": [-1.0, 1.0],
                   "to_uint8": "round((image + 1) * 127.5), channels first"},
        "size_hw": [h, w],
    }
    if "layout" in shapes or "ids" in shapes:
        info["layout"] = {
            "label_nc": opt.label_nc,
            "dontcare": ({"channel": opt.label_nc, "label_file_value": 255} if opt.contain_dontcare_label
                         else None),
            "instance_edges": (None if opt.no_instance else {
                "channel": opt.semantic_nc - 1,
                "rule": "1 where a 4-neighbour belongs to another instance (both sides of a boundary), else 0; "
                        "without instance maps, use the label map as the instance map"}),
            "channels": opt.semantic_nc,
        }
    return info


def export_onnx(netG, opt, path, batch=2, layout_input=LAYOUT_INPUTS[0]):
    """Write the ONNX graph of `netG` (folded, in eval mode; a copy is exported, netG is left as it is) to
    `path` and its sidecar to path + '.json' -> the sidecar dict. Traced at batch `batch` (not 1, which the
    exporter would take for a constant); the batch dimension of every input and of the output is dynamic.
    layout_input 'ids': the graph takes the class ids (and instance ids) and reads them by lookup (a Gather and
    an Add per kernel offset); 'one_hot': it takes the one-hot layout and convolves it."""
    netG = copy.deepcopy(netG).float().cpu().eval()
    fold_spectral_norms(netG)
    # one path in the graph: the lookup reads ids, which a one-hot input would have to be searched for
    set_layout_path(netG, "lookup" if layout_input == "ids" else "conv")
    module, shapes, described = exported_module(netG, opt, layout_input)
    module.eval()
    dtypes = {"float32": torch.float32, "int64": torch.int64}
    examples = tuple(torch.zeros([batch, *shape[1:]], dtype=dtypes[dtype]) for shape, dtype in shapes.values())
    batch_dim = {0: torch.export.Dim("batch", min=1)}
    if isinstance(module, LabelToImage) and len(examples) > 1:  # forward(layout, *extra): extra is a tuple
        dynamic = (batch_dim, tuple(batch_dim for _ in examples[1:]))
    else:
        dynamic = tuple(batch_dim for _ in examples)
    with warnings.catch_warnings():   # every input's batch is the one dimension "batch", which the exporter says
        warnings.filterwarnings("ignore", message=".*The axis name: batch will not be used")
        torch.onnx.export(module, examples, path, input_names=list(shapes), output_names=["image"],
                          dynamic_shapes=dynamic, dynamo=True, opset_version=OPSET, external_data=False,
                          optimize=False, verbose=False)
    info = sidecar(opt, shapes, described)
    atomic_write_bytes(str(path) + ".json", (json.dumps(info, indent=1) + "\n").encode())
    return info
