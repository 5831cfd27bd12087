"""UnpairedModel (`--model unpaired`): SC-GAN for unpaired image-to-image translation (paper §4.4, appendix B.2,
Figure 10). The networks are `--netG scgan_unpaired` (models/networks/scgan_unpaired.py) and an unconditional
discriminator; the trainer, checkpoints and pages are Pix2PixModel's.

A batch holds a source-domain image A and a target-domain image B (the reference), drawn independently
(`--dataset_mode unaligned` or `synthetic_unaligned`). The generator translates A with the style of B:
fake = G(reference=B, source=A). Losses (unweighted here, weighted by the trainer under these names):
  GAN       hinge GAN of fake against target-domain images: D sees images only (its layout input has 0
            channels; `--netD multiscale`, the default, is SPADE's multi-scale PatchGAN on 3 channels)
  VGG       perceptual distance between fake and the source A (--lambda_vgg; content: A's layout)
  SV        L_s, the SVG's reconstruction of B against B (--lambda_sv; the SVG autoencodes the reference)
  GAN_Feat  off by default (--lambda_feat 0): it would match D's features of fake with those of B pixel for
            pixel, pulling the result towards B's layout; the appendix names only the perceptual and GAN
            losses (the authors' unrun unpaired model keeps it: --lambda_feat 10 turns it on)
"""
from collections import OrderedDict

from . import MODELS, networks
from .networks.loss import feature_matching_loss
from .networks.scgan_unpaired import SCGANUnpairedGenerator
from .pix2pix_model import Pix2PixModel


@MODELS.register("unpaired")
class UnpairedModel(Pix2PixModel):
    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.set_defaults(netG="scgan_unpaired")
        if is_train:
            parser.set_defaults(lambda_feat=0.0)
        return parser

    def __init__(self, opt, device=None):
        if not issubclass(networks.GENERATORS.get(opt.netG), SCGANUnpairedGenerator):
            raise ValueError(f"--model unpaired translates images with --netG scgan_unpaired, not --netG {opt.netG}")
        if opt.semantic_nc != 0:
            raise ValueError(f"--model unpaired reads images only, no label map (--label_nc {opt.label_nc}"
                             f"{'' if opt.no_instance else ', instance edges'}): use --dataset_mode unaligned or "
                             f"synthetic_unaligned, which set --label_nc 0 --no_instance")
        if opt.isTrain:
            if opt.netD == "fpse":
                raise ValueError("--netD fpse projects a label map, which unpaired data lacks: use --netD multiscale "
                                 "(the default of --model unpaired)")
            if networks.DISCRIMINATORS.get(opt.netD).segments_image:
                raise ValueError(f"--netD {opt.netD} segments the image into the label map's classes, which unpaired "
                                 f"data lacks: use --netD multiscale (the default of --model unpaired)")
            if opt.no_vgg_loss or opt.lambda_vgg <= 0:
                raise ValueError("--model unpaired keeps the source's layout through the VGG loss against the source: "
                                 "drop --no_vgg_loss, give --lambda_vgg > 0 and --vgg_weights PATH")
        super().__init__(opt, device)

    # ------------------------------------------------------------------------------------------------
    def preprocess_input(self, data):
        """data['image']: (B, 3, H, W) source-domain images, data['target']: (B, 3, H, W) target-domain images
        -> (source, target) on the device and in the floating dtype of the networks."""
        if "target" not in data:
            raise ValueError(f"--model unpaired needs a source and a target-domain image per sample (--dataset_mode "
                             f"unaligned or synthetic_unaligned); --dataset_mode {self.opt.dataset_mode} gives "
                             f"{', '.join(sorted(data))}")
        weight = next(self.netG.parameters())
        return tuple(data[k].to(weight.device, weight.dtype, non_blocking=True) for k in ("image", "target"))

    def generate_fake(self, source, target, netG=None, netE=None):
        """-> (fake, aux dict of the generator, None): `source` translated with the style of `target`."""
        netG = self.netG if netG is None else netG
        fake, aux = netG(target, source, return_aux=True)
        return fake, aux, None

    def discriminate(self, source, fake_image, real_image, netD=None):
        """D scores images alone: the source is no condition for a target-domain image, so the layout input
        that Pix2PixModel concatenates has no channels."""
        no_layout = fake_image.new_zeros(fake_image.size(0), 0, *fake_image.shape[2:])
        return super().discriminate(no_layout, fake_image, real_image, netD)

    def generator_losses(self, source, target, netG=None, netE=None, netD=None):
        """-> ({name: unweighted loss}, fake (detached), {extra image name: image (detached)})."""
        losses = {}
        fake, aux, _ = self.generate_fake(source, target, netG)
        pred_fake, _, feat_fake, feat_real = self.discriminate(source, fake, target, netD)
        losses["GAN"] = self.criterionGAN(pred_fake, True, for_discriminator=False)
        if not self.opt.no_ganFeat_loss and self.opt.lambda_feat > 0:
            losses["GAN_Feat"] = feature_matching_loss(feat_fake, feat_real)
        losses["VGG"] = self.criterionVGG(fake, source)
        for name, (key, criterion, _) in self.extra_criteria.items():
            losses[name] = criterion(aux[key], target)
        images = {name: aux[name].detach() for name in self.netG.extra_images if name in aux}
        return losses, fake.detach(), images

    def visuals(self, data, generated):
        """The images of a batch as the pages show them: source, reference (target domain), result."""
        return OrderedDict([("source_image", data["image"]), ("reference_image", data["target"]),
                            ("synthesized_image", generated)])
