"""The dataset base class, the one error type for bad data, and SPADE's preprocess modes.

A sample's geometry is drawn once by `get_params` (crop corner, flip coin) and applied by `preprocess` to the
label, the image and the instance map alike; only the resampling differs (NEAREST for ids, BICUBIC for
photos). Preprocess modes, as in SPADE:

| mode                       | resize                                   | crop            |
|----------------------------|------------------------------------------|-----------------|
| resize_and_crop            | load_size x load_size                    | random square   |
| crop                       | none                                     | random square   |
| scale_width(_and_crop)     | width := load_size, aspect kept          | - / random      |
| scale_shortside(_and_crop) | short side := load_size, aspect kept     | - / random      |
| fixed                      | crop_size x round(crop_size/aspect_ratio)| none            |
| none                       | each side to the nearest multiple of 32  | none            |

then a horizontal flip when training without --no_flip. Every random choice (crop corner, flip coin) comes
from a generator seeded by (--seed, epoch, sample index) (`sample_rng`), so two runs with one --seed see the
same augmentation and a resumed epoch sees what the interrupted one would have. Unlike SPADE, the crop range of scale_shortside is
computed from the resized size (SPADE used the original short side), because one function, `resized_size`,
gives the size for both the crop range and the resize. And a crop larger than the resized image raises
DatasetError (SPADE padded it with zeros, which labels as class 0).
"""
import numpy as np
import torch
import torch.utils.data as data
from PIL import Image


class DatasetError(ValueError):
    """Bad data or a data layout that does not match the options; the message names the file or folder.

    DataLoader workers re-raise an exception as ``type(e)(message_with_the_worker_traceback)``; the
    constructor keeps only the original message (after the last "DatasetError: "), so the main process
    shows one clean line."""

    MARK = "DatasetError: "

    def __init__(self, message=""):
        message = str(message)
        if self.MARK in message:
            message = message.rsplit(self.MARK, 1)[1].strip()
        super().__init__(message)


class BaseDataset(data.Dataset):
    """A dataset mode. Subclasses are registered with ``@DATASETS.register(name)`` and built as ``Cls(opt)``.

    Attributes every mode has: `has_images` (False when only label maps are given), `class_names` (label_nc
    names or None) and `flip_label_pairs` (class-id pairs swapped by a horizontal flip, e.g. left/right eye).
    """

    has_images = True
    class_names = None
    flip_label_pairs = ()

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return parser

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.flip_label_pairs = list(type(self).flip_label_pairs)


# ---------------------------------------------------------------------------------------------------------
# geometry shared by label, image and instance map

def resized_size(opt, size):
    """(w, h) of an image of `size` (w, h) after the resize step of --preprocess_mode, before any crop."""
    w, h = size
    mode, load = opt.preprocess_mode, opt.load_size
    if mode == "resize_and_crop":
        return load, load
    if mode.startswith("scale_width"):
        return load, max(1, int(load * h / w))
    if mode.startswith("scale_shortside"):
        short = min(w, h)
        return max(1, int(load * w / short)), max(1, int(load * h / short))
    if mode == "fixed":
        return opt.crop_size, int(round(opt.crop_size / opt.aspect_ratio))
    if mode == "none":
        return max(32, int(round(w / 32)) * 32), max(32, int(round(h / 32)) * 32)
    return w, h  # crop


def crops(opt):
    return "crop" in opt.preprocess_mode


def flips(opt, params):
    """Whether `params` flip the sample: only when training without --no_flip."""
    return bool(opt.isTrain and not opt.no_flip and params["flip"])


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of every random choice made for sample `index` in `epoch`."""
    return np.random.default_rng([seed % 2 ** 32, epoch, index, 0x5C6A])


def get_params(opt, size, rng: np.random.Generator):
    """Random geometry for one sample whose label map has `size` (w, h): the crop corner and the flip coin,
    drawn from `rng` (see `sample_rng`)."""
    new_w, new_h = resized_size(opt, size)
    x = int(rng.integers(0, max(0, new_w - opt.crop_size) + 1))
    y = int(rng.integers(0, max(0, new_h - opt.crop_size) + 1))
    return {"crop_pos": (x, y), "flip": bool(rng.random() > 0.5)}


def check_crop_fits(opt, size, path):
    """A crop larger than the resized image would pad it with zeros (class 0); refuse instead."""
    if not crops(opt):
        return
    new_w, new_h = resized_size(opt, size)
    if min(new_w, new_h) < opt.crop_size:
        if opt.preprocess_mode == "crop":  # no resize: --load_size plays no part
            raise DatasetError(
                f"{path}: a {size[0]}x{size[1]} image is smaller than --crop_size {opt.crop_size} and "
                f"--preprocess_mode crop does not resize: lower --crop_size, or use --preprocess_mode "
                f"resize_and_crop / scale_shortside_and_crop with --load_size >= {opt.crop_size}")
        raise DatasetError(
            f"{path}: a {size[0]}x{size[1]} image becomes {new_w}x{new_h} with --preprocess_mode "
            f"{opt.preprocess_mode} --load_size {opt.load_size}, smaller than --crop_size {opt.crop_size}: "
            f"raise --load_size or lower --crop_size")


def preprocess(img, opt, params, method=Image.BICUBIC):
    """Resize, crop and flip one PIL image as --preprocess_mode says, with the geometry `params`."""
    size = resized_size(opt, img.size)
    if size != img.size:
        img = img.resize(size, method)
    if crops(opt):
        x, y = params["crop_pos"]
        img = img.crop((x, y, x + opt.crop_size, y + opt.crop_size))
    if flips(opt, params):
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


# ---------------------------------------------------------------------------------------------------------
# conversions

def image_to_tensor(img):
    """PIL image -> (3, H, W) float in [-1, 1]."""
    array = np.asarray(img.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(array.copy()).permute(2, 0, 1) / 127.5 - 1.0


def ids_to_tensor(ids):
    """(H, W) integer array -> (1, H, W) long."""
    return torch.from_numpy(np.asarray(ids, dtype=np.int64).copy()).unsqueeze(0)


def ids_to_image(ids):
    """(H, W) integer array -> 32-bit PIL image, which NEAREST resampling keeps exact."""
    return Image.fromarray(np.ascontiguousarray(ids, dtype=np.int32), mode="I")


def open_image(path):
    """Open and fully decode an image file; an unreadable or corrupt file raises DatasetError naming it."""
    try:
        img = Image.open(path)
        img.load()
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ... on bad files
        raise DatasetError(f"cannot read {path}: {type(e).__name__}: {e}") from e
    return img


def id_map_values(img, path, what="label map"):
    """The integer values of a single-channel id map (modes 1, L, P, I, I;16) as an (H, W) int64 array.
    An RGB map whose channels are equal is accepted (a grey map saved as RGB); a colour map is not."""
    if img.mode in ("1", "L", "P", "I") or img.mode.startswith("I;16"):
        return np.asarray(img).astype(np.int64)
    if img.mode in ("LA", "PA"):
        return np.asarray(img)[..., 0].astype(np.int64)
    if img.mode in ("RGB", "RGBA"):
        rgb = np.asarray(img)[..., :3]
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all():
            return rgb[..., 0].astype(np.int64)
        raise DatasetError(f"{path}: the {what} is a colour image (mode {img.mode}); it must hold one class id "
                           f"per pixel (a single-channel L, P or I PNG): convert colours to ids first")
    raise DatasetError(f"{path}: unsupported {what} mode {img.mode}; expected a single-channel integer "
                       f"image (L, P or I)")


def check_label_values(values, path, label_nc, dontcare):
    """Raise DatasetError naming `path` unless every value is a class id in [0, label_nc) or `dontcare`
    (None when the labels have no dontcare value)."""
    lo, hi = int(values.min()), int(values.max())
    if lo >= 0 and hi < label_nc:
        return
    bad = (values < 0) | (values >= label_nc)
    if dontcare is not None:
        bad &= values != dontcare
    if not bad.any():
        return
    present = np.unique(values)
    if dontcare is None and set(present.tolist()) == {0, 255}:
        raise DatasetError(
            f"{path} holds only the values 0 and 255: it looks like a binary mask. Convert 255 to 1 and use "
            f"--label_nc 2, or pass --contain_dontcare_label if 255 means 'dontcare'")
    largest = int(values[bad].max())
    smallest = int(values[bad].min())
    if largest < 0:
        raise DatasetError(f"{path} holds the negative label value {smallest}; class ids must be 0..{label_nc - 1}")
    allowed = f"0..{label_nc - 1}" + (f" or {dontcare} (dontcare)" if dontcare is not None else "")
    raise DatasetError(
        f"{path} holds the label value {largest}, out of range for --label_nc {label_nc} (allowed: {allowed}): "
        f"set --label_nc {largest + 1} if the dataset has that many classes"
        + (", or pass --contain_dontcare_label if 255 means 'dontcare'" if dontcare is None and largest == 255 else ""))
