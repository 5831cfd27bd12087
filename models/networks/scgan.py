"""SC-GAN's generator (paper §3.1-3.2, appendix A): the semantic vector generator (SVG) and the
semantic render generator (SRG), in the structure of the authors' released code (dvlab-research/SCGAN).

SVG: a CRN-style cascade over a pyramid of the layout, from H/32 (H/64 with `more`) up to H. Each stage's
output, pooled over channels to n maps, gives the raw semantic vectors at exactly the resolution of the SRG
block that reads them; an image head on the last stage predicts the image for the loss L_s.
SRG: SPADE's generator skeleton with SCResBlocks, each conditioned on V = g(tau * raw) of its scale.
"""
import torch
from torch import nn
from torch.nn import functional as F

from util.ranges import bounded

from . import GENERATORS
from .base_network import BaseNetwork
from .generator import (LEVEL_OF_BLOCK, SKELETON_BLOCKS, UPSAMPLE_BEFORE_BLOCK, add_noise_option, first_features,
                        latent_size, with_3d_noise)
from .layout_lookup import Layout, LayoutConv2d, as_layout
from .loss import SemanticVectorLoss
from .normalization import parse_norm, spectral_norm
from .position_encoding import POSITION_MODES, IterativeGaussian, layout_pyramid
from .semantic_composition import SCResBlock

SV_ACTIVATIONS = ("softmax", "sigmoid", "tanh", "relu", "none")
# Widths of the SVG stages in units of nrf, from the coarsest level up (paper appendix A).
SVG_WIDTHS = (16, 8, 4, 2, 1, 1, 1)
# The SRG blocks, which SVG stage feeds each (without `more` the two middle blocks share V2), and whether the
# features are up-sampled before each: SPADE's skeleton schedule (generator.py).
SRG_BLOCKS, VECTOR_OF_BLOCK = SKELETON_BLOCKS, LEVEL_OF_BLOCK
NUM_LEVELS = {"normal": 6, "more": 7}


def semantic_activation(raw, kind: str, tau: float):
    """V = g(tau * raw) (paper Eq. 2): softmax over the n channels at each pixel by default."""
    x = tau * raw
    if kind == "softmax":
        return torch.softmax(x, dim=1)
    if kind == "sigmoid":
        return torch.sigmoid(x)
    if kind == "tanh":
        return torch.tanh(x)
    if kind == "relu":
        return F.relu(x)
    if kind == "none":
        return x
    raise ValueError(f"--sv_activation {kind}: expected one of {', '.join(SV_ACTIVATIONS)}")


def channel_pool_matrix(channels: int, n: int) -> torch.Tensor:
    """(n, channels) matrix averaging contiguous channel bins, exactly as adaptive average pooling over the
    channel axis does (bins [floor(i*C/n), ceil((i+1)*C/n)), which overlap when n does not divide C)."""
    m = torch.zeros(n, channels)
    for i in range(n):
        start, end = (i * channels) // n, -((-(i + 1) * channels) // n)
        m[i, start:end] = 1.0 / (end - start)
    return m


class SemanticVectorGenerator(nn.Module):
    """The SVG: layout pyramid -> raw semantic vectors at every SRG resolution, plus the predicted image."""

    def __init__(self, semantic_nc: int, nrf: int, num_levels: int, n_conv: int, n_norm: int,
                 spectral: bool = True, output_nc: int = 3, position: str = "none",
                 position_blurred_levels: int = 2, edge_channel: bool = False):
        super().__init__()
        if position not in POSITION_MODES:
            raise ValueError(f"--sv_position {position}: expected one of {', '.join(POSITION_MODES)}")
        self.num_levels = num_levels
        self.position, self.position_blurred_levels = position, position_blurred_levels
        self.edge_channel = edge_channel
        # the authors' CelebAMask-HQ "position" encoding of the layout (window 7, sigma 1.5, one step, absolute)
        self.position_encoding = IterativeGaussian() if position != "none" else None
        sn = spectral_norm if spectral else (lambda m: m)
        # In-place activations: each follows a conv or a concatenation, so the tensor it saves for backward is
        # the one the next conv saves anyway.
        act = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        widths = [w * nrf for w in SVG_WIDTHS[:num_levels]]
        stages = [nn.Sequential(sn(LayoutConv2d(semantic_nc, widths[0], 3, padding=1)), act(),
                                sn(nn.Conv2d(widths[0], widths[0], 3, padding=1)))]
        for prev, width in zip(widths[:-1], widths[1:]):
            stages.append(nn.Sequential(act(), sn(LayoutConv2d(prev + semantic_nc, width, 3, padding=1)),
                                        act(), sn(nn.Conv2d(width, width, 3, padding=1))))
        self.stages = nn.ModuleList(stages)
        self.to_image = nn.Sequential(nn.Conv2d(nrf, nrf // 2, 3, padding=1), act(),
                                      nn.Conv2d(nrf // 2, output_nc, 3, padding=1), nn.Hardtanh())
        for i, width in enumerate(widths):  # fixed channel-pooling weights, not learned, not saved
            self.register_buffer(f"pool_conv_{i}", channel_pool_matrix(width, n_conv)[:, :, None, None],
                                 persistent=False)
            self.register_buffer(f"pool_norm_{i}", channel_pool_matrix(width, n_norm)[:, :, None, None],
                                 persistent=False)

    def layout_pyramid(self, seg):
        """seg: (B, C, H, W) -> [S at H/2^(L-1), ..., S at H]. Without a position encoding each level is the
        exact 2x2 mean (bilinear x0.5) of the next, so the coarse levels hold soft one-hot maps."""
        return layout_pyramid(seg, self.num_levels, self.position, self.position_encoding,
                              self.position_blurred_levels, self.edge_channel)

    def forward(self, seg):
        """seg: (B, semantic_nc, H, W), a Layout or a tensor -> (raw_conv, raw_norm, image): lists of
        (B, n_conv|n_norm, h_t, w_t) from the coarsest stage up, and the predicted image (B, 3, H, W) in [-1, 1]."""
        raw_conv, raw_norm = [], []
        x = None
        for i, (stage, level) in enumerate(zip(self.stages, self.layout_pyramid(as_layout(self, seg)))):
            if x is None:
                x = stage(level)
            else:
                # stage: LReLU, conv of [features, level], LReLU, conv. The LReLU leaves the layout's classes
                # (0s, 1s and block means of them) as they are: applied to the features and the other channels.
                act, conv, rest = stage[0], stage[1], stage[2:]
                features = act(F.interpolate(x, scale_factor=2.0))
                if isinstance(level, Layout):
                    level = level.map_dense(lambda t: F.leaky_relu(t, 0.2)).with_before(features)
                else:   # a position-encoded level (--sv_position), a tensor
                    level = torch.cat([features, F.leaky_relu(level, 0.2)], dim=1)
                x = rest(conv(level))
            raw_conv.append(F.conv2d(x, getattr(self, f"pool_conv_{i}")))
            raw_norm.append(F.conv2d(x, getattr(self, f"pool_norm_{i}")))
        return raw_conv, raw_norm, self.to_image(x)


@GENERATORS.register("scgan")
class SCGANGenerator(BaseNetwork):
    """SVG + SRG. forward(seg) -> image; with return_aux=True also {'svg_image', 'semantic_vectors',
    'semantic_vectors_norm'} (the V_t and Vn_t after the activation, coarsest first)."""

    extra_images = ("svg_image",)

    @staticmethod
    def extra_criteria(opt, vgg):
        """L_s (Eq. 10, Table 4): the SVG's image against the real one, weighted by --lambda_sv."""
        if opt.sv_loss == "none":
            return {}
        return {"SV": ("svg_image", SemanticVectorLoss(opt.sv_loss, vgg() if opt.sv_loss == "vgg" else None),
                       opt.lambda_sv)}

    @staticmethod
    def uses_vgg(opt):
        return opt.sv_loss == "vgg"

    # Released configurations (the config/*.yml files of dvlab-research/SCGAN), applied when --netG scgan is
    # chosen and not overridden.
    dataset_presets = {
        "ade20k": dict(ngf=32, nrf=32, nff=32, sc_conv_candidates=3, sc_norm_candidates=4, sv_tau=0.05,
                       netD="fpse", batchSize=16, lambda_sv=2.0, niter=100, niter_decay=100, save_epoch_freq=10),
        "coco": dict(ngf=32, nrf=24, nff=24, sc_conv_candidates=2, sc_norm_candidates=3, sv_tau=0.5,
                     netD="fpse", batchSize=16, lambda_sv=2.0, niter=100, niter_decay=100, save_epoch_freq=10),
        "celebamaskhq": dict(ngf=48, nrf=32, nff=32, sc_conv_candidates=3, sc_norm_candidates=3, sv_tau=0.05,
                             netD="multiscale", batchSize=8, lambda_sv=1.0, use_vae=True, niter=50,
                             niter_decay=50, save_epoch_freq=5, no_spectral_on_routing=True),
        "cityscapes": dict(ngf=32, nrf=32, nff=32, sc_conv_candidates=3, sc_norm_candidates=3, sv_tau=0.05,
                           netD="fpse", batchSize=16, lambda_sv=2.0, niter=100, niter_decay=100),
        "synthetic": dict(ngf=16, nrf=16, nff=16, sc_conv_candidates=3, sc_norm_candidates=3, sv_tau=0.05,
                          netD="fpse", lambda_sv=2.0),
        "landscapes": dict(ngf=16, nrf=16, nff=16, sc_conv_candidates=3, sc_norm_candidates=3, sv_tau=0.05,
                           netD="fpse", lambda_sv=2.0),
    }

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.set_defaults(norm_G="spectralsccsyncbatch3x3")
        parser.add_argument("--num_upsampling_layers", choices=tuple(NUM_LEVELS), default="normal",
                            help="'more' adds an up-sampling between the two middle blocks (Cityscapes)")
        parser.add_argument("--nrf", type=bounded(int, min=1), default=32,
                            help="width of the SVG (semantic vector generator)")
        parser.add_argument("--nff", type=bounded(int, min=1), default=32,
                            help="width of the SRG's entry layer (16 * nff)")
        parser.add_argument("--sc_conv", choices=("scc", "conv"), default="scc",
                            help="scc, or the Table 3 baseline: plain convs reading V concatenated to their input")
        parser.add_argument("--sc_norm", choices=("scn", "bn"), default="scn",
                            help="scn, or the Table 3 baseline: batch norm with a learned affine")
        parser.add_argument("--sc_conv_candidates", type=bounded(int, min=1), default=3,
                            help="kernel candidates n of each SCC")
        parser.add_argument("--sc_norm_candidates", type=bounded(int, min=1), default=3,
                            help="scale/shift candidates of each SCN")
        parser.add_argument("--sv_activation", choices=SV_ACTIVATIONS, default="softmax",
                            help="g in V = g(tau * raw) (paper Eq. 2, Table 6)")
        parser.add_argument("--sv_tau", type=bounded(float, min=0, min_inclusive=False), default=0.05,
                            help="temperature tau of the semantic vectors")
        parser.add_argument("--sv_detach", action="store_true",
                            help="stop the SRG's gradients into the SVG (the SVG then learns from L_s only)")
        parser.add_argument("--no_spectral_on_routing", action="store_true",
                            help="no spectral norm on the SVG's convolutions (the CelebAMask-HQ config)")
        parser.add_argument("--sv_position", choices=POSITION_MODES, default="none",
                            help="Gaussian 'position' encoding of the SVG's layout pyramid (the authors' "
                                 "CelebAMask-HQ model: pyramid); see models/networks/position_encoding.py")
        parser.add_argument("--sv_position_blurred_levels", type=bounded(int, min=0), default=2,
                            help="with --sv_position pyramid: how many levels below full resolution are "
                                 "encoded as the pyramid is built (their pyr_rng minus 2)")
        add_noise_option(parser)
        if is_train:
            parser.add_argument("--lambda_sv", type=bounded(float, min=0), default=2.0,
                                help="weight of the semantic-vector loss L_s")
            parser.add_argument("--sv_loss", choices=("l1", "l2", "vgg", "none"), default="l1",
                                help="distance of L_s between the SVG's image and the real one (Table 4)")
            parser.set_defaults(netD="fpse", beta1=0.0, beta2=0.999)
        return parser

    @classmethod
    def from_opt(cls, opt):
        spec = parse_norm(opt.norm_G, "--norm_G")
        if spec.conditional != "scc":
            raise ValueError(f"--norm_G {opt.norm_G}: --netG scgan needs an scc norm such as "
                             "spectralsccsyncbatch3x3 (the prefix 'spectral' puts spectral norm on the convs)")
        if spec.kernel_size != 3:
            raise ValueError(f"--norm_G {opt.norm_G}: --netG scgan builds 3x3 kernels, as the released code does; "
                             f"use {opt.norm_G[:-3]}3x3")
        return cls(semantic_nc=opt.semantic_nc, use_vae=opt.use_vae, z_dim=opt.z_dim,
                   edge_channel=not opt.no_instance, noise_nc=opt.oasis_noise_nc,
                   **cls.shared_arguments(opt, spec))

    @staticmethod
    def shared_arguments(opt, spec):
        """The constructor arguments that do not depend on what the SVG and the SRG's entry read."""
        return dict(ngf=opt.ngf, nrf=opt.nrf, nff=opt.nff, crop_size=opt.crop_size, aspect_ratio=opt.aspect_ratio,
                    num_upsampling_layers=opt.num_upsampling_layers, n_conv=opt.sc_conv_candidates,
                    n_norm=opt.sc_norm_candidates, sv_activation=opt.sv_activation, sv_tau=opt.sv_tau,
                    sv_detach=opt.sv_detach, spectral=spec.spectral,
                    spectral_svg=spec.spectral and not opt.no_spectral_on_routing, param_free=spec.param_free,
                    sc_conv=opt.sc_conv, sc_norm=opt.sc_norm, output_nc=opt.output_nc, position=opt.sv_position,
                    position_blurred_levels=opt.sv_position_blurred_levels)

    def __init__(self, semantic_nc, ngf=32, nrf=32, nff=32, crop_size=256, aspect_ratio=1.0,
                 num_upsampling_layers="normal", use_vae=False, z_dim=256, n_conv=3, n_norm=3,
                 sv_activation="softmax", sv_tau=0.05, sv_detach=False, spectral=True, spectral_svg=True,
                 param_free="syncbatch", sc_conv="scc", sc_norm="scn", output_nc=3, position="none",
                 position_blurred_levels=2, edge_channel=False, noise_nc=0):
        super().__init__()
        if noise_nc and position != "none":
            raise ValueError(f"--oasis_noise_nc {noise_nc} with --sv_position {position}: the position encoding "
                             f"blurs and masks one-hot channels and would mangle the noise; use --sv_position none")
        if num_upsampling_layers not in NUM_LEVELS:
            raise ValueError(f"--num_upsampling_layers {num_upsampling_layers}: scgan supports normal and more")
        if sv_activation not in SV_ACTIVATIONS:
            raise ValueError(f"--sv_activation {sv_activation}: expected one of {', '.join(SV_ACTIVATIONS)}")
        self.num_upsampling_layers = num_upsampling_layers
        self.use_vae, self.z_dim = use_vae, z_dim
        self.sv_activation, self.sv_tau, self.sv_detach = sv_activation, sv_tau, sv_detach
        num_levels = NUM_LEVELS[num_upsampling_layers]
        self.sh, self.sw = latent_size(crop_size, aspect_ratio, num_levels - 1)
        # OASIS's 3-D noise joins the layout wherever the layout goes: the SVG (so the semantic vectors, and
        # through them every SCC and SCN, vary with it), the entry conv and the shortcuts' SPADE.
        self.noise_nc = noise_nc
        semantic_nc += noise_nc

        self.svg = SemanticVectorGenerator(semantic_nc, nrf, num_levels, n_conv, n_norm, spectral_svg, output_nc,
                                           position, position_blurred_levels, edge_channel)
        if use_vae:
            self.fc = nn.Linear(z_dim, 16 * nff * self.sh * self.sw)
        else:
            self.fc = LayoutConv2d(semantic_nc, 16 * nff, 3, padding=1)

        def block(fin, fout):
            return SCResBlock(fin, fout, n_conv, n_norm, semantic_nc, spectral, param_free, sc_conv, sc_norm)

        self.head_0 = block(16 * nff, 16 * ngf)
        self.G_middle_0 = block(16 * ngf, 16 * ngf)
        self.G_middle_1 = block(16 * ngf, 16 * ngf)
        self.up_0 = block(16 * ngf, 8 * ngf)
        self.up_1 = block(8 * ngf, 4 * ngf)
        self.up_2 = block(4 * ngf, 2 * ngf)
        self.up_3 = block(2 * ngf, 1 * ngf)
        self.conv_img = nn.Conv2d(ngf, output_nc, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)

    def semantic_vectors(self, seg):
        """seg: (B, semantic_nc + noise_nc, H, W), the layout after with_3d_noise -> (V, Vn, svg_image):
        V_1..V_T for the SCCs and Vn_1..Vn_T for the SCNs, coarsest first, each (B, n, H / 2^(T-t), W / 2^(T-t))
        after the activation."""
        raw_conv, raw_norm, svg_image = self.svg(seg)
        v_conv = [semantic_activation(r, self.sv_activation, self.sv_tau) for r in raw_conv]
        v_norm = [semantic_activation(r, self.sv_activation, self.sv_tau) for r in raw_norm]
        return v_conv, v_norm, svg_image

    def forward(self, seg, z=None, return_aux=False):
        """seg: (B, semantic_nc, H, W) one-hot layout; z: (B, z_dim) with --use_vae (random if None)
        -> image (B, 3, H, W) in [-1, 1]."""
        self.check_size(seg, "layouts")
        seg = with_3d_noise(as_layout(self, seg), self.noise_nc)
        x = first_features(self.fc, seg, z, self.use_vae, self.z_dim, (self.sh, self.sw))
        return self.render(x, seg, return_aux)

    def check_size(self, x, what: str):
        scale = 2 ** (self.svg.num_levels - 1)
        if tuple(x.shape[2:]) != (self.sh * scale, self.sw * scale):
            raise ValueError(f"{self.registered_name} was built for {self.sh * scale}x{self.sw * scale} {what} "
                             f"(--crop_size, --aspect_ratio) but got {x.shape[2]}x{x.shape[3]}")

    def render(self, x, seg, return_aux=False):
        """The SRG from its first features x: (B, 16 nff, sh, sw), conditioned on the semantic vectors the SVG
        computes from seg: (B, semantic_nc, H, W) (which the learned shortcuts' SPADE also reads)."""
        v_conv, v_norm, svg_image = self.semantic_vectors(seg)
        srg_conv = [v.detach() for v in v_conv] if self.sv_detach else v_conv
        srg_norm = [v.detach() for v in v_norm] if self.sv_detach else v_norm

        schedule = zip(SRG_BLOCKS, VECTOR_OF_BLOCK[self.num_upsampling_layers],
                       UPSAMPLE_BEFORE_BLOCK[self.num_upsampling_layers])
        for name, t, upsample in schedule:
            if upsample:
                x = self.up(x)
            x = getattr(self, name)(x, srg_conv[t], srg_norm[t], seg)
        image = F.hardtanh(self.conv_img(F.leaky_relu(x, 0.2)))
        if return_aux:
            return image, {"svg_image": svg_image, "semantic_vectors": v_conv, "semantic_vectors_norm": v_norm}
        return image
