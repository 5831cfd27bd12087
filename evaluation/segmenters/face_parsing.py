"""CelebAMask-HQ segmenter: the face-parsing U-Net of switchablenorms/CelebAMask-HQ, 19 classes.

The layout is face_parsing/unet.py (`unet`, feature_scale 4: widths 16, 32, 64, 128, 256, transposed-conv
up-sampling, batch norm) with model_utils.py's `unetConv2` / `unetUp`; their face_parsing/README.md publishes the
trained model (`model.pth`), and NVlabs' imaginaire (imaginaire/evaluation/segmentation/celebamask_hq.py) scores
face synthesis with this network. Keys: `conv1.conv1.0.weight`, `center.conv2.1.running_var`,
`up_concat4.up.weight`, `up_concat1.conv.conv2.0.bias`, `final.weight`.

Preprocessing: the network reads RGB in [-1, 1] (their tester.py: ToTensor then Normalize(0.5, 0.5)), which is
already the generator's range, at 512x512 (run_test.sh: --imsize 512). The resize filter is an option, because
the two sources differ: `resize_mode="bicubic"` (default, align_corners=True) is imaginaire's, the protocol later
face-synthesis tables follow; `"nearest"` is their tester.py's (torchvision's Resize with PIL's NEAREST), taken
here exactly as PIL takes it (`pil_nearest_indices`). Logits come back at the input size (bilinear).

Label space: the labels of their face_parsing/README.md (LABELS: 0 background, 1 skin, ... 18 cloth, the order of
Data_preprocessing/g_mask.py) are the project's CelebAMask-HQ ids (data/celebamaskhq_dataset.py CLASS_NAMES), one
to one.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .common import Segmenter, load_released
from .registry import SEGMENTERS

NUM_CLASSES = 19
IMAGE_SIZE = 512
RESIZE_MODES = ("bicubic", "nearest")
WEIGHTS_FILE = "model.pth"
LABELS = ("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth",
          "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")


class DoubleConv(nn.Sequential):
    """Two 3x3 conv (with bias) -> BN -> ReLU units, keys conv1.{0,1}, conv2.{0,1}."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.BatchNorm2d(out_ch), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(out_ch, out_ch, 3, 1, 1), nn.BatchNorm2d(out_ch), nn.ReLU())


class Up(nn.Module):
    """2x transposed conv of the coarse map, concatenated after the skip, then a DoubleConv."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = DoubleConv(in_ch, out_ch)
        self.up = nn.ConvTranspose2d(in_ch, out_ch, kernel_size=2, stride=2)

    def forward(self, skip, coarse):
        """skip: (B, out_ch, H, W), coarse: (B, in_ch, H/2, W/2) -> (B, out_ch, H, W)."""
        return self.conv(torch.cat([skip, self.up(coarse)], 1))


class FaceParsingUNet(nn.Module):
    """Four 2x max-pool levels down, four up; widths 64..1024 divided by feature_scale."""

    def __init__(self, n_classes=NUM_CLASSES, feature_scale=4):
        super().__init__()
        w = [c // feature_scale for c in (64, 128, 256, 512, 1024)]
        self.conv1, self.conv2 = DoubleConv(3, w[0]), DoubleConv(w[0], w[1])
        self.conv3, self.conv4 = DoubleConv(w[1], w[2]), DoubleConv(w[2], w[3])
        self.center = DoubleConv(w[3], w[4])
        self.up_concat4, self.up_concat3 = Up(w[4], w[3]), Up(w[3], w[2])
        self.up_concat2, self.up_concat1 = Up(w[2], w[1]), Up(w[1], w[0])
        self.final = nn.Conv2d(w[0], n_classes, 1)

    def forward(self, x):
        """x: (B, 3, H, W) in [-1, 1], H and W multiples of 16 -> (B, n_classes, H, W) logits."""
        c1 = self.conv1(x)
        c2 = self.conv2(F.max_pool2d(c1, 2))
        c3 = self.conv3(F.max_pool2d(c2, 2))
        c4 = self.conv4(F.max_pool2d(c3, 2))
        center = self.center(F.max_pool2d(c4, 2))
        up = self.up_concat1(c1, self.up_concat2(c2, self.up_concat3(c3, self.up_concat4(c4, center))))
        return self.final(up)


def pil_nearest_indices(in_size: int, out_size: int, device=None):
    """(out_size,) long: the source pixel of each output pixel in PIL's NEAREST resize, which steps from scale / 2
    by scale = in_size / out_size in double precision and truncates. torch's 'nearest' takes floor(i * scale)
    (other pixels: every one from 1024 to 512), and 'nearest-exact' floor((i + 0.5) * scale), which differs from
    the stepped sum where it lands on a pixel border (32 -> 48, 96 -> 80)."""
    scale, position, indices = in_size / out_size, in_size / out_size / 2, []
    for _ in range(out_size):
        indices.append(int(position))
        position += scale
    return torch.tensor(indices, dtype=torch.long, device=device)


def preprocess(images, image_size: int = IMAGE_SIZE, resize_mode: str = "bicubic"):
    """images: (B, 3, H, W) RGB in [-1, 1] -> (B, 3, image_size, image_size), values unchanged but resized."""
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode {resize_mode}: expected one of {', '.join(RESIZE_MODES)}")
    if tuple(images.shape[2:]) == (image_size, image_size):
        return images
    if resize_mode == "nearest":
        rows = pil_nearest_indices(images.shape[2], image_size, images.device)
        columns = pil_nearest_indices(images.shape[3], image_size, images.device)
        return images.index_select(2, rows).index_select(3, columns)
    return F.interpolate(images, size=(image_size, image_size), mode="bicubic", align_corners=True)


class CelebAMaskHQSegmenter(Segmenter):
    """Face-parsing U-Net: (B, 3, H, W) in [-1, 1] -> (B, H, W) CelebAMask-HQ ids 0..18."""

    def __init__(self, image_size: int = IMAGE_SIZE, resize_mode: str = "bicubic"):
        super().__init__(range(NUM_CLASSES))
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode {resize_mode}: expected one of {', '.join(RESIZE_MODES)}")
        if image_size % 16:
            raise ValueError(f"image_size {image_size}: the U-Net pools four times, give a multiple of 16 (512)")
        self.image_size, self.resize_mode = image_size, resize_mode
        self.net = FaceParsingUNet()

    def released_modules(self):
        return [self.net]

    def class_scores(self, images):
        """images: (B, 3, H, W) in [-1, 1] -> (B, 19, H, W) logits at the input size."""
        logits = self.net(preprocess(images, self.image_size, self.resize_mode))
        if logits.shape[2:] != images.shape[2:]:
            logits = F.interpolate(logits, size=images.shape[2:], mode="bilinear", align_corners=False)
        return logits


@SEGMENTERS.register("celebamaskhq")
def build(weights: Optional[Sequence[str]] = None, image_size: int = IMAGE_SIZE,
          resize_mode: str = "bicubic") -> CelebAMaskHQSegmenter:
    """weights: [WEIGHTS_FILE] (None: random weights)."""
    model = CelebAMaskHQSegmenter(image_size=image_size, resize_mode=resize_mode)
    if weights is None:
        return model.eval()
    return load_released(model, weights, [f"switchablenorms/CelebAMask-HQ's face_parsing {WEIGHTS_FILE} "
                                          f"(U-Net, 19 classes)"])
