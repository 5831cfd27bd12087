"""Named evaluation protocols: which metrics evaluate.py measures, with which segmenter, input sizes and label
mapping, so that two metrics.json files say whether their numbers can be compared.

- `paper` (the default for coco, ade20k, cityscapes, celebamaskhq): SC-GAN paper §4 "Evaluation Metrics" and
  Table 1. mIoU and pixel accuracy of the synthesized validation images under DeepLab v2 (COCO-Stuff), UPerNet-101
  (ADE20K) and DRN-D-105 (Cityscapes), FID on all three; CelebAMask-HQ: FID and LPIPS (Table 1) plus the
  face-parsing mIoU that later face-synthesis tables report. The segmenters are those of evaluation/segmenters/,
  loaded strictly from their released files (--segmenter_weights; nothing is downloaded).
- `custom` (the default for every other dataset mode): the metrics of --metrics, a TorchScript --seg_model and
  the --seg_label_map the user gives.

The paper trains and tests at 256x256 (COCO-Stuff, ADE20K), 256x512 (Cityscapes) and 512x512 (CelebAMask-HQ,
§4 "Experiments"). The image size is the generator's, set when it was trained, so a model of another size is
measured at its own size and the deviation is recorded (`deviations`) and printed.
"""
import os
from dataclasses import dataclass, field
from typing import Optional, Tuple

import torch

from evaluation.metrics import DEFAULT_WEIGHTS_DIR, IGNORE, MetricSetupError, SegmentationScores

PAPER, CUSTOM = "paper", "custom"
NAMES = (PAPER, CUSTOM)
PAPER_DATASETS = ("coco", "ade20k", "cityscapes", "celebamaskhq")
ACCURACY_NOTE = ("pixel_accuracy: correct pixels / counted pixels, the 'Acc' column of the paper's Table 1 (its "
                 "text says 'mean pixel accuracy')")
# the 19 Cityscapes classes DRN-D-105 predicts, in train-id order (cityscapesScripts' labels.py)
CITYSCAPES_TRAIN_NAMES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                          "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                          "motorcycle", "bicycle")


@dataclass(frozen=True)
class SegmenterSpec:
    """One of the papers' segmenters as a protocol uses it."""
    dataset: str                 # key of evaluation.segmenters.SEGMENTERS
    network: str
    files: Tuple[str, ...]       # the released file names, in the order --segmenter_weights takes them
    published: str               # where the files are published, a phrase ("published under URL")
    input_size: str              # what the network sees, in words
    label_mapping: str           # name of the dataset id -> network class mapping
    dontcare: str                # which target pixels are not counted
    options: dict = field(default_factory=dict)   # keyword arguments of the builder
    class_names: Optional[Tuple[str, ...]] = None  # per network class, when the dataset has none

    def default_weights(self, folder=DEFAULT_WEIGHTS_DIR):
        return [os.path.join(folder, f) for f in self.files]


@dataclass(frozen=True)
class Protocol:
    name: str
    dataset_mode: str
    metrics: Tuple[str, ...]
    segmenter: Optional[SegmenterSpec] = None
    image_size_hw: Optional[Tuple[int, int]] = None   # the paper's image size
    source: str = ""


def paper_segmenter(dataset_mode: str, ade20k_raw_labels: bool = False) -> SegmenterSpec:
    """The segmenter of the paper's table for `dataset_mode` (one of PAPER_DATASETS)."""
    if dataset_mode == "coco":
        return SegmenterSpec(
            "coco", "DeepLab v2 ResNet-101 MSC, COCO-Stuff 164k, 182 classes (kazuto1011/deeplab-pytorch)",
            ("deeplabv2_resnet101_msc-cocostuff164k-100000.pth",),
            "published in release v1.0 of github.com/kazuto1011/deeplab-pytorch",
            "the image as generated; MSC at scales 1, 0.75, 0.5",
            "identity: COCO-Stuff ids 0..181 are the network's classes",
            "dontcare (label 255, id 182) not counted", {"image_size": None})
    if dataset_mode == "ade20k":
        return SegmenterSpec(
            "ade20k", "UPerNet ResNet-101, ADE20K, 150 classes (CSAILVision/semantic-segmentation-pytorch)",
            ("encoder_epoch_50.pth", "decoder_epoch_50.pth"),
            "published under http://sceneparsing.csail.mit.edu/model/pytorch/ade20k-resnet101-upernet/",
            "multi-scale: short side 300, 375, 450, 525, 600 (long side at most 1000), probabilities averaged",
            ("raw ADE20K values 1..150 are classes 0..149 (--ade20k_raw_labels)" if ade20k_raw_labels else
             "loader ids 0..149 (annotation value - 1) are the network's classes"),
            "'other' (annotation value 0) not counted", {"raw_labels": ade20k_raw_labels})
    if dataset_mode == "cityscapes":
        return SegmenterSpec(
            "cityscapes", "DRN-D-105, Cityscapes, 19 train ids (fyu/drn)", ("drn-d-105_ms_cityscapes.pth",),
            "published by github.com/fyu/drn (its README: http://go.yf.io/drn-cityscapes-models)",
            "the image as generated, single scale",
            "Cityscapes labelIds -> the 19 train ids (cityscapesScripts' labels.py)",
            "the 16 labelIds outside the 19 evaluated classes not counted", {"image_size": None},
            CITYSCAPES_TRAIN_NAMES)
    if dataset_mode == "celebamaskhq":
        return SegmenterSpec(
            "celebamaskhq", "face-parsing U-Net, CelebAMask-HQ, 19 classes (switchablenorms/CelebAMask-HQ)",
            ("model.pth",), "linked from face_parsing/README.md of github.com/switchablenorms/CelebAMask-HQ",
            "512x512, bicubic (align_corners=True)", "identity: CelebAMask-HQ ids 0..18 are the network's classes",
            "none (every pixel counted)", {"image_size": 512, "resize_mode": "bicubic"})
    raise ValueError(f"--dataset_mode {dataset_mode}: the paper measures only {', '.join(PAPER_DATASETS)}")


def paper_protocol(dataset_mode: str, ade20k_raw_labels: bool = False) -> Protocol:
    """SC-GAN §4 for `dataset_mode`: metrics, segmenter and the paper's image size."""
    if dataset_mode not in PAPER_DATASETS:
        raise ValueError(f"--protocol paper: the paper measures {', '.join(PAPER_DATASETS)}; --dataset_mode "
                         f"{dataset_mode} has no paper protocol: use --protocol custom")
    metrics = ("fid", "lpips", "miou") if dataset_mode == "celebamaskhq" else ("fid", "miou")
    size = {"coco": (256, 256), "ade20k": (256, 256), "cityscapes": (256, 512), "celebamaskhq": (512, 512)}
    source = ("SC-GAN §4 'Evaluation Metrics' and Table 1" +
              ("; face-parsing mIoU as later face-synthesis tables" if dataset_mode == "celebamaskhq" else ""))
    return Protocol(PAPER, dataset_mode, metrics, paper_segmenter(dataset_mode, ade20k_raw_labels),
                    size[dataset_mode], source)


def default_protocol(dataset_mode: str) -> str:
    return PAPER if dataset_mode in PAPER_DATASETS else CUSTOM


def check_weights(spec: SegmenterSpec, paths) -> list:
    """--segmenter_weights for `spec`: the right count of existing files, else MetricSetupError in one line."""
    paths = list(paths)
    if len(paths) != len(spec.files):
        raise MetricSetupError(f"--segmenter_weights {' '.join(paths)}: the {spec.dataset} segmenter takes "
                               f"{len(spec.files)} file(s), {' and '.join(spec.files)} ({spec.published})")
    for path, released in zip(paths, spec.files):
        if not os.path.isfile(path):
            raise MetricSetupError(f"--segmenter_weights {path}: file not found: the released {released} of "
                                   f"{spec.network}, {spec.published}")
    return paths


class PaperSegmenterScorer:
    """One of the papers' segmenters scored against the dataset's label maps, in the network's class space: both
    prediction and target go through the segmenter's {dataset id: class} map; target ids outside it are IGNORE.
    The interface of evaluation.metrics.SegmenterScorer (predict, targets, new_scores, num_classes,
    class_names)."""

    def __init__(self, spec: SegmenterSpec, weights, label_nc: int, device="cpu"):
        from evaluation.segmenters import SegmenterWeightsError, build_segmenter
        self.spec, self.device = spec, device
        self.weights = check_weights(spec, weights)
        try:
            self.model = build_segmenter(spec.dataset, self.weights, **spec.options).to(device)
        except SegmenterWeightsError as e:
            raise MetricSetupError(f"--segmenter_weights {e}") from None
        self.label_map = self.model.label_map()          # {dataset id: network class}
        self.num_classes = self.model.num_classes
        size = max(max(self.label_map) + 1, label_nc + 1, 256)
        self.lookup = torch.full((size,), IGNORE, dtype=torch.long)
        for dataset_id, k in self.label_map.items():
            self.lookup[dataset_id] = k
        self.dataset_ids = self.model.dataset_ids.tolist()   # per network class

    def class_names(self, dataset_names=None):
        """A name per network class: the dataset's name of its id, else the network's own, else 'id N'."""
        if dataset_names and all(0 <= d < len(dataset_names) for d in self.dataset_ids):
            return [dataset_names[d] for d in self.dataset_ids]
        if self.spec.class_names is not None:
            return list(self.spec.class_names)
        return [f"id {d}" for d in self.dataset_ids]

    @torch.no_grad()
    def predict(self, images):
        """images: (B, 3, H, W) in [-1, 1] -> (B, H, W) network classes (on the CPU)."""
        return self.lookup[self.model(images.to(self.device)).cpu()]

    def targets(self, label):
        """label: (B, 1, H, W) dataset ids -> (B, H, W) network classes or IGNORE."""
        return self.lookup[label[:, 0].long().cpu().clamp(0, len(self.lookup) - 1)]

    def new_scores(self):
        return SegmentationScores(self.num_classes)
