"""Benchmark (not a test): how well a trained `--model unpaired` experiment translates the synthetic faces.

On `--dataset_mode synthetic_unaligned` the true translation is known: domain B is domain A's faces in the
`winter` colour scheme (data/synthetic.py), so the ideal result for a source image is winter(source). This
prints the mean absolute error (0-255 units, over pixels and channels) of the results against it, beside
what three trivial translators would score: the source unchanged (no style), the reference image (ignores the
source) and winter(reference).

    python -m benchmarks.unpaired_synthetic --name NAME [--checkpoints_dir DIR] [--how_many 200]
"""
import sys

import numpy as np
import torch

import data
from data.synthetic import winter
from models import create_model
from options.test_options import TestOptions


def to_uint8(images):
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8, as pages save them."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def mean_abs(a, b):
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def main(argv=None):
    opt = TestOptions().parse(argv, verbose=False)
    if opt.dataset_mode != "synthetic_unaligned" or opt.model != "unpaired":
        sys.exit(f"error: --name {opt.name} is a --model {opt.model} experiment on --dataset_mode {opt.dataset_mode}; "
                 f"this measures --model unpaired on synthetic_unaligned, whose ideal translation is known")
    torch.manual_seed(opt.seed)
    model = create_model(opt, verbose=False).eval()
    loader = data.create_dataloader(opt)
    errors = {"result": [], "source unchanged": [], "reference": [], "winter(reference)": []}
    count = 0
    for data_i in loader:
        if count >= opt.how_many:
            break
        keep = int(min(data_i["image"].size(0), opt.how_many - count))
        fake = to_uint8(model(data_i, mode="inference")[:keep])
        source, reference = to_uint8(data_i["image"][:keep]), to_uint8(data_i["target"][:keep])
        ideal = winter(source)
        for name, guess in (("result", fake), ("source unchanged", source), ("reference", reference),
                            ("winter(reference)", winter(reference))):
            errors[name].append(mean_abs(guess, ideal) * keep)
        count += keep
    print(f"{opt.name}: mean |x - winter(source)| over {count} test images (0-255)")
    for name, values in errors.items():
        print(f"  {name:<20} {sum(values) / count:7.2f}")


if __name__ == "__main__":
    main()
