"""The segmenters of the papers' tables, written here and loading the released weights strictly (paper §4,
"Evaluation Metrics"; SPADE's protocol):

    coco          DeepLab v2 ResNet-101 MSC, 182 classes   (deeplabv2.py,    kazuto1011/deeplab-pytorch)
    ade20k        UPerNet ResNet-101, 150 classes          (upernet.py,      CSAILVision/semantic-segmentation-pytorch)
    cityscapes    DRN-D-105, 19 train ids                  (drn.py,          fyu/drn)
    celebamaskhq  face-parsing U-Net, 19 classes           (face_parsing.py, switchablenorms/CelebAMask-HQ)

`build_segmenter(dataset, weights, **options)` returns a module mapping (B, 3, H, W) RGB in [-1, 1] to (B, H, W)
label ids of the dataset's loader; `python -m tools.check_segmenter` strictly loads a downloaded file.
"""
from typing import Optional, Sequence

from . import deeplabv2, drn, face_parsing, upernet  # noqa: F401 -- registers the builders
from .common import Segmenter, SegmenterWeightsError
from .registry import SEGMENTERS

__all__ = ["SEGMENTERS", "Segmenter", "SegmenterWeightsError", "build_segmenter"]


def build_segmenter(dataset: str, weights: Optional[Sequence[str]] = None, **options) -> Segmenter:
    """The segmenter of `dataset` (a dataset mode: coco, ade20k, cityscapes, celebamaskhq), in eval mode, with
    the released weights from the local files `weights` (None: random weights)."""
    return SEGMENTERS.get(dataset)(weights, **options)
