"""FID during training (--eval_freq N, as OASIS users rely on): every N epochs the FID of the generator (its
EMA copy when there is one) on --eval_how_many validation images, through the same torch-fidelity Inception
and protocol as evaluate.py (util/metrics.py). Rank 0 computes it; the trainer keeps best_net_G.pth by it.

The real images' features are computed once, at the first evaluation. The history is written to
checkpoints/NAME/fid_log.txt ("epoch FID" lines, kept across resumes) and drawn as web/fid_curve.png beside
the loss curves on the training page.
"""
import copy
import os

import torch

import data
from util import metrics
from util.visualizer import draw_loss_curves


class FIDMonitor:
    def __init__(self, opt, device):
        self.opt, self.device = opt, device
        self.extractor = metrics.load_inception(opt.inception_weights, device)  # a missing file stops here
        self.loader = data.create_dataloader(validation_options(opt))
        self.real = None
        self.log_path = os.path.join(opt.checkpoints_dir, opt.name, "fid_log.txt")
        self.history = read_fid_log(self.log_path)

    def due(self, epoch: int) -> bool:
        return self.opt.eval_freq > 0 and epoch % self.opt.eval_freq == 0

    @torch.no_grad()
    def measure(self, model, netG, epoch: int) -> float:
        """FID of `netG` (switched to eval mode for the measurement) against the validation images."""
        was_training = netG.training
        netG.eval()
        fake = metrics.InceptionFeatures(self.extractor)
        real = metrics.InceptionFeatures(self.extractor) if self.real is None else None
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                for data_i in self.loader:
                    seg, image = model.preprocess_input(data_i)
                    generated, _, _ = model.generate_fake(seg, image, netG=netG)
                    fake.update(metrics.to_uint8(generated))
                    if real is not None:
                        real.update(metrics.to_uint8(image))
        finally:
            netG.train(was_training)
        if real is not None:
            self.real = real.features()
        value = float(metrics.fid(fake.features(), self.real))
        self.history = [(e, v) for e, v in self.history if e < epoch] + [(epoch, value)]
        with open(self.log_path, "w") as f:
            f.writelines(f"{e} {v:.4f}\n" for e, v in self.history)
        return value

    def best(self):
        return min((v for _, v in self.history), default=float("inf"))

    def draw(self, web_dir: str):
        """web/fid_curve.png: FID per evaluated epoch."""
        os.makedirs(web_dir, exist_ok=True)
        draw_loss_curves([(e, {"FID": v}) for e, v in self.history], os.path.join(web_dir, "fid_curve.png"))


def validation_options(opt):
    """The training options turned into test-time ones on the validation split: no random crop or flip, in
    order, at most --eval_how_many images."""
    val = copy.copy(opt)
    val.isTrain, val.phase, val.no_flip, val.serial_batches = False, "test", True, True
    val.load_size = opt.crop_size
    val.max_dataset_size = opt.eval_how_many
    val.batchSize = max(1, min(opt.batchSize, opt.eval_how_many))
    return val


def read_fid_log(path):
    if not os.path.isfile(path):
        return []
    history = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                history.append((int(parts[0]), float(parts[1])))
    return history
