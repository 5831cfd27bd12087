"""SC-GAN for unpaired image-to-image translation (paper §4.4, appendix B.2, Figure 10; SPEC §7).

Our reading of the appendix, which changes two inputs of SC-GAN's generator and nothing else:
- the SRG starts from "the downsampled image from the source domain" instead of the noise: the source image is
  box-filtered (area) down to the SRG's first feature size (H/32 x W/32; H/64 with `more`) and encoded by the
  SRG's entry layer `fc`, a 3x3 conv (3 -> 16 * nff), as the authors' released unpaired model does (it applies
  that layer to the resized source; it resizes with nearest neighbours, we average so every pixel counts);
- the SVG reads an image of the target domain (the reference) instead of the one-hot layout and still regresses
  its input, like an autoencoder: L_s compares the SVG's image with the reference. The semantic vectors, and so
  every SCC and SCN of the SRG, are computed from the reference; so is the SPADE of the learned shortcuts,
  which the released code conditions on the same input as the SVG.
Everything else (SVG cascade, semantic vectors, SCResBlocks, image head) is `SCGANGenerator`'s. The losses that
make the result keep the source's layout and take the target's style live in models/unpaired_model.py.
"""
from torch import nn
from torch.nn import functional as F

from . import GENERATORS
from .normalization import parse_norm
from .scgan import SCGANGenerator


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
        return cls(reference_nc=opt.output_nc, source_nc=opt.output_nc, **cls.shared_arguments(opt, spec))

    def __init__(self, reference_nc=3, source_nc=3, **kwargs):
        super().__init__(semantic_nc=reference_nc, use_vae=False, **kwargs)
        if source_nc != reference_nc:  # the entry conv built above reads reference_nc channels
            self.fc = nn.Conv2d(source_nc, self.fc.out_channels, 3, padding=1)

    def encode_source(self, source):
        """source: (B, source_nc, H, W) -> the SRG's first features (B, 16 nff, sh, sw)."""
        return self.fc(F.interpolate(source, size=(self.sh, self.sw), mode="area"))

    def forward(self, reference, source, return_aux=False):
        """reference: (B, 3, H, W) target-domain image, read by the SVG; source: (B, 3, H, W) source-domain
        image, read by the SRG's entry; both in [-1, 1] -> translated image (B, 3, H, W) in [-1, 1]."""
        self.check_size(reference, "reference images")
        self.check_size(source, "source images")
        return self.render(self.encode_source(source), reference, return_aux)
