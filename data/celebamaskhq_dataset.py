"""CelebAMask-HQ with the 19 part masks combined into one label map per face (docs/datasets.md):

    DATAROOT/{train,test}/images/*.jpg|png
    DATAROOT/{train,test}/labels/*.png   (ids 0..18, see CLASS_NAMES)

--phase val reads test. Photos (1024 px) and labels (512 px) may differ in size; photos are brought to
the label size. A horizontal flip swaps the left/right classes (eyes, brows, ears).
"""
import os

from . import DATASETS
from .image_folder import find_files
from .pix2pix_dataset import Pix2pixDataset

CLASS_NAMES = ["background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
               "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"]


@DATASETS.register("celebamaskhq")
class CelebAMaskHQDataset(Pix2pixDataset):
    class_names = CLASS_NAMES
    flip_label_pairs = [(4, 5), (6, 7), (8, 9)]

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser = Pix2pixDataset.modify_commandline_options(parser, is_train)
        parser.set_defaults(dataroot="./datasets/CelebAMask-HQ/", preprocess_mode="resize_and_crop", load_size=512,
                            crop_size=512, display_winsize=512, label_nc=19, no_instance=True)
        return parser

    def get_paths(self, opt):
        phase = "test" if opt.phase == "val" else opt.phase
        root = os.path.join(opt.dataroot, phase)
        labels = find_files(os.path.join(root, "labels"), "*.png", "label maps", opt)
        images = find_files(os.path.join(root, "images"), ("*.jpg", "*.jpeg", "*.png"), "images", opt)
        return labels, images, []
