"""SC-GAN for unpaired image-to-image translation (paper §4.4, appendix B.2, Figure 10).

Our reading of the appendix, which changes two inputs of SC-GAN's generator and nothing else:
- the SRG starts from "the downsampled image from the source domain" instead of the noise: the source image is
  box-filtered (area) down to the SRG's first feature size (H/32 x W/32; H/64 with `more`) and encoded by the
  SRG's entry layer `fc`, a 3x3 conv (3 -> 16 * nff), as the authors' released unpaired model does (it applies
  that layer to the resized source; it resizes with nearest neighbours, we average so every pixel counts);
- the SVG reads an image of the target domain (the reference) instead of the one-hot layout and still regresses
  its input, like an autoencoder: L_s compares the SVG's image with the reference. The semantic vectors, and so
  every SCC and SCN of the SRG, are computed from the reference; so is the SPADE of the learned shortcuts,
  which the released code conditions on the same input as the SVG.
`--source_encoder conv` is our deviation for small crops, where that down-sampled image is tiny (2x2 at crop 64):
stride-2 3x3 convs (LReLU after each, initialised to keep the scale) learn the down-sampling, passing 8 * nff
channels of the source's layout to the same entry conv instead of 3.
Everything else (SVG cascade, semantic vectors, SCResBlocks, image head) is `SCGANGenerator`'s. The losses that
make the result keep the source's layout and take the target's style live in models/unpaired_model.py.
"""
from torch import nn
from torch.nn import functional as F

from . import GENERATORS
from .layout_lookup import Layout
from .normalization import parse_norm
from .scgan import SCGANGenerator

SOURCE_ENCODERS = ("downsample", "conv")


@GENERATORS.register("scgan_unpaired")
class SCGANUnpairedGenerator(SCGANGenerator):
    """forward(reference, source) -> image; with return_aux=True also SC-GAN's aux dict ('svg_image' is the
    SVG's reconstruction of the reference)."""

    # Sizes for the two unaligned dataset modes: the paper's SC-GAN widths for real data, the CPU demo's for the
    # synthetic faces. The other SC-GAN settings keep their defaults (n = 3 candidates, tau 0.05, L_s by L1).
    dataset_presets = {
        "unaligned": dict(ngf=32, nrf=32, nff=32, lambda_sv=2.0),
        "synthetic_unaligned": dict(ngf=16, nrf=16, nff=16, lambda_sv=2.0),
    }

    @staticmethod
    def modify_commandline_options(parser, is_train):
        SCGANGenerator.modify_commandline_options(parser, is_train)
        parser.add_argument("--source_encoder", choices=SOURCE_ENCODERS, default="downsample",
                            help="how the source reaches the SRG's entry conv at H/32: 'downsample' averages it "
                                 "down (appendix B.2, the released code); 'conv' learns the down-sampling with "
                                 "stride-2 convs (more of its layout at small crops)")
        if is_train:  # unconditional: there is no label map for FPSE's semantic embedding to project
            parser.set_defaults(netD="multiscale")
        return parser

    @classmethod
    def from_opt(cls, opt):
        spec = parse_norm(opt.norm_G, "--norm_G")
        if spec.conditional != "scc":
            raise ValueError(f"--norm_G {opt.norm_G}: --netG scgan_unpaired needs an scc norm such as "
                             "spectralsccsyncbatch3x3")
        if opt.use_vae:
            raise ValueError("--use_vae: --netG scgan_unpaired starts its SRG from the source image, not from a "
                             "code z; drop --use_vae")
        return cls(reference_nc=opt.output_nc, source_nc=opt.output_nc, source_encoder=opt.source_encoder,
                   **cls.shared_arguments(opt, spec))

    def __init__(self, reference_nc=3, source_nc=3, source_encoder="downsample", nff=32, **kwargs):
        super().__init__(semantic_nc=reference_nc, nff=nff, use_vae=False, **kwargs)
        if source_encoder not in SOURCE_ENCODERS:
            raise ValueError(f"--source_encoder {source_encoder}: expected one of {', '.join(SOURCE_ENCODERS)}")
        self.source_down = None
        entry_nc = source_nc
        if source_encoder == "conv":
            layers = []
            for k in range(self.svg.num_levels - 1):  # H -> H/32 (H/64 with `more`)
                width = nff * min(2 ** k, 8)
                layers += [nn.Conv2d(entry_nc, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
                entry_nc = width
            self.source_down = nn.Sequential(*layers)
        # the SRG's entry conv reads the source (SCGANGenerator built it for the layout's channels)
        self.fc = nn.Conv2d(entry_nc, 16 * nff, 3, padding=1)

    def init_weights(self, init_type="xavier", gain=0.02):
        """SPADE's scheme, except that the learned down-sampling keeps the signal's scale (Kaiming for LReLU
        0.2): five layers of xavier 0.02 would shrink the source some 1e-8 times (to nothing in fp16), so its
        entry conv starts seeing the source as it sees the averaged-down one."""
        super().init_weights(init_type, gain)
        if self.source_down is None or init_type == "none":
            return
        for m in self.source_down:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)

    def encode_source(self, source):
        """source: (B, source_nc, H, W) -> the SRG's first features (B, 16 nff, sh, sw)."""
        if self.source_down is None:
            return self.fc(F.interpolate(source, size=(self.sh, self.sw), mode="area"))
        return self.fc(self.source_down(source))

    def forward(self, reference, source, return_aux=False):
        """reference: (B, 3, H, W) target-domain image, read by the SVG; source: (B, 3, H, W) source-domain
        image, read by the SRG's entry; both in [-1, 1] -> translated image (B, 3, H, W) in [-1, 1]."""
        self.check_size(reference, "reference images")
        self.check_size(source, "source images")
        # an image, not a one-hot map: its channels are read densely, and never checked for class ids
        return self.render(self.encode_source(source), Layout.from_tensor(reference, find_ids=False), return_aux)
