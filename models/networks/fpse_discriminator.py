"""CC-FPSE's feature-pyramid semantics-embedding discriminator (Liu et al. 2019), as SC-GAN uses it.

Bottom-up: five stride-2 3x3 convs on the image alone. Top-down: 1x1 laterals to 4*ndf, bilinear x2 and
sum. Three heads at 1/4, 1/8, 1/16 each score real/fake and add the per-pixel inner product between the
embedded layout and the head's "segmentation" features (the semantics embedding).
"""
from torch import nn
from torch.nn import functional as F

from . import DISCRIMINATORS
from .base_network import BaseNetwork
from .layout_lookup import LayoutConv2d, as_layout
from .normalization import conv_with_norm, parse_norm


@DISCRIMINATORS.register("fpse")
class FPSEDiscriminator(BaseNetwork):
    @classmethod
    def from_opt(cls, opt):
        height = int(round(opt.crop_size / opt.aspect_ratio))
        if opt.crop_size % 32 or height % 32 or min(opt.crop_size, height) < 64:
            raise ValueError(f"--netD fpse needs an image whose sides are multiples of 32 and at least 64 (it "
                             f"down-samples 32 times); --crop_size {opt.crop_size} --aspect_ratio "
                             f"{opt.aspect_ratio:g} gives {opt.crop_size}x{height}: choose a --crop_size such as "
                             f"{max(64, opt.crop_size // 32 * 32)}")
        return cls(semantic_nc=opt.semantic_nc, ndf=opt.ndf, norm=parse_norm(opt.norm_D, "--norm_D"),
                   input_nc=opt.output_nc)

    def __init__(self, semantic_nc: int, ndf: int = 64, norm=parse_norm("spectralinstance"), input_nc: int = 3):
        super().__init__()
        if norm.conditional is not None:
            raise ValueError(f"--norm_D takes a plain norm such as spectralinstance, not a {norm.conditional} norm")

        def block(cin, cout, k, stride):
            return nn.Sequential(conv_with_norm(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2), norm),
                                 nn.LeakyReLU(0.2, False))

        # bottom-up pathway: 1/2 ... 1/32
        self.enc1 = block(input_nc, ndf, 3, 2)
        self.enc2 = block(ndf, ndf * 2, 3, 2)
        self.enc3 = block(ndf * 2, ndf * 4, 3, 2)
        self.enc4 = block(ndf * 4, ndf * 8, 3, 2)
        self.enc5 = block(ndf * 8, ndf * 8, 3, 2)
        # top-down pathway: lateral 1x1 convs to 4*ndf
        self.lat2 = block(ndf * 2, ndf * 4, 1, 1)
        self.lat3 = block(ndf * 4, ndf * 4, 1, 1)
        self.lat4 = block(ndf * 8, ndf * 4, 1, 1)
        self.lat5 = block(ndf * 8, ndf * 4, 1, 1)
        # heads at 1/4, 1/8, 1/16
        self.final2 = block(ndf * 4, ndf * 2, 3, 1)
        self.final3 = block(ndf * 4, ndf * 2, 3, 1)
        self.final4 = block(ndf * 4, ndf * 2, 3, 1)
        # shared plain 1x1 convs: real/fake score, segmentation features, layout embedding
        self.tf = nn.Conv2d(ndf * 2, 1, 1)
        self.seg = nn.Conv2d(ndf * 2, ndf * 2, 1)
        self.embedding = LayoutConv2d(semantic_nc, ndf * 2, 1)

    @staticmethod
    def up(x):
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)

    def forward(self, seg, image):
        """seg: (B, semantic_nc, H, W), a Layout or a tensor; image: (B, 3, H, W), H and W divisible by 32
        -> (scores at 1/4, 1/8, 1/16 as (B, 1, h, w)), [[f2], [f3], [f4], [f5]] bottom-up features)."""
        if min(image.shape[2:]) < 64:
            raise ValueError(f"--netD fpse needs images of at least 64x64 (it down-samples 32 times), got "
                             f"{image.shape[2]}x{image.shape[3]}")
        f1 = self.enc1(image)
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
        f4 = self.enc4(f3)
        f5 = self.enc5(f4)
        p5 = self.lat5(f5)
        p4 = self.up(p5) + self.lat4(f4)
        p3 = self.up(p4) + self.lat3(f3)
        p2 = self.up(p3) + self.lat2(f2)
        heads = [self.final2(p2), self.final3(p3), self.final4(p4)]

        # the 1x1 embedding of the layout's 2x2 means, which is the 2x2 mean of its embedding (both linear): the
        # layout is read at 1/2 (by lookup, of the four phases of the class ids) rather than at full size
        emb = self.embedding(as_layout(self, seg).block_mean())   # 1/2
        scores = []
        for head in heads:                            # 1/4, 1/8, 1/16
            emb = F.avg_pool2d(emb, 2)
            scores.append(self.tf(head) + (emb * self.seg(head)).sum(dim=1, keepdim=True))
        return scores, [[f2], [f3], [f4], [f5]]
