"""Benchmark (not a test): how long the painting demo takes from one brush stroke to the new image.

The page's own callback is timed (demo.py `DemoPage.paint`, without the browser and gradio's transport): the
editor's layers -> class ids (inference/painting.py: `editor_composite`, `colours_to_ids`, `resize_ids`) -> the
generator through inference.Synthesizer (`DemoModel.run`) -> the pictures the page shows (image, the SVG's
image, the heat maps of one scale's semantic vectors). The model is SC-GAN (or --netG) at its
`--dataset_mode ade20k` preset (256x256, 150 classes and dontcare), random weights (speed does not depend on
their values), prepared as demo.py loads it (Synthesizer.from_experiment): spectral norms folded, layout
convolutions skipping the classes absent from the canvas.

The canvas starts from a layout of --classes regions (a Voronoi diagram of random seeds, each its own class),
and each stroke paints a 9-pixel-wide line of another class across it, as a user does. Each stroke is timed
whole and in its three parts; the table gives the medians over --strokes after --warmup.

    python -m benchmarks.bench_stroke [--netG scgan] [--precision fp32 bf16] [--strokes 7] [--warmup 2]
        [--threads 2] [--classes 12] [--crop_size 256] [--out stroke.md]
"""
import argparse
import contextlib
import io
import statistics
import tempfile
import time

import numpy as np
import torch

STROKE_WIDTH = 9


def stroke(layer, colour, k, width=STROKE_WIDTH):
    """Paint stroke k on the (H, W, 3) layer in place: a line `width` pixels wide, its direction and position
    varying with k."""
    h, w = layer.shape[:2]
    t = np.linspace(0, 1, 4 * max(h, w))
    angle = 0.7 * k + 0.3
    rows = (h / 2 + np.sin(angle) * (t - 0.5) * 0.8 * h + (k % 5 - 2) * h / 10).astype(int)
    cols = (w / 2 + np.cos(angle) * (t - 0.5) * 0.8 * w).astype(int)
    for dr in range(-(width // 2), width // 2 + 1):
        for dc in range(-(width // 2), width // 2 + 1):
            layer[np.clip(rows + dr, 0, h - 1), np.clip(cols + dc, 0, w - 1)] = colour


def build_page(args, precision):
    """A demo.py DemoPage over a Synthesizer of a random-weight generator at the preset's size."""
    from benchmarks.bench_inference import build_options, voronoi_ids
    from demo import DemoPage
    from inference import Synthesizer, prepare_for_inference
    from models import networks
    from inference import painting

    with tempfile.TemporaryDirectory() as tmp:
        bench = argparse.Namespace(batch=1, device="cpu", crop_size=args.crop_size, ngf=0)   # the preset's width
        opt = build_options(args.netG, "ade20k", bench, tmp)
    torch.manual_seed(0)
    netG = networks.define_G(opt, verbose=False).eval()
    prepare_for_inference(netG)   # as Synthesizer.from_experiment loads demo.py's model
    synth = painting.DemoModel(Synthesizer(netG, opt, precision=precision))
    ids = voronoi_ids(synth.size, args.classes, opt.label_nc)
    names = painting.class_names(None, opt.label_nc, opt.contain_dontcare_label)
    return DemoPage(synth, names, ids, "bench"), ids


def measure(args, precision):
    """-> {part: median ms} for one precision."""
    from inference import painting
    page, ids = build_page(args, precision)
    value = page.editor_value(ids)
    stream = next(iter(painting.VECTOR_STREAMS)) if page.synth.opt.netG == "scgan" else None
    times = {"stroke": [], "ids": [], "generator": [], "pictures": []}
    for k in range(args.warmup + args.strokes):
        layer = value["layers"][0]
        stroke(layer, page.palette[(k * 7 + 1) % len(page.palette)], k)
        t0 = time.perf_counter()
        new_ids = page.ids_from_editor(value)
        t1 = time.perf_counter()
        synthesis = page.synth.run(new_ids, seed=0)
        t2 = time.perf_counter()
        page.vector_picture(synthesis, stream, 1)
        t3 = time.perf_counter()
        if k >= args.warmup:
            for part, seconds in (("ids", t1 - t0), ("generator", t2 - t1), ("pictures", t3 - t2)):
                times[part].append(1e3 * seconds)
            # the whole callback, as gradio calls it
            t0 = time.perf_counter()
            page.paint(value, 0, stream, 1)
            times["stroke"].append(1e3 * (time.perf_counter() - t0))
    return {part: statistics.median(values) for part, values in times.items()}, page.synth.size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--netG", choices=("scgan", "spade"), default="scgan")
    parser.add_argument("--precision", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    parser.add_argument("--strokes", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--classes", type=int, default=12, help="regions (and classes) of the starting layout")
    parser.add_argument("--crop_size", type=int, default=0, help="width instead of ade20k's 256; for quick checks")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    if args.strokes < 1 or args.warmup < 0 or args.threads < 1 or not 1 <= args.classes <= 150:
        raise SystemExit("--strokes and --threads must be >= 1, --warmup >= 0, --classes in 1..150")
    from benchmarks.bench_inference import publish

    torch.set_num_threads(args.threads)
    rows = []
    for precision in args.precision:
        with contextlib.redirect_stdout(io.StringIO()):
            ms, size = measure(args, precision)
        rows.append(f"| {args.netG} | {size[0]}x{size[1]} | {precision} | {ms['stroke']:.0f} | {ms['ids']:.0f} | "
                    f"{ms['generator']:.0f} | {ms['pictures']:.0f} |")
    text = "\n".join([f"cpu ({args.threads} threads), one stroke on a {args.classes}-class layout, median of "
                      f"{args.strokes} strokes after {args.warmup}; ms", "",
                      "| model | size | precision | stroke ms | ids ms | generator ms | pictures ms |",
                      "|---|---|---|---|---|---|---|", *rows])
    publish(text, args.out)


if __name__ == "__main__":
    main()
