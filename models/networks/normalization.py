"""Normalization layers and the ONE parser of SPADE-style norm strings.

``--norm_G spectralspadesyncbatch3x3`` means: spectral norm on the convolutions, SPADE normalization whose
parameter-free part is synchronized batch norm, SPADE's MLP kernels 3x3. ``parse_norm`` turns such a string
into a NormSpec with named parts; nothing else in the code looks inside the strings.
"""
import re
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

from .layout_lookup import Layout, LayoutConv2d, resize_nearest  # noqa: F401  (resize_nearest: used by the generators)
from .sync_batchnorm import SyncBatchNorm2d

PARAM_FREE_NORMS = ("instance", "batch", "syncbatch", "none")
CONDITIONAL_NORMS = ("spade", "scc")


@dataclass(frozen=True)
class NormSpec:
    spectral: bool                 # spectral norm on the convolutions
    param_free: str                # instance | batch | syncbatch | none
    conditional: Optional[str]     # spade | scc | None (a plain norm after each conv)
    kernel_size: Optional[int]     # kernel of SPADE's MLP convs, for conditional norms


def parse_norm(text: str, option: str = "--norm_G") -> NormSpec:
    """'spectralinstance' -> NormSpec(True, 'instance', None, None);
    'spectralspadesyncbatch3x3' -> NormSpec(True, 'syncbatch', 'spade', 3); 'instance' -> no spectral norm."""
    rest = text
    spectral = rest.startswith("spectral")
    if spectral:
        rest = rest[len("spectral"):]
    for conditional in CONDITIONAL_NORMS:
        if rest.startswith(conditional):
            m = re.fullmatch(r"(instance|batch|syncbatch|sync_batch)(\d)x(\d)", rest[len(conditional):])
            if not m or m.group(2) != m.group(3):
                raise ValueError(f"{option} {text}: expected [spectral]{conditional}<instance|batch|syncbatch>KxK, "
                                 f"e.g. spectral{conditional}syncbatch3x3")
            return NormSpec(spectral, m.group(1).replace("_", ""), conditional, int(m.group(2)))
    param_free = rest.replace("_", "") or "none"
    if param_free not in PARAM_FREE_NORMS:
        raise ValueError(f"{option} {text}: unknown norm '{rest}'; expected [spectral] followed by one of "
                         f"{', '.join(PARAM_FREE_NORMS)} (or spade/scc + norm + KxK for generators)")
    return NormSpec(spectral, param_free, None, None)


def autocast_off(tensor):
    """A context with autocast disabled on `tensor`'s device (nothing to disable where autocast is unavailable,
    e.g. the meta device used to count parameters)."""
    device = tensor.device.type
    return torch.autocast(device, enabled=False) if torch.amp.is_autocast_available(device) else nullcontext()


class SpectralNormFP32(_SpectralNorm):
    """torch's spectral-norm parametrization (same buffers `_u`, `_v`, same state-dict keys) with the power
    iteration and sigma in the weight's own dtype (at least fp32), never autocast's: under CUDA fp16 autocast torch.mv
    would run in half precision (and torch's vdot then meets mixed dtypes). So an fp32 weight is normalized in fp32
    (autocast casts the result at the conv), a float64 one in float64."""

    def _power_method(self, weight_mat, n_power_iterations):
        with autocast_off(weight_mat):
            # at least fp32: a float64 network (gradcheck) keeps its precision
            super()._power_method(weight_mat.to(torch.promote_types(weight_mat.dtype, torch.float32)),
                                  n_power_iterations)

    def forward(self, weight):
        with autocast_off(weight):
            return super().forward(weight)


def spectral_norm(module):
    """Spectral norm (one power iteration per training step) as a parametrization of `module.weight`, as
    torch.nn.utils.parametrizations.spectral_norm but AMP-safe (SpectralNormFP32). Transposed convs are
    normalized over their output dimension (dim 1), as torch does."""
    transposed = isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    parametrization = SpectralNormFP32(module.weight, dim=1 if transposed else 0)
    parametrize.register_parametrization(module, "weight", parametrization)
    return module


def batch_norm(kind: str, channels: int, affine: bool) -> nn.Module:
    """'batch' -> nn.BatchNorm2d; 'syncbatch' -> SyncBatchNorm2d (global-batch statistics across processes,
    plain batch norm in one process; converted to torch.nn.SyncBatchNorm for DDP on CUDA)."""
    if kind == "syncbatch":
        return SyncBatchNorm2d(channels, affine=affine)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=affine)
    raise ValueError(f"unknown batch norm '{kind}'; expected batch or syncbatch")


def param_free_norm(kind: str, channels: int) -> nn.Module:
    """Normalization without learned affine parameters: instance, batch, syncbatch (see batch_norm), none."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind in ("batch", "syncbatch"):
        return batch_norm(kind, channels, affine=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown parameter-free norm '{kind}'; expected one of {', '.join(PARAM_FREE_NORMS)}")


def conv_with_norm(conv: nn.Module, spec: NormSpec) -> nn.Module:
    """SPADE's non-SPADE norm layer: optional spectral norm on `conv`, then a norm. The conv loses its bias
    when a norm follows (the norm would cancel it). Batch norms are affine, instance norm is not."""
    if spec.spectral:
        conv = spectral_norm(conv)
    if spec.param_free == "none":
        return conv
    if conv.bias is not None:
        del conv.bias
        conv.register_parameter("bias", None)
    channels = conv.out_channels
    if spec.param_free == "instance":
        norm = nn.InstanceNorm2d(channels, affine=False)
    else:
        norm = batch_norm(spec.param_free, channels, affine=True)
    return nn.Sequential(conv, norm)


class SPADE(nn.Module):
    """Spatially-adaptive normalization (Park et al. 2019): param-free norm, then a per-pixel scale and shift
    predicted from the layout by a small conv net: out = norm(x) * (1 + gamma(seg)) + beta(seg)."""

    hidden = 128  # SPADE's fixed width of the shared MLP

    def __init__(self, norm_nc: int, label_nc: int, param_free: str = "syncbatch", kernel_size: int = 3):
        super().__init__()
        self.param_free_norm = param_free_norm(param_free, norm_nc)
        pw = kernel_size // 2
        self.mlp_shared = nn.Sequential(LayoutConv2d(label_nc, self.hidden, kernel_size, padding=pw), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(self.hidden, norm_nc, kernel_size, padding=pw)
        self.mlp_beta = nn.Conv2d(self.hidden, norm_nc, kernel_size, padding=pw)

    def forward(self, x, segmap):
        """x: (B, C, H, W); segmap: (B, semantic_nc, H', W'), a Layout or a tensor, resized (nearest) to H x W."""
        normalized = self.param_free_norm(x)
        segmap = segmap.resized(x.shape[2:]) if isinstance(segmap, Layout) else resize_nearest(segmap, x.shape[2:])
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)
