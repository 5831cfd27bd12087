"""Published numbers of the SC-GAN paper, typed in as data, for reference rows in `python -m tools.compare`.

Source: Wang, Qi, Chen, Zhang and Jia, "Image Synthesis via Semantic Composition", ICCV 2021: Table 1 (all
four datasets), Table 8 of the supplementary material (OASIS and SC-GAN trained with OASIS's discriminator, on
Cityscapes and ADE20K) and the parameter counts quoted in §4.1 and §B.1 (the paper does not say for which
dataset's model).
The paper prints mIoU and accuracy in percent; here they are fractions, as evaluate.py writes them. "N/A" cells
are left out. The paper measured each dataset with a published segmenter (DeepLabV2 for COCO-Stuff,
UperNet101 for ADE20K, DRN-D-105 for Cityscapes) at the paper's image sizes: only a metrics.json of the
"paper" protocol on the same dataset is measured the same way.
"""
from collections import OrderedDict

SOURCE = "Wang et al., Image Synthesis via Semantic Composition, ICCV 2021"
DATASETS = ("celebamaskhq", "cityscapes", "ade20k", "coco")

# method -> parameter count (the paper's §4.1 and §B.1, in millions)
PARAMETERS_M = {"pix2pixHD": 183.4, "SPADE": 93.0, "CC-FPSE": 138.6, "OASIS": 94.0, "SC-GAN": 66.2}

# Table 1, as printed: per dataset, method -> {metric: value}; mIoU and accuracy in percent.
TABLE_1 = {
    "celebamaskhq": OrderedDict([
        ("pix2pixHD", {"fid": 54.7, "lpips": 0.529}),
        ("SPADE", {"fid": 42.2, "lpips": 0.487}),
        ("SC-GAN", {"fid": 19.2, "lpips": 0.395}),
    ]),
    "cityscapes": OrderedDict([
        ("CRN", {"miou": 52.4, "pixel_accuracy": 77.1, "fid": 104.7}),
        ("SIMS", {"miou": 47.2, "pixel_accuracy": 75.5, "fid": 49.7}),
        ("pix2pixHD", {"miou": 58.3, "pixel_accuracy": 81.4, "fid": 95.0}),
        ("SPADE", {"miou": 62.3, "pixel_accuracy": 81.9, "fid": 71.8}),
        ("CC-FPSE", {"miou": 65.6, "pixel_accuracy": 82.3, "fid": 54.3}),
        ("SC-GAN", {"miou": 66.9, "pixel_accuracy": 82.5, "fid": 49.5}),
    ]),
    "ade20k": OrderedDict([
        ("CRN", {"miou": 22.4, "pixel_accuracy": 68.8, "fid": 73.3}),
        ("pix2pixHD", {"miou": 20.3, "pixel_accuracy": 69.2, "fid": 81.8}),
        ("SPADE", {"miou": 38.5, "pixel_accuracy": 79.9, "fid": 33.9}),
        ("CC-FPSE", {"miou": 43.7, "pixel_accuracy": 82.9, "fid": 31.7}),
        ("SC-GAN", {"miou": 45.2, "pixel_accuracy": 83.8, "fid": 29.3}),
    ]),
    "coco": OrderedDict([
        ("CRN", {"miou": 23.7, "pixel_accuracy": 40.4, "fid": 70.4}),
        ("pix2pixHD", {"miou": 14.6, "pixel_accuracy": 45.7, "fid": 111.5}),
        ("SPADE", {"miou": 37.4, "pixel_accuracy": 67.9, "fid": 22.6}),
        ("CC-FPSE", {"miou": 41.6, "pixel_accuracy": 70.7, "fid": 19.2}),
        ("SC-GAN", {"miou": 42.0, "pixel_accuracy": 72.0, "fid": 18.1}),
    ]),
}

# Table 8 (supplementary §B.1): the rows Table 1 does not already hold.
TABLE_8 = {
    "cityscapes": OrderedDict([("OASIS", {"miou": 69.3, "fid": 47.7}),
                               ("SC-GAN w OASIS", {"miou": 69.9, "fid": 47.2})]),
    "ade20k": OrderedDict([("OASIS", {"miou": 48.8, "fid": 28.3}),
                           ("SC-GAN w OASIS", {"miou": 49.1, "fid": 27.6})]),
}

PERCENT = ("miou", "pixel_accuracy")


def published_results(dataset):
    """-> [{'method', 'table', 'metrics' (mIoU and accuracy as fractions), 'parameters_G' or None, 'source'}]
    for `dataset` (one of DATASETS), Table 1's rows first."""
    if dataset not in DATASETS:
        raise ValueError(f"--published {dataset}: the paper reports {', '.join(DATASETS)}")
    rows = []
    for table, rows_of in (("Table 1", TABLE_1), ("Table 8", TABLE_8)):
        for method, values in rows_of.get(dataset, {}).items():
            metrics = OrderedDict((k, round(v / 100, 6) if k in PERCENT else v) for k, v in values.items())
            base = method.split(" w ")[0] if method.endswith("w OASIS") else method
            millions = PARAMETERS_M.get(base)
            rows.append({"method": method, "table": table, "metrics": metrics,
                         "parameters": None if millions is None else int(round(millions * 1e6)),
                         "source": f"{SOURCE}, {table}"})
    return rows
