"""Cityscapes segmenter: DRN-D-105 (dilated residual network) with a 1x1 classifier and a fixed x8 transposed-conv
up-sampler, 19 train ids.

The layout is that of fyu/drn: drn.py (`DRN`, `Bottleneck`, `drn_d_105`) inside segment.py's `DRNSeg`, released
as `drn-d-105_ms_cityscapes.pth`. Keys: `base.0.*` (7x7 stem), `base.1`, `base.2` (conv-BN-ReLU levels),
`base.3`..`base.6` (bottleneck levels, the last two dilated 2 and 4), `base.7`, `base.8` (conv levels without
residual, dilated 2 and 1), `seg.weight`, `seg.bias`, and `up.weight` (the bilinear kernel of fill_up_weights,
grouped per class, kept in the file although training never changes it).

Preprocessing (segment.py `test_seg`, datasets/cityscapes/info.json): RGB in [0, 1], Cityscapes mean
(0.29010, 0.32808, 0.28696) and std (0.18295, 0.18657, 0.18448), single scale (their `--ms` is not used).

Input size, an option. The SPADE family does not agree: OASIS's and CLADE's authors answered that they run DRN on
the image as generated (512x256) against label maps down-sampled by nearest neighbour, while others report
matching SPADE's table only after up-sampling the images to 2048x1024. The default `image_size=None` feeds the
generated size, the one the SPADE-family authors who published their protocol state; `image_size=(1024, 2048)`
up-samples (bilinear, align_corners=False) first. Scores come back at the input size.

Label space: the network predicts Cityscapes train ids 0..18; the project's Cityscapes loader keeps labelIds
(data/cityscapes_dataset.py, --label_nc 35), so train id t is returned as labelId TRAIN_TO_LABEL_ID[t]. Targets
are scored on the 19 evaluated labelIds only; `label_ids_to_train_ids` gives the usual 19-class targets with 255
for every other labelId (cityscapesScripts' labels.py).
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .common import Bottleneck, Segmenter, load_released, to_unit_range
from .registry import SEGMENTERS

NUM_CLASSES = 19
MEAN = (0.29010095242892997, 0.32808144844279574, 0.28696394422942517)
STD = (0.1829540508368939, 0.18656561047509476, 0.18447508988480435)
WEIGHTS_FILE = "drn-d-105_ms_cityscapes.pth"
# road, sidewalk, building, wall, fence, pole, traffic light, traffic sign, vegetation, terrain, sky, person,
# rider, car, truck, bus, train, motorcycle, bicycle
TRAIN_TO_LABEL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
IGNORE = 255


def label_ids_to_train_ids(label_ids):
    """(...) long Cityscapes labelIds (-1..33) -> (...) train ids 0..18, IGNORE for the unevaluated labelIds."""
    table = torch.full((256,), IGNORE, dtype=torch.long, device=label_ids.device)
    table[torch.tensor(TRAIN_TO_LABEL_ID, device=label_ids.device)] = torch.arange(NUM_CLASSES,
                                                                                   device=label_ids.device)
    valid = (label_ids >= 0) & (label_ids < 256)
    return torch.where(valid, table[label_ids.clamp(0, 255)], torch.full_like(label_ids, IGNORE))


def conv_levels(in_ch, out_ch, n_convs, stride=1, dilation=1):
    """DRN-D's conv-BN-ReLU levels (no residual): keys 0, 1 (conv, BN) per conv, flattened."""
    modules = []
    for i in range(n_convs):
        modules += [nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, stride if i == 0 else 1, padding=dilation,
                              dilation=dilation, bias=False),
                    nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]
    return nn.Sequential(*modules)


def bottleneck_level(in_ch, planes, n_blocks, stride=1, dilation=1):
    """n_blocks bottlenecks; a projection when the shape changes. DRN's levels 5 and 6 (new_level=False) use
    their dilation from the first block on."""
    downsample = None
    if stride != 1 or in_ch != planes * 4:
        downsample = nn.Sequential(nn.Conv2d(in_ch, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
    blocks = [Bottleneck(in_ch, planes, stride, downsample, dilation)]
    blocks += [Bottleneck(planes * 4, planes, dilation=dilation) for _ in range(1, n_blocks)]
    return nn.Sequential(*blocks)


def bilinear_kernel(size: int):
    """(size, size) kernel of fyu/drn's fill_up_weights (bilinear up-sampling by size // 2)."""
    f = math.ceil(size / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    ramp = torch.tensor([1 - abs(i / f - c) for i in range(size)])
    return ramp[:, None] * ramp[None, :]


class DRNSeg(nn.Module):
    """DRN-D-105 trunk (output stride 8, 512 channels) -> 1x1 classifier -> grouped x8 transposed conv."""

    def __init__(self, n_classes=NUM_CLASSES, channels=(16, 32, 64, 128, 256, 512, 512, 512),
                 levels=(1, 1, 3, 4, 23, 3, 1, 1)):
        super().__init__()
        stem = nn.Sequential(nn.Conv2d(3, channels[0], 7, 1, 3, bias=False), nn.BatchNorm2d(channels[0]),
                             nn.ReLU(inplace=True))
        self.base = nn.Sequential(
            stem,
            conv_levels(channels[0], channels[0], levels[0]),
            conv_levels(channels[0], channels[1], levels[1], stride=2),
            bottleneck_level(channels[1], channels[2], levels[2], stride=2),
            bottleneck_level(channels[2] * 4, channels[3], levels[3], stride=2),
            bottleneck_level(channels[3] * 4, channels[4], levels[4], dilation=2),
            bottleneck_level(channels[4] * 4, channels[5], levels[5], dilation=4),
            conv_levels(channels[5] * 4, channels[6], levels[6], dilation=2),
            conv_levels(channels[6], channels[7], levels[7], dilation=1))
        self.seg = nn.Conv2d(channels[7], n_classes, 1, bias=True)
        self.up = nn.ConvTranspose2d(n_classes, n_classes, 16, stride=8, padding=4, groups=n_classes, bias=False)
        with torch.no_grad():
            self.up.weight.copy_(bilinear_kernel(16).expand_as(self.up.weight))
        self.up.weight.requires_grad_(False)

    def forward(self, x):
        """x: (B, 3, H, W) normalized, H and W multiples of 8 -> (B, n_classes, H, W) log-probabilities."""
        return F.log_softmax(self.up(self.seg(self.base(x))), dim=1)


def preprocess(images, image_size: Optional[Tuple[int, int]] = None):
    """images: (B, 3, H, W) RGB in [-1, 1] -> normalized with the Cityscapes mean/std, optionally up-sampled to
    image_size (h, w) first (bilinear, align_corners=False)."""
    x = to_unit_range(images)
    if image_size is not None and tuple(x.shape[2:]) != tuple(image_size):
        x = F.interpolate(x, size=tuple(image_size), mode="bilinear", align_corners=False)
    mean = torch.tensor(MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class CityscapesSegmenter(Segmenter):
    """DRN-D-105 on Cityscapes: (B, 3, H, W) in [-1, 1] -> (B, H, W) Cityscapes labelIds of the 19 classes."""

    def __init__(self, image_size: Optional[Tuple[int, int]] = None):
        super().__init__(TRAIN_TO_LABEL_ID)
        self.image_size = image_size
        self.net = DRNSeg()

    def released_modules(self):
        return [self.net]

    def class_scores(self, images):
        """images: (B, 3, H, W) in [-1, 1] -> (B, 19, H, W) log-probabilities at the input size."""
        scores = self.net(preprocess(images, self.image_size))
        if scores.shape[2:] != images.shape[2:]:
            scores = F.interpolate(scores, size=images.shape[2:], mode="bilinear", align_corners=False)
        return scores


@SEGMENTERS.register("cityscapes")
def build(weights: Optional[Sequence[str]] = None,
          image_size: Optional[Tuple[int, int]] = None) -> CityscapesSegmenter:
    """weights: [WEIGHTS_FILE] (None: random weights); image_size: None (as generated) or (h, w)."""
    model = CityscapesSegmenter(image_size=image_size)
    if weights is None:
        return model.eval()
    return load_released(model, weights, [f"fyu/drn's {WEIGHTS_FILE} (DRN-D-105 DRNSeg, 19 classes)"])
