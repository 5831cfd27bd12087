"""Any paired folders: --label_dir, --image_dir and optionally --instance_dir.

Without --image_dir the dataset holds label maps only (has_images False): enough for test.py to synthesize
images, not for training. Without --instance_dir, --no_instance is required.
"""
from . import DATASETS
from .base_dataset import DatasetError
from .image_folder import IMG_EXTENSIONS, find_files
from .pix2pix_dataset import Pix2pixDataset

ANY_IMAGE = tuple("*" + ext for ext in IMG_EXTENSIONS)


@DATASETS.register("custom")
class CustomDataset(Pix2pixDataset):

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser = Pix2pixDataset.modify_commandline_options(parser, is_train)
        parser.add_argument("--label_dir", type=str, required=True, help="folder of the label maps")
        parser.add_argument("--image_dir", type=str, default="",
                            help="folder of the images, paired with the labels by file name (needed to train)")
        parser.add_argument("--instance_dir", type=str, default="",
                            help="folder of the instance maps; without it pass --no_instance")
        parser.set_defaults(preprocess_mode="resize_and_crop", load_size=286 if is_train else 256,
                            crop_size=256, display_winsize=256, label_nc=13, contain_dontcare_label=False)
        return parser

    def get_paths(self, opt):
        if opt.isTrain and not opt.image_dir:
            raise DatasetError("--dataset_mode custom: --image_dir is required for training (label maps alone "
                               "are enough only for test.py)")
        if not opt.no_instance and not opt.instance_dir:
            raise DatasetError("--dataset_mode custom: no --instance_dir was given; pass --no_instance, or "
                               "--instance_dir with the instance maps")
        labels = find_files(opt.label_dir, ANY_IMAGE, "label maps", opt, option="--label_dir")
        images = find_files(opt.image_dir, ANY_IMAGE, "images", opt, option="--image_dir") if opt.image_dir else []
        instances = (find_files(opt.instance_dir, ANY_IMAGE, "instance maps", opt, option="--instance_dir")
                     if opt.instance_dir and not opt.no_instance else [])
        return labels, images, instances
