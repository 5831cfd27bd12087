"""SPADE / pix2pixHD's multi-scale PatchGAN discriminator.

Every discriminator returns ``(scores, feature_groups)``: `scores` is a list of real/fake score maps (the GAN
loss averages over it) and `feature_groups` a list of lists of intermediate features (feature matching sums
over each group and averages over the groups). Module names follow NVlabs SPADE.
"""
from torch import nn

from util.ranges import bounded

from . import DISCRIMINATORS
from .base_network import BaseNetwork
from .layout_lookup import Layout, LayoutConv2d, as_layout, average_3x3
from .normalization import conv_with_norm, parse_norm


class NLayerDiscriminator(BaseNetwork):
    """PatchGAN on [layout, image]: conv(k4, s2) + LReLU, then n_layers_D - 1 norm'd convs (the last with
    stride 1), then a conv to one channel. Every group's output is kept for feature matching."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 4, norm=parse_norm("spectralinstance")):
        super().__init__()
        kw, padw = 4, 2
        nf = ndf
        sequence = [[LayoutConv2d(input_nc, nf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, False)]]
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            sequence += [[conv_with_norm(nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=stride, padding=padw), norm),
                          nn.LeakyReLU(0.2, False)]]
        sequence += [[nn.Conv2d(nf, 1, kernel_size=kw, stride=1, padding=padw)]]
        for n, layers in enumerate(sequence):
            self.add_module(f"model{n}", nn.Sequential(*layers))

    def forward(self, x):
        """x: (B, input_nc, H, W), a Layout (the layout and the image) or a tensor -> list of every group's output;
        the last is the score map (B, 1, h, w)."""
        results = [x]
        for submodel in self.children():
            results.append(submodel(results[-1]))
        return results[1:]


@DISCRIMINATORS.register("multiscale")
class MultiscaleDiscriminator(BaseNetwork):
    """num_D PatchGANs, each on a 2x average-pooled copy of the previous one's input."""

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.add_argument("--netD_subarch", type=str, default="n_layer", choices=("n_layer",),
                            help="architecture of each discriminator")
        parser.add_argument("--num_D", type=bounded(int, min=1), default=2, help="number of discriminators (scales)")
        parser.add_argument("--n_layers_D", type=bounded(int, min=1), default=4, help="layers in each discriminator")
        return parser

    @classmethod
    def from_opt(cls, opt):
        return cls(input_nc=opt.semantic_nc + opt.output_nc, ndf=opt.ndf, n_layers=opt.n_layers_D,
                   num_D=opt.num_D, norm=parse_norm(opt.norm_D, "--norm_D"))

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 4, num_D: int = 2,
                 norm=parse_norm("spectralinstance")):
        super().__init__()
        if norm.conditional is not None:
            raise ValueError(f"--norm_D takes a plain norm such as spectralinstance, not a {norm.conditional} norm")
        for i in range(num_D):
            self.add_module(f"discriminator_{i}", NLayerDiscriminator(input_nc, ndf, n_layers, norm))

    @staticmethod
    def downsample(x):
        """The next scale's input: x's 3x3 average, stride 2 (a Layout of one-hot classes becomes the weighted
        phases of its neighbours, which the next scale's first layer reads by lookup)."""
        return x.averaged_3x3() if isinstance(x, Layout) else average_3x3(x)

    def forward(self, seg, image):
        """seg: (B, semantic_nc, H, W), a Layout or a tensor; image: (B, 3, H, W) -> (scores, feature_groups),
        one entry per scale."""
        x = as_layout(self, seg).with_after(image)
        scores, features = [], []
        for D in self.children():
            out = D(x)
            scores.append(out[-1])
            features.append(out[:-1])
            x = self.downsample(x)
        return scores, features
