"""Cityscapes in its released layout (docs/datasets.md):

    DATAROOT/gtFine/{train,val}/CITY/*_gtFine_labelIds.png, *_gtFine_instanceIds.png (32-bit)
    DATAROOT/leftImg8bit/{train,val}/CITY/*_leftImg8bit.png

--phase test reads val. Labels and images pair on the first three `_`-separated tokens (city_seq_frame).
"""
import os

from . import DATASETS
from .image_folder import find_files
from .pix2pix_dataset import Pix2pixDataset


@DATASETS.register("cityscapes")
class CityscapesDataset(Pix2pixDataset):

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser = Pix2pixDataset.modify_commandline_options(parser, is_train)
        parser.set_defaults(dataroot="./datasets/cityscapes/", preprocess_mode="fixed", load_size=512, crop_size=512,
                            display_winsize=512, label_nc=35, aspect_ratio=2.0, batchSize=16)
        opt, _ = parser.parse_known_args([])
        if hasattr(opt, "num_upsampling_layers"):  # only generators that have it (spade, scgan)
            parser.set_defaults(num_upsampling_layers="more")
        return parser

    def get_paths(self, opt):
        phase = "val" if opt.phase == "test" else opt.phase
        label_dir = os.path.join(opt.dataroot, "gtFine", phase)
        labels = find_files(label_dir, "*_labelIds.png", "label maps", opt, recursive=True)
        instances = ([] if opt.no_instance else
                     find_files(label_dir, "*_instanceIds.png", "instance maps", opt, recursive=True))
        image_dir = os.path.join(opt.dataroot, "leftImg8bit", phase)
        images = find_files(image_dir, "*_leftImg8bit.png", "images", opt, recursive=True)
        return labels, images, instances

    def pair_key(self, path):
        return "_".join(os.path.basename(path).split("_")[:3])
