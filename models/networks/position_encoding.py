"""The layout "position" encoding of the authors' CelebAMask-HQ SC-GAN (their `position` / `pyr_pos` options in
model/net/generator.py; not in the paper): an iterated, unnormalized Gaussian blur of the one-hot layout kept
inside each region, so every pixel also tells how far it lies from its region's border.

One step: x <- (G * x) . S, with G a 7x7 Gaussian window (sigma 1.5, peak 1, sum ~13.7) applied to each channel
with zero padding and S the map being encoded. After `iters` steps, `relative` divides by the previous iterate.
For a one-hot S and one step, a pixel deep inside its region gets ~13.7 in its channel, a border pixel less,
every other channel 0.

Used by the SVG's layout pyramid (models/networks/scgan.py) with `--sv_position`:
- `full`: encode the full-resolution layout (instance edge channel excluded), then build the pyramid as usual;
- `pyramid` (their CelebAMask-HQ model): build the pyramid by nearest x0.5 down-sampling, encode the
  `blurred_levels` levels just below full resolution as they are built (so coarser levels inherit the encoded
  values), and encode the full-resolution level last.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from .layout_lookup import Layout

POSITION_MODES = ("none", "full", "pyramid")


def gaussian_window(size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """(size, size) outer product of the 1-D window exp(-(x - size//2)^2 / (2 sigma^2)); not normalized. In
    torch's default dtype, as a module's parameters are built (a model built in float64 gets it unrounded)."""
    g = torch.tensor([math.exp(-(x - size // 2) ** 2 / (2.0 * sigma ** 2)) for x in range(size)])
    return torch.outer(g, g)


class IterativeGaussian(nn.Module):
    """x: (B, C, H, W) -> (B, C, H, W): `iters` times x <- depthwise_blur(x) * mask, mask the input; with
    `relative` the result is divided by the previous iterate (+1e-8)."""

    def __init__(self, size: int = 7, sigma: float = 1.5, iters: int = 1, relative: bool = False):
        super().__init__()
        if iters < 1:
            raise ValueError(f"position encoding: iters must be >= 1, got {iters}")
        self.size, self.iters, self.relative = size, iters, relative
        self.register_buffer("window", gaussian_window(size, sigma)[None, None], persistent=False)

    def forward(self, x):
        mask, previous = x, x
        channels = x.shape[1]
        window = self.window.to(x.dtype).expand(channels, 1, self.size, self.size)
        for _ in range(self.iters):
            previous = x
            x = F.conv2d(x, window, padding=self.size // 2, groups=channels) * mask
        return x / (previous + 1e-8) if self.relative else x


def layout_pyramid(seg, num_levels: int, mode: str = "none", encode=None, blurred_levels: int = 2,
                   edge_channel: bool = False):
    """seg: (B, C, H, W), a Layout or a tensor -> [S at H/2^(L-1), ..., S at H], coarsest first (Layouts with
    mode 'none', else tensors).

    mode 'none': each level the bilinear x0.5 (= exact 2x2 mean) of the next: soft one-hot maps.
    mode 'full': `encode` the full-resolution layout first (all channels but the last when `edge_channel`).
    mode 'pyramid': nearest x0.5 levels; the `blurred_levels` levels just below full resolution are encoded as
    they are built, the full-resolution level at the end (their CelebAMask-HQ model: 2 of 6)."""
    if mode not in POSITION_MODES:
        raise ValueError(f"--sv_position {mode}: expected one of {', '.join(POSITION_MODES)}")
    if isinstance(seg, Layout):
        if mode == "none":  # the levels as block means of the same class ids: no one-hot tensor is made
            levels = [seg]
            for _ in range(1, num_levels):
                levels.insert(0, levels[0].block_mean())
            return levels
        seg = seg.tensor()
    if mode == "full":
        if edge_channel:
            seg = torch.cat([encode(seg[:, :-1]), seg[:, -1:]], dim=1)
        else:
            seg = encode(seg)
    levels = [seg]
    for halvings in range(1, num_levels):
        if mode == "pyramid":
            level = F.interpolate(levels[0], scale_factor=0.5, mode="nearest")
            if halvings <= blurred_levels:
                level = encode(level)
        else:
            level = F.interpolate(levels[0], scale_factor=0.5, mode="bilinear", align_corners=False)
        levels.insert(0, level)
    if mode == "pyramid":
        levels[-1] = encode(levels[-1])
    return levels
