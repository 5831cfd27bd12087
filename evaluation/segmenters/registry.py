"""The registry of the papers' segmenters, keyed by dataset mode (coco, ade20k, cityscapes, celebamaskhq).

Each entry is a builder `build(weights=None, **options) -> Segmenter`; weights is a list of local files (none:
random weights, for tests). Unknown names raise with the list of valid ones (util/registry.py).
"""
from util.registry import Registry

SEGMENTERS = Registry("segmenter", "--dataset")
