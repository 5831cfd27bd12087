"""Benchmark (not a test): SCConv2d forward+backward against a plain Conv2d with n * C_out outputs on the
same input, i.e. what the per-pixel weighted sum over the candidates costs on top of the one big convolution.
It also times that weighted sum (CandidateSum, forward+backward) on its own.

python -m benchmarks.bench_scconv [--device cpu|cuda] [--size 64] [--batch 4] [--candidates 3]
"""
import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from models.networks.semantic_composition import CandidateSum, SCConv2d


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_times(fns, device, warmup=3, repeats=15):
    """Median seconds of each function, the functions run interleaved so that load changes hit all alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def bench(channels, size, batch, n, device):
    x = torch.randn(batch, channels, size, size, device=device, requires_grad=True)
    v = torch.softmax(torch.randn(batch, n, size, size, device=device), dim=1).requires_grad_()
    scc = SCConv2d(channels, channels, 3, n).to(device)
    weight = torch.randn(n * channels, channels, 3, 3, device=device, requires_grad=True)
    y = torch.randn(batch, n, channels, size, size, device=device, requires_grad=True)
    grad_plain = torch.randn(batch, n * channels, size, size, device=device)
    grad_sc = torch.randn(batch, channels, size, size, device=device)

    def plain():
        F.conv2d(x, weight, padding=1).backward(grad_plain)

    def sc():
        scc(x, v).backward(grad_sc)

    def weighted_sum():
        CandidateSum.apply(y, v).backward(grad_sc)

    return median_times([plain, sc, weighted_sum], device)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=64, help="height and width of the input")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--channels", type=int, nargs="+", default=[64, 128, 256])
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device {device}, input {args.batch} x C x {args.size} x {args.size}, n = {args.candidates}, "
          f"forward + backward, median of 15 interleaved runs")
    print(f"{'C_in = C_out':>12} | {'Conv2d(C, n*C) ms':>17} | {'SCConv2d ms':>11} | {'SCConv2d vs conv':>16} | "
          f"{'weighted sum ms':>15} | {'sum / conv':>10}")
    for c in args.channels:
        plain, sc, weighted = bench(c, args.size, args.batch, args.candidates, device)
        print(f"{c:>12} | {plain * 1e3:>17.2f} | {sc * 1e3:>11.2f} | {100 * (sc / plain - 1):>+15.1f}% | "
              f"{weighted * 1e3:>15.2f} | {100 * weighted / plain:>9.1f}%")


if __name__ == "__main__":
    main()
