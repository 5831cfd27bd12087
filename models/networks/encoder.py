"""SPADE's VAE encoder: the image -> (mu, logvar) of the latent code z."""
from torch import nn
from torch.nn import functional as F

from . import ENCODERS
from .base_network import BaseNetwork
from .normalization import conv_with_norm, parse_norm


@ENCODERS.register("conv")
class ConvEncoder(BaseNetwork):
    """Five (six from crop 256 up) stride-2 3x3 convs with LReLU, then two linear heads to z_dim.
    The image is resized so that the last feature map is 4x4: to 256x256 with six layers (as SPADE does),
    to 128x128 with five (SPADE resizes to 256 there too, which breaks crops below 256)."""

    @classmethod
    def from_opt(cls, opt):
        return cls(nef=opt.nef, crop_size=opt.crop_size, z_dim=opt.z_dim, norm=parse_norm(opt.norm_E, "--norm_E"))

    def __init__(self, nef: int = 64, crop_size: int = 256, z_dim: int = 256, norm=parse_norm("spectralinstance")):
        super().__init__()
        kw, pw = 3, 1
        self.layer1 = conv_with_norm(nn.Conv2d(3, nef, kw, stride=2, padding=pw), norm)
        self.layer2 = conv_with_norm(nn.Conv2d(nef * 1, nef * 2, kw, stride=2, padding=pw), norm)
        self.layer3 = conv_with_norm(nn.Conv2d(nef * 2, nef * 4, kw, stride=2, padding=pw), norm)
        self.layer4 = conv_with_norm(nn.Conv2d(nef * 4, nef * 8, kw, stride=2, padding=pw), norm)
        self.layer5 = conv_with_norm(nn.Conv2d(nef * 8, nef * 8, kw, stride=2, padding=pw), norm)
        self.num_layers = 6 if crop_size >= 256 else 5
        if self.num_layers == 6:
            self.layer6 = conv_with_norm(nn.Conv2d(nef * 8, nef * 8, kw, stride=2, padding=pw), norm)
        self.input_size = 4 * 2 ** self.num_layers
        self.fc_mu = nn.Linear(nef * 8 * 4 * 4, z_dim)
        self.fc_var = nn.Linear(nef * 8 * 4 * 4, z_dim)

    def forward(self, x):
        """x: (B, 3, H, W) image in [-1, 1] -> mu, logvar: (B, z_dim) each."""
        if x.shape[2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        x = self.layer1(x)
        for i in range(2, self.num_layers + 1):
            x = getattr(self, f"layer{i}")(F.leaky_relu(x, 0.2))
        x = F.leaky_relu(x, 0.2).flatten(1)
        return self.fc_mu(x), self.fc_var(x)
