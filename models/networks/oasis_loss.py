"""OASIS's adversarial losses (Schönfeld et al., ICLR 2021, §3.1-3.2, Eq. 2-4), for a discriminator that
segments the image into N classes plus "fake" (models/networks/oasis_discriminator.py).

Targets: channel 0 of D's logits is "fake", channel c + 1 is class c (OASIS's order: the labels shifted by one).
Class balancing (per batch, from the label map): with P the pixels of the batch (B*H*W), n_c the pixels of class
c and K the number of classes present (the dontcare label not counted),
    w_c = P / (K * n_c) for every class present,   w_c = 0 for absent classes and for the dontcare label,
so every present class carries the same total weight P / K, and the weights average to 1 over the pixels when
there is no dontcare pixel. A weighted loss is mean over pixels of w_label(pixel) * CE(pixel).

    D loss:  D_real = weighted CE(D(real), label + 1),   D_Fake = CE(D(fake), 0) (unweighted, every pixel)
    G loss:  GAN    = weighted CE(D(fake), label + 1)
LabelMix (§3.2, D step only): a mask M that is 1 or 0 over each whole class region of each label map, drawn
at random per (image, class); mixed = M * real + (1 - M) * fake; D_LabelMix = MSE(D(mixed), M * D(real) +
(1 - M) * D(fake)) over the logits, with gradients through all three outputs (as OASIS).

Losses are unweighted; the trainer applies --lambda_labelmix (trainers/pix2pix_trainer.py).
"""
import torch
from torch import nn
from torch.nn import functional as F

from .layout_lookup import Layout

FAKE = 0  # the logit channel of the "fake" class; class c is channel c + 1


def class_balance_weights(label, num_classes: int, dontcare=None, dtype=torch.float32):
    """label: (B, H, W) long class ids in [0, num_classes) -> (B, H, W) weights w_label (module docstring) of
    `dtype`, computed in float64. dontcare: the id of the dontcare label (weight 0, not counted as a class), or
    None."""
    counts = torch.bincount(label.flatten(), minlength=num_classes).double()
    if dontcare is not None:
        counts[dontcare] = 0
    present = counts > 0
    k = present.sum()
    per_class = torch.where(present, label.numel() / (k * counts.clamp(min=1)), torch.zeros_like(counts))
    return per_class[label].to(dtype)


def segmentation_targets(label, real: bool):
    """label: (B, H, W) class ids -> (B, H, W) targets of the N + 1 logits: label + 1 for real, 0 for fake."""
    return label + 1 if real else torch.full_like(label, FAKE)


def at_least_fp32(x):
    """x in fp32 when autocast made it half precision; fp32 and float64 stay as they are."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def weighted_cross_entropy(logits, targets, weights=None):
    """logits: (B, N + 1, H, W); targets: (B, H, W); weights: (B, H, W) or None -> mean of weight * CE."""
    ce = F.cross_entropy(at_least_fp32(logits), targets, reduction="none")
    return (ce * weights).mean() if weights is not None else ce.mean()


def labelmix_mask(label, num_classes: int, generator=None):
    """label: (B, H, W) class ids -> (B, 1, H, W) float mask, one random bit per (image, class): each class
    region of each image goes wholly to the real image (1) or to the fake one (0)."""
    bits = torch.randint(0, 2, (label.size(0), num_classes), device=label.device, generator=generator)
    return bits.gather(1, label.flatten(1)).view(label.size(0), 1, *label.shape[1:]).float()


def labelmix_loss(mask, logits_mixed, logits_fake, logits_real):
    """MSE between D's logits of the mixed image and the same mix of its logits of the real and fake images."""
    target = mask * at_least_fp32(logits_real) + (1 - mask) * at_least_fp32(logits_fake)
    return F.mse_loss(at_least_fp32(logits_mixed), target)


class OASISLoss(nn.Module):
    """The N + 1-class losses of both steps. num_classes: N = label_nc (+ 1 with the dontcare label, whose id is
    `dontcare`); labelmix: add D_LabelMix to the discriminator's losses."""

    def __init__(self, num_classes: int, dontcare=None, labelmix: bool = True):
        super().__init__()
        self.num_classes, self.dontcare, self.labelmix = num_classes, dontcare, labelmix

    def class_ids(self, layout):
        """layout: (B, semantic_nc, H, W), a Layout of class ids or a tensor, the one-hot classes first (then an
        instance edge channel) -> (B, H, W)."""
        if isinstance(layout, Layout) and layout.ids is not None and layout.pad is None and not layout.before:
            return layout.ids
        layout = layout.tensor() if isinstance(layout, Layout) else layout
        return layout[:, :self.num_classes].argmax(dim=1)

    def real_loss(self, logits, label):
        """Weighted CE of `logits` (B, N + 1, H, W) to the true classes of `label` (B, H, W)."""
        weights = class_balance_weights(label, self.num_classes, self.dontcare, at_least_fp32(logits).dtype)
        return weighted_cross_entropy(logits, segmentation_targets(label, real=True), weights)

    def generator_loss(self, netD, fake, layout):
        """fake: (B, 3, H, W); layout: (B, semantic_nc, H, W) -> GAN: D should segment the fake correctly."""
        return self.real_loss(netD(fake), self.class_ids(layout))

    def discriminator_losses(self, netD, fake, real, layout):
        """fake, real: (B, 3, H, W) (fake detached); layout: (B, semantic_nc, H, W) -> {D_Fake, D_real[,
        D_LabelMix]}. One pass of D over [fake, real(, mixed)], so a DDP-wrapped D runs forward once."""
        label = self.class_ids(layout)
        images = [fake, real]
        if self.labelmix:
            mask = labelmix_mask(label, self.num_classes)
            images.append(mask * real + (1 - mask) * fake)
        logits = netD(torch.cat(images, dim=0)).chunk(len(images), dim=0)
        losses = {"D_Fake": weighted_cross_entropy(logits[0], segmentation_targets(label, real=False)),
                  "D_real": self.real_loss(logits[1], label)}
        if self.labelmix:
            losses["D_LabelMix"] = labelmix_loss(mask, logits[2], logits[0], logits[1])
        return losses
