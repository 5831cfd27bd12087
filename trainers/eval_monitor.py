"""Metrics during training (--eval_freq N, as OASIS users rely on): every N epochs the generator (its EMA copy
when there is one) synthesizes --eval_how_many validation images and --eval_metrics are measured on them:
- fid: FID through the same torch-fidelity Inception and protocol as evaluate.py (evaluation/metrics.py);
- miou: mIoU and pixel accuracy of --seg_model on the synthesized images against their label maps, next to
  the same segmenter's mIoU on the real images (the ceiling the generator is measured against).
Rank 0 computes them; the trainer keeps best_net_G.pth by the first of FID (lower) or mIoU (higher).

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
from evaluation import metrics
from util.visualizer import draw_chart_panels

LOG_NAME, FIGURE_NAME = "eval_log.jsonl", "eval_curves.png"
TRAINING_METRICS = ("fid", "miou")  # the choices of --eval_metrics


class EvalMonitor:
    def __init__(self, opt, device):
        self.opt, self.device = opt, device
        self.metrics = list(opt.eval_metrics)
        # a missing weights file stops here, before training
        self.extractor = metrics.load_inception(opt.inception_weights, device) if "fid" in self.metrics else None
        self.segmenter = (metrics.SegmenterScorer(opt, device, asked_by="--eval_metrics miou")
                          if "miou" in self.metrics else None)
        self.loader = data.create_dataloader(validation_options(opt))
        self.real_features, self.real_scores = None, None
        self.log_path = os.path.join(opt.checkpoints_dir, opt.name, LOG_NAME)
        self.history = read_eval_log(self.log_path)

    @property
    def key(self):
        """The value that picks best_net_G: FID when measured (lower is better), else mIoU (higher)."""
        return "FID" if "fid" in self.metrics else "mIoU"

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
        """Whether `values` (just measured, already in the history) beat every earlier evaluation."""
        key = self.key
        earlier = [entry[key] for entry in self.history[:-1] if key in entry]
        if not earlier:
            return True
        return values[key] < min(earlier) if key == "FID" else values[key] > max(earlier)

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
