"""Evaluation networks with a fixed, published protocol: `segmenters/` holds the segmentation networks that the
semantic-synthesis papers score their images with (mIoU and pixel accuracy)."""
