"""Export an experiment's generator for applications outside PyTorch.

    python -m tools.export --name NAME [--checkpoints_dir ./checkpoints] [--which_epoch latest] [--no_ema] \
        --to onnx --out FILE.onnx [--layout_input ids|one_hot]

writes FILE.onnx (the generator in eval mode with its spectral norms folded, batch dimension dynamic) and
FILE.onnx.json, which says what the inputs must be (label_nc, dontcare, instance edges, size, style code and
noise) and the output range; see inference/export.py and docs/inference.md. The EMA generator is exported when
the experiment has one, unless --no_ema. Needs the packages of requirements-export.txt. (Released checkpoints:
import them first with python -m tools.import_checkpoint --from scgan|spade.)
"""
import argparse
import contextlib
import io
import os
import sys

from checkpointing.storage import CheckpointError
from inference.export import LAYOUT_INPUTS
from options.preflight import folder_problem

FORMATS = ("onnx",)


def out_problem(out):
    """None if the file `out` and its sidecar can be written (its folder exists and takes a test write, or can
    be created), else one line: checked before the generator is loaded and exported, which can take minutes."""
    if os.path.isdir(out):
        return f"--out: {out} is a folder: give the file to write, e.g. {os.path.join(out, 'generator.onnx')}"
    folder = os.path.dirname(os.path.abspath(out))
    if os.path.exists(folder) and not os.path.isdir(folder):
        return f"--out: cannot write into {folder}: it is a file, not a folder"
    return folder_problem(folder, "--out")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="the experiment, checkpoints_dir/name")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--which_epoch", default="latest", help="checkpoint to export")
    parser.add_argument("--no_ema", action="store_true", help="export netG even when the experiment has an EMA one")
    parser.add_argument("--to", choices=FORMATS, required=True, help="the format to write")
    parser.add_argument("--out", required=True, help="file to write; its sidecar goes to OUT.json")
    parser.add_argument("--layout_input", choices=LAYOUT_INPUTS, default=LAYOUT_INPUTS[0],
                        help="what the graph of a label-to-image generator takes: the class ids (and instance "
                             "ids), which it reads by table lookup, or the one-hot layout, which it convolves "
                             "(docs/inference.md compares their speed in ONNX Runtime)")
    args = parser.parse_args(argv)
    problem = out_problem(args.out)
    if problem:
        sys.exit(f"error: {problem}")
    try:
        import onnxscript  # noqa: F401  (torch.onnx.export(dynamo=True) needs onnx and onnxscript)
    except ImportError:
        sys.exit("error: --to onnx needs onnx and onnxscript: pip install -r requirements-export.txt")
    from inference.export import export_onnx
    from inference.synthesizer import load_networks, read_experiment_options
    folder = os.path.join(args.checkpoints_dir, args.name)
    try:
        if not os.path.isdir(folder):
            raise CheckpointError(f"no experiment at {folder}: the folder does not exist")
        opt = read_experiment_options(folder)
        netG, _, file = load_networks(opt, folder, args.which_epoch, not args.no_ema)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    if os.path.dirname(args.out):
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):   # the exporter reports each of its steps
        export_onnx(netG, opt, args.out, layout_input=args.layout_input)
    print(f"wrote {args.out} (from {file}) and {args.out}.json")


if __name__ == "__main__":
    main()
