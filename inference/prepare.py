"""A generator made ready for inference: `prepare_for_inference` folds its spectral norms (folding.py) and makes
the convolutions that read the one-hot layout skip its channels that are zero over the whole batch.

A label map holds a few of the dataset's classes (an ADE20K map: a handful of its 150), so most channels of the
layout are zero everywhere; a convolution spends as much on them as on the others. `ZeroChannelSkippingConv2d`
finds the channels that are nonzero somewhere in the batch (one max and one min per channel), convolves those with
the matching slices of its kernel, and gives the same sum without the zero terms (equal up to the order of the
float additions). The generator says which of its convolutions read the layout (`layout_convs`,
models/networks/base_network.py, scgan.py). The channel choice depends on the input's values, so this module is
for eager PyTorch: the ONNX export (export.py) and torch.compile take the folded generator without it.
"""
from torch import nn

from .folding import fold_spectral_norms


def nonzero_channels(x):
    """x: (B, C, H, W) -> (C,) bool, True for the channels nonzero somewhere in the batch (or holding a NaN, which
    compares unequal to 0). A strided view of a tensor of the same batch and channels (a layout resized by
    `resize_nearest`, models/networks/normalization.py) is answered from that tensor, once per version of it:
    several convolutions read views of the same layout, and a strided reduction is slow. A channel nonzero there
    but zero in the view is kept, which adds only zero terms. A view of a tensor made under torch.inference_mode
    records no base (and such a tensor no version), so it is checked directly."""
    base = x._base
    if base is None or base.dim() != 4 or base.shape[:2] != x.shape[:2]:
        return ((x.amax(dim=(2, 3)) != 0) | (x.amin(dim=(2, 3)) != 0)).any(dim=0)
    cached = getattr(base, "_nonzero_channels", None)
    if cached is None or cached[0] != base._version:
        cached = (base._version, nonzero_channels(base))
        base._nonzero_channels = cached
    return cached[1]


class ZeroChannelSkippingConv2d(nn.Conv2d):
    """A Conv2d (groups 1) that leaves out the input channels that are zero in every image of the batch."""

    def forward(self, x):
        """x: (B, C_in, H, W) -> (B, C_out, H', W'), as nn.Conv2d."""
        present = nonzero_channels(x)
        if bool(present.all()):
            return super().forward(x)
        keep = present.nonzero().squeeze(1)
        return self._conv_forward(x.index_select(1, keep), self.weight.index_select(1, keep), self.bias)


def skip_zero_layout_channels(net: nn.Module) -> int:
    """Make every plain convolution in net.layout_convs() a ZeroChannelSkippingConv2d (same parameters, same
    state dict) -> how many. Spectral norms must be folded first: a parametrized conv is left as it is."""
    changed = 0
    for conv in net.layout_convs():
        if type(conv) is nn.Conv2d and conv.groups == 1:
            conv.__class__ = ZeroChannelSkippingConv2d
            changed += 1
    return changed


def prepare_for_inference(net: nn.Module) -> nn.Module:
    """Fold the spectral norms of `net` (eval mode, in place) and, when it names its layout convolutions, make
    them skip the layout's zero channels. -> net."""
    fold_spectral_norms(net)
    if hasattr(net, "layout_convs"):
        skip_zero_layout_channels(net)
    return net
