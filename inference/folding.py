"""Spectral-norm folding for inference.

In eval mode a spectral-normed weight is a constant: W / sigma with sigma = u^T W v from the stored u, v (no
power iteration runs). `fold_spectral_norms` computes that value once and puts it in place of the
parametrization as a plain parameter, for torch's spectral norm (models/networks/normalization.py,
SpectralNormFP32) and SC-GAN's per-candidate one (models/networks/semantic_composition.py,
CandidateSpectralNorm). The folded network computes what the unfolded one computes in eval mode, without
recomputing every sigma at every forward. Its state dict then holds the folded weights under their plain
names, so checkpoints are loaded before folding, never into a folded network.
"""
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

from models.networks.semantic_composition import CandidateSpectralNorm

SPECTRAL_NORMS = (_SpectralNorm, CandidateSpectralNorm)


def spectral_parametrizations(net: nn.Module):
    """-> [(module, tensor name)] of every spectral-norm parametrization in `net`."""
    found = []
    for module in net.modules():
        if parametrize.is_parametrized(module):
            for name, chain in module.parametrizations.items():
                if any(isinstance(p, SPECTRAL_NORMS) for p in chain):
                    found.append((module, name))
    return found


@torch.no_grad()
def fold_spectral_norms(net: nn.Module) -> int:
    """Replace every spectral-norm parametrization of `net` by its eval-mode value W / sigma (computed with the
    stored u, v), as a plain parameter. Puts `net` in eval mode (training would change u, v and sigma) and
    returns the number of weights folded. Other parametrizations, if any, are left as they are."""
    net.eval()
    folded = spectral_parametrizations(net)
    for module, name in folded:
        own_class(module)
        parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return len(folded)


def own_class(module):
    """Give a parametrized module a class of its own. torch makes one per module, but a deep copy shares it with
    the original, and removing a parametrization deletes the property from that class: without this, folding a
    copy would break the original (and every other copy)."""
    cls = type(module)
    module.__class__ = type(cls.__name__, cls.__bases__, {k: v for k, v in cls.__dict__.items()
                                                          if k not in ("__dict__", "__weakref__")})
