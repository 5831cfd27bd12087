"""OASIS's U-Net discriminator (Schönfeld et al., "You Only Need Adversarial Supervision for Semantic Image
Synthesis", ICLR 2021, §3.1), as SC-GAN's appendix B.1 (Table 8) trains its generator with it.

It reads the image alone and segments it: per pixel, N + 1 logits, channel 0 for "fake" and channel c + 1 for
class c (N = label_nc + the dontcare label). The loss that goes with it is in oasis_loss.py.

Encoder: `depth` residual blocks, each halving the size; decoder: `depth` residual blocks, each doubling it,
the last `depth - 1` reading the matching encoder output concatenated to their input (U-Net skips); a plain 1x1
conv gives the logits at full resolution. Widths in units of ndf: 2, 2, 4, 4, 8, 8 (OASIS's 128 ... 512 at
ndf 64), capped at 8; the decoder ends at ndf. Spectral norm on every conv but the 1x1 head (--norm_D spectral,
OASIS: no normalization layer in the blocks).
"""
import torch
from torch import nn
from torch.nn import functional as F

from util.ranges import bounded

from . import DISCRIMINATORS
from .base_network import BaseNetwork
from .normalization import conv_with_norm, parse_norm


def encoder_widths(ndf: int, depth: int):
    """Output widths of the down-sampling blocks: ndf * (2, 2, 4, 4, 8, 8, 8, ...)."""
    return [ndf * min(2 ** (i // 2 + 1), 8) for i in range(depth)]


class OASISResBlock(nn.Module):
    """OASIS's discriminator block. direction 'down': [LReLU] conv3x3, LReLU, conv3x3, 2x2 average pool;
    shortcut: 1x1 conv (when fin != fout), then the pool (the first block, which reads the image: pool, then
    conv). direction 'up': LReLU, x2 nearest up-sampling, conv3x3, LReLU, conv3x3; shortcut: x2, then 1x1 conv."""

    def __init__(self, fin: int, fout: int, direction: str, first: bool = False,
                 norm=parse_norm("spectral", "--norm_D")):
        super().__init__()
        if direction not in ("down", "up"):
            raise ValueError(f"OASISResBlock: direction must be 'down' or 'up', got {direction!r}")
        self.direction, self.first = direction, first
        self.conv1 = conv_with_norm(nn.Conv2d(fin, fout, 3, padding=1), norm)
        self.conv2 = conv_with_norm(nn.Conv2d(fout, fout, 3, padding=1), norm)
        self.conv_s = conv_with_norm(nn.Conv2d(fin, fout, 1), norm) if fin != fout else None

    def shortcut(self, x):
        if self.direction == "up":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        elif self.first:  # pool the image before the (cheaper) 1x1 conv
            x = F.avg_pool2d(x, 2)
        if self.conv_s is not None:
            x = self.conv_s(x)
        if self.direction == "down" and not self.first:
            x = F.avg_pool2d(x, 2)
        return x

    def forward(self, x):
        """x: (B, fin, H, W) -> (B, fout, H/2, W/2) down, (B, fout, 2H, 2W) up."""
        dx = x if self.first else F.leaky_relu(x, 0.2)
        if self.direction == "up":
            dx = F.interpolate(dx, scale_factor=2.0, mode="nearest")
        dx = self.conv2(F.leaky_relu(self.conv1(dx), 0.2))
        if self.direction == "down":
            dx = F.avg_pool2d(dx, 2)
        return self.shortcut(x) + dx


@DISCRIMINATORS.register("oasis")
class OASISDiscriminator(BaseNetwork):
    segments_image = True

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.add_argument("--oasis_D_blocks", type=bounded(int, min=1), default=6,
                            help="OASIS U-Net: residual blocks on each side, each halving (encoder) or doubling "
                                 "(decoder) the size; the image sides must be divisible by 2^blocks")
        parser.add_argument("--lambda_labelmix", type=bounded(float, min=0), default=10.0,
                            help="weight of OASIS' LabelMix consistency loss on the discriminator (0 turns it off)")
        # OASIS trains D with spectral norm and no normalization layer, without feature matching (its D has no
        # real/fake feature pyramid), and keeps an EMA generator of decay 0.9999 (kept here unless chosen).
        parser.set_defaults(norm_D="spectral", no_ganFeat_loss=True)
        if parser.get_default("ema_decay") == 0:
            parser.set_defaults(ema_decay=0.9999)
        return parser

    @staticmethod
    def extra_loss_weights(opt):
        return {"D_LabelMix": opt.lambda_labelmix}

    @classmethod
    def from_opt(cls, opt):
        height = int(round(opt.crop_size / opt.aspect_ratio))
        scale = 2 ** opt.oasis_D_blocks
        if opt.oasis_D_blocks < 1 or opt.crop_size % scale or height % scale:
            raise ValueError(f"--netD oasis with --oasis_D_blocks {opt.oasis_D_blocks} needs image sides divisible "
                             f"by 2^{opt.oasis_D_blocks} = {scale}; --crop_size {opt.crop_size} --aspect_ratio "
                             f"{opt.aspect_ratio:g} gives {opt.crop_size}x{height}: lower --oasis_D_blocks (at least "
                             f"1) or change --crop_size")
        return cls(num_classes=opt.label_nc + int(opt.contain_dontcare_label), ndf=opt.ndf,
                   depth=opt.oasis_D_blocks, norm=parse_norm(opt.norm_D, "--norm_D"), input_nc=opt.output_nc)

    def __init__(self, num_classes: int, ndf: int = 64, depth: int = 6, norm=parse_norm("spectral", "--norm_D"),
                 input_nc: int = 3):
        super().__init__()
        if norm.conditional is not None:
            raise ValueError(f"--norm_D takes a plain norm such as spectral, not a {norm.conditional} norm")
        self.num_classes = num_classes
        widths = encoder_widths(ndf, depth)
        self.down = nn.ModuleList(OASISResBlock(fin, fout, "down", first=i == 0, norm=norm)
                                  for i, (fin, fout) in enumerate(zip([input_nc] + widths[:-1], widths)))
        # decoder block j (j >= 1) reads [encoder output depth-1-j, previous decoder output], both of width w
        outs = widths[-2::-1] + [ndf]
        ins = [widths[-1]] + [2 * w for w in widths[-2::-1]]
        self.up = nn.ModuleList(OASISResBlock(fin, fout, "up", norm=norm) for fin, fout in zip(ins, outs))
        self.to_logits = nn.Conv2d(ndf, num_classes + 1, 1)

    def forward(self, image):
        """image: (B, input_nc, H, W), H and W divisible by 2^depth -> logits (B, num_classes + 1, H, W):
        channel 0 'fake', channel c + 1 class c."""
        skips = []
        x = image
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[0](x)
        for block, skip in zip(self.up[1:], reversed(skips[:-1])):
            x = block(torch.cat([skip, x], dim=1))
        return self.to_logits(x)
