"""Pix2PixModel: SPADE's wrapper API over the networks, the input preprocessing and the losses.

The trainer (trainers/pix2pix_trainer.py) runs the steps: it calls `generator_losses` and
`discriminator_losses` with its own (possibly DistributedDataParallel-wrapped) networks, under its autocast,
and weights the named losses. For users' scripts, SPADE's `forward(data, mode)` remains:
  'generator'     -> (G losses, generated image, extra images)   losses: GAN, GAN_Feat, VGG, KLD + the
                                                                  generator's own (SC-GAN: SV)
  'discriminator' -> D losses                                     D_Fake, D_real (+ D_LabelMix with OASIS)
  'encode_only'   -> (mu, logvar)
  'inference'     -> generated image (no gradients)
Losses are unweighted here; the trainer applies the --lambda_* weights. A discriminator that segments the
image (--netD oasis) is trained with OASIS's N+1-class losses (networks/oasis_loss.py) instead of --gan_mode,
and has no feature matching.
"""
import os
from collections import OrderedDict

import torch
from torch import nn

from checkpointing.storage import load_network, network_path

from . import MODELS, networks
from .networks.layout_lookup import Layout, set_layout_path
from .networks.loss import GANLoss, VGGLoss, feature_matching_loss, kld_loss
from .networks.oasis_loss import OASISLoss


def one_hot_layout(label, num_channels: int, dtype=None):
    """label: (B, 1, H, W) long class ids -> (B, num_channels, H, W) one-hot of `dtype` (torch's default if None)."""
    b, _, h, w = label.shape
    out = torch.zeros(b, num_channels, h, w, device=label.device, dtype=dtype)
    return out.scatter_(1, label, 1.0)


def instance_edges(instance):
    """instance: (B, 1, H, W) ids -> (B, 1, H, W) float, 1 where a 4-neighbour belongs to another instance
    (both sides of each boundary are marked)."""
    edge = torch.zeros_like(instance, dtype=torch.bool)
    horizontal = instance[:, :, :, 1:] != instance[:, :, :, :-1]
    vertical = instance[:, :, 1:, :] != instance[:, :, :-1, :]
    edge[:, :, :, 1:] |= horizontal
    edge[:, :, :, :-1] |= horizontal
    edge[:, :, 1:, :] |= vertical
    edge[:, :, :-1, :] |= vertical
    return edge.float()


def semantic_layout(label, instance, label_nc: int, contain_dontcare_label: bool, no_instance: bool,
                    dtype=None):
    """The generator's input from a label map: label: (B, 1, H, W) long class ids in [0, label_nc] (label_nc:
    dontcare); instance: (B, 1, H, W) instance ids (read unless no_instance) -> (B, semantic_nc, H, W) of
    `dtype` (torch's default if None): the one-hot over label_nc (+ 1 with the dontcare label), then the
    instance edges (unless no_instance)."""
    layout = one_hot_layout(label, label_nc + int(contain_dontcare_label), dtype)
    if not no_instance:
        layout = torch.cat([layout, instance_edges(instance.to(label.device)).to(layout.dtype)], dim=1)
    return layout


def layout_of_labels(label, instance, label_nc: int, contain_dontcare_label: bool, no_instance: bool, dtype=None):
    """The networks' input as `semantic_layout` describes it, as a Layout (models/networks/layout.py) of the class
    ids: the layers that read it by lookup never see a one-hot tensor, and it is made only for a layer that reads
    it densely."""
    edges = None if no_instance else instance_edges(instance.to(label.device))
    return Layout.from_ids(label, label_nc + int(contain_dontcare_label), edges, dtype)


def label_visuals(data, generated):
    """The images of a batch of label maps as the training and test pages show them, by name."""
    visuals = OrderedDict([("input_label", data["label"]), ("synthesized_image", generated)])
    if data.get("image") is not None:
        visuals["real_image"] = data["image"]
    return visuals


@MODELS.register("pix2pix")
class Pix2PixModel(nn.Module):
    @staticmethod
    def modify_commandline_options(parser, is_train):
        return parser

    def __init__(self, opt, device=None):
        super().__init__()
        self.opt = opt
        if device is None:
            device = torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids else torch.device("cpu")
        self.netG = networks.define_G(opt, device)
        self.netD = networks.define_D(opt, device) if opt.isTrain else None
        self.netE = networks.define_E(opt, device) if opt.use_vae else None
        for net in (self.netG, self.netD):
            if net is not None:
                set_layout_path(net, opt.layout_conv)
        self.load_networks_if_asked()

        if opt.isTrain:
            self.criterionGAN = GANLoss(opt.gan_mode)
            self.criterionOASIS = None
            if self.netD.segments_image:
                self.criterionOASIS = OASISLoss(opt.label_nc + int(opt.contain_dontcare_label),
                                                opt.label_nc if opt.contain_dontcare_label else None,
                                                labelmix=opt.lambda_labelmix > 0)
            self.use_vgg_loss = self.vgg_loss_on(opt)
            self.criterionVGG = None
            if self.use_vgg_loss:
                self.vgg_loss()
            # the generator's own terms: {name: (aux image, criterion, weight)}
            self.extra_criteria = networks.GENERATORS.get(opt.netG).extra_criteria(opt, self.vgg_loss)
            for name, (_, criterion, _) in self.extra_criteria.items():
                self.add_module(f"criterion{name}", criterion)

    @staticmethod
    def vgg_loss_on(opt):
        return not opt.no_vgg_loss and opt.lambda_vgg > 0

    @classmethod
    def needs_vgg(cls, opt):
        """Whether training builds the VGG network, whose weights file (--vgg_weights) must then exist: for the
        VGG loss, or for a term of the generator's own (SC-GAN's --sv_loss vgg)."""
        return cls.vgg_loss_on(opt) or networks.GENERATORS.get(opt.netG).uses_vgg(opt)

    def vgg_loss(self):
        """The VGG perceptual loss, built once and shared (the VGG loss and, e.g., SC-GAN's --sv_loss vgg)."""
        if self.criterionVGG is None:
            device = next(self.netG.parameters()).device
            self.criterionVGG = VGGLoss(self.opt.vgg_weights, self.opt.vgg_net).to(device)
        return self.criterionVGG

    def load_networks_if_asked(self):
        """Testing loads the --which_epoch networks from the experiment folder (the EMA generator when the
        experiment has one, unless --no_ema); training with --continue_train is resumed by the trainer, which
        reads a whole checkpoint unit (checkpointing/storage.py)."""
        opt = self.opt
        if opt.isTrain:
            return
        folder = os.path.join(opt.checkpoints_dir, opt.name)
        ema = os.path.isfile(network_path(folder, opt.which_epoch, "G_ema")) and not opt.no_ema
        load_network(self.netG, folder, opt.which_epoch, "G_ema" if ema else "G", trust_pickle=opt.trust_pickle)
        if ema:
            print(f"using the EMA generator {network_path(folder, opt.which_epoch, 'G_ema')} (--no_ema for netG)")
        if self.netE is not None:
            load_network(self.netE, folder, opt.which_epoch, "E", trust_pickle=opt.trust_pickle)

    # ------------------------------------------------------------------------------------------------
    def forward(self, data, mode):
        input_semantics, real_image = self.preprocess_input(data)
        if mode == "generator":
            return self.generator_losses(input_semantics, real_image)
        if mode == "discriminator":
            return self.discriminator_losses(input_semantics, real_image)
        if mode == "encode_only":
            return self.netE(real_image)
        if mode == "inference":
            with torch.no_grad():
                fake, _, _ = self.generate_fake(input_semantics, real_image)
            return fake
        raise ValueError(f"Pix2PixModel.forward: unknown mode '{mode}' (generator, discriminator, encode_only, "
                         "inference)")

    def preprocess_input(self, data):
        """data['label']: (B, 1, H, W) ids; data['instance']: (B, 1, H, W) ids or 0; data['image']: (B, 3, H, W)
        or absent/None (labels only) -> the layout (B, semantic_nc, H, W), a Layout of the class ids
        (`layout_of_labels`; `.tensor()` is the one-hot of `semantic_layout`), and the image, on the device and in
        the floating dtype of the networks (fp32, or float64 for a model moved to it)."""
        opt = self.opt
        weight = next(self.netG.parameters())
        device, dtype = weight.device, weight.dtype
        label = data["label"].long().to(device, non_blocking=True)
        layout = layout_of_labels(label, data["instance"], opt.label_nc, opt.contain_dontcare_label, opt.no_instance,
                                  dtype)
        image = data.get("image")
        return layout, (image.to(device, dtype, non_blocking=True) if image is not None else None)

    def generate_fake(self, input_semantics, real_image, netG=None, netE=None):
        """-> (fake, aux dict of the generator, KLD or None). With the VAE, z is encoded from the real image
        when there is one (as SPADE does, also at test time), else drawn from N(0, I). netG / netE: the
        networks to run (the trainer passes its DDP-wrapped ones), by default the model's."""
        netG = self.netG if netG is None else netG
        netE = self.netE if netE is None else netE
        z, kld = None, None
        if self.netE is not None and real_image is not None:
            mu, logvar = netE(real_image)
            z = mu + torch.randn_like(logvar) * torch.exp(0.5 * logvar)
            if self.opt.isTrain:
                kld = kld_loss(mu, logvar)
        fake, aux = netG(input_semantics, z=z, return_aux=True)
        return fake, aux, kld

    # -------------------------------------------------------- the style code z (--use_vae), for tools and demos
    def _require_vae(self, what):
        if self.netE is None:
            raise ValueError(f"{what} needs a model trained with --use_vae (an encoder and a style code z); "
                             f"'{self.opt.name}' has none: train it with --use_vae")

    @torch.no_grad()
    def encode_style(self, image):
        """image: (B, 3, H, W) in [-1, 1] (any size: the encoder resizes it) -> mu: (B, z_dim), the mean of
        the encoder's posterior, i.e. the style code of the image without sampling noise."""
        self._require_vae("encode_style")
        device = next(self.netE.parameters()).device
        mu, _ = self.netE(image.to(device))
        return mu

    def random_codes(self, n: int, generator=None):
        """-> (n, z_dim) style codes z ~ N(0, I), drawn on the CPU from `generator` (a torch.Generator; the
        global one when None), so a seeded generator gives the same codes on every device."""
        self._require_vae("random_codes")
        return torch.randn(n, self.opt.z_dim, generator=generator)

    @torch.no_grad()
    def generate_with_code(self, input_semantics, z):
        """input_semantics: (B, semantic_nc, H, W) layout from `preprocess_input` (or its tensor); z: (B, z_dim) style codes,
        or (z_dim,) for one code shared by the batch -> image (B, 3, H, W) in [-1, 1]. Deterministic: the same
        layout and code give the same image (in eval mode)."""
        self._require_vae("generate_with_code")
        if z.dim() == 1:
            z = z.expand(input_semantics.size(0), -1)
        if tuple(z.shape) != (input_semantics.size(0), self.opt.z_dim):
            raise ValueError(f"generate_with_code: z has shape {tuple(z.shape)}, expected "
                             f"({input_semantics.size(0)}, {self.opt.z_dim}) (batch, --z_dim)")
        return self.netG(input_semantics, z=z.to(input_semantics.device, input_semantics.dtype))

    def discriminate(self, input_semantics, fake_image, real_image, netD=None):
        """Fake and real go through D in one batch (so normalization sees both); outputs split back."""
        netD = self.netD if netD is None else netD
        both = (Layout.cat if isinstance(input_semantics, Layout) else torch.cat)([input_semantics, input_semantics])
        scores, features = netD(both, torch.cat([fake_image, real_image], dim=0))
        half = fake_image.size(0)
        pred_fake = [s[:half] for s in scores]
        pred_real = [s[half:] for s in scores]
        feat_fake = [[f[:half] for f in group] for group in features]
        feat_real = [[f[half:] for f in group] for group in features]
        return pred_fake, pred_real, feat_fake, feat_real

    def generator_losses(self, input_semantics, real_image, netG=None, netE=None, netD=None):
        """-> ({name: unweighted loss}, fake (detached), {extra image name: image (detached)})."""
        losses = {}
        fake, aux, kld = self.generate_fake(input_semantics, real_image, netG, netE)
        if kld is not None:
            losses["KLD"] = kld
        if self.criterionOASIS is not None:
            losses["GAN"] = self.criterionOASIS.generator_loss(self.netD if netD is None else netD, fake,
                                                               input_semantics)
        else:
            pred_fake, _, feat_fake, feat_real = self.discriminate(input_semantics, fake, real_image, netD)
            losses["GAN"] = self.criterionGAN(pred_fake, True, for_discriminator=False)
            if not self.opt.no_ganFeat_loss:
                losses["GAN_Feat"] = feature_matching_loss(feat_fake, feat_real)
        if self.use_vgg_loss:
            losses["VGG"] = self.criterionVGG(fake, real_image)
        for name, (key, criterion, _) in self.extra_criteria.items():
            losses[name] = criterion(aux[key], real_image)
        images = {name: aux[name].detach() for name in self.netG.extra_images if name in aux}
        return losses, fake.detach(), images

    def visuals(self, data, generated):
        """The images of a batch as the training and test pages show them, by name."""
        return label_visuals(data, generated)

    def discriminator_losses(self, input_semantics, real_image, netD=None):
        with torch.no_grad():
            fake, _, _ = self.generate_fake(input_semantics, real_image)
        fake = fake.detach().requires_grad_()
        if self.criterionOASIS is not None:
            return self.criterionOASIS.discriminator_losses(self.netD if netD is None else netD, fake, real_image,
                                                            input_semantics)
        pred_fake, pred_real, _, _ = self.discriminate(input_semantics, fake, real_image, netD)
        return {"D_Fake": self.criterionGAN(pred_fake, False, for_discriminator=True),
                "D_real": self.criterionGAN(pred_real, True, for_discriminator=True)}
