"""A generator made ready for inference: `prepare_for_inference` folds its spectral norms (folding.py) and sets
the path of its layout convolutions.

The layers that read the one-hot layout compute their convolution as a table lookup of the class ids
(models/networks/layout_lookup.py) wherever the layout is one-hot, in training as at inference, so a label map's
absent classes cost nothing and need no preparation; `layout_path` ('auto', 'lookup' or 'conv', --layout_conv)
chooses the path (docs/benchmarks.md says which runs where).
"""
from torch import nn

from models.networks.layout_lookup import set_layout_path

from .folding import fold_spectral_norms


def prepare_for_inference(net: nn.Module, layout_path: str = "auto") -> nn.Module:
    """Fold the spectral norms of `net` (eval mode, in place) and set its layout convolutions' path -> net."""
    fold_spectral_norms(net)
    return set_layout_path(net, layout_path)
