"""Pix2PixModel: the wrapper that turns a data batch into the losses of one step (SPADE's API).

forward(data, mode) runs the input preprocessing (one-hot layout + instance edges) and then one of:
  'generator'     -> (G losses, generated image, aux images)   losses: GAN, GAN_Feat, VGG, KLD, SV
  'discriminator' -> D losses                                   D_Fake, D_real
  'encode_only'   -> (mu, logvar)
  'inference'     -> generated image (no gradients)
Losses are unweighted here; the trainer applies the --lambda_* weights. Everything runs inside forward so
that DataParallel can split the batch.
"""
import os

import torch
from torch import nn

from util.checkpoint import load_network
from . import MODELS
from . import networks
from .networks.loss import GANLoss, SemanticVectorLoss, VGGLoss, feature_matching_loss, kld_loss


def one_hot_layout(label, num_channels: int):
    """label: (B, 1, H, W) long class ids -> (B, num_channels, H, W) float one-hot."""
    b, _, h, w = label.shape
    out = torch.zeros(b, num_channels, h, w, device=label.device)
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


@MODELS.register("pix2pix")
class Pix2PixModel(nn.Module):
    @staticmethod
    def modify_commandline_options(parser, is_train):
        return parser

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        device = torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids else torch.device("cpu")
        self.netG = networks.define_G(opt, device)
        self.netD = networks.define_D(opt, device) if opt.isTrain else None
        self.netE = networks.define_E(opt, device) if opt.use_vae else None
        self.load_networks_if_asked()

        if opt.isTrain:
            self.criterionGAN = GANLoss(opt.gan_mode)
            generator_cls = networks.GENERATORS.get(opt.netG)
            self.use_sv_loss = generator_cls.has_semantic_vectors and opt.sv_loss != "none"
            self.use_vgg_loss = not opt.no_vgg_loss and opt.lambda_vgg > 0
            needs_vgg = self.use_vgg_loss or (self.use_sv_loss and opt.sv_loss == "vgg")
            self.criterionVGG = VGGLoss(opt.vgg_weights, opt.vgg_net).to(device) if needs_vgg else None
            if self.use_sv_loss:
                self.criterionSV = SemanticVectorLoss(opt.sv_loss, self.criterionVGG)

    def load_networks_if_asked(self):
        opt = self.opt
        if opt.isTrain and not opt.continue_train:
            return
        folder = os.path.join(opt.checkpoints_dir, opt.name)
        load_network(self.netG, folder, opt.which_epoch, "G")
        if self.netD is not None:
            load_network(self.netD, folder, opt.which_epoch, "D")
        if self.netE is not None:
            load_network(self.netE, folder, opt.which_epoch, "E")

    # ------------------------------------------------------------------------------------------------
    def forward(self, data, mode):
        input_semantics, real_image = self.preprocess_input(data)
        if mode == "generator":
            return self.compute_generator_loss(input_semantics, real_image)
        if mode == "discriminator":
            return self.compute_discriminator_loss(input_semantics, real_image)
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
        or absent/None (labels only) -> one-hot layout (B, semantic_nc, H, W) and the image."""
        opt = self.opt
        device = next(self.netG.parameters()).device  # under DataParallel, this replica's GPU
        label = data["label"].long().to(device)
        layout = one_hot_layout(label, opt.label_nc + int(opt.contain_dontcare_label))
        if not opt.no_instance:
            layout = torch.cat([layout, instance_edges(data["instance"].to(device))], dim=1)
        image = data.get("image")
        return layout, (image.to(device) if image is not None else None)

    def generate_fake(self, input_semantics, real_image):
        """-> (fake, aux dict of the generator, KLD or None). With the VAE, z is encoded from the real image
        when there is one (as SPADE does, also at test time), else drawn from N(0, I)."""
        z, kld = None, None
        if self.netE is not None and real_image is not None:
            mu, logvar = self.netE(real_image)
            z = mu + torch.randn_like(logvar) * torch.exp(0.5 * logvar)
            if self.opt.isTrain:
                kld = kld_loss(mu, logvar)
        fake, aux = self.netG(input_semantics, z=z, return_aux=True)
        return fake, aux, kld

    def discriminate(self, input_semantics, fake_image, real_image):
        """Fake and real go through D in one batch (so normalization sees both); outputs split back."""
        scores, features = self.netD(torch.cat([input_semantics, input_semantics], dim=0),
                                     torch.cat([fake_image, real_image], dim=0))
        half = fake_image.size(0)
        pred_fake = [s[:half] for s in scores]
        pred_real = [s[half:] for s in scores]
        feat_fake = [[f[:half] for f in group] for group in features]
        feat_real = [[f[half:] for f in group] for group in features]
        return pred_fake, pred_real, feat_fake, feat_real

    def compute_generator_loss(self, input_semantics, real_image):
        losses = {}
        fake, aux, kld = self.generate_fake(input_semantics, real_image)
        if kld is not None:
            losses["KLD"] = kld
        pred_fake, _, feat_fake, feat_real = self.discriminate(input_semantics, fake, real_image)
        losses["GAN"] = self.criterionGAN(pred_fake, True, for_discriminator=False)
        if not self.opt.no_ganFeat_loss:
            losses["GAN_Feat"] = feature_matching_loss(feat_fake, feat_real)
        if self.use_vgg_loss:
            losses["VGG"] = self.criterionVGG(fake, real_image)
        if self.use_sv_loss:
            losses["SV"] = self.criterionSV(aux["svg_image"], real_image)
        images = {"svg_image": aux["svg_image"].detach()} if "svg_image" in aux else {}
        return losses, fake.detach(), images

    def compute_discriminator_loss(self, input_semantics, real_image):
        with torch.no_grad():
            fake, _, _ = self.generate_fake(input_semantics, real_image)
        fake = fake.detach().requires_grad_()
        pred_fake, pred_real, _, _ = self.discriminate(input_semantics, fake, real_image)
        return {"D_Fake": self.criterionGAN(pred_fake, False, for_discriminator=True),
                "D_real": self.criterionGAN(pred_real, True, for_discriminator=True)}
