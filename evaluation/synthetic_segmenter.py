"""A small U-Net segmenter for the mIoU metric, trained on the real images of a dataset.

  python -m tools.train_segmenter --dataset_mode synthetic --out seg.pt [--iterations 400] [dataset options]

trains on the `train` phase, prints mIoU and pixel accuracy on the `test` phase, and saves the network as an
exported program (torch.export.save, PyTorch's current format for a network saved with its code) that evaluate.py
takes as --seg_model: (B, 3, H, W) image in [-1, 1], H and W at least 8 -> (B, label_nc, H, W) logits. For the
bundled datasets (synthetic, landscapes) it learns in minutes on a CPU, so the whole mIoU metric runs end to end here;
for the real datasets use a published segmenter (DRN, UperNet, DeepLab) exported the same way (or to TorchScript,
which --seg_model still reads).
"""
import io

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

import data
from checkpointing.storage import atomic_write_bytes
from evaluation.metrics import IGNORE, SegmentationScores, label_lookup


def conv_block(in_channels, out_channels):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels),
                         nn.ReLU(inplace=True), nn.Conv2d(out_channels, out_channels, 3, padding=1),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """Three-level U-Net. x: (B, 3, H, W) in [-1, 1] -> (B, num_classes, H, W) logits (any H, W)."""

    def __init__(self, num_classes: int, width: int = 16):
        super().__init__()
        self.enc1, self.enc2 = conv_block(3, width), conv_block(width, 2 * width)
        self.bottom = conv_block(2 * width, 4 * width)
        self.dec2, self.dec1 = conv_block(6 * width, 2 * width), conv_block(3 * width, width)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottom(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(b, size=e2.shape[2:], mode="nearest"), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[2:], mode="nearest"), e1], 1))
        return self.head(d1)


def targets(opt, label, num_classes):
    """label: (B, 1, H, W) dataset ids -> (B, H, W) class ids, dontcare as IGNORE."""
    dontcare = opt.label_nc if opt.contain_dontcare_label else None
    lookup = label_lookup(opt.label_nc + int(opt.contain_dontcare_label), num_classes, None, dontcare)
    return lookup[label[:, 0].long()]


def class_weights(loader, opt, batches=16):
    """Cross-entropy weights from the class frequencies of the first `batches` batches: 1 / sqrt(frequency),
    scaled to mean 1 over the classes seen (unseen classes get 0), so that small parts (eyes, lips) are learnt as
    early as the large ones and the mIoU, a mean over classes, does not wait on them."""
    counts = torch.zeros(opt.label_nc, dtype=torch.float64)
    for k, batch in enumerate(loader):
        if k == batches:
            break
        t = targets(opt, batch["label"], opt.label_nc)
        counts += torch.bincount(t[t != IGNORE].flatten(), minlength=opt.label_nc)[:opt.label_nc].double()
    seen = counts > 0
    weights = torch.zeros_like(counts)
    weights[seen] = (counts[seen] / counts.sum()).rsqrt()
    return (weights / weights[seen].mean()).float()


def train(opt, iterations, batch_size=8, lr=2e-3, width=16, seed=0, progress=True):
    """Train a UNet on the real images of `opt`'s dataset -> the model in eval mode."""
    torch.manual_seed(seed)
    dataset = data.create_dataset(opt)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    model = UNet(opt.label_nc, width)
    weights = class_weights(loader, opt)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, iterations)
    bar = tqdm(total=iterations, unit="step", desc="segmenter", disable=not progress, dynamic_ncols=True)
    step = 0
    while step < iterations:
        for batch in loader:
            loss = F.cross_entropy(model(batch["image"]), targets(opt, batch["label"], opt.label_nc),
                                   weight=weights, ignore_index=IGNORE)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if step == iterations:
                break
    bar.close()
    return model.eval()


@torch.no_grad()
def score(model, opt, images_from=None, batch_size=16):
    """mIoU and pixel accuracy of `model` on the test images of `opt`'s dataset (or on images_from(batch), e.g.
    noise, against the same label maps)."""
    loader = data.create_dataloader(opt)
    scores = SegmentationScores(opt.label_nc)
    for batch in loader:
        images = batch["image"] if images_from is None else images_from(batch)
        scores.update(model(images).argmax(1), targets(opt, batch["label"], opt.label_nc))
    return scores.compute()


def save_segmenter(model, path):
    """Write `model` (in eval mode) to `path` as an exported program for any batch, height and width (H, W >= 8:
    below that the two poolings leave a 1-pixel level, which export would have to specialize);
    evaluation/metrics.py (`load_segmenter`) reads it."""
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height", min=8), 3: torch.export.Dim("width", min=8)}
    program = torch.export.export(model.eval(), (torch.zeros(2, 3, 64, 64),), dynamic_shapes=(dims,))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    atomic_write_bytes(path, buffer.getvalue())
