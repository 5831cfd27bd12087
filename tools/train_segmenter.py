"""Train the small U-Net segmenter (evaluation/synthetic_segmenter.py) on a dataset's real images.

  python -m tools.train_segmenter --dataset_mode synthetic --out seg.pt [--iterations 400] [dataset options]
  python -m tools.train_segmenter --dataset_mode landscapes --out seg.pt --iterations 4000 --num_synthetic 4000

trains on the `train` phase, prints mIoU and pixel accuracy on the `test` phase and saves the network as an
exported program (torch.export.save), the file evaluate.py takes as --seg_model.
"""
import argparse
import contextlib
import io
import sys

import data
from evaluation.synthetic_segmenter import save_segmenter, score, train
from options.test_options import TestOptions


def dataset_options(argv, phase):
    """The project's options for a dataset (test-time preprocessing: no random crop or flip) in `phase`."""
    options = TestOptions()
    options.requires_experiment = False  # only the dataset's options are wanted
    with contextlib.redirect_stdout(io.StringIO()):
        return options.parse([*argv, "--phase", phase, "--gpu_ids", "-1"], verbose=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="file for evaluate.py --seg_model (an exported program)")
    parser.add_argument("--iterations", type=int, default=400, help="training steps")
    parser.add_argument("--seg_batch", type=int, default=8, help="training batch size")
    parser.add_argument("--seg_lr", type=float, default=2e-3, help="Adam learning rate (cosine decay)")
    parser.add_argument("--seg_width", type=int, default=16, help="width of the first U-Net level")
    args, dataset_argv = parser.parse_known_args(argv)
    try:
        model = train(dataset_options(dataset_argv, "train"), args.iterations, args.seg_batch, args.seg_lr,
                      args.seg_width)
        test = score(model, dataset_options(dataset_argv, "test"))
    except data.DatasetError as e:
        sys.exit(f"error: {e}")
    save_segmenter(model, args.out)
    print(f"test phase: mIoU {test['miou']:.4f}, pixel accuracy {test['pixel_accuracy']:.4f}; wrote {args.out}")


if __name__ == "__main__":
    main()
