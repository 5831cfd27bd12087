"""Named evaluation protocols: which metrics evaluate.py measures, with which segmenter, input sizes and label
mapping, so that two metrics.json files say whether their numbers can be compared.

- `paper` (the default for coco, ade20k, cityscapes, celebamaskhq): SC-GAN paper §4 "Evaluation Metrics" and
  Table 1. mIoU and pixel accuracy of the synthesized validation images under DeepLab v2 (COCO-Stuff), UPerNet-101
  (ADE20K) and DRN-D-105 (Cityscapes), FID on all three; CelebAMask-HQ: FID and LPIPS (Table 1) plus the
  face-parsing mIoU that later face-synthesis tables report. The segmenters are those of evaluation/segmenters/,
  loaded strictly from their released files (--segmenter_weights; nothing is downloaded).
- `custom` (the default for every other dataset mode): the metrics of --metrics, a TorchScript --seg_model and
  the --seg_label_map the user gives.

Where the published protocols differ, an option chooses and the settings record it: `--coco_resize 512` scores
COCO-Stuff as imaginaire does (longer side to 512, scored at that size), `--face_resize nearest` resizes faces as
the CelebAMask-HQ authors' tester.py (PIL's NEAREST) instead of imaginaire's bicubic. Training's --eval_metrics
miou takes the same options (`segmentation_scorer`), so its curve and evaluate.py score with one segmenter.

The paper trains and tests at 256x256 (COCO-Stuff, ADE20K), 256x512 (Cityscapes) and 512x512 (CelebAMask-HQ,
§4 "Experiments"). The image size is the generator's, set when it was trained, so a model of another size is
measured at its own size and the deviation is recorded (`deviations`) and printed.
"""
import os
from dataclasses import dataclass, field
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from evaluation.metrics import DEFAULT_WEIGHTS_DIR, IGNORE, MetricSetupError, SegmentationScores, SegmenterScorer

PAPER, CUSTOM = "paper", "custom"
NAMES = (PAPER, CUSTOM)
PAPER_DATASETS = ("coco", "ade20k", "cityscapes", "celebamaskhq")
FACE_RESIZES = ("bicubic", "nearest")   # --face_resize: imaginaire's, the CelebAMask-HQ authors' tester.py
COCO_RESIZES = ("none", "512")          # --coco_resize: the image as generated (CC-FPSE), imaginaire's 512
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


def paper_segmenter(dataset_mode: str, ade20k_raw_labels: bool = False, face_resize: str = "bicubic",
                    coco_resize: str = "none") -> SegmenterSpec:
    """The segmenter of the paper's table for `dataset_mode` (one of PAPER_DATASETS); face_resize and coco_resize
    as --face_resize and --coco_resize."""
    if face_resize not in FACE_RESIZES or coco_resize not in COCO_RESIZES:
        raise ValueError(f"face_resize {face_resize}, coco_resize {coco_resize}: expected one of "
                         f"{', '.join(FACE_RESIZES)} and one of {', '.join(COCO_RESIZES)}")
    if dataset_mode == "coco":
        input_size = ("the image as generated; MSC at scales 1, 0.75, 0.5" if coco_resize == "none" else
                      f"longer side scaled to {coco_resize} (bilinear, align_corners=True); MSC at scales 1, 0.75, "
                      f"0.5; logits resized to that size (align_corners=True) and scored there against the label "
                      f"maps resized by nearest neighbour (imaginaire)")
        return SegmenterSpec(
            "coco", "DeepLab v2 ResNet-101 MSC, COCO-Stuff 164k, 182 classes (kazuto1011/deeplab-pytorch)",
            ("deeplabv2_resnet101_msc-cocostuff164k-100000.pth",),
            "published in release v1.0 of github.com/kazuto1011/deeplab-pytorch", input_size,
            "identity: COCO-Stuff ids 0..181 are the network's classes",
            "dontcare (label 255, id 182) not counted",
            {"image_size": None if coco_resize == "none" else int(coco_resize)})
    if dataset_mode == "ade20k":
        return SegmenterSpec(
            "ade20k", "UPerNet ResNet-101, ADE20K, 150 classes (CSAILVision/semantic-segmentation-pytorch)",
            ("encoder_epoch_50.pth", "decoder_epoch_50.pth"),
            "published under http://sceneparsing.csail.mit.edu/model/pytorch/ade20k-resnet101-upernet/",
            "multi-scale: short side 300, 375, 450, 525, 600 (long side at most 1000), the uint8 image resized by "
            "PIL's bilinear, probabilities averaged",
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
            ("512x512, bicubic (align_corners=True)" if face_resize == "bicubic" else
             "512x512, PIL's nearest (the authors' tester.py)"),
            "identity: CelebAMask-HQ ids 0..18 are the network's classes",
            "none (every pixel counted)", {"image_size": 512, "resize_mode": face_resize})
    raise ValueError(f"--dataset_mode {dataset_mode}: the paper measures only {', '.join(PAPER_DATASETS)}")


def paper_protocol(dataset_mode: str, ade20k_raw_labels: bool = False, face_resize: str = "bicubic",
                   coco_resize: str = "none") -> Protocol:
    """SC-GAN §4 for `dataset_mode`: metrics, segmenter and the paper's image size."""
    if dataset_mode not in PAPER_DATASETS:
        raise ValueError(f"--protocol paper: the paper measures {', '.join(PAPER_DATASETS)}; --dataset_mode "
                         f"{dataset_mode} has no paper protocol: use --protocol custom")
    metrics = ("fid", "lpips", "miou") if dataset_mode == "celebamaskhq" else ("fid", "miou")
    size = {"coco": (256, 256), "ade20k": (256, 256), "cityscapes": (256, 512), "celebamaskhq": (512, 512)}
    source = ("SC-GAN §4 'Evaluation Metrics' and Table 1" +
              ("; face-parsing mIoU as later face-synthesis tables" if dataset_mode == "celebamaskhq" else ""))
    return Protocol(PAPER, dataset_mode, metrics,
                    paper_segmenter(dataset_mode, ade20k_raw_labels, face_resize, coco_resize),
                    size[dataset_mode], source)


def chosen_protocol(opt) -> Optional[Protocol]:
    """The paper Protocol that --protocol paper, --dataset_mode, --ade20k_raw_labels, --face_resize and
    --coco_resize choose (options already checked, options/eval_options.py); None under --protocol custom."""
    if opt.protocol != PAPER:
        return None
    return paper_protocol(opt.dataset_mode, opt.dataset_mode == "ade20k" and opt.ade20k_raw_labels,
                          opt.face_resize, opt.coco_resize)


def segmentation_scorer(opt, device="cpu", asked_by="--metrics miou"):
    """The mIoU scorer of evaluate.py and of training's --eval_metrics miou: the paper's segmenter from
    --segmenter_weights under --protocol paper, else --seg_model."""
    protocol = chosen_protocol(opt)
    if protocol is None:
        return SegmenterScorer(opt, device, asked_by=asked_by)
    return PaperSegmenterScorer(protocol.segmenter, opt.segmenter_weights, opt.label_nc, device)


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
        """images: (B, 3, H, W) in [-1, 1] -> (B, *output_size(H, W)) network classes (on the CPU)."""
        return self.lookup[self.model(images.to(self.device)).cpu()]

    def targets(self, label):
        """label: (B, 1, H, W) dataset ids -> (B, *output_size(H, W)) network classes or IGNORE. A segmenter that
        scores at its own size (COCO-Stuff at 512) gets the label maps resized to it by nearest neighbour, as
        imaginaire's compute_hist does."""
        size = self.model.output_size(*label.shape[2:])
        if tuple(size) != tuple(label.shape[2:]):
            label = F.interpolate(label.float(), size=size, mode="nearest")
        return self.lookup[label[:, 0].long().cpu().clamp(0, len(self.lookup) - 1)]

    def new_scores(self):
        return SegmentationScores(self.num_classes)
