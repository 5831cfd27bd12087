"""The semantic vectors of a trained SC-GAN, class by class (evaluation/semantic_vectors.py does the work).

  python -m tools.analyze_sv --name NAME [--which_epoch latest] [--num_images 50] [--out DIR] [dataset options]

writes results/NAME/sv_EPOCH/: cosine.png and cosine.csv (class-by-class cosine similarity), one heat map per
scale, map.png (per-pixel vectors in 2-D), stats.json and index.html.
"""
import argparse
import contextlib
import io
import os
import sys

import data
from checkpointing.storage import CheckpointError
from evaluation.semantic_vectors import analyze, collect
from models import create_model
from models.networks import GENERATORS
from options.test_options import TestOptions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_images", type=int, default=50, help="label maps to analyze (test phase)")
    parser.add_argument("--samples_per_class", type=int, default=200, help="points per class on the 2-D map")
    parser.add_argument("--out", default="", help="output folder (default results/NAME/sv_EPOCH)")
    args, rest = parser.parse_known_args(argv)

    with contextlib.redirect_stdout(io.StringIO()):
        opt = TestOptions().parse(rest, verbose=False)
    if not hasattr(GENERATORS.get(opt.netG), "semantic_vectors"):
        sys.exit(f"error: --netG {opt.netG} has no semantic vectors: analyze an scgan model")
    try:
        loader = data.create_dataloader(opt)
        model = create_model(opt).eval()
    except (data.DatasetError, FileNotFoundError, ValueError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    names = list(loader.dataset.class_names or [f"class {k}" for k in range(opt.label_nc)])
    names += ["dontcare"] if opt.contain_dontcare_label else []

    accumulators, samples, seen = collect(model, loader, len(names), args.num_images, args.samples_per_class,
                                          opt.seed)
    out_dir = args.out or os.path.join(opt.results_dir, opt.name, f"sv_{opt.which_epoch}")
    twins = getattr(loader.dataset, "twin_classes", ())
    summary = analyze(accumulators, samples, names, out_dir,
                      f"Semantic vectors: {opt.name}, epoch {opt.which_epoch}, {seen} images", twins,
                      getattr(loader.dataset, "shared_appearance_classes", ()))
    for stream, stat in summary["streams"].items():
        entropy = stat["normalized_entropy"]
        line = (f"{stream:>7}: entropy {entropy:.4f}" if entropy is not None else f"{stream:>7}: entropy -") + \
            f", spread {stat['spread']:.4f}, discrimination {stat['discrimination']:.2f}"
        for pair, r in summary.get("twins", {}).get(stream, {}).items():
            line += (f"; {pair} cos {r['cosine']:.4f} sep {r['separation']:.2f} (closest other: cos "
                     f"{r['largest_other_cosine']:.4f} {r['largest_other_cosine_pair']}, sep "
                     f"{r['smallest_other_separation']:.2f} {r['smallest_other_separation_pair']})")
        print(line)
    print(f"wrote {os.path.join(out_dir, 'index.html')}")


if __name__ == "__main__":
    main()
