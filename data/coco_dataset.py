"""COCO-Stuff in SPADE's layout (docs/datasets.md):

    DATAROOT/{train,val}_label/*.png   (182 classes, 255 = dontcare)
    DATAROOT/{train,val}_img/*.jpg
    DATAROOT/{train,val}_inst/*.png    (8-bit instance ids; not needed with --no_instance)

--phase test reads val. In training, optional `train_label_portrait`, `train_img_portrait` and
`train_inst_portrait` folders are added unless --coco_no_portraits.
"""
import os

from . import DATASETS
from .image_folder import find_files
from .pix2pix_dataset import Pix2pixDataset


@DATASETS.register("coco")
class CocoDataset(Pix2pixDataset):

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser = Pix2pixDataset.modify_commandline_options(parser, is_train)
        parser.add_argument("--coco_no_portraits", action="store_true",
                            help="do not add the *_portrait folders to the training set")
        parser.set_defaults(dataroot="./datasets/coco_stuff/", preprocess_mode="resize_and_crop",
                            load_size=286 if is_train else 256, crop_size=256, display_winsize=256, label_nc=182,
                            contain_dontcare_label=True)
        return parser

    def get_paths(self, opt):
        phase = "val" if opt.phase == "test" else opt.phase
        suffixes = [""]
        if opt.isTrain and not opt.coco_no_portraits and os.path.isdir(
                os.path.join(opt.dataroot, f"{phase}_label_portrait")):
            suffixes.append("_portrait")
        labels, images, instances = [], [], []
        for suffix in suffixes:
            folder = lambda kind: os.path.join(opt.dataroot, f"{phase}_{kind}{suffix}")  # noqa: E731
            labels += find_files(folder("label"), "*.png", "label maps", opt)
            images += find_files(folder("img"), ("*.jpg", "*.jpeg", "*.png"), "images", opt)
            if not opt.no_instance:
                instances += find_files(folder("inst"), "*.png", "instance maps", opt)
        return labels, images, instances
