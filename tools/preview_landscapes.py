"""Write a picture of the bundled landscapes (data/landscapes.py): layouts in the pages' label colours beside
their images.

    python -m tools.preview_landscapes --out docs/landscapes.png [--n 8 --size 128 --seed 0 --phase test]
"""
import argparse

from data.landscapes import preview
from util.ranges import bounded
from util.util import save_image


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a grid of landscape layouts and images as a PNG.")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--n", type=bounded(int, min=1), default=8, help="number of landscapes")
    parser.add_argument("--size", type=bounded(int, min=8), default=128, help="image side in pixels")
    parser.add_argument("--per_row", type=bounded(int, min=1), default=4, help="layout-image pairs per row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phase", default="test", help="train or test: which landscapes to draw")
    args = parser.parse_args(argv)
    save_image(preview(args.n, args.size, args.seed, args.phase, args.per_row), args.out)
    print(f"wrote {args.n} landscapes ({args.size}x{args.size}) to {args.out}")


if __name__ == "__main__":
    main()
