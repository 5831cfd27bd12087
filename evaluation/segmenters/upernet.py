"""ADE20K segmenter: UPerNet (pyramid pooling + FPN head) on ResNet-101, 150 classes.

The layout is that of CSAILVision/semantic-segmentation-pytorch's `ade20k-resnet101-upernet` (config/
ade20k-resnet101-upernet.yaml: arch_encoder resnet101, arch_decoder upernet, fc_dim 2048), released as two files,
`encoder_epoch_50.pth` and `decoder_epoch_50.pth`. Encoder (mit_semseg/models/resnet.py and the `Resnet` wrapper
of models.py): a ResNet-101 with a deep stem (three 3x3 convs, 3->64/2, 64->64, 64->128) and torchvision-style
bottlenecks (stride on the 3x3), without avgpool and fc; keys `conv1.weight`, `layer3.22.bn3.running_var`.
Decoder (models.py `UPerNet`, fpn_dim 512): keys `ppm_conv.0.0.weight`, `ppm_last_conv.1.bias`, `fpn_in.2.0.weight`,
`fpn_out.0.0.1.running_mean`, `conv_last.1.bias`.

Loading: CSAIL's files carry three buffers of their synchronized batch norm on every batch norm
(`_tmp_running_mean`, `_tmp_running_var`, `_running_iter`; 318 in the encoder, 36 in the decoder), which their
loader skips with strict=False. Those names, on our batch norms and with their shapes, are dropped (one printed
line says how many); every other key is loaded strictly (common.load_released).

Preprocessing (their dataset.py, models.py and eval.py as of that config): multi-scale testing over the short sides
imgSizes = (300, 375, 450, 525, 600) with the long side capped at imgMaxSize 1000, each size rounded up to a multiple
of padding_constant 32; at each, the uint8 picture resized with PIL's BILINEAR (their `imresize`), scaled to [0, 1]
and normalized with the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225). The generator's floats
are rounded to uint8 first, as test.py writes them. Each scale's logits are upsampled to the image size (bilinear,
align_corners=False), turned into softmax probabilities and averaged over the scales.

Label space: the network's class k is ADE20K annotation value k + 1 (they train on value - 1, ignoring 'other' 0).
The project's ADE20K loader maps value v to v - 1 by default (data/ade20k_dataset.py), so class k is dataset id k;
with `--ade20k_raw_labels` the dataset keeps raw values and class k is id k + 1 (`raw_labels=True`).
"""
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .common import Bottleneck, Segmenter, load_released, to_uint8
from .registry import SEGMENTERS

NUM_CLASSES = 150
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SHORT_SIDES = (300, 375, 450, 525, 600)
MAX_SIDE = 1000
PADDING_CONSTANT = 32
ENCODER_FILE, DECODER_FILE = "encoder_epoch_50.pth", "decoder_epoch_50.pth"


def conv_bn_relu(in_ch, out_ch, kernel_size=3, stride=1):
    """conv (no bias) -> BN -> ReLU as an nn.Sequential: keys 0.weight, 1.*."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding=kernel_size // 2, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class ResNetEncoder(nn.Module):
    """Deep-stem ResNet-101 returning the four stage outputs (strides 4, 8, 16, 32)."""

    def __init__(self, blocks: Sequence[int] = (3, 4, 23, 3)):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False), nn.BatchNorm2d(64)
        self.conv2, self.bn2 = nn.Conv2d(64, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64)
        self.conv3, self.bn3 = nn.Conv2d(64, 128, 3, 1, 1, bias=False), nn.BatchNorm2d(128)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_ch = 128
        for i, (planes, n, stride) in enumerate(zip((64, 128, 256, 512), blocks, (1, 2, 2, 2))):
            downsample = nn.Sequential(nn.Conv2d(in_ch, planes * 4, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
            layer = [Bottleneck(in_ch, planes, stride, downsample)]
            layer += [Bottleneck(planes * 4, planes) for _ in range(1, n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
            in_ch = planes * 4

    def forward(self, x):
        """x: (B, 3, H, W) -> [(B, 256, H/4, W/4), (B, 512, H/8, ..), (B, 1024, H/16, ..), (B, 2048, H/32, ..)]."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.maxpool(F.relu(self.bn3(self.conv3(x))))
        features = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            features.append(x)
        return features


class UPerNetDecoder(nn.Module):
    """Pyramid pooling on the last stage, a top-down FPN over the four stages, fusion at stride 4."""

    def __init__(self, n_classes=NUM_CLASSES, fc_dim=2048, fpn_dim=512, pool_scales=(1, 2, 3, 6),
                 fpn_inplanes=(256, 512, 1024, 2048)):
        super().__init__()
        self.pool_scales = tuple(pool_scales)
        self.ppm_conv = nn.ModuleList(conv_bn_relu(fc_dim, 512, 1) for _ in pool_scales)
        self.ppm_last_conv = conv_bn_relu(fc_dim + len(pool_scales) * 512, fpn_dim)
        self.fpn_in = nn.ModuleList(conv_bn_relu(c, fpn_dim, 1) for c in fpn_inplanes[:-1])
        self.fpn_out = nn.ModuleList(nn.Sequential(conv_bn_relu(fpn_dim, fpn_dim)) for _ in fpn_inplanes[:-1])
        self.conv_last = nn.Sequential(conv_bn_relu(len(fpn_inplanes) * fpn_dim, fpn_dim),
                                       nn.Conv2d(fpn_dim, n_classes, 1))

    def forward(self, features):
        """features: the encoder's four maps -> (B, n_classes, H/4, W/4) logits."""
        conv5 = features[-1]
        size = conv5.shape[2:]
        pooled = [conv5] + [conv(F.interpolate(F.adaptive_avg_pool2d(conv5, scale), size, mode="bilinear",
                                               align_corners=False))
                            for scale, conv in zip(self.pool_scales, self.ppm_conv)]
        f = self.ppm_last_conv(torch.cat(pooled, 1))
        pyramid = [f]
        for i in reversed(range(len(features) - 1)):
            lateral = self.fpn_in[i](features[i])
            f = lateral + F.interpolate(f, size=lateral.shape[2:], mode="bilinear", align_corners=False)
            pyramid.append(self.fpn_out[i](f))
        pyramid.reverse()
        out_size = pyramid[0].shape[2:]
        fused = [pyramid[0]] + [F.interpolate(p, out_size, mode="bilinear", align_corners=False)
                                for p in pyramid[1:]]
        return self.conv_last(torch.cat(fused, 1))


def scale_sizes(height: int, width: int, short_sides: Sequence[int] = SHORT_SIDES, max_side: int = MAX_SIDE,
               multiple: int = PADDING_CONSTANT):
    """-> [(h, w)] per short side: scaled so the short side is s (the long one at most max_side), truncated to
    integers, then rounded up to a multiple of `multiple` (their ValDataset)."""
    sizes = []
    for short in short_sides:
        scale = min(short / min(height, width), max_side / max(height, width))
        h, w = int(height * scale), int(width * scale)
        sizes.append(((h - 1) // multiple * multiple + multiple, (w - 1) // multiple * multiple + multiple))
    return sizes


def preprocess(images, size):
    """images: (B, 3, H, W) RGB in [-1, 1], size (h, w) -> (B, 3, h, w) float32 ImageNet-normalized, as their
    ValDataset: the uint8 picture resized with PIL's BILINEAR (which rounds to whole grey levels), then / 255."""
    pictures = to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()
    resized = np.stack([np.array(Image.fromarray(p).resize((size[1], size[0]), Image.Resampling.BILINEAR))
                        for p in pictures])
    x = torch.from_numpy(np.float32(resized) / 255.).permute(0, 3, 1, 2).to(images.device)
    mean = torch.tensor(MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class ADE20KSegmenter(Segmenter):
    """UPerNet-101 on ADE20K: (B, 3, H, W) in [-1, 1] -> (B, H, W) ADE20K ids of the project's loader."""

    def __init__(self, raw_labels: bool = False, short_sides: Sequence[int] = SHORT_SIDES, max_side: int = MAX_SIDE):
        super().__init__([k + int(raw_labels) for k in range(NUM_CLASSES)])
        self.short_sides, self.max_side = tuple(short_sides), max_side
        self.encoder = ResNetEncoder()
        self.decoder = UPerNetDecoder()

    def released_modules(self):
        return [self.encoder, self.decoder]

    def class_scores(self, images):
        """images: (B, 3, H, W) in [-1, 1] -> (B, 150, H, W) softmax probabilities averaged over the scales."""
        height, width = images.shape[2:]
        sizes = scale_sizes(height, width, self.short_sides, self.max_side)
        probs = 0
        for size in sizes:
            logits = self.decoder(self.encoder(preprocess(images, size)))
            logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
            probs = probs + F.softmax(logits, dim=1) / len(sizes)
        return probs


@SEGMENTERS.register("ade20k")
def build(weights: Optional[Sequence[str]] = None, raw_labels: bool = False,
          short_sides: Sequence[int] = SHORT_SIDES) -> ADE20KSegmenter:
    """weights: [ENCODER_FILE, DECODER_FILE] (None: random weights); raw_labels as --ade20k_raw_labels."""
    model = ADE20KSegmenter(raw_labels=raw_labels, short_sides=short_sides)
    if weights is None:
        return model.eval()
    return load_released(model, weights, [
        f"CSAILVision's ade20k-resnet101-upernet/{ENCODER_FILE} (ResNet-101 encoder)",
        f"CSAILVision's ade20k-resnet101-upernet/{DECODER_FILE} (UPerNet decoder, 150 classes)"],
        sync_bn_buffers=True)
