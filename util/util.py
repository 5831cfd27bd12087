"""Small image helpers: tensors -> uint8 pictures, the fixed label palettes, and atomic PNG writes.

Used by the Visualizer (util/visualizer.py) for training pages and by test.py for result pages.
"""
import contextlib
import os
import tempfile

import numpy as np
import torch
from PIL import Image

# Cityscapes' official colours for label ids 0..33 (cityscapesScripts labels.py), then license plate (id -1),
# which SPADE's 35-colour Cityscapes map puts at index 34.
CITYSCAPES_COLORS = (
    (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (111, 74, 0), (81, 0, 81), (128, 64, 128),
    (244, 35, 232), (250, 170, 160), (230, 150, 140), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (180, 165, 180), (150, 100, 100), (150, 120, 90), (153, 153, 153), (153, 153, 153), (250, 170, 30),
    (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142),
    (0, 0, 70), (0, 60, 100), (0, 0, 90), (0, 0, 110), (0, 80, 100), (0, 0, 230), (119, 11, 32), (0, 0, 142),
)

# The landscapes' label colours, one per class of data/landscapes.py CLASSES in its order: each class's hue in
# nature (sky blue, grass green, sand yellow), every two at least 48 apart in RGB, so that a painted colour
# reads back as one class.
LANDSCAPES_COLORS = (
    (110, 170, 240), (215, 225, 245), (165, 165, 210), (130, 100, 170), (160, 170, 80),  # sky cloud fog mountain hill
    (255, 255, 255), (120, 80, 80), (20, 100, 30), (80, 150, 40), (150, 220, 90),  # snow rock tree bush grass
    (245, 120, 190), (240, 215, 140), (160, 110, 50), (185, 175, 150), (90, 60, 20),  # flower sand dirt gravel mud
    (20, 60, 170), (40, 120, 220), (0, 170, 200), (50, 50, 55), (150, 40, 90),  # sea river lake road railroad
    (240, 150, 100), (200, 40, 30), (210, 190, 100), (150, 150, 0), (170, 120, 130),  # house roof wall fence bridge
    (100, 100, 120), (255, 140, 0), (250, 0, 110), (40, 20, 0), (255, 250, 200),  # building tent person cow sheep
    (170, 90, 0), (0, 0, 80), (130, 0, 200), (90, 0, 40), (230, 190, 20),  # horse bird boat car straw
)
# Datasets whose classes have colours of their own, by --dataset_mode (labelcolormap).
DATASET_COLORS = {"landscapes": LANDSCAPES_COLORS}

MAX_TILE = 8        # at most this many samples in a tiled picture
TILE_PER_ROW = 4


def mkdirs(paths):
    """Create one folder (str) or several (list of str), parents included; existing ones are fine."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    for path in paths:
        os.makedirs(path, exist_ok=True)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, on error removed.

    A crash mid-write therefore never leaves a half-written file under the final name.
    """
    folder = os.path.dirname(os.path.abspath(path))
    mkdirs(folder)
    base, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{ext}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_image(array, path):
    """Write a uint8 (H, W, 3) or (H, W) array as a PNG at `path`, creating folders, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(array, dtype=np.uint8)).save(tmp, format="PNG")


def tile_images(pictures, per_row=TILE_PER_ROW):
    """(N, H, W, 3) uint8 -> one (rows*H, per_row*W, 3) grid, row-major, empty cells black."""
    n, h, w, c = pictures.shape
    per_row = min(per_row, n)
    rows = -(-n // per_row)
    grid = np.zeros((rows * h, per_row * w, c), dtype=pictures.dtype)
    for k, picture in enumerate(pictures):
        r, q = divmod(k, per_row)
        grid[r * h:(r + 1) * h, q * w:(q + 1) * w] = picture
    return grid


def _batch(t, sample_ndim, tile):
    """Make t (B, ...) and keep the samples to show: the first one, or up to MAX_TILE when tiling."""
    t = t.detach().cpu()
    if t.dim() == sample_ndim:
        t = t.unsqueeze(0)
    if t.dim() != sample_ndim + 1:
        raise ValueError(f"expected a tensor of {sample_ndim} or {sample_ndim + 1} dims, got shape {tuple(t.shape)}")
    return t[:MAX_TILE] if tile else t[:1]


def _finish(pictures, tile):
    """(N, H, W, 3) uint8 -> (H, W, 3): the single picture, or the tile grid."""
    return tile_images(pictures) if tile else pictures[0]


def tensor2im(t, tile=False):
    """Image tensor in [-1, 1], (3, H, W) or (B, 3, H, W) -> uint8 (H, W, 3).

    A batch gives its first sample, or with tile=True a grid of its first MAX_TILE samples.
    One-channel images are repeated to grey RGB.
    """
    t = _batch(t, 3, tile).float()
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    pictures = ((t.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return _finish(pictures, tile)


def labelcolormap(n, dataset_mode=None):
    """A fixed palette of n colours, (n, 3) uint8.

    A dataset mode of DATASET_COLORS: its own colours for its classes, the PASCAL-VOC colours for the ids
    after them (dontcare, instance). Else n == 35: Cityscapes' official colours. Otherwise the PASCAL-VOC
    palette, which spreads the bits of the index over R, G, B from the most significant bit down, so index 0
    is black and neighbours differ clearly.
    """
    own = DATASET_COLORS.get(dataset_mode)
    if own is not None:
        cmap = _bit_palette(n)
        cmap[:min(n, len(own))] = np.array(own[:n], dtype=np.uint8)
        return cmap
    if n == len(CITYSCAPES_COLORS):
        return np.array(CITYSCAPES_COLORS, dtype=np.uint8)
    return _bit_palette(n)


def _bit_palette(n):
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def tensor2label(label, n_label, tile=False, dataset_mode=None):
    """Label map -> uint8 (H, W, 3) coloured with labelcolormap(n_label, dataset_mode).

    label: ids, (1, H, W) or (B, 1, H, W), integer or float holding integers; or one-hot / scores,
    (C, H, W) or (B, C, H, W) with C > 1, reduced by argmax over C. Ids outside [0, n_label) are drawn black.
    """
    ids = _batch(label, 3, tile)
    ids = ids.argmax(dim=1) if ids.shape[1] > 1 else ids[:, 0].round().long()
    ids = ids.numpy()
    palette = np.concatenate([labelcolormap(n_label, dataset_mode), np.zeros((1, 3), dtype=np.uint8)])
    ids = np.where((ids >= 0) & (ids < n_label), ids, n_label)   # the extra last colour is black
    return _finish(palette[ids], tile)
