"""`--dataset_mode synthetic`: the bundled face-like dataset, generated on the fly (data/synthetic.py).

It needs no files and runs the whole pipeline on a CPU in minutes, so its hook also picks a small model and
a short schedule. Samples are drawn at --load_size and go through the same transforms as every other mode.
"""
from PIL import Image

from util.ranges import bounded

from . import DATASETS
from .base_dataset import BaseDataset
from .pix2pix_dataset import Pix2pixDataset

# data.synthetic (the drawing code) is imported on first use, when a sample is drawn.

# The CPU demo: a small model, no VGG loss (--lambda_vgg 10 --vgg_weights PATH turns it on), a short schedule with
# a higher learning rate and an EMA generator (what test.py uses), chosen with benchmarks/demo_sweep.sh: spade and
# scgan reach 0.76 and 0.82 of the real images' mIoU in 2,000 images. Every bundled dataset takes it, so they
# compare at one budget. Train-only names are harmless defaults at test time.
CPU_DEMO_DEFAULTS = dict(ngf=16, ndf=16, batchSize=4, lambda_vgg=0.0, niter=5, niter_decay=5, lr=0.0003,
                         ema_decay=0.995, eval_how_many=50, print_freq=40, display_freq=200, save_latest_freq=400,
                         save_epoch_freq=5)


class DrawnDataset(Pix2pixDataset):
    """A dataset whose samples are drawn on the fly from (phase, index): --num_synthetic of them, nothing on disk
    to list. Subclasses give `drawn_class_names()`, `sample_paths` and `load_sample`."""

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        self.class_names = list(self.drawn_class_names())
        self.size = min(opt.num_synthetic, opt.max_dataset_size)
        self.label_paths, self.image_paths, self.instance_paths = self.get_paths(opt)

    def get_paths(self, opt):
        return [], [], []  # nothing on disk

    def __len__(self):
        return self.size


@DATASETS.register("synthetic")
class SyntheticDataset(DrawnDataset):
    flip_label_pairs = [(4, 5)]  # left_eye, right_eye
    # the appearance rules of data/synthetic.py: one model per twin pair; the nose is shaded skin
    twin_classes = (("left_eye", "right_eye"), ("upper_lip", "lower_lip"))
    shared_appearance_classes = (("skin", "nose"),)

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser = Pix2pixDataset.modify_commandline_options(parser, is_train)
        parser.add_argument("--num_synthetic", type=bounded(int, min=1), default=200,
                            help="number of synthetic samples")
        parser.set_defaults(label_nc=9, no_instance=True, preprocess_mode="resize_and_crop", load_size=64,
                            crop_size=64, display_winsize=128)
        parser.set_defaults(**CPU_DEMO_DEFAULTS)
        return parser

    @staticmethod
    def drawn_class_names():
        from .synthetic import CLASS_NAMES
        return CLASS_NAMES

    def sample_paths(self, index):
        name = f"synthetic/{self.opt.phase}/{index:05d}.png"
        return name, name, None

    def load_sample(self, index):
        from .synthetic import render
        label, image = render(index, self.opt.seed, self.opt.load_size, self.opt.phase)
        return Image.fromarray(label, mode="L"), Image.fromarray(image, mode="RGB"), None
