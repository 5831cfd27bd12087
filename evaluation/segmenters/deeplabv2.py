"""COCO-Stuff segmenter: DeepLab v2 (ResNet-101, ASPP) with multi-scale inputs (MSC), 182 classes.

The layout is that of kazuto1011/deeplab-pytorch (libs/models/resnet.py, deeplabv2.py, msc.py; hubconf.py's
`deeplabv2_resnet101`), whose release v1.0 publishes `deeplabv2_resnet101_msc-cocostuff164k-100000.pth`; NVlabs'
imaginaire (imaginaire/evaluation/segmentation/cocostuff.py) scores COCO-Stuff with that file. Module names follow
the file's keys: `base.layer1.conv1.conv.weight`, `base.layer2.block1.shortcut.bn.running_mean`, `base.aspp.c0.bias`.

Preprocessing (kazuto's configs/cocostuff164k.yaml and demo.py, imaginaire's cocostuff.py): 0..255 BGR minus the
per-channel mean (B 104.008, G 116.669, R 122.675), no division. The network sees the image at 1, 0.75 and 0.5
of its size and keeps the per-pixel maximum of the three logit maps (MSC, eval mode).

Input size, an option: `image_size=None` (default) feeds the image at the size the generator made, as CC-FPSE's
authors state they did for their SPADE-family table (256x256 COCO images), and resizes the logits back to it
(bilinear, align_corners=False, as kazuto's demo.py) before the arg max. `image_size=512` is imaginaire's choice
(imaginaire/evaluation/segmentation/cocostuff.py and common.py): the longer side scaled to 512 (bilinear,
align_corners=True), the logits resized to that scaled size with align_corners=True, and the prediction scored
there (`output_size`; the label maps are brought to it by nearest neighbour, evaluation/protocols.py).

Label space: the network's classes 0..181 are COCO-Stuff 164k's label ids, the values of the project's COCO label
maps (data/coco_dataset.py; 255 there, dontcare, becomes id 182 and is never predicted).
"""
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .common import Segmenter, load_released
from .registry import SEGMENTERS

NUM_CLASSES = 182
MEAN_BGR = (104.008, 116.669, 122.675)
WEIGHTS_FILE = "deeplabv2_resnet101_msc-cocostuff164k-100000.pth"


class ConvBnReLU(nn.Sequential):
    """conv (no bias) -> batch norm -> optional ReLU, keys `conv.*`, `bn.*`."""

    def __init__(self, in_ch, out_ch, kernel_size, stride, padding, dilation, relu=True):
        super().__init__()
        self.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation, bias=False))
        self.add_module("bn", nn.BatchNorm2d(out_ch, eps=1e-5))
        if relu:
            self.add_module("relu", nn.ReLU())


class Bottleneck(nn.Module):
    """MSRA bottleneck: stride on the first 1x1 (`reduce`), dilation on the 3x3; projection shortcut in the
    first block of a layer."""

    def __init__(self, in_ch, out_ch, stride, dilation, project):
        super().__init__()
        mid_ch = out_ch // 4
        self.reduce = ConvBnReLU(in_ch, mid_ch, 1, stride, 0, 1)
        self.conv3x3 = ConvBnReLU(mid_ch, mid_ch, 3, 1, dilation, dilation)
        self.increase = ConvBnReLU(mid_ch, out_ch, 1, 1, 0, 1, relu=False)
        self.shortcut = ConvBnReLU(in_ch, out_ch, 1, stride, 0, 1, relu=False) if project else nn.Identity()

    def forward(self, x):
        """x: (B, in_ch, H, W) -> (B, out_ch, H / stride, W / stride)."""
        return F.relu(self.increase(self.conv3x3(self.reduce(x))) + self.shortcut(x))


class ResLayer(nn.Sequential):
    """`n_blocks` bottlenecks named block1, block2, ..."""

    def __init__(self, n_blocks, in_ch, out_ch, stride, dilation):
        super().__init__()
        for i in range(n_blocks):
            self.add_module(f"block{i + 1}", Bottleneck(in_ch if i == 0 else out_ch, out_ch,
                                                        stride if i == 0 else 1, dilation, project=i == 0))


class Stem(nn.Sequential):
    """7x7/2 conv and a 3x3/2 max pool with ceil_mode (as the Caffe DeepLab)."""

    def __init__(self, out_ch):
        super().__init__()
        self.add_module("conv1", ConvBnReLU(3, out_ch, 7, 2, 3, 1))
        self.add_module("pool", nn.MaxPool2d(3, 2, 1, ceil_mode=True))


class ASPP(nn.Module):
    """DeepLab v2's atrous spatial pyramid: one 3x3 conv per rate straight to class logits, summed."""

    def __init__(self, in_ch, n_classes, rates):
        super().__init__()
        for i, rate in enumerate(rates):
            self.add_module(f"c{i}", nn.Conv2d(in_ch, n_classes, 3, 1, padding=rate, dilation=rate, bias=True))

    def forward(self, x):
        """x: (B, 2048, h, w) -> (B, n_classes, h, w)."""
        return sum(stage(x) for stage in self.children())


class DeepLabV2(nn.Sequential):
    """ResNet-101 with output stride 8 (layers 4 and 5 dilated 2 and 4) and the ASPP head."""

    def __init__(self, n_classes=NUM_CLASSES, n_blocks=(3, 4, 23, 3), rates=(6, 12, 18, 24)):
        super().__init__()
        ch = [64 * 2 ** p for p in range(6)]
        self.add_module("layer1", Stem(ch[0]))
        self.add_module("layer2", ResLayer(n_blocks[0], ch[0], ch[2], 1, 1))
        self.add_module("layer3", ResLayer(n_blocks[1], ch[2], ch[3], 2, 1))
        self.add_module("layer4", ResLayer(n_blocks[2], ch[3], ch[4], 1, 2))
        self.add_module("layer5", ResLayer(n_blocks[3], ch[4], ch[5], 1, 4))
        self.add_module("aspp", ASPP(ch[5], n_classes, rates))


class MultiScaleDeepLabV2(nn.Module):
    """MSC: the per-pixel maximum of the logits at the full scale and at `scales` of it."""

    def __init__(self, base: nn.Module, scales: Sequence[float] = (0.5, 0.75)):
        super().__init__()
        self.base = base
        self.scales = tuple(scales)

    def forward(self, x):
        """x: (B, 3, H, W) preprocessed -> (B, n_classes, h, w) logits at the full scale's resolution (~H/8)."""
        logits = self.base(x)
        size = logits.shape[2:]
        pyramid = [logits]
        for scale in self.scales:
            scaled = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
            pyramid.append(F.interpolate(self.base(scaled), size=size, mode="bilinear", align_corners=False))
        return torch.stack(pyramid).max(dim=0)[0]


def preprocess(images, image_size: Optional[int] = None):
    """images: (B, 3, H, W) RGB in [-1, 1] -> (B, 3, H', W') BGR in 0..255 minus MEAN_BGR. With image_size, the
    longer side is scaled to it (bilinear, align_corners=True, as imaginaire's cocostuff.py)."""
    if image_size is not None:
        scale = image_size / max(images.shape[2:])
        images = F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=True)
    bgr = (images.flip(1) + 1) * 127.5
    return bgr - torch.tensor(MEAN_BGR, dtype=bgr.dtype, device=bgr.device).view(1, 3, 1, 1)


class CocoStuffSegmenter(Segmenter):
    """DeepLab v2 MSC on COCO-Stuff: (B, 3, H, W) in [-1, 1] -> (B, H, W) COCO-Stuff ids 0..181."""

    def __init__(self, image_size: Optional[int] = None, scales: Sequence[float] = (0.5, 0.75)):
        super().__init__(range(NUM_CLASSES))
        self.image_size = image_size
        self.net = MultiScaleDeepLabV2(DeepLabV2(NUM_CLASSES), scales)

    def released_modules(self):
        return [self.net]

    def output_size(self, height: int, width: int):
        """The input's size, or with image_size the size preprocess scales it to (F.interpolate's
        floor(side * scale))."""
        if self.image_size is None:
            return height, width
        scale = self.image_size / max(height, width)
        return math.floor(height * scale), math.floor(width * scale)

    def class_scores(self, images):
        """images: (B, 3, H, W) in [-1, 1] -> (B, 182, *output_size(H, W)) MSC logits."""
        logits = self.net(preprocess(images, self.image_size))
        size = self.output_size(*images.shape[2:])
        # kazuto1011's demo.py: back to the input size, align_corners=False; imaginaire: the scaled size, True
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=self.image_size is not None)


@SEGMENTERS.register("coco")
def build(weights: Optional[Sequence[str]] = None, image_size: Optional[int] = None) -> CocoStuffSegmenter:
    """weights: [WEIGHTS_FILE] (None: random weights)."""
    model = CocoStuffSegmenter(image_size=image_size)
    if weights is None:
        return model.eval()
    return load_released(model, weights, [f"kazuto1011/deeplab-pytorch's {WEIGHTS_FILE} "
                                          f"(DeepLab v2 ResNet-101 MSC, 182 classes)"])
