"""CC-FPSE's generator (Liu et al., NeurIPS 2019, "Learning to Predict Layout-to-image Conditional Convolutions
for Semantic Image Synthesis"): the baseline that SC-GAN's paper compares with, as `--netG ccfpse`.

Its convolutions are conditional: a weight prediction network reads the layout and predicts, at every pixel,
the 3x3 depthwise kernel of every channel (`spatial_depthwise_conv`), and a sigmoid attention map that gates
each channel after the 1x1 pointwise convolution. The prediction network sees global context through a feature
pyramid over the layout (`LabelPyramid`: stride-2 encoder, 1x1 laterals, top-down decoder); each block reads
the layout concatenated with the pyramid's features at its resolution. SC-GAN's paper (§4.1) names this
per-pixel linear processing as the reason CC-FPSE cost too much GPU memory on CelebAMask-HQ; the benchmark
table in docs/benchmarks.md shows that cost.

Module names follow the authors' code (head_0 ... up_3, labelenc*, labellat*, labeldec*, gen_weights*,
gen_se_weights*). Three of its defects are not copied: batch norms that are built but never called (they
added parameters to the count), the non-VAE input conv with 16·ngf·sh·sw output channels (that path could not
run; here it is SPADE's 3x3 conv to 16·ngf channels), and BatchNorm fixed inside the blocks whatever --norm_G
says (here the blocks take the norm of --norm_G).
"""
import torch
from torch import nn
from torch.nn import functional as F

from . import GENERATORS
from .base_network import BaseNetwork
from .generator import (LEVEL_OF_BLOCK, SKELETON_BLOCKS, UPSAMPLE_BEFORE_BLOCK, UPSAMPLING_LAYERS,
                        add_upsampling_option, first_features, latent_size)
from .layout_lookup import Layout, LayoutConv2d, as_layout
from .normalization import SPADE, batch_norm, conv_with_norm, parse_norm, resize_nearest, spectral_norm

WEIGHT_HIDDEN = 128  # width of the weight prediction heads, fixed in the authors' code as SPADE's MLP


def spatial_depthwise_conv(x, weights, kernel_size: int = 3):
    """A depthwise convolution whose kernel changes at every pixel (zero padding, stride 1).

    x: (B, C, H, W); weights: (B, C * k * k, H, W), channel c's kernel at (i, j) being weights[:, c*k*k : (c+1)*k*k,
    i, j] in row-major order over the k x k window (the order of F.unfold) -> (B, C, H, W) with
    out[b, c, i, j] = sum_{u, v} weights[b, c*k*k + u*k + v, i, j] * x[b, c, i + u - k//2, j + v - k//2].

    Summed over the k*k shifted views of the padded input instead of unfolding it: autograd then keeps the
    padded input once, not k*k copies of it."""
    b, c, h, w = x.shape
    k = kernel_size
    if weights.shape != (b, c * k * k, h, w):
        raise ValueError(f"weights of shape {tuple(weights.shape)} for an input of shape {tuple(x.shape)}: "
                         f"expected {(b, c * k * k, h, w)}")
    padded = F.pad(x, [k // 2] * 4)
    weights = weights.view(b, c, k * k, h, w)
    out = None
    for u in range(k):
        for v in range(k):
            term = padded[:, :, u:u + h, v:v + w] * weights[:, :, u * k + v]
            out = term if out is None else out + term
    return out


def affine_norm(kind: str, channels: int) -> nn.Module:
    """The learned-affine norm of a conditional-convolution block: batch or synchronized batch norm (CC-FPSE's
    choice), instance norm, or none."""
    if kind in ("batch", "syncbatch"):
        return batch_norm(kind, channels, affine=True)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def weight_head(in_nc: int, out_nc: int, final: nn.Module = None) -> nn.Sequential:
    """Conv3x3 -> ReLU -> Conv3x3 (-> final): predicts a per-pixel map of out_nc values from the layout (with the
    pyramid's features)."""
    layers = [LayoutConv2d(in_nc, WEIGHT_HIDDEN, 3, padding=1), nn.ReLU(),
              nn.Conv2d(WEIGHT_HIDDEN, out_nc, 3, padding=1)]
    return nn.Sequential(*layers, *([final] if final is not None else []))


class CondConvBlock(nn.Module):
    """CC-FPSE's depthwise-separable conditional-convolution residual block (the authors' DepthsepCCBlock):

        dx = LReLU(att_1 * conv_1(dwconv(norm_1(x), w_1)));  dx = LReLU(att_2 * conv_3(dwconv(norm_2(dx), w_2)))
        out = shortcut(x) + dx

    where w_1, w_2 are per-pixel 3x3 depthwise kernels and att_1, att_2 per-pixel sigmoid channel attention, all
    predicted from the condition (the layout and the pyramid's features); conv_1 and conv_3 are ordinary 1x1
    convs. The shortcut is SPADE + a spectral 1x1 conv when fin != fout."""

    def __init__(self, fin: int, fout: int, cond_nc: int, norm: str = "syncbatch", spectral: bool = True):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.gen_weights1 = weight_head(cond_nc, fin * 9)
        self.gen_weights2 = weight_head(cond_nc, fmiddle * 9)
        self.gen_se_weights1 = weight_head(cond_nc, fmiddle, nn.Sigmoid())
        self.gen_se_weights2 = weight_head(cond_nc, fout, nn.Sigmoid())
        self.norm_1 = affine_norm(norm, fin)
        self.conv_1 = nn.Conv2d(fin, fmiddle, kernel_size=1)
        self.norm_2 = affine_norm(norm, fmiddle)
        self.conv_3 = nn.Conv2d(fmiddle, fout, kernel_size=1)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, kernel_size=1, bias=False)
            if spectral:
                self.conv_s = spectral_norm(self.conv_s)
            self.norm_s = SPADE(fin, cond_nc, param_free=norm)

    def forward(self, x, cond):
        """x: (B, fin, H, W); cond: (B, cond_nc, H', W'), a Layout or a tensor, resized (nearest) to H x W
        -> (B, fout, H, W)."""
        cond = cond.resized(x.shape[2:]) if isinstance(cond, Layout) else resize_nearest(cond, x.shape[2:])
        x_s = self.conv_s(self.norm_s(x, cond)) if self.learned_shortcut else x
        dx = spatial_depthwise_conv(self.norm_1(x), self.gen_weights1(cond))
        dx = F.leaky_relu(self.conv_1(dx) * self.gen_se_weights1(cond), 0.2)
        dx = spatial_depthwise_conv(self.norm_2(dx), self.gen_weights2(cond))
        dx = F.leaky_relu(self.conv_3(dx) * self.gen_se_weights2(cond), 0.2)
        return x_s + dx


class LabelPyramid(nn.Module):
    """The weight prediction network's global context: a feature pyramid over the layout.

    Encoder: a 3x3 conv at full resolution, then `levels - 1` stride-2 3x3 convs (labelenc1 ... labelencN), all
    nf wide. Top-down: start from the coarsest encoder level, and at each finer level add the ×2 (nearest)
    up-sampled features to a 1x1 lateral of that encoder level (labellat*), then a 3x3 conv (labeldec*).
    Every conv is followed by --norm_G's plain norm and LReLU 0.2."""

    def __init__(self, semantic_nc: int, nf: int, levels: int, norm):
        super().__init__()
        self.levels = levels

        def stage(in_nc, kernel_size, stride=1, reads_layout=False):
            conv = (LayoutConv2d if reads_layout else nn.Conv2d)(in_nc, nf, kernel_size, stride=stride,
                                                                 padding=kernel_size // 2)
            return nn.Sequential(conv_with_norm(conv, norm), nn.LeakyReLU(0.2, True))

        for i in range(1, levels + 1):
            setattr(self, f"labelenc{i}", stage(semantic_nc if i == 1 else nf, 3, stride=1 if i == 1 else 2,
                                                reads_layout=i == 1))
        for i in range(1, levels):
            setattr(self, f"labellat{i}", stage(nf, 1))
            setattr(self, f"labeldec{i}", stage(nf, 3))

    def forward(self, seg):
        """seg: (B, semantic_nc, H, W), a Layout or a tensor -> [features at H/2^(levels-1), ..., at H/2, at H],
        each (B, nf, ., .)."""
        encoded = [seg]
        for i in range(1, self.levels + 1):
            encoded.append(getattr(self, f"labelenc{i}")(encoded[-1]))
        out = [encoded[self.levels]]
        for i in range(1, self.levels):
            lateral = getattr(self, f"labellat{i}")(encoded[self.levels - i])
            out.append(getattr(self, f"labeldec{i}")(F.interpolate(out[-1], scale_factor=2.0) + lateral))
        return out


@GENERATORS.register("ccfpse")
class CCFPSEGenerator(BaseNetwork):
    """SPADE's generator skeleton (16·ngf at H/32, seven blocks, ×2 up-samplings) with CondConvBlocks, each
    conditioned on the layout concatenated with the LabelPyramid's ngf features at its resolution."""

    # The authors' released scripts: FPSE discriminator, feature matching x20, the VAE, 100 + 100 epochs;
    # their generator adds the `more` up-sampling for Cityscapes by itself.
    _released = dict(netD="fpse", lambda_feat=20.0, use_vae=True, niter=100, niter_decay=100)
    dataset_presets = {"coco": _released, "ade20k": _released,
                       "cityscapes": dict(_released, num_upsampling_layers="more")}

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.set_defaults(norm_G="spectralsyncbatch")  # CC-FPSE's spectralsync_batch
        add_upsampling_option(parser)
        return parser

    @classmethod
    def from_opt(cls, opt):
        spec = parse_norm(opt.norm_G, "--norm_G")
        if spec.conditional is not None:
            raise ValueError(f"--norm_G {opt.norm_G}: --netG ccfpse takes a plain norm such as spectralsyncbatch "
                             f"(its convolutions are conditional instead of its norms)")
        return cls(semantic_nc=opt.semantic_nc, ngf=opt.ngf, crop_size=opt.crop_size,
                   aspect_ratio=opt.aspect_ratio, num_upsampling_layers=opt.num_upsampling_layers,
                   use_vae=opt.use_vae, z_dim=opt.z_dim, norm=spec, output_nc=opt.output_nc)

    def __init__(self, semantic_nc, ngf=64, crop_size=256, aspect_ratio=1.0, num_upsampling_layers="normal",
                 use_vae=False, z_dim=256, norm=parse_norm("spectralsyncbatch"), output_nc=3):
        super().__init__()
        if num_upsampling_layers not in LEVEL_OF_BLOCK:
            raise ValueError(f"--num_upsampling_layers {num_upsampling_layers}: --netG ccfpse supports "
                             f"{' and '.join(LEVEL_OF_BLOCK)} (as the authors' generator)")
        nf = ngf
        self.num_upsampling_layers = num_upsampling_layers
        self.use_vae, self.z_dim = use_vae, z_dim
        self.sh, self.sw = latent_size(crop_size, aspect_ratio, UPSAMPLING_LAYERS[num_upsampling_layers])
        if use_vae:
            self.fc = nn.Linear(z_dim, 16 * nf * self.sh * self.sw)
        else:  # deterministic: start from the down-sampled layout, as SPADE
            self.fc = LayoutConv2d(semantic_nc, 16 * nf, 3, padding=1)
        self.label_pyramid = LabelPyramid(semantic_nc, nf, max(LEVEL_OF_BLOCK[num_upsampling_layers]) + 1, norm)
        widths = (16, 16, 16, 16, 8, 4, 2, 1)
        for name, fin, fout in zip(SKELETON_BLOCKS, widths, widths[1:]):
            setattr(self, name, CondConvBlock(fin * nf, fout * nf, semantic_nc + nf, norm.param_free, norm.spectral))
        self.conv_img = nn.Conv2d(nf, output_nc, 3, padding=1)

    def forward(self, seg, z=None, return_aux=False):
        """seg: (B, semantic_nc, H, W) one-hot layout (a Layout or a tensor); z: (B, z_dim) or None -> image
        (B, 3, H, W) in [-1, 1]."""
        seg = as_layout(self, seg)
        x = first_features(self.fc, seg, z, self.use_vae, self.z_dim, (self.sh, self.sw))
        context = self.label_pyramid(seg)
        levels = LEVEL_OF_BLOCK[self.num_upsampling_layers]
        for name, level, up in zip(SKELETON_BLOCKS, levels, UPSAMPLE_BEFORE_BLOCK[self.num_upsampling_layers]):
            if up:
                x = F.interpolate(x, scale_factor=2.0)
            features = context[level]
            x = getattr(self, name)(x, seg.resized(features.shape[2:]).with_after(features))
        image = torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))
        return (image, {}) if return_aux else image
