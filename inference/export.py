"""ONNX export of an experiment's folded generator, with a sidecar JSON saying what its inputs must be.

`export_onnx(netG, opt, path)` writes path (the ONNX graph of the generator in eval mode, spectral norms
folded, batch dimension dynamic) and path + '.json'. The graph draws no random numbers: a --use_vae model takes
its style code as the input `z`, OASIS's 3-D noise (--oasis_noise_nc) comes as the input `noise`, one vector per
image, as models/networks/generator.py (`with_3d_noise`) draws it. Inputs, all float32, batch B dynamic:

  label-to-image generators   layout (B, semantic_nc, H, W): the one-hot over label_nc (+ 1, the dontcare class,
                              with contain_dontcare_label) then, unless no_instance, one channel of instance edges
                              (models/pix2pix_model.py, `semantic_layout`); z (B, z_dim) with --use_vae; noise
                              (B, noise_nc) with --oasis_noise_nc
  scgan_unpaired              reference (B, 3, H, W) and source (B, 3, H, W), images in [-1, 1]
Output: image (B, 3, H, W) in [-1, 1]. Needs the packages of requirements-export.txt.
"""
import copy
import json
import warnings

import torch
from torch import nn

from checkpointing.storage import atomic_write_bytes
from models.networks.scgan_unpaired import SCGANUnpairedGenerator

from .folding import fold_spectral_norms
from .synthesizer import model_size

OPSET = 18


class LabelToImage(nn.Module):
    """netG with its random inputs made inputs: forward(layout, [z], [noise]) -> image."""

    def __init__(self, netG, use_vae: bool):
        super().__init__()
        self.netG, self.use_vae = netG, use_vae
        # the noise comes in as an input and is put before the layout here, as with_3d_noise would
        self.noise_nc, netG.noise_nc = getattr(netG, "noise_nc", 0), 0

    def forward(self, layout, *extra):
        """layout: (B, semantic_nc, H, W); extra: z (B, z_dim) with the VAE, then noise (B, noise_nc)."""
        extra = list(extra)
        z = extra.pop(0) if self.use_vae else None
        if self.noise_nc:
            noise = extra.pop(0)
            b, _, h, w = layout.shape
            layout = torch.cat([noise[:, :, None, None].expand(b, self.noise_nc, h, w), layout], dim=1)
        return self.netG(layout, z=z)


class Translator(nn.Module):
    """scgan_unpaired: forward(reference, source) -> image."""

    def __init__(self, netG):
        super().__init__()
        self.netG = netG

    def forward(self, reference, source):
        return self.netG(reference, source)


def exported_module(netG, opt):
    """-> (module to export, {input name: shape with 'B' for the batch}, sidecar's input description)."""
    h, w = model_size(opt)
    if isinstance(netG, SCGANUnpairedGenerator):
        image = ["B", opt.output_nc, h, w]
        return Translator(netG), {"reference": image, "source": image}, {
            "reference": "a target-domain image whose style the result takes, RGB in [-1, 1]",
            "source": "the source-domain image to translate, RGB in [-1, 1]"}
    module = LabelToImage(netG, opt.use_vae)
    shapes = {"layout": ["B", opt.semantic_nc, h, w]}
    described = {"layout": "one-hot label map, then the instance edges when instance_edges is true"}
    if opt.use_vae:
        shapes["z"] = ["B", opt.z_dim]
        described["z"] = "style code, z ~ N(0, I) for a random style"
    if module.noise_nc:
        shapes["noise"] = ["B", module.noise_nc]
        described["noise"] = "OASIS's 3-D noise: N(0, 1), one vector per image, repeated over the pixels"
    return module, shapes, described


def sidecar(opt, shapes, described):
    """What the ONNX file's inputs must be and what its output is."""
    h, w = model_size(opt)
    info = {
        "format": "onnx", "opset": OPSET, "netG": opt.netG, "name": opt.name,
        "inputs": {name: {"shape": shape, "dtype": "float32", "meaning": described[name]}
                   for name, shape in shapes.items()},
        "output": {"name": "image", "shape": ["B", opt.output_nc, h, w], "dtype": "float32", "range": [-1.0, 1.0],
                   "to_uint8": "round((image + 1) * 127.5), channels first"},
        "size_hw": [h, w],
    }
    if "layout" in shapes:
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


def export_onnx(netG, opt, path, batch=2):
    """Write the ONNX graph of `netG` (folded, in eval mode; a copy is exported, netG is left as it is) to
    `path` and its sidecar to path + '.json' -> the sidecar dict. Traced at batch `batch` (not 1, which the
    exporter would take for a constant); the batch dimension of every input and of the output is dynamic."""
    netG = copy.deepcopy(netG).float().cpu().eval()
    fold_spectral_norms(netG)
    module, shapes, described = exported_module(netG, opt)
    module.eval()
    examples = tuple(torch.zeros([batch, *shape[1:]]) for shape in shapes.values())
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
