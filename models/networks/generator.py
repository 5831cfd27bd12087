"""The baseline generators: SPADE (Park et al. 2019) and pix2pixHD's global generator (Wang et al. 2018).

Module names follow NVlabs SPADE exactly, so their released `latest_net_G.pth` files load with strict=True.
Also OASIS's optional 3-D noise (`with_3d_noise`, --oasis_noise_nc), which spade and scgan concatenate to the
layout they read.
"""
import torch
from torch import nn
from torch.nn import functional as F

from util.ranges import bounded

from . import GENERATORS
from .architecture import ResnetBlock, SPADEResnetBlock
from .base_network import BaseNetwork
from .layout_lookup import Layout, LayoutConv2d, LayoutReflectionPad2d, as_layout
from .normalization import conv_with_norm, parse_norm, resize_nearest

UPSAMPLING_LAYERS = {"normal": 5, "more": 6, "most": 7}
# The schedule of SPADE's skeleton, shared by the generators that read a layout pyramid (scgan, ccfpse): its seven
# blocks; which pyramid level (0 = coarsest, the first feature map's size) each block reads; whether the features
# are up-sampled x2 before it. Without the extra up-sampling of `more` the two middle blocks share a resolution,
# and so a level.
SKELETON_BLOCKS = ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")
LEVEL_OF_BLOCK = {"normal": (0, 1, 1, 2, 3, 4, 5), "more": (0, 1, 2, 3, 4, 5, 6)}
UPSAMPLE_BEFORE_BLOCK = {"normal": (False, True, False, True, True, True, True),
                         "more": (False, True, True, True, True, True, True)}


def latent_size(crop_size: int, aspect_ratio: float, num_up: int):
    """(sh, sw) of the first feature map: crop_size / 2^num_up wide, height from the aspect ratio."""
    if crop_size % (2 ** num_up) != 0:
        raise ValueError(f"--crop_size {crop_size} must be divisible by 2^{num_up} = {2 ** num_up} "
                         f"(the generator up-samples {num_up} times)")
    sw = crop_size // (2 ** num_up)
    return round(sw / aspect_ratio), sw


def first_features(fc, seg, z, use_vae: bool, z_dim: int, size):
    """The generator's first feature map at `size` (sh, sw): fc(z) reshaped with the VAE (z ~ N(0, I) when
    not given), else fc applied to the layout (a Layout or a tensor) down-sampled to that size (SPADE's
    deterministic start)."""
    if use_vae:
        if z is None:
            z = torch.randn(seg.size(0), z_dim, dtype=seg.dtype, device=seg.device)
        return fc(z).view(seg.size(0), -1, *size)
    return fc(seg.resized(size) if isinstance(seg, Layout) else resize_nearest(seg, size))


def with_3d_noise(seg, noise_nc: int):
    """OASIS's 3-D noise: seg (B, C, H, W), a Layout or a tensor -> (B, noise_nc + C, H, W), a vector
    z ~ N(0, I) of noise_nc values drawn per image, repeated over every pixel and put before the layout's
    channels (so an instance edge channel stays last). noise_nc 0 returns seg as it is."""
    if noise_nc == 0:
        return seg
    b, _, h, w = seg.shape
    z = torch.randn(b, noise_nc, 1, 1, dtype=seg.dtype, device=seg.device)
    if isinstance(seg, Layout):
        return seg.with_before(z.expand(b, noise_nc, h, w))
    return torch.cat([z.expand(b, noise_nc, h, w), seg], dim=1)


def add_noise_option(parser):
    parser.add_argument("--oasis_noise_nc", type=bounded(int, min=0), default=0,
                        help="OASIS's 3-D noise: this many N(0, 1) channels, one value per image, concatenated to "
                             "the layout that the generator reads (OASIS: 64; 0: none, as SC-GAN's Table 8)")


def add_upsampling_option(parser):
    parser.add_argument("--num_upsampling_layers", choices=tuple(UPSAMPLING_LAYERS), default="normal",
                        help="'more' adds an up-sampling between the two middle blocks; 'most' also adds "
                             "one more up-sampling and block at the end")


@GENERATORS.register("spade")
class SPADEGenerator(BaseNetwork):
    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.set_defaults(norm_G="spectralspadesyncbatch3x3")
        add_upsampling_option(parser)
        add_noise_option(parser)
        return parser

    @classmethod
    def from_opt(cls, opt):
        spec = parse_norm(opt.norm_G, "--norm_G")
        if spec.conditional != "spade":
            raise ValueError(f"--norm_G {opt.norm_G}: --netG spade needs a SPADE norm such as "
                             "spectralspadesyncbatch3x3")
        return cls(semantic_nc=opt.semantic_nc, ngf=opt.ngf, crop_size=opt.crop_size,
                   aspect_ratio=opt.aspect_ratio, num_upsampling_layers=opt.num_upsampling_layers,
                   use_vae=opt.use_vae, z_dim=opt.z_dim, spectral=spec.spectral,
                   param_free=spec.param_free, kernel_size=spec.kernel_size, output_nc=opt.output_nc,
                   noise_nc=opt.oasis_noise_nc)

    def __init__(self, semantic_nc, ngf=64, crop_size=256, aspect_ratio=1.0, num_upsampling_layers="normal",
                 use_vae=False, z_dim=256, spectral=True, param_free="syncbatch", kernel_size=3, output_nc=3,
                 noise_nc=0):
        super().__init__()
        nf = ngf
        self.noise_nc = noise_nc
        semantic_nc += noise_nc  # what the first conv and the SPADE layers read (with_3d_noise)
        self.num_upsampling_layers = num_upsampling_layers
        self.use_vae, self.z_dim = use_vae, z_dim
        self.sh, self.sw = latent_size(crop_size, aspect_ratio, UPSAMPLING_LAYERS[num_upsampling_layers])
        if use_vae:
            self.fc = nn.Linear(z_dim, 16 * nf * self.sh * self.sw)
        else:  # deterministic: start from the down-sampled layout
            self.fc = LayoutConv2d(semantic_nc, 16 * nf, 3, padding=1)

        def block(fin, fout):
            return SPADEResnetBlock(fin, fout, semantic_nc, spectral, param_free, kernel_size)

        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, 1 * nf)
        final_nc = nf
        if num_upsampling_layers == "most":
            self.up_4 = block(1 * nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, output_nc, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, seg, z=None, return_aux=False):
        """seg: (B, semantic_nc, H, W) one-hot layout (a Layout or a tensor); z: (B, z_dim) or None -> image
        (B, 3, H, W) in [-1, 1]."""
        seg = with_3d_noise(as_layout(self, seg), self.noise_nc)
        x = first_features(self.fc, seg, z, self.use_vae, self.z_dim, (self.sh, self.sw))
        x = self.head_0(x, seg)
        x = self.G_middle_0(self.up(x), seg)
        if self.num_upsampling_layers in ("more", "most"):
            x = self.up(x)
        x = self.G_middle_1(x, seg)
        x = self.up_0(self.up(x), seg)
        x = self.up_1(self.up(x), seg)
        x = self.up_2(self.up(x), seg)
        x = self.up_3(self.up(x), seg)
        if self.num_upsampling_layers == "most":
            x = self.up_4(self.up(x), seg)
        image = torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))
        return (image, {}) if return_aux else image


@GENERATORS.register("pix2pixhd")
class Pix2PixHDGenerator(BaseNetwork):
    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.add_argument("--resnet_n_downsample", type=bounded(int, min=0), default=4,
                            help="down-sampling layers in netG")
        parser.add_argument("--resnet_n_blocks", type=bounded(int, min=0), default=9, help="residual blocks in netG")
        parser.add_argument("--resnet_kernel_size", type=bounded(int, min=1, odd=True), default=3,
                            help="kernel size of the resnet block")
        parser.add_argument("--resnet_initial_kernel_size", type=bounded(int, min=1, odd=True), default=7,
                            help="kernel size of the first convolution")
        parser.set_defaults(norm_G="instance")
        return parser

    @classmethod
    def from_opt(cls, opt):
        if opt.use_vae:  # the encoder would train a code that this generator never reads
            raise ValueError("--netG pix2pixhd has no input for a style code z: --use_vae works with --netG spade "
                             "or scgan")
        return cls(semantic_nc=opt.semantic_nc, ngf=opt.ngf, output_nc=opt.output_nc,
                   norm=parse_norm(opt.norm_G, "--norm_G"), n_downsample=opt.resnet_n_downsample,
                   n_blocks=opt.resnet_n_blocks, kernel_size=opt.resnet_kernel_size,
                   initial_kernel_size=opt.resnet_initial_kernel_size)

    def __init__(self, semantic_nc, ngf=64, output_nc=3, norm=parse_norm("instance"), n_downsample=4,
                 n_blocks=9, kernel_size=3, initial_kernel_size=7):
        super().__init__()
        if norm.conditional is not None:
            raise ValueError(f"--netG pix2pixhd takes a plain norm such as instance or spectralinstance, "
                             f"not a {norm.conditional} norm")

        def norm_layer(conv):
            return conv_with_norm(conv, norm)

        activation = nn.ReLU(False)
        model = [LayoutReflectionPad2d(initial_kernel_size // 2),
                 norm_layer(LayoutConv2d(semantic_nc, ngf, kernel_size=initial_kernel_size, padding=0)),
                 activation]
        mult = 1
        for _ in range(n_downsample):
            model += [norm_layer(nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1)),
                      activation]
            mult *= 2
        for _ in range(n_blocks):
            model += [ResnetBlock(ngf * mult, norm_layer=norm_layer, activation=activation,
                                  kernel_size=kernel_size)]
        nc_out = ngf * mult
        for _ in range(n_downsample):
            nc_in, nc_out = ngf * mult, ngf * mult // 2
            model += [norm_layer(nn.ConvTranspose2d(nc_in, nc_out, kernel_size=3, stride=2, padding=1,
                                                    output_padding=1)),
                      activation]
            mult //= 2
        model += [nn.ReflectionPad2d(3), nn.Conv2d(nc_out, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, seg, z=None, return_aux=False):
        """seg: (B, semantic_nc, H, W), a Layout or a tensor, with H, W divisible by 2^n_downsample -> image
        (B, 3, H, W)."""
        image = self.model(as_layout(self, seg))
        return (image, {}) if return_aux else image
