"""`--dataset_mode unaligned`: two unpaired image domains in CycleGAN's layout, for `--model unpaired`.

    --dataroot/trainA/  source-domain images       (testA/ with --phase test)
    --dataroot/trainB/  target-domain images       (testB/ with --phase test)

Each folder is listed in natural order (and cut to --max_dataset_size). An epoch is one pass over the source
images; each one is paired with a target image drawn at random during training (unless --serial_batches),
from the generator seeded by (--seed, epoch, index) that also draws both images' crops and flips, so a run is
reproducible and a resumed epoch sees the same pairs. At test time (and with --serial_batches) source i is
paired with target i mod len(B), the same pairing on every run. The draws, in order: the target index, then
the source's geometry, then the target's. Both images get the transforms of every other mode
(--preprocess_mode, crop, flip), each with its own geometry.

A sample is a dict:
    image        (3, H, W) float in [-1, 1]   the source-domain image (A)
    target       (3, H, W) float in [-1, 1]   the target-domain image (B), the reference
    path         the source image's path      (names the result on test pages)
    target_path  the target image's path
There are no label maps: the mode sets --label_nc 0 and --no_instance.
"""
import os

from PIL import Image

from . import DATASETS
from .base_dataset import (BaseDataset, DatasetError, check_crop_fits, get_params, image_to_tensor, open_image,
                           preprocess, sample_rng)
from .image_folder import IMG_EXTENSIONS, find_files

ANY_IMAGE = tuple("*" + ext for ext in IMG_EXTENSIONS)


def set_no_layout(parser):
    """The unaligned modes have no label maps: the layout the networks see has 0 channels."""
    parser.set_defaults(label_nc=0, no_instance=True, contain_dontcare_label=False)


@DATASETS.register("unaligned")
class UnalignedDataset(BaseDataset):

    @staticmethod
    def modify_commandline_options(parser, is_train):
        set_no_layout(parser)
        # CycleGAN's sizes: 286 resized, 256 random crops for training; 256 whole images at test time
        parser.set_defaults(preprocess_mode="resize_and_crop", load_size=286 if is_train else 256, crop_size=256,
                            display_winsize=256)
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        if opt.model != "unpaired":
            raise DatasetError(f"--dataset_mode {opt.dataset_mode} holds unpaired images without label maps: use it "
                               f"with --model unpaired (not --model {opt.model})")
        source_paths, target_paths = self.get_paths(opt)
        self.source_paths = source_paths[:opt.max_dataset_size]
        self.target_paths = target_paths[:opt.max_dataset_size]

    def get_paths(self, opt):
        """-> (source paths, target paths), each naturally sorted."""
        folder = os.path.join(opt.dataroot, opt.phase)
        return (find_files(folder + "A", ANY_IMAGE, "source-domain images (A)", opt),
                find_files(folder + "B", ANY_IMAGE, "target-domain images (B)", opt))

    def load_image(self, path, domain: str, index: int):
        """The image of `domain` ('A' or 'B') at `index`, as a PIL RGB image."""
        return open_image(path).convert("RGB")

    def __len__(self):
        return len(self.source_paths)

    def target_index(self, index, rng):
        """The target paired with source `index`: random in training, index mod len(B) otherwise."""
        if self.opt.isTrain and not self.opt.serial_batches:
            return int(rng.integers(len(self.target_paths)))
        return index % len(self.target_paths)

    def __getitem__(self, key):
        """key: an index, or (index, epoch) as the training sampler yields it."""
        opt = self.opt
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = sample_rng(opt.seed, epoch, index)
        j = self.target_index(index, rng)
        tensors = []
        for domain, i, path in (("A", index, self.source_paths[index]), ("B", j, self.target_paths[j])):
            img = self.load_image(path, domain, i)
            check_crop_fits(opt, img.size, path)
            params = get_params(opt, img.size, rng)
            tensors.append(image_to_tensor(preprocess(img, opt, params, Image.BICUBIC)))
        return {"image": tensors[0], "target": tensors[1], "path": self.source_paths[index],
                "target_path": self.target_paths[j]}
