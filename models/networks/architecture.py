"""Residual blocks of the baselines: SPADE's SPADEResnetBlock and pix2pixHD's ResnetBlock."""
from torch import nn
from torch.nn import functional as F

from .normalization import SPADE, spectral_norm


class SPADEResnetBlock(nn.Module):
    """norm -> LReLU -> conv, twice, plus a shortcut (SPADE + 1x1 conv without bias when fin != fout)."""

    def __init__(self, fin: int, fout: int, semantic_nc: int, spectral: bool = True,
                 param_free: str = "syncbatch", kernel_size: int = 3):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = nn.Conv2d(fin, fmiddle, kernel_size=3, padding=1)
        self.conv_1 = nn.Conv2d(fmiddle, fout, kernel_size=3, padding=1)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, kernel_size=1, bias=False)
        if spectral:
            self.conv_0 = spectral_norm(self.conv_0)
            self.conv_1 = spectral_norm(self.conv_1)
            if self.learned_shortcut:
                self.conv_s = spectral_norm(self.conv_s)
        self.norm_0 = SPADE(fin, semantic_nc, param_free, kernel_size)
        self.norm_1 = SPADE(fmiddle, semantic_nc, param_free, kernel_size)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, semantic_nc, param_free, kernel_size)

    def forward(self, x, seg):
        """x: (B, fin, H, W); seg: (B, semantic_nc, H', W') -> (B, fout, H, W)."""
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


class ResnetBlock(nn.Module):
    """pix2pixHD's block: reflect-pad, conv, norm, act, reflect-pad, conv, norm; plus the identity."""

    def __init__(self, dim: int, norm_layer, activation: nn.Module, kernel_size: int = 3):
        super().__init__()
        pw = (kernel_size - 1) // 2
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(pw),
            norm_layer(nn.Conv2d(dim, dim, kernel_size=kernel_size)),
            activation,
            nn.ReflectionPad2d(pw),
            norm_layer(nn.Conv2d(dim, dim, kernel_size=kernel_size)),
        )

    def forward(self, x):
        return x + self.conv_block(x)
