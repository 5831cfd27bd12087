"""Metrics during training (--eval_freq N, as OASIS users rely on): every N epochs the generator (its EMA copy
when there is one) synthesizes --eval_how_many validation images and --eval_metrics are measured on them:
- fid: FID through the same torch-fidelity Inception and protocol as evaluate.py (evaluation/metrics.py);
- miou: mIoU and pixel accuracy on the synthesized images against their label maps, next to the same
  segmenter's mIoU on the real images (the ceiling the generator is measured against). The segmenter is the one
  evaluate.py takes (evaluation/protocols.py `segmentation_scorer`): under --protocol paper (the default for coco,
  ade20k, cityscapes, celebamaskhq) the paper's, from --segmenter_weights; under custom --seg_model.
Rank 0 computes them; the trainer keeps best_net_G.pth by --best_metric (`choose_best_metric`): mIoU (higher is
better) when it is measured, FID (lower is better) only from FID_TRUSTED_IMAGES validation images on, else none.

The real images' features and scores are computed once, at the first evaluation. The history is written to
checkpoints/NAME/eval_log.jsonl (one JSON object per evaluated epoch, kept across resumes) and drawn as
web/eval_curves.png beside the loss curves on the training page.
"""
import copy
import json
import math
import os

import torch

import data
from checkpointing.storage import atomic_write_bytes
from evaluation import metrics, protocols
from util.visualizer import draw_chart_panels

LOG_NAME, FIGURE_NAME = "eval_log.jsonl", "eval_curves.png"
TRAINING_METRICS = ("fid", "miou")  # the choices of --eval_metrics
# Below 2048 images the 2048 x 2048 covariance of the Inception features has rank < 2048 (singular), and FID is
# biased upwards by an amount that shrinks with the image count (two disjoint samples of the real 64x64 synthetic
# images: FID 65 at 64 + 64 images, 44 at 128 + 128): between epochs that bias moves more than the generator does.
FID_TRUSTED_IMAGES = 2048
# --best_metric -> (the key in the history, whether higher is better)
BEST_METRICS = {"fid": ("FID", False), "miou": ("mIoU", True)}


def choose_best_metric(asked, eval_metrics, num_images):
    """--best_metric `asked` (auto, fid, miou, none) -> (the history key that picks best_net_G.pth or None, why).
    auto: mIoU when measured; else FID from FID_TRUSTED_IMAGES images on; else none."""
    fid_biased = "fid" in eval_metrics and num_images < FID_TRUSTED_IMAGES
    bias = f"FID at {num_images} images is dominated by its bias" if fid_biased else ""
    if asked == "none":
        return None, "--best_metric none"
    if asked == "auto":
        if "miou" in eval_metrics:
            asked = "miou"
        elif not fid_biased:
            asked = "fid"
        else:
            return None, (f"{bias} (below {FID_TRUSTED_IMAGES} images): measure --eval_metrics miou, raise "
                          f"--eval_how_many to {FID_TRUSTED_IMAGES}, or ask --best_metric fid")
    key, higher = BEST_METRICS[asked]
    direction = "higher is better" if higher else "lower is better"
    if asked == "fid" and fid_biased:
        return key, f"{direction}; asked by --best_metric fid although {bias}"
    return key, direction + (f"; {bias}" if bias else "")


class EvalMonitor:
    def __init__(self, opt, device):
        self.opt, self.device = opt, device
        self.metrics = list(opt.eval_metrics)
        # a missing weights file stops here, before training
        self.extractor = metrics.load_inception(opt.inception_weights, device) if "fid" in self.metrics else None
        self.segmenter = (protocols.segmentation_scorer(opt, device, asked_by="--eval_metrics miou")
                          if "miou" in self.metrics else None)
        self.loader = data.create_dataloader(validation_options(opt))
        self.num_images = len(self.loader.dataset)
        self.key, self.why = choose_best_metric(opt.best_metric, self.metrics, self.num_images)
        self.real_features, self.real_scores = None, None
        self.log_path = os.path.join(opt.checkpoints_dir, opt.name, LOG_NAME)
        self.history = read_eval_log(self.log_path)

    @torch.no_grad()
    def measure(self, model, netG, epoch: int) -> dict:
        """The metrics of `netG` (switched to eval mode for the measurement) on the validation images ->
        {'FID', 'mIoU', 'accuracy', 'real_mIoU', 'real_accuracy'} (those asked for)."""
        was_training = netG.training
        netG.eval()
        first = self.real_features is None and self.real_scores is None
        fake_features = metrics.InceptionFeatures(self.extractor) if self.extractor is not None else None
        real_features = metrics.InceptionFeatures(self.extractor) if self.extractor is not None and first else None
        fake_scores = real_scores = None
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                for data_i in self.loader:
                    seg, image = model.preprocess_input(data_i)
                    generated, _, _ = model.generate_fake(seg, image, netG=netG)
                    generated = generated.float()
                    if fake_features is not None:
                        fake_features.update(metrics.to_uint8(generated))
                        if real_features is not None:
                            real_features.update(metrics.to_uint8(image))
                    if self.segmenter is not None:
                        predicted = self.segmenter.predict(generated)
                        target = self.segmenter.targets(data_i["label"])
                        fake_scores = fake_scores or self.segmenter.new_scores()
                        fake_scores.update(predicted, target)
                        if first:
                            real_scores = real_scores or self.segmenter.new_scores()
                            real_scores.update(self.segmenter.predict(image), target)
        finally:
            netG.train(was_training)
        values = {}
        if fake_features is not None:
            if real_features is not None:
                self.real_features = real_features.features()
            values["FID"] = float(metrics.fid(fake_features.features(), self.real_features))
        if fake_scores is not None:
            if real_scores is not None:
                self.real_scores = real_scores.compute()
            scores = fake_scores.compute()
            values.update({"mIoU": scores["miou"], "accuracy": scores["pixel_accuracy"],
                           "real_mIoU": self.real_scores["miou"], "real_accuracy": self.real_scores["pixel_accuracy"]})
        self.history = [entry for entry in self.history if entry["epoch"] < epoch] + [{"epoch": epoch, **values}]
        atomic_write_bytes(self.log_path, "".join(json.dumps(entry) + "\n" for entry in self.history).encode())
        return values

    def is_best(self, values) -> bool:
        """Whether `values` (just measured, already in the history) beat every earlier evaluation by the
        --best_metric; always False without one."""
        key = self.key
        if key is None or key not in values:
            return False
        earlier = [entry[key] for entry in self.history[:-1] if key in entry]
        if not earlier:
            return True
        higher = dict(BEST_METRICS.values())[key]
        return values[key] > max(earlier) if higher else values[key] < min(earlier)

    def describe_choice(self) -> str:
        """One line: what picks best_net_G.pth, and why."""
        if self.key is None:
            return f"no best_net_G.pth: {self.why}"
        return f"best_net_G.pth by {self.key} ({self.why})"

    def describe_best(self, epoch, values) -> str:
        """'best: epoch 7 by mIoU 0.810 (higher is better; ...)' for the epoch just found best."""
        digits = 2 if self.key == "FID" else 3
        return f"best: epoch {epoch} by {self.key} {values[self.key]:.{digits}f} ({self.why})"

    def describe(self, values) -> str:
        parts = []
        if "FID" in values:
            parts.append(f"FID {values['FID']:.2f}")
        if "mIoU" in values:
            parts.append(f"mIoU {values['mIoU']:.3f} (real images {values['real_mIoU']:.3f}, ratio "
                         f"{values['mIoU'] / max(values['real_mIoU'], 1e-12):.2f}), pixel accuracy "
                         f"{values['accuracy']:.3f}")
        return "; ".join(parts)

    def draw(self, web_dir: str):
        """web/eval_curves.png: one panel per metric over the evaluated epochs; the mIoU panel also shows the
        segmenter's mIoU on the real images."""
        os.makedirs(web_dir, exist_ok=True)
        panels = []
        if "fid" in self.metrics:
            panels.append([(e["epoch"], {"FID": e["FID"]}) for e in self.history if "FID" in e])
        if "miou" in self.metrics:
            panels.append([(e["epoch"], {"mIoU (synthesized)": e["mIoU"], "mIoU (real images)": e["real_mIoU"]})
                           for e in self.history if "mIoU" in e])
        draw_chart_panels(panels, os.path.join(web_dir, FIGURE_NAME))


def validation_options(opt):
    """The training options turned into test-time ones on the validation split: no random crop or flip, in
    order, at most --eval_how_many images."""
    val = copy.copy(opt)
    val.isTrain, val.phase, val.no_flip, val.serial_batches = False, "test", True, True
    val.load_size = opt.crop_size
    val.max_dataset_size = opt.eval_how_many
    val.batchSize = max(1, min(opt.batchSize, opt.eval_how_many))
    return val


def read_eval_log(path):
    """The evaluations of earlier sessions of this run: [{'epoch': E, metric: value, ...}]."""
    if not os.path.isfile(path):
        return []
    history = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill: that evaluation is measured again
            if isinstance(entry, dict) and isinstance(entry.get("epoch"), int):
                history.append({k: v for k, v in entry.items() if k == "epoch" or
                                (isinstance(v, float) and math.isfinite(v))})
    return history
