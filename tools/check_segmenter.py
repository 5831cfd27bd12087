"""Check a downloaded weights file: strictly load it into the segmenter of a dataset and say so.

    python -m tools.check_segmenter --dataset coco --weights deeplabv2_resnet101_msc-cocostuff164k-100000.pth
    python -m tools.check_segmenter --dataset ade20k --weights encoder_epoch_50.pth decoder_epoch_50.pth

Prints the parameter count and one line saying that the file(s) loaded (for CSAIL's ADE20K files, first one line
with the number of their synchronized batch norm's buffers, which are ignored); a file that is not the released
layout stops with its first wrong key, and one that pickles more than tensors with one line, exit status 1.
Nothing is downloaded and nothing is unpickled.
"""
import argparse
import sys

from evaluation.segmenters import SEGMENTERS, SegmenterWeightsError, build_segmenter


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.check_segmenter", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, choices=SEGMENTERS.names(),
                        help="dataset mode whose segmenter the file belongs to")
    parser.add_argument("--weights", required=True, nargs="+",
                        help="the released file (ade20k: the encoder file, then the decoder file)")
    args = parser.parse_args(argv)
    try:
        model = build_segmenter(args.dataset, args.weights)
    except SegmenterWeightsError as e:
        print(f"not loaded: {e}", file=sys.stderr)
        return 1
    count = sum(p.numel() for p in model.parameters())
    print(f"{type(model).__name__}: {count:,} parameters, {model.num_classes} classes")
    print(f"loaded {' and '.join(args.weights)} strictly into the {args.dataset} segmenter")
    return 0


if __name__ == "__main__":
    sys.exit(main())
