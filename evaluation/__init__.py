"""Evaluation with a fixed, published protocol: `segmenters/` holds the segmentation networks that the
semantic-synthesis papers score their images with (mIoU and pixel accuracy); `protocols.py` names what
evaluate.py measures per dataset (the paper's metrics, segmenter, input sizes and label mapping, or a custom set)."""
