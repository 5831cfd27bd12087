"""ADE20K (SceneParsing / ADEChallengeData2016 layout; docs/datasets.md):

    DATAROOT/images/{training,validation}/ADE_*.jpg
    DATAROOT/annotations/{training,validation}/ADE_*.png

--phase train reads training, test and val read validation. Annotation values are 0 ('other') and 1..150.
By default they are shifted as SPADE meant to (its postprocess is a no-op): 0 becomes the dontcare label
(label_nc) and k becomes k - 1. --ade20k_raw_labels keeps the raw ids 0..150 as channels 0..150, which is
how SPADE's released ade20k model was trained.
"""
import os

import numpy as np

from . import DATASETS
from .base_dataset import DatasetError
from .image_folder import find_files
from .pix2pix_dataset import Pix2pixDataset


@DATASETS.register("ade20k")
class ADE20KDataset(Pix2pixDataset):

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser = Pix2pixDataset.modify_commandline_options(parser, is_train)
        parser.add_argument("--ade20k_raw_labels", action="store_true",
                            help="keep raw ADE20K ids (0 'other' = channel 0, 150 = the dontcare channel), as "
                                 "SPADE's released model was trained; by default 0 -> dontcare, k -> k-1")
        parser.set_defaults(dataroot="./datasets/ADEChallengeData2016/", preprocess_mode="resize_and_crop",
                            load_size=286 if is_train else 256, crop_size=256, display_winsize=256, label_nc=150,
                            contain_dontcare_label=True, no_instance=True)
        return parser

    def get_paths(self, opt):
        phase = "training" if opt.phase == "train" else "validation"
        labels = find_files(os.path.join(opt.dataroot, "annotations", phase), "ADE_*.png", "label maps", opt)
        images = find_files(os.path.join(opt.dataroot, "images", phase), "ADE_*.jpg", "images", opt)
        return labels, images, []

    def label_ids(self, values, path):
        label_nc = self.opt.label_nc
        # Raw ids run 0..label_nc either way; both mappings land one of them on the dontcare channel.
        largest, smallest = int(values.max()), int(values.min())
        if largest > label_nc or smallest < 0:
            raise DatasetError(
                f"{path} holds the label value {largest if largest > label_nc else smallest}, out of range for "
                f"--label_nc {label_nc}: ADE20K annotations hold 0 ('other') and the classes 1..{label_nc}")
        if self.opt.ade20k_raw_labels:
            return values
        return np.where(values == 0, label_nc, values - 1)
