"""The paired dataset every mode shares (SPADE's Pix2pixDataset).

A mode lists label paths, image paths and optional instance paths in `get_paths(opt)`. They are naturally
sorted, checked to pair by file name (`pair_key`) and then cut to --max_dataset_size (so a pairing error names
the files that do not pair). `__getitem__` loads a sample
through `load_sample` (the synthetic mode overrides it to generate instead of read), validates the label ids,
and applies one geometry (`get_params`) to label, image and instance map. The sampler hands it
(index, epoch): the geometry is drawn from a generator seeded by (--seed, epoch, index).
"""
import abc
import os

import numpy as np
import torch
from PIL import Image

from .base_dataset import (BaseDataset, DatasetError, check_crop_fits, check_label_values, flips, get_params,
                           id_map_values, ids_to_image, ids_to_tensor, image_to_tensor, open_image, preprocess,
                           sample_rng)
from .image_folder import natural_sort

DONTCARE = 255  # the value of the dontcare label in label files


def repeated_name(paths, keys):
    """The first pairing name that more than one of `paths` has -> (name, [its paths]), or None."""
    files = {}
    for path, key in zip(paths, keys):
        files.setdefault(key, []).append(path)
    return next(((key, found) for key, found in files.items() if len(found) > 1), None)


class Pix2pixDataset(BaseDataset, abc.ABC):
    """Returns dicts: label (1, H, W) long, instance (1, H, W) long or 0, image (3, H, W) float in [-1, 1]
    (zeros without images), path (the image path, or the label path without images)."""

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.add_argument("--no_pairing_check", action="store_true",
                            help="pair labels and images by sorted order without checking their file names")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        label_paths, image_paths, instance_paths = self.get_paths(opt)
        self.label_paths = natural_sort(label_paths)
        self.image_paths = natural_sort(image_paths)
        self.instance_paths = natural_sort(instance_paths)
        self.has_images = bool(self.image_paths)
        if self.has_images:
            self.check_pairs(self.image_paths, "image")
        if self.instance_paths:
            self.check_pairs(self.instance_paths, "instance map")
        n = opt.max_dataset_size
        self.label_paths, self.image_paths = self.label_paths[:n], self.image_paths[:n]
        self.instance_paths = self.instance_paths[:n]
        if not opt.no_instance and not self.instance_paths:
            raise DatasetError(f"--dataset_mode {opt.dataset_mode} found no instance maps: pass --no_instance")

    @abc.abstractmethod
    def get_paths(self, opt):
        """-> (label_paths, image_paths, instance_paths); the last two may be empty lists."""

    def pair_key(self, path):
        """The part of a file name that must agree between a label and its image."""
        return os.path.splitext(os.path.basename(path))[0]

    def check_pairs(self, other_paths, what):
        """Labels and `what` files (images, instance maps) must pair by `pair_key`, in sorted order."""
        hint = "pass --no_pairing_check to pair files by sorted order"
        if len(other_paths) != len(self.label_paths) and self.opt.no_pairing_check:
            raise DatasetError(f"{len(self.label_paths)} label maps but {len(other_paths)} {what} files "
                               f"(first label map {self.label_paths[0]}, first {what} {other_paths[0]})")
        if self.opt.no_pairing_check:
            return
        label_keys = [self.pair_key(p) for p in self.label_paths]
        other_keys = [self.pair_key(p) for p in other_paths]
        for paths, keys, kind in ((self.label_paths, label_keys, "label map"), (other_paths, other_keys, what)):
            repeated = repeated_name(paths, keys)
            if repeated:
                key, files = repeated
                raise DatasetError(f"{len(files)} {kind} files are named like '{key}': {', '.join(files[:-1])} and "
                                   f"{files[-1]}; a name pairs one label map with one {what}, so keep one of them "
                                   f"(or {hint})")
        label_set, other_set = set(label_keys), set(other_keys)
        lonely_labels = [(p, k) for p, k in zip(self.label_paths, label_keys) if k not in other_set]
        lonely_others = [(p, k) for p, k in zip(other_paths, other_keys) if k not in label_set]
        if lonely_labels and lonely_others:
            (label_path, label_key), (other_path, other_key) = lonely_labels[0], lonely_others[0]
            raise DatasetError(
                f"label map {label_path} and {what} {other_path} do not pair: no {what} is named like "
                f"'{label_key}' and no label map like '{other_key}' ({len(lonely_labels)} label maps and "
                f"{len(lonely_others)} {what} files without a partner); {hint}")
        if lonely_labels:
            label_path, label_key = lonely_labels[0]
            raise DatasetError(f"label map {label_path} has no {what} named like '{label_key}' "
                               f"({len(self.label_paths)} label maps, {len(other_paths)} {what} files)")
        if lonely_others:
            other_path, other_key = lonely_others[0]
            raise DatasetError(f"{what} {other_path} has no label map named like '{other_key}' "
                               f"({len(self.label_paths)} label maps, {len(other_paths)} {what} files)")
        # Every name is unique and has a partner; the two lists can still be sorted differently (their folders
        # or extensions sort otherwise), and samples are paired by position.
        for label_path, other_path, label_key, other_key in zip(self.label_paths, other_paths, label_keys,
                                                                other_keys):
            if label_key != other_key:
                raise DatasetError(f"label map {label_path} and {what} {other_path} do not pair: names "
                                   f"'{label_key}' and '{other_key}' differ in sorted order; {hint}")

    def __len__(self):
        return len(self.label_paths)

    # ------------------------------------------------------------------------------------------------
    def sample_paths(self, index):
        """-> (label_path, image_path or None, instance_path or None), for `path` and error messages."""
        return (self.label_paths[index], self.image_paths[index] if self.has_images else None,
                self.instance_paths[index] if self.instance_paths else None)

    def load_sample(self, index):
        """-> (label, image or None, instance or None) as PIL images."""
        label_path, image_path, instance_path = self.sample_paths(index)
        label = open_image(label_path)
        image = open_image(image_path) if image_path else None
        instance = open_image(instance_path) if instance_path and not self.opt.no_instance else None
        return label, image, instance

    def label_ids(self, values, path):
        """Raw label values (H, W) -> class ids in [0, label_nc], label_nc being dontcare; validates."""
        opt = self.opt
        dontcare = DONTCARE if opt.contain_dontcare_label else None
        check_label_values(values, path, opt.label_nc, dontcare)
        if dontcare is not None:
            values = np.where(values == DONTCARE, opt.label_nc, values)
        return values

    def __getitem__(self, key):
        """key: an index, or (index, epoch) as the training sampler yields it."""
        opt = self.opt
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        label_path, image_path, instance_path = self.sample_paths(index)
        label, image, instance = self.load_sample(index)

        ids = self.label_ids(id_map_values(label, label_path), label_path)
        check_crop_fits(opt, label.size, label_path)
        params = get_params(opt, label.size, sample_rng(opt.seed, epoch, index))
        ids = np.asarray(preprocess(ids_to_image(ids), opt, params, Image.NEAREST))
        if flips(opt, params) and self.flip_label_pairs:
            ids = swap_ids(ids, self.flip_label_pairs)
        label_tensor = ids_to_tensor(ids)

        if image is not None:
            image = match_size(image.convert("RGB"), label.size, image_path, label_path, Image.BICUBIC)
            image_tensor = image_to_tensor(preprocess(image, opt, params, Image.BICUBIC))
        else:
            image_tensor = torch.zeros(3, *label_tensor.shape[1:])

        if opt.no_instance:
            instance_tensor = 0
        else:
            values = id_map_values(instance, instance_path, "instance map")
            instance = match_size(ids_to_image(values), label.size, instance_path, label_path, Image.NEAREST)
            instance_tensor = ids_to_tensor(np.asarray(preprocess(instance, opt, params, Image.NEAREST)))

        return {"label": label_tensor, "instance": instance_tensor, "image": image_tensor,
                "path": image_path or label_path}


def swap_ids(ids, pairs):
    """Exchange the class ids of each (a, b) pair, e.g. left and right eye after a horizontal flip."""
    out = ids.copy()
    for a, b in pairs:
        out[ids == a] = b
        out[ids == b] = a
    return out


def match_size(img, size, path, label_path, method):
    """Bring an image to the label map's size (CelebAMask-HQ pairs 1024 photos with 512 labels); a different
    aspect ratio means the files do not belong together."""
    if img.size == tuple(size):
        return img
    (w, h), (lw, lh) = img.size, size
    if abs(w * lh - h * lw) > 0.02 * h * lw:
        raise DatasetError(f"{path} is {w}x{h} but its label map {label_path} is {lw}x{lh}: "
                           f"the aspect ratios differ")
    return img.resize(tuple(size), method)
