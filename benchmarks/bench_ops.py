"""Benchmark (not a test): SC-GAN's operators against the plain ones they replace, at several widths.

SCConv2d(C, C, 3, n) (spectral norm on its candidates, as in the generator) against a spectral-normed
Conv2d(C, C, 3), and SCNorm(C, n) against BatchNorm2d(C) (affine, as SPADE's pix2pixHD-style layers), each
forward only and forward+backward, in training mode. Median of --repeats interleaved runs after warm-up.

    python -m benchmarks.bench_ops [--device cpu|cuda] [--size 64] [--batch 4] [--candidates 3]
                                   [--channels 32 64 128 256] [--precision fp32|bf16|fp16]
"""
import argparse
import contextlib

import torch
from torch import nn

from benchmarks.bench_scconv import median_times
from models.networks.normalization import spectral_norm
from models.networks.semantic_composition import SCConv2d, SCNorm

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def bench(channels, args, device):
    """-> {(op, pass): seconds} for conv, scconv, bn, scnorm x fwd, fwd+bwd."""
    n, b, s = args.candidates, args.batch, args.size
    x = torch.randn(b, channels, s, s, device=device, requires_grad=True)
    v = torch.softmax(torch.randn(b, n, s, s, device=device), dim=1).requires_grad_()
    grad = torch.randn(b, channels, s, s, device=device)
    ops = {"conv": (spectral_norm(nn.Conv2d(channels, channels, 3, padding=1, bias=False)), False),
           "scconv": (SCConv2d(channels, channels, 3, n, spectral=True), True),
           "bn": (nn.BatchNorm2d(channels), False),
           "scnorm": (SCNorm(channels, n, "batch"), True)}
    dtype = PRECISIONS[args.precision]
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
    fns, keys = [], []
    for name, (module, takes_v) in ops.items():
        module.to(device)

        def forward(module=module, takes_v=takes_v):
            with autocast():
                return module(x, v) if takes_v else module(x)

        def forward_backward(forward=forward):
            forward().backward(grad.to(dtype or grad.dtype))

        def forward_no_grad(forward=forward):
            with torch.no_grad():
                forward()

        fns += [forward_no_grad, forward_backward]
        keys += [(name, "fwd"), (name, "fwd+bwd")]
    return dict(zip(keys, median_times(fns, device, warmup=args.warmup, repeats=args.repeats)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=64, help="height and width of the input")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=3, help="n of SCConv2d and SCNorm")
    parser.add_argument("--channels", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"{args.device}, input {args.batch} x C x {args.size} x {args.size}, n = {args.candidates}, "
          f"{args.precision}, training mode, median of {args.repeats} interleaved runs; ms (ratio to the plain op)\n")
    print("| C | Conv2d fwd | SCConv2d fwd | Conv2d fwd+bwd | SCConv2d fwd+bwd | BatchNorm fwd | SCNorm fwd | "
          "BatchNorm fwd+bwd | SCNorm fwd+bwd |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in args.channels:
        t = bench(c, args, device)
        cells = []
        for plain, sc in (("conv", "scconv"), ("bn", "scnorm")):
            for kind in ("fwd", "fwd+bwd"):
                cells += [f"{1e3 * t[plain, kind]:.2f}",
                          f"{1e3 * t[sc, kind]:.2f} ({t[sc, kind] / t[plain, kind]:.1f}x)"]
        print(f"| {c} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
