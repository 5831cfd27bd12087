"""The painting demo's logic, without gradio (demo.py builds the page on it; tests/test_demo.py tests it).

  painted colours (H', W', 3) --colours_to_ids--> class ids (H', W') --resize_ids--> ids at the model's size
  --DemoModel.run (through inference.Synthesizer)--> synthesized image, the generator's extra images (SC-GAN:
  the SVG's image) and its semantic vectors --vector_heatmaps--> one heat map per component of V_t.

Colours are the HTML pages' label colours (util.util.labelcolormap over the Visualizer's label_nc + 2
entries, with the experiment's dataset mode: the landscapes paint in their classes' natural hues), so a class
looks the same in the demo, on the training page and on test.py's result page.
"""
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

import data
from data.base_dataset import DatasetError, check_label_values, id_map_values, open_image
from util import util

# Semantic vectors the generator returns in its aux dict (SC-GAN: V_t for the SCCs, Vn_t for the SCNs).
VECTOR_STREAMS = {"SCC (V)": "semantic_vectors", "SCN (Vn)": "semantic_vectors_norm"}
# Value ranges of the semantic-vector activations with a fixed range; others are scaled by their min and max.
ACTIVATION_RANGE = {"softmax": (0.0, 1.0), "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
# A dark-to-light ramp for heat maps (black, purple, red, orange, pale yellow), interpolated linearly.
HEAT_STOPS = np.array([(0, 0, 4), (81, 18, 124), (183, 55, 121), (252, 137, 97), (252, 253, 191)], np.float64)
# A painted pixel further than this share of the smallest distance between two palette colours from every
# palette colour is a blend (an anti-aliased stroke edge), read from the clean pixels around it.
BLEND_TOLERANCE = 0.25
BLEND_WINDOW = 5         # a blend chooses among the classes of the clean pixels in this square around it
HEATMAP_MIN_SIDE = 96    # heat-map tiles are at least this many pixels wide
HEATMAP_GAP = 4


def class_palette(label_nc, contain_dontcare_label=False, dataset_mode=None):
    """(K, 3) uint8: the colour of each paintable class id, as the Visualizer draws labels on the HTML pages
    (it colours with label_nc + 2 entries, room for the dontcare and instance ids, and the dataset mode's own
    colours where it has them: the landscapes' natural hues). K = label_nc, plus one for the dontcare class
    (id label_nc) with --contain_dontcare_label."""
    return util.labelcolormap(label_nc + 2, dataset_mode)[:label_nc + int(contain_dontcare_label)]


def class_names(names, label_nc, contain_dontcare_label=False):
    """The dataset's class names (or 'class k' when it has none), plus 'dontcare' with that label."""
    names = list(names) if names else [f"class {k}" for k in range(label_nc)]
    if len(names) != label_nc:
        raise ValueError(f"the dataset names {len(names)} classes but the model has --label_nc {label_nc}")
    return names + (["dontcare"] if contain_dontcare_label else [])


def hex_colour(rgb):
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def ids_to_colours(ids, palette):
    """(H, W) class ids -> (H, W, 3) uint8 palette colours."""
    return palette[np.asarray(ids)]


def colours_to_ids(rgb, palette):
    """(H, W, 3) uint8 painted colours -> (H, W) int64 class ids of the nearest palette colour.

    Anti-aliased stroke edges hold blends of two colours, and a blend can lie near a third class's colour
    (the palettes space colours evenly). So only pixels within BLEND_TOLERANCE of a palette colour are read
    by colour ("clean"); a blend takes, of the classes of the clean pixels around it (BLEND_WINDOW), the one
    whose colour is nearest, and a blend with none around takes the class of the nearest clean pixel.
    Classes that share one colour read as the lowest of their ids."""
    rgb = np.asarray(rgb)[..., :3].astype(np.int64)
    ids = _exact_palette_ids(rgb, palette)           # -1 where the colour is not a palette colour
    inexact = np.nonzero(ids < 0)
    if not len(inexact[0]):
        return ids
    # distances of the other pixels to every palette colour: (M, K)
    pal = palette.astype(np.float64)
    distance = np.sqrt(((rgb[inexact][:, None, :] - pal[None]) ** 2).sum(-1))
    pairwise = np.sqrt(((pal[:, None] - pal[None]) ** 2).sum(-1))
    spacing = pairwise[pairwise > 0].min() if (pairwise > 0).any() else 1.0
    nearest = distance.argmin(-1)
    ids[inexact] = nearest
    near_enough = distance[np.arange(len(nearest)), nearest] <= BLEND_TOLERANCE * spacing
    clean = np.ones(ids.shape, bool)
    clean[inexact] = near_enough
    if not clean.any() or clean.all():
        return ids
    blend = tuple(i[~near_enough] for i in inexact)
    blend_distance = distance[~near_enough]           # (B, K)
    # by default the class of the nearest clean pixel (the distance transform of the blend mask)
    _, (rows, cols) = ndimage.distance_transform_edt(~clean, return_indices=True)
    blend_ids = ids[rows[blend], cols[blend]]
    best = np.full(len(blend_ids), np.inf)
    for k in np.unique(ids[clean]):
        around = ndimage.maximum_filter(clean & (ids == k), size=BLEND_WINDOW)[blend]
        closer = around & (blend_distance[:, k] < best)
        blend_ids[closer], best[closer] = k, blend_distance[closer, k]
    ids[blend] = blend_ids
    return ids


def _exact_palette_ids(rgb, palette):
    """(H, W, 3) int colours -> (H, W) ids of the palette entry of exactly that colour (the lowest id when
    classes share it), -1 elsewhere."""
    codes = (rgb * [65536, 256, 1]).sum(-1)
    palette_codes = (palette.astype(np.int64) * [65536, 256, 1]).sum(-1)
    order = np.argsort(palette_codes, kind="stable")
    sorted_codes = palette_codes[order]
    position = np.minimum(np.searchsorted(sorted_codes, codes), len(order) - 1)
    return np.where(sorted_codes[position] == codes, order[position], -1).astype(np.int64)


def resize_ids(ids, size):
    """(H', W') class ids -> (H, W) = size. An integer down-scaling takes the most frequent class of each
    block (so a one-pixel line of stray ids along a painted edge does not survive); other sizes sample the
    nearest pixel."""
    ids = np.asarray(ids, dtype=np.int64)
    h, w = size
    src_h, src_w = ids.shape
    if (src_h, src_w) == (h, w):
        return ids
    if src_h % h == 0 and src_w % w == 0 and src_h // h == src_w // w:
        k = src_h // h
        blocks = ids.reshape(h, k, w, k).transpose(0, 2, 1, 3).reshape(h * w, k * k)
        counts = np.zeros((h * w, int(ids.max()) + 1), dtype=np.int64)
        np.add.at(counts, (np.arange(h * w)[:, None], blocks), 1)
        return counts.argmax(-1).reshape(h, w)   # ties: the lowest id
    image = Image.fromarray(ids.astype(np.int32), mode="I").resize((w, h), Image.NEAREST)
    return np.asarray(image).astype(np.int64)


def upscale(picture, k):
    """Repeat every pixel of an (H, W, ...) array k x k times (no interpolation: ids and colours stay exact)."""
    return np.repeat(np.repeat(picture, k, axis=0), k, axis=1)


def editor_composite(background, layers, composite, background_colour):
    """The picture an image editor shows, as (H, W, 3) uint8, with the background class under every
    transparent pixel (erased, or never painted): its layers when it sent any, else its composite (a value made
    by an API client), else its background.

    The layers are read over `background_colour`, not over the background the editor sends, and before its
    composite: this page never lets a user set a background, and on a loaded machine Gradio's browser editor
    sent the first layout as its background, so the composite showed that layout where an eraser stroke had
    cleared the layer, and the erasure was lost."""
    layers = [layer for layer in layers or [] if layer is not None]
    if layers:
        picture = Image.new("RGBA", _rgba(layers[0]).shape[1::-1], (*(int(c) for c in background_colour), 255))
        for layer in layers:
            picture = Image.alpha_composite(picture, Image.fromarray(_rgba(layer)))
        composite = np.asarray(picture)
    elif composite is None:
        composite = background
    if composite is None:
        raise ValueError("the canvas is empty: paint a layout or upload a label map")
    rgba = _rgba(composite).astype(np.float64)
    alpha = rgba[..., 3:] / 255.0
    rgb = rgba[..., :3] * alpha + np.asarray(background_colour, np.float64) * (1 - alpha)
    return np.round(rgb).astype(np.uint8)


def _rgba(picture):
    picture = np.asarray(picture)
    if picture.ndim == 2:
        picture = np.stack([picture] * 3, -1)
    if picture.shape[-1] == 3:
        picture = np.concatenate([picture, np.full(picture.shape[:2] + (1,), 255, picture.dtype)], -1)
    return np.ascontiguousarray(picture.astype(np.uint8))


def read_label_map(path, palette, size, contain_dontcare_label=False):
    """A label-map file -> (H, W) = size class ids.

    A single-channel PNG (L, P, I) holds ids, as the dataset's label files do; so does an RGB file whose
    channels are equal, unless all of its pixels are palette colours. Any other RGB(A) file is a colour map,
    read by the nearest palette colour (`palette` from class_palette, with the dontcare colour when there is
    one). With --contain_dontcare_label the id 255 reads as the dontcare class (label_nc), as in training."""
    label_nc = len(palette) - int(contain_dontcare_label)
    img = open_image(path)
    rgb = np.asarray(img.convert("RGB")) if img.mode in ("RGB", "RGBA") else None
    is_palette_colours = rgb is not None and _all_palette_colours(rgb, palette)
    if rgb is not None and (is_palette_colours or not _is_grey(rgb)):
        ids = colours_to_ids(rgb, palette)
    else:
        dontcare = 255 if contain_dontcare_label else None
        ids = id_map_values(img, path)
        check_label_values(ids, path, label_nc, dontcare)
        if dontcare is not None:
            ids = np.where(ids == dontcare, label_nc, ids)
    return resize_ids(ids, size)


def _is_grey(rgb):
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all())


def _all_palette_colours(rgb, palette):
    return bool((_exact_palette_ids(rgb.astype(np.int64), palette) >= 0).all())


def heat_colours(values):
    """Values in [0, 1], any shape -> uint8 colours of that shape + (3,) on the HEAT_STOPS ramp."""
    x = np.clip(np.asarray(values, np.float64), 0.0, 1.0) * (len(HEAT_STOPS) - 1)
    low = np.minimum(np.floor(x).astype(int), len(HEAT_STOPS) - 2)
    t = (x - low)[..., None]
    return np.round(HEAT_STOPS[low] * (1 - t) + HEAT_STOPS[low + 1] * t).astype(np.uint8)


def vector_heatmaps(vectors, value_range=None, size=None):
    """vectors: (n, h, w) semantic vectors of one scale -> one (S, n * S' + gaps, 3) uint8 picture: the n
    components left to right, each a heat map (HEAT_STOPS, dark = low), upscaled without interpolation to
    at least HEATMAP_MIN_SIDE (or to `size` (H, W) first, the model's size, so every scale shows at the same
    size). value_range: (low, high) mapped to the ends of the ramp; None uses the maps' own min and max."""
    v = vectors.detach().float().cpu().numpy() if torch.is_tensor(vectors) else np.asarray(vectors, np.float64)
    n, h, w = v.shape
    low, high = value_range if value_range is not None else (float(v.min()), float(v.max()))
    scaled = (v - low) / (high - low) if high > low else np.zeros_like(v)
    if size is not None:
        k = size[0] // h
        scaled = np.stack([upscale(m, k) for m in scaled])
        h, w = scaled.shape[1:]
    k = max(1, math.ceil(HEATMAP_MIN_SIDE / w))
    tiles = [upscale(heat_colours(m), k) for m in scaled]
    gap = np.full((h * k, HEATMAP_GAP, 3), 255, np.uint8)
    row = [tiles[0]]
    for tile in tiles[1:]:
        row += [gap, tile]
    return np.concatenate(row, axis=1)


@dataclass
class Synthesis:
    """One run of the generator: uint8 pictures and the semantic vectors ({stream key: [(n, h_t, w_t)]})."""
    image: np.ndarray
    extra_images: dict = field(default_factory=dict)
    vectors: dict = field(default_factory=dict)


def check_paintable(opt):
    """Raise ValueError unless the model reads label maps (demo.py paints them)."""
    if opt.label_nc < 1:
        raise ValueError(f"demo.py paints label maps, and --model {opt.model} of '{opt.name}' reads none "
                         f"(--label_nc {opt.label_nc})")


class DemoModel:
    """The demo's side of an inference.Synthesizer (the folded generator): class ids in, the pictures the page
    shows out (the image, the generator's extra images, its semantic vectors).

    A model trained with instance maps gets the label map as its instance map (one instance per class
    region): a painted layout has no instances. A style seed fixes the random inputs of a run: the code z of
    a --use_vae model, and the noise a generator draws itself (OASIS's 3-D noise, --oasis_noise_nc)."""

    def __init__(self, synthesizer):
        check_paintable(synthesizer.opt)
        self.synthesizer, self.opt = synthesizer, synthesizer.opt
        self.size = synthesizer.size
        self.palette = class_palette(self.opt.label_nc, self.opt.contain_dontcare_label, self.opt.dataset_mode)
        self.uses_style = synthesizer.uses_style
        self.extra_image_names = tuple(synthesizer.netG.extra_images)

    def draw_style(self, seed):
        """The style code z (1, z_dim) ~ N(0, I) of `seed` (Synthesizer.random_codes); None without --use_vae."""
        if not self.opt.use_vae:
            return None
        return self.synthesizer.random_codes(1, seed)

    def layout(self, ids):
        """(H, W) class ids -> the one-hot layout (1, semantic_nc, H, W) the generator reads."""
        return self.synthesizer.layout(np.asarray(ids, np.int64))

    def run(self, ids, seed=0):
        """(H, W) class ids and a style seed -> Synthesis. The same ids and seed give the same pictures."""
        image, aux = self.synthesizer.generate(self.layout(ids), seed=seed, return_aux=True)
        extra = {name: util.tensor2im(aux[name].float().cpu()) for name in self.extra_image_names if name in aux}
        vectors = {key: [v[0].float().cpu() for v in aux[key]] for key in VECTOR_STREAMS.values() if key in aux}
        return Synthesis(util.tensor2im(image.cpu()), extra, vectors)

    def vector_picture(self, synthesis, stream_key, scale):
        """Heat maps of the components of V_scale (1-based, coarsest first) of one stream."""
        maps = synthesis.vectors[stream_key][scale - 1]
        # a generator with semantic vectors (SC-GAN) has --sv_activation among its options
        return vector_heatmaps(maps, ACTIVATION_RANGE.get(self.opt.sv_activation), self.size)


def initial_layout(opt, size):
    """The layout the page opens with: the first sample of the test phase when the dataset can be read
    (the synthetic mode always can), else all background (class 0). -> ((H, W) ids, the dataset's class
    names or None)."""
    try:
        dataset = data.DATASETS.get(opt.dataset_mode)(opt)
        names = dataset.class_names
        if len(dataset) == 0:
            return np.zeros(size, np.int64), names
        ids = dataset[0]["label"][0].numpy()
    except (DatasetError, FileNotFoundError, OSError) as e:
        print(f"the {opt.dataset_mode} test data cannot be read ({e}); the canvas starts as background")
        return np.zeros(size, np.int64), data.DATASETS.get(opt.dataset_mode).class_names
    return resize_ids(ids, size), names
