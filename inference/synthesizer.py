"""The one inference path from a trained experiment to images: `Synthesizer`.

    from inference import Synthesizer
    synth = Synthesizer.from_experiment("checkpoints/NAME")   # the EMA generator when the experiment saved one
    image = synth("label.png")                                 # (H, W, 3) uint8
    images = synth([ids_a, ids_b], seed=3, output="pil")       # a batch, as PIL images

Label maps come as a file path, a PIL image, an integer array or tensor of class ids ((H, W) one, (B, H, W) a
batch), a float one-hot tensor ((C, H, W) or (B, C, H, W), C = label_nc + 1 with the dontcare label), or a list
of these. They are turned into the generator's input by models/pix2pix_model.py (`semantic_layout`: one-hot,
dontcare channel, instance edges), exactly as for training: a Layout of the class ids, which the
layers that read it convolve by table lookup (models/networks/layout_lookup.py). The generator's spectral norms
are folded at load (inference/folding.py). test.py, evaluate.py and demo.py synthesize through this class.

Built from the experiment's saved options (opt.json read into a Namespace, nothing parsed), so this module does
not import options/. A released file is imported into an experiment first: tools/import_checkpoint.py's
`released_synthesizer` does both steps.
"""
import argparse
import json
import os
import warnings
from contextlib import nullcontext

import numpy as np
import torch
from PIL import Image

from checkpointing.storage import CheckpointError, load_network, network_path
from data.base_dataset import id_map_values, open_image
from data.pix2pix_dataset import DONTCARE
from models import networks
from models.networks.layout_lookup import set_layout_path
from models.pix2pix_model import layout_of_labels
from util import util

from .folding import fold_spectral_norms

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
OUTPUTS = ("uint8", "pil", "tensor")


def read_experiment_options(folder):
    """checkpoints/NAME/opt.json (written by train.py and the importer) -> an argparse.Namespace of the saved
    values, as the experiment was built (isTrain False)."""
    path = os.path.join(folder, "opt.json")
    if not os.path.isfile(path):
        raise CheckpointError(f"no experiment at {folder}: {path} not found (train.py and "
                              f"python -m tools.import_checkpoint write it)")
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path} cannot be read as saved options ({type(e).__name__}: {e})") from None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path} does not hold saved options (a JSON object of option names and values)")
    opt = argparse.Namespace(**saved)
    opt.isTrain = False
    if "semantic_nc" not in saved:  # derived at option parsing; older files may lack it
        opt.semantic_nc = opt.label_nc + int(opt.contain_dontcare_label) + int(not opt.no_instance)
    return opt


def model_size(opt):
    """(H, W) of the layouts the model was built for: --crop_size wide, the height from --aspect_ratio."""
    return int(round(opt.crop_size / opt.aspect_ratio)), opt.crop_size


def generator_label(folder, which_epoch, ema=True):
    """'G_ema' when asked and the experiment saved an EMA generator for `which_epoch`, else 'G'."""
    return "G_ema" if ema and os.path.isfile(network_path(folder, which_epoch, "G_ema")) else "G"


def load_networks(opt, folder, which_epoch="latest", ema=True, device="cpu", trust_pickle=False, fold=True):
    """Build the experiment's generator (and its VAE encoder with --use_vae), load the `which_epoch` weights
    (the EMA generator when `ema` and saved) and fold their spectral norms -> (netG, netE or None, the generator
    file). Built in Pix2PixModel's order (G, then E), so the global random state after loading is the same."""
    netG = networks.define_G(opt, verbose=False)
    netE = networks.define_E(opt, verbose=False) if opt.use_vae else None
    label = generator_label(folder, which_epoch, ema)
    load_network(netG, folder, which_epoch, label, trust_pickle=trust_pickle)
    if netE is not None:
        load_network(netE, folder, which_epoch, "E", trust_pickle=trust_pickle)
    for net in (netG, netE):
        if net is not None:
            net.to(device).eval()
            if fold:
                fold_spectral_norms(net)
    return netG, netE, network_path(folder, which_epoch, label)


class SlowPrecisionWarning(UserWarning):
    """The asked precision runs much slower than fp32 on this device (bf16 on a CPU without bf16 instructions)."""


def bf16_cpu_cost():
    """None when this CPU has bf16 instructions (x86: AMX-BF16, AVX512-BF16 or AVX-NE-CONVERT; ARM: BF16), else one
    clause saying so and what bf16 costs. oneDNN, which runs PyTorch's CPU convolutions, emulates bf16 on an AVX-512
    CPU without them and has no bf16 kernels below AVX-512. Measured against fp32 with oneDNN held to an
    instruction set (ONEDNN_MAX_CPU_ISA, docs/inference.md): held to AVX-512, one 3x3 convolution (128 channels at
    64x64) took 3.4 to 3.9 times as long and SC-GAN 2.2 times; held to AVX2, 216 to 331 times and 65 times (and
    322 times for that convolution on an AVX2 CPU)."""
    capabilities = torch.cpu.get_capabilities()
    if any(capabilities.get(f) for f in ("amx_bf16", "avx512_bf16", "avx_ne_convert", "bf16", "sve_bf16")):
        return None
    if capabilities.get("architecture") not in ("x86_64", "x86"):
        return "this CPU has no bf16 instructions: bf16 is emulated, likely slower than fp32 (not measured here)"
    if all(capabilities.get(f) for f in ("avx512_f", "avx512_bw", "avx512_vl", "avx512_dq")):
        return ("this CPU has no bf16 instructions (AVX512-BF16 or AMX-BF16): oneDNN emulates bf16 with AVX-512, "
                "2 to 4 times slower than fp32")
    return (f"this CPU has no bf16 instructions (AVX512-BF16 or AMX-BF16) and no AVX-512 (PyTorch's CPU capability: "
            f"{torch.backends.cpu.get_cpu_capability()}): oneDNN runs bf16 convolutions in reference code, tens to "
            f"hundreds of times slower than fp32")


def check_settings(opt, device, precision):
    """Raise ValueError, naming the setting, unless a Synthesizer can run this model this way."""
    if opt.label_nc < 1:
        raise ValueError(f"'{opt.name}' (--model {opt.model}, --netG {opt.netG}) reads no label maps "
                         f"(--label_nc {opt.label_nc}); Synthesizer renders label maps")
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise ValueError(f"precision fp16 runs on CUDA only, and the device is {device}: use bf16 or fp32")


def refuse_empty(batch, what):
    """Raise ValueError for a batch (B, ...) of no samples: the generator's convolutions would fail on it with
    PyTorch's shape message, which names no input."""
    if batch.shape[0] == 0:
        raise ValueError(f"an empty batch of {what} (shape {tuple(batch.shape)}): give at least one")


def ordinary(value):
    """A tensor, or a list of them, made under torch.inference_mode -> ordinary copies."""
    if isinstance(value, (list, tuple)):
        return type(value)(ordinary(v) for v in value)
    return value.clone() if isinstance(value, torch.Tensor) else value


class Synthesizer:
    """A trained label-to-image generator in eval mode: label maps in, images out.

    A --use_vae model renders a style code z (B, z_dim): given as `style`, drawn from `seed`, or encoded from
    an image (`encode_style`). A seed also fixes the noise a generator draws itself (OASIS's 3-D noise,
    --oasis_noise_nc); without one the global random state is used, as test.py always did. A model trained
    with instance maps gets the label map as its instance map unless `instances` are given (one instance per
    class region)."""

    def __init__(self, netG, opt, netE=None, device="cpu", precision="fp32", generator_file=None, layout_path="auto"):
        device = torch.device(device)
        check_settings(opt, device, precision)
        cost = bf16_cpu_cost() if precision == "bf16" and device.type == "cpu" else None
        if cost:
            warnings.warn(f"precision bf16 on the CPU: {cost}; fp32 is faster here", SlowPrecisionWarning,
                          stacklevel=2)
        self.opt, self.device, self.precision = opt, device, precision
        self.dtype = PRECISIONS[precision]
        self.netG = set_layout_path(netG.to(device=device, dtype=self.dtype).eval(), layout_path)
        self.netE = netE.to(device=device, dtype=self.dtype).eval() if netE is not None else None
        self.generator_file = generator_file
        self.size = model_size(opt)
        self.label_channels = opt.label_nc + int(opt.contain_dontcare_label)
        # spade and scgan hold noise_nc (OASIS's 3-D noise channels); other generators draw no noise
        self.noise_nc = getattr(netG, "noise_nc", 0)

    # ------------------------------------------------------------------------------------------------ building
    @classmethod
    def from_experiment(cls, folder, which_epoch="latest", ema=True, device="cpu", precision="fp32", fold=True,
                        trust_pickle=False, layout_path="auto"):
        """An experiment folder (checkpoints/NAME, with opt.json) -> Synthesizer of its `which_epoch` generator:
        the EMA one when the experiment saved it and `ema`, its spectral norms folded when `fold`."""
        if not os.path.isdir(folder):
            raise CheckpointError(f"no experiment at {folder}: the folder does not exist")
        return cls.from_options(read_experiment_options(folder), folder, which_epoch, ema, device, precision,
                                fold, trust_pickle, layout_path)

    @classmethod
    def from_options(cls, opt, folder=None, which_epoch=None, ema=None, device="cpu", precision="fp32", fold=True,
                     trust_pickle=None, layout_path="auto"):
        """From options already read (test.py, evaluate.py and demo.py pass theirs): the folder defaults to
        opt.checkpoints_dir/opt.name, which_epoch to opt.which_epoch, ema to `not opt.no_ema`."""
        folder = folder if folder is not None else os.path.join(opt.checkpoints_dir, opt.name)
        which_epoch = which_epoch if which_epoch is not None else opt.which_epoch
        ema = ema if ema is not None else not opt.no_ema
        trust_pickle = trust_pickle if trust_pickle is not None else opt.trust_pickle
        check_settings(opt, device, precision)   # before the networks are built and loaded
        netG, netE, file = load_networks(opt, folder, which_epoch, ema, device, trust_pickle, fold)
        return cls(netG, opt, netE, device, precision, file, layout_path)

    @property
    def uses_ema(self):
        return self.generator_file is not None and self.generator_file.endswith("_net_G_ema.pth")

    @property
    def uses_style(self):
        """Whether the result depends on a style code or noise (so on `style` / `seed`)."""
        return bool(self.opt.use_vae or self.noise_nc)

    # ------------------------------------------------------------------------------------------------ inputs
    def read_ids(self, labels, what="label map"):
        """Label maps in any accepted form -> ((B, 1, H, W) long class ids in [0, label_nc], label_nc being
        dontcare; whether a batch was given). Dontcare is accepted as 255 (label files) or label_nc."""
        if isinstance(labels, (list, tuple)):
            if not labels:
                raise ValueError(f"an empty list of {what}s")
            return torch.cat([self.read_ids(item, what)[0] for item in labels]), True
        ids, batched = self._one_or_batch(labels, what)
        return self._checked(ids, what), batched

    def _one_or_batch(self, x, what):
        if isinstance(x, (str, os.PathLike)):
            ids = id_map_values(open_image(x), x, what)
            return torch.from_numpy(ids)[None, None], False
        if isinstance(x, Image.Image):
            return torch.from_numpy(id_map_values(x, "the PIL image", what))[None, None], False
        if isinstance(x, np.ndarray):
            if not np.issubdtype(x.dtype, np.integer):
                raise ValueError(f"a {what} array of dtype {x.dtype}: class ids must be integers (a float one-hot "
                                 f"goes as a torch tensor)")
            x = torch.from_numpy(x.astype(np.int64))
        if not torch.is_tensor(x):
            raise TypeError(f"a {what} of type {type(x).__name__}: expected a path, a PIL image, an integer array "
                            f"or tensor of class ids, a one-hot tensor, or a list of these")
        if x.is_floating_point():
            return self._ids_of_one_hot(x, what)
        x = x.long()
        if x.dim() == 2:
            return x[None, None], False
        if x.dim() == 3:
            return x[:, None], True
        if x.dim() == 4 and x.shape[1] == 1:
            return x, True
        raise ValueError(f"a {what} of class ids of shape {tuple(x.shape)}: expected (H, W), (B, H, W) or "
                         f"(B, 1, H, W)")

    def _ids_of_one_hot(self, x, what):
        batched = x.dim() == 4
        if x.dim() == 3:
            x = x[None]
        if x.dim() != 4 or x.shape[1] != self.label_channels:
            raise ValueError(f"a one-hot {what} of shape {tuple(x.shape)}: this model reads {self.label_channels} "
                             f"channels (label_nc {self.opt.label_nc}"
                             f"{' + dontcare' if self.opt.contain_dontcare_label else ''}), as (C, H, W) or "
                             f"(B, C, H, W)")
        hot = x == 1
        if not ((hot | (x == 0)).all() and (hot.sum(dim=1) == 1).all()):
            raise ValueError(f"the one-hot {what} is not one-hot: every pixel needs one channel at 1 and the "
                             f"others at 0")
        return x.argmax(dim=1, keepdim=True), batched

    def _checked(self, ids, what):
        refuse_empty(ids, what + "s")
        label_nc, dontcare = self.opt.label_nc, self.opt.contain_dontcare_label
        if dontcare:
            ids = torch.where(ids == DONTCARE, torch.full_like(ids, label_nc), ids)
        bad = (ids < 0) | (ids > label_nc) if dontcare else (ids < 0) | (ids >= label_nc)
        if bad.any():
            value = int(ids[bad].max()) if (ids[bad] >= 0).any() else int(ids[bad].min())
            allowed = f"0..{label_nc - 1}" + (f", or {label_nc} / {DONTCARE} for dontcare" if dontcare else "")
            raise ValueError(f"the {what} holds the class id {value}, out of range for this model's label_nc "
                             f"{label_nc} (allowed: {allowed})")
        h, w = ids.shape[2:]
        if (h, w) != self.size:
            raise ValueError(f"a layout of {h}x{w}, but the model was built for {self.size[0]}x{self.size[1]} "
                             f"(--crop_size, --aspect_ratio)")
        return ids

    def layout(self, labels, instances=None):
        """Label maps (any accepted form) and optional instance maps (the same forms, any integer ids) -> the
        generator's input (B, semantic_nc, H, W) on the device, in the model's precision: a Layout of the class
        ids (models/networks/layout.py; `.tensor()` is the one-hot tensor)."""
        return self._layout(labels, instances)[0]

    def _layout(self, labels, instances):
        ids, batched = self.read_ids(labels)
        instance = ids
        if instances is not None:
            items = instances if isinstance(instances, (list, tuple)) else [instances]
            instance = torch.cat([self._one_or_batch(item, "instance map")[0] for item in items])
            if instance.shape != ids.shape:
                raise ValueError(f"instance maps of shape {tuple(instance.shape)} for label maps of shape "
                                 f"{tuple(ids.shape)}")
        return self.layout_of_ids(ids, instance), batched

    def layout_of_ids(self, ids, instance):
        """ids: (B, 1, H, W) long class ids (dontcare = label_nc); instance: (B, 1, H, W) instance ids, or
        anything when the model reads no instance edges -> the Layout (B, semantic_nc, H, W)."""
        ids = ids.to(self.device)
        return layout_of_labels(ids, instance, self.opt.label_nc, self.opt.contain_dontcare_label,
                                self.opt.no_instance, dtype=self.dtype)

    # ------------------------------------------------------------------------------------------------ style
    def _require_vae(self, what, encoder=False):
        if not self.opt.use_vae or (encoder and self.netE is None):
            raise ValueError(f"{what} needs a model trained with --use_vae (a style code z"
                             f"{' and its encoder' if encoder else ''}); '{self.opt.name}' has none")

    def random_codes(self, n, seed):
        """-> (n, z_dim) style codes z ~ N(0, I) from a CPU generator seeded by `seed` (the same on every device;
        the codes of Pix2PixModel.random_codes)."""
        self._require_vae("a style code")
        return torch.randn(n, self.opt.z_dim, generator=torch.Generator().manual_seed(int(seed)))

    @torch.no_grad()
    def encode_style(self, images, sample=False):
        """images: (B, 3, H, W) in [-1, 1] -> (B, z_dim): the posterior mean mu, or with `sample` a draw
        mu + eps * sigma with eps from the global random state (SPADE's test-time encoding)."""
        self._require_vae("encode_style", encoder=True)
        mu, logvar = self.netE(images.to(self.device, self.dtype))
        if not sample:
            return mu
        return mu + torch.randn_like(logvar) * torch.exp(0.5 * logvar)

    # ------------------------------------------------------------------------------------------------ running
    @torch.no_grad()
    def generate(self, layout, style=None, seed=None, return_aux=False):
        """layout: (B, semantic_nc, H, W) from `layout` (or a one-hot tensor); style: (B, z_dim) or (z_dim,) codes z (--use_vae);
        seed: fixes the code (when no style is given) and the generator's own noise -> image (B, 3, H, W) in
        [-1, 1], float32 on the device (with return_aux also the generator's aux dict)."""
        refuse_empty(layout, "layouts")
        b = layout.size(0)
        z = None
        if style is not None:
            self._require_vae("a style code")
            z = style.expand(b, -1) if style.dim() == 1 else style
            if tuple(z.shape) != (b, self.opt.z_dim):
                raise ValueError(f"a style of shape {tuple(style.shape)} for {b} label maps: expected "
                                 f"({b}, {self.opt.z_dim}) or ({self.opt.z_dim},) (batch, --z_dim)")
        elif seed is not None and self.opt.use_vae:
            z = self.random_codes(b, seed)
        if z is not None:
            z = z.to(self.device, self.dtype)
        layout = layout.to(self.device, self.dtype)
        if seed is None:
            context = nullcontext()
        else:
            context = torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])
        # inference mode skips autograd's bookkeeping (about 4% of SC-GAN's forward at 256x256 on a CPU); what
        # leaves it is copied into ordinary tensors, which callers may change in place or use with autograd
        with context, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(int(seed))  # the generator's own noise; the caller's random state is kept
            image, aux = self.netG(layout, z=z, return_aux=True)
        image = image.float() if image.dtype != torch.float32 else image.clone()
        if not return_aux:
            return image
        return image, {key: ordinary(value) for key, value in aux.items()}

    @torch.no_grad()
    def synthesize_batch(self, data):
        """A dataset batch ({'label': (B, 1, H, W) ids, 'instance': ids or 0, 'image': (B, 3, H, W) or absent})
        -> (B, 3, H, W) in [-1, 1], as Pix2PixModel.forward(data, 'inference'): with --use_vae the style is
        encoded from data['image'] when there is one (sampled, SPADE's test), else drawn by the generator."""
        refuse_empty(data["label"], "label maps")
        layout = self.layout_of_ids(data["label"].long(), data["instance"])
        z = None
        if self.netE is not None and data.get("image") is not None:
            z = self.encode_style(data["image"], sample=True)
        return self.generate(layout, style=z)

    def __call__(self, labels, instances=None, style=None, seed=None, output="uint8"):
        """Label maps -> images: one (H, W, 3) uint8 array for one label map, (B, H, W, 3) for a batch; with
        output='pil' a PIL image or a list of them; with output='tensor' (B, 3, H, W) float32 in [-1, 1]."""
        if output not in OUTPUTS:
            raise ValueError(f"output {output!r}: expected one of {', '.join(OUTPUTS)}")
        layout, batched = self._layout(labels, instances)
        image = self.generate(layout, style, seed)
        if output == "tensor":
            return image.cpu()
        pictures = np.stack([util.tensor2im(image[b].cpu()) for b in range(image.size(0))])
        if output == "pil":
            pictures = [Image.fromarray(p) for p in pictures]
        return pictures if batched else pictures[0]
