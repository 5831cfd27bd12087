"""`--dataset_mode landscapes`: procedural outdoor scenes with 35 classes of COCO-Stuff, drawn on the fly.

Each sample is drawn from a numpy Generator seeded by (seed, index, phase), so it is the same on every machine
and in every loading worker, and the test phase holds other scenes than the training phase. A scene's random
choices are made in continuous image coordinates before any pixel is touched, so `--load_size 128` or `256`
draws the same scene as the default 64, only finer.

Layout, far to near (what is drawn later occludes what is drawn earlier):
  sky; clouds; a mountain range (its ridge a sum of octaves of value noise, snow above a snow line); a range
  of hills; the ground below the horizon (grass, dirt, sand, gravel or snow) with patches of other grounds,
  mud and flower beds; the ground-plane bands, each widening towards the viewer: river, lake, road, railroad,
  sea with its beach; fog over the horizon; then every object in order of its base row, far first: trees (and
  rows of them), bushes, rocks, houses (wall body and roof), walls, fences, bridges, towers, tents, hay
  bales, people, cows, sheep, horses, boats on the water, cars on the road, birds in the sky. An object
  standing on the ground at row y is (y - horizon) / (1 - horizon) of its size at the bottom row, the
  perspective of a flat ground seen from a fixed height.

Instance map (int32): stuff regions hold their class id; object k of class c holds c * 1000 + k (Cityscapes'
convention), so `instance_class` recovers the class of every pixel from the instance map alone.

Appearance: every class has a procedural texture of its own (a pattern of value noise, stripes, bricks or
ripples, two colours and pixel noise), with the image-to-image variation drawn around the class's colour.
The ground truth the semantic vectors should find, APPEARANCE_GROUPS:
  - water: sea, river and lake are painted by ONE appearance model per image;
  - greens: grass, bush and tree are three greens that move together (one random shift per image, added to
    each class's own green, plus a little of their own), with different textures;
  - stone: rock and mountain likewise (the mountain seen through haze).
Every other class draws its colours independently of the others.
"""
import zlib

import numpy as np
from PIL import Image

from util.ranges import bounded
from util.util import labelcolormap

from . import DATASETS
from .pix2pix_dataset import Pix2pixDataset
from .synthetic_dataset import CPU_DEMO_DEFAULTS, DrawnDataset

# (name, COCO-Stuff id as SPADE's --dataset_mode coco reads it, COCO-Stuff name). SPADE's label PNGs are
# COCO-Stuff's stuffthingmaps, whose values are the ids of COCO-Stuff's labels.txt minus one (0 = person,
# 181 = wood, 255 = unlabeled). The compact id of a class is its position here.
CLASSES = (
    ("sky", 156, "sky-other"), ("cloud", 105, "clouds"), ("fog", 119, "fog"), ("mountain", 134, "mountain"),
    ("hill", 126, "hill"), ("snow", 158, "snow"), ("rock", 149, "rock"), ("tree", 168, "tree"),
    ("bush", 96, "bush"), ("grass", 123, "grass"), ("flower", 118, "flower"), ("sand", 153, "sand"),
    ("dirt", 110, "dirt"), ("gravel", 124, "gravel"), ("mud", 135, "mud"), ("sea", 154, "sea"),
    ("river", 147, "river"), ("lake", 177, "water-other"), ("road", 148, "road"), ("railroad", 146, "railroad"),
    ("house", 127, "house"), ("roof", 150, "roof"), ("wall", 174, "wall-stone"), ("fence", 112, "fence"),
    ("bridge", 94, "bridge"), ("building", 95, "building-other"), ("tent", 165, "tent"), ("person", 0, "person"),
    ("cow", 20, "cow"), ("sheep", 19, "sheep"), ("horse", 18, "horse"), ("bird", 15, "bird"), ("boat", 8, "boat"),
    ("car", 2, "car"), ("straw", 162, "straw"),
)
CLASS_NAMES = tuple(name for name, _, _ in CLASSES)
NUM_CLASSES = len(CLASSES)
(SKY, CLOUD, FOG, MOUNTAIN, HILL, SNOW, ROCK, TREE, BUSH, GRASS, FLOWER, SAND, DIRT, GRAVEL, MUD, SEA, RIVER, LAKE,
 ROAD, RAILROAD, HOUSE, ROOF, WALL, FENCE, BRIDGE, BUILDING, TENT, PERSON, COW, SHEEP, HORSE, BIRD, BOAT, CAR,
 STRAW) = range(NUM_CLASSES)
COCO_STUFF_IDS = np.array([coco_id for _, coco_id, _ in CLASSES], np.uint8)

# The appearance correlations of the dataset (see the module docstring): "shared" classes are painted by one
# model per image, "related" ones by models that move together.
APPEARANCE_GROUPS = {
    "water": ("shared", ("sea", "river", "lake")),
    "greens": ("related", ("grass", "bush", "tree")),
    "stone": ("related", ("rock", "mountain")),
}

INSTANCE_BASE = 1000  # object k of class c has the instance id c * INSTANCE_BASE + k


def to_coco_stuff(label):
    """Landscapes class ids (any shape, 0..34) -> COCO-Stuff ids as SPADE's coco mode reads them (uint8)."""
    label = np.asarray(label)
    if label.size and (label.min() < 0 or label.max() >= NUM_CLASSES):
        raise ValueError(f"landscapes label ids are 0..{NUM_CLASSES - 1}; got values {label.min()}..{label.max()}")
    return COCO_STUFF_IDS[label]


def instance_class(instance):
    """Instance ids -> the class id of each pixel (stuff holds its class id, objects c * 1000 + k)."""
    instance = np.asarray(instance)
    return np.where(instance >= INSTANCE_BASE, instance // INSTANCE_BASE, instance)


def sample_rng(index, seed=0, phase="train"):
    """The Generator of one scene: a function of (seed, index, phase) only."""
    return np.random.default_rng([seed % 2 ** 32, index, zlib.crc32(f"landscapes/{phase}".encode())])


# ---------------------------------------------------------------------------------------------------------
# value noise, resolution-free: random values on a grid of knots over [0, 1], smoothstep-interpolated

def _knots(points, cells):
    """(n,) points in [0, 1] -> the knot left of each point (n,) and the smoothstep weight of the one right of it."""
    g = np.clip(np.asarray(points, np.float32), 0.0, 1.0) * cells
    i = np.minimum(g.astype(np.int64), cells - 1)
    f = g - i
    return i, f * f * (3.0 - 2.0 * f)


class Noise1D:
    """A sum of octaves of 1-D value noise (`cells` knots per octave, amplitude halving), in about [-1, 1]."""

    def __init__(self, rng, cells):
        self.grids = [(c, rng.uniform(-1.0, 1.0, c + 1).astype(np.float32)) for c in cells]
        self.norm = sum(0.5 ** o for o in range(len(cells)))

    def __call__(self, x):
        x = np.atleast_1d(np.asarray(x, np.float32))
        total = np.zeros(x.shape, np.float32)
        for o, (c, g) in enumerate(self.grids):
            i, f = _knots(x, c)
            total += 0.5 ** o * (g[i] * (1 - f) + g[i + 1] * f)
        return total / self.norm


class Noise2D:
    """A sum of octaves of 2-D value noise, `cells` = [(rows, columns) of each octave], in about [-1, 1].
    field(xs, ys) -> (len(ys), len(xs)), interpolating the rows of the grid first, then the columns (no BLAS:
    its threads cost more than they save on these sizes)."""

    def __init__(self, rng, cells):
        self.grids = [(cy, cx, rng.uniform(-1.0, 1.0, (cy + 1, cx + 1)).astype(np.float32)) for cy, cx in cells]
        self.norm = sum(0.5 ** o for o in range(len(cells)))

    def field(self, xs, ys):
        total = np.zeros((len(ys), len(xs)), np.float32)
        for o, (cy, cx, grid) in enumerate(self.grids):
            iy, fy = _knots(ys, cy)
            ix, fx = _knots(xs, cx)
            rows = grid[iy] * (1 - fy)[:, None] + grid[iy + 1] * fy[:, None]       # (len(ys), cx + 1)
            total += 0.5 ** o * (rows[:, ix] * (1 - fx) + rows[:, ix + 1] * fx)
        return total / self.norm


# ---------------------------------------------------------------------------------------------------------
# the canvas: label and instance maps filled far to near

class Canvas:
    def __init__(self, size):
        self.size = size
        self.coords = (np.arange(size, dtype=np.float32) + 0.5) / size   # pixel centres in [0, 1]
        self.X, self.Y = np.meshgrid(self.coords, self.coords)
        self.label = np.zeros((size, size), np.uint8)                    # sky everywhere to start
        self.instance = np.zeros((size, size), np.int32)
        self.instances = np.zeros(NUM_CLASSES, np.int64)                 # objects drawn so far, per class

    def fill(self, mask, cls):
        """A stuff region: its pixels take the class and the class's instance id (the class id)."""
        self.label[mask] = cls
        self.instance[mask] = cls

    def add_region(self, mask, cls):
        """An object drawn as a region (a cloud, a lake): its pixels take the class and one new instance id."""
        if mask.any():
            self.label[mask], self.instance[mask] = cls, self.new_instance(cls)

    def new_instance(self, cls):
        k = self.instances[cls]
        self.instances[cls] += 1
        return cls * INSTANCE_BASE + int(k)

    def box(self, x0, x1, y0, y1):
        """Pixel slices of the box [x0, x1] x [y0, y1] (image units), clipped; None when outside."""
        s = self.size
        j0, j1 = max(0, int(np.floor(x0 * s))), min(s, int(np.ceil(x1 * s)))
        i0, i1 = max(0, int(np.floor(y0 * s))), min(s, int(np.ceil(y1 * s)))
        if j0 >= j1 or i0 >= i1:
            return None
        return slice(i0, i1), slice(j0, j1)

    def put_object(self, obj):
        """Draw one object (see `Thing`): each part takes its class and one new instance id per part class."""
        s = max(obj.scale, MIN_PIXELS / self.size)          # far objects stay visible at small sizes
        su = s if obj.scale_u is None else obj.scale_u
        half_w, up, down = obj.extent
        where = self.box(obj.x - half_w * su, obj.x + half_w * su, obj.y - up * s, obj.y + down * s)
        if where is None:
            return
        u = (self.X[where] - obj.x) / su   # object frame: u to the right, v up, in units of the object's scale
        v = (obj.y - self.Y[where]) / s
        for cls, mask in SHAPES[obj.kind](u, v, obj.params):
            if mask.any():
                self.label[where][mask] = cls
                self.instance[where][mask] = self.new_instance(cls)


class Thing:
    """An object standing at (x, y) (its base, image units) with height scale `scale`. extent: (half width,
    height above the base, depth below it) in units of the scale, the box its shape fits in. A band (wall,
    fence, bridge) has scale_u = 1: its u is in image units, so only its height follows the scale."""

    def __init__(self, kind, x, y, scale, extent, scale_u=None, **params):
        self.kind, self.x, self.y, self.scale, self.extent = kind, x, y, scale, extent
        self.scale_u, self.params = scale_u, params


# ---------------------------------------------------------------------------------------------------------
# object shapes: (u, v) in the object's frame -> [(class, mask)], drawn in list order

def _ellipse(u, v, cu, cv, ru, rv):
    return ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 < 1.0


def _lumpy(u, v, cu, cv, ru, rv, bumps):
    """An ellipse whose radius varies with the angle: bumps = [(amplitude, frequency, phase)]."""
    du, dv = (u - cu) / ru, (v - cv) / rv
    angle = np.arctan2(dv, du)
    radius = 1.0 + sum(a * np.sin(f * angle + p) for a, f, p in bumps)
    return du * du + dv * dv < radius * radius


def tree_shape(u, v, p):
    trunk = (np.abs(u) < 0.06) & (v >= 0) & (v < 0.4)
    if p["conifer"]:
        crown = (v >= 0.15) & (v <= 1.0) & (np.abs(u) < 0.3 * (1.0 - (v - 0.15) / 0.85))
    else:
        crown = _lumpy(u, v, 0.0, 0.62, 0.36, 0.38, p["bumps"])
    return [(TREE, trunk | crown)]


def bush_shape(u, v, p):
    return [(BUSH, (v >= 0) & _lumpy(u, v, 0.0, 0.0, 0.6, 0.45, p["bumps"]))]


def rock_shape(u, v, p):
    return [(ROCK, (v >= -0.02) & _lumpy(u, v, 0.0, 0.05, 0.5, 0.5, p["bumps"]))]


def house_shape(u, v, p):
    w, body, roof = p["width"], 0.6, p["roof"]
    walls = (np.abs(u) < w / 2) & (v >= 0) & (v < body)
    top = (v >= body) & (v < body + roof * (1.0 - np.abs(u) / (w / 2 + 0.08)))
    return [(HOUSE, walls), (ROOF, top)]


def building_shape(u, v, p):
    tower = (np.abs(u) < 0.15) & (v >= 0) & (v < 1.0)
    spire = (v >= 1.0) & (v < 1.35) & (np.abs(u) < 0.15 * (1.0 - (v - 1.0) / 0.35))
    return [(BUILDING, tower | spire)]


def tent_shape(u, v, p):
    return [(TENT, (v >= 0) & (np.abs(u) < 0.6 * (1.0 - v / 0.75)))]


def straw_shape(u, v, p):
    return [(STRAW, (np.abs(u) / 0.5) ** 4 + (np.abs(v - 0.25) / 0.25) ** 4 < 1.0)]


def person_shape(u, v, p):
    legs = (np.abs(u) < 0.09) & (v >= 0) & (v < 0.45)
    body = _ellipse(u, v, 0.0, 0.62, 0.15, 0.2)
    head = _ellipse(u, v, 0.0, 0.9, 0.09, 0.09)
    return [(PERSON, legs | body | head)]


ANIMALS = {  # body width and height, leg length, head radius, in units of the animal's scale
    COW: (1.0, 0.42, 0.3, 0.15), SHEEP: (0.8, 0.5, 0.2, 0.13), HORSE: (0.95, 0.38, 0.45, 0.13)}


def animal_shape(u, v, p):
    cls = p["cls"]
    bw, bh, leg, head = ANIMALS[cls]
    u = u * p["facing"]
    body = _ellipse(u, v, 0.0, leg + bh / 2, bw / 2, bh / 2)
    legs = (v >= 0) & (v < leg + bh / 4) & (
        (np.abs(np.abs(u) - 0.32 * bw) < 0.05) | (np.abs(np.abs(u) - 0.18 * bw) < 0.05))
    head_mask = _ellipse(u, v, bw / 2 + 0.6 * head, leg + 0.95 * bh, 1.2 * head, head)
    return [(cls, body | legs | head_mask)]


def boat_shape(u, v, p):
    hull = (v >= 0) & (v < 0.25) & (np.abs(u) < 0.45 + 0.8 * v)
    parts = hull
    if p["sail"]:
        parts = parts | ((v >= 0.25) & (v < 1.1) & (u >= 0.0) & (u < 0.5 * (1.0 - (v - 0.25) / 0.85)))
    return [(BOAT, parts)]


def car_shape(u, v, p):
    body = (np.abs(u) < 0.9) & (v >= 0.1) & (v < 0.4)
    cabin = (v >= 0.4) & (v < 0.7) & (np.abs(u) < 0.55 - (v - 0.4) * 0.6)
    wheels = (np.abs(u) - 0.55) ** 2 + (v - 0.13) ** 2 < 0.13 ** 2
    return [(CAR, body | cabin | wheels)]


def bird_shape(u, v, p):
    return [(BIRD, (np.abs(u) < 0.5) & (np.abs(v - 0.6 * np.abs(u)) < 0.15))]


def band_shape(u, v, p):
    """A wall or a fence (u in image units): a band of height 1 over |u| < half; a fence has a picket top."""
    inside = (np.abs(u) < p["half"]) & (v >= 0)
    if p["cls"] == FENCE:
        pickets = np.mod(u + p["half"], p["period"]) < 0.6 * p["period"]
        return [(FENCE, inside & (v < np.where(pickets, 1.0, 0.75)))]
    return [(WALL, inside & (v < 1.0))]


def bridge_shape(u, v, p):
    """A deck of height 1 over |u| < half (u in image units) with an arch cut out of its lower middle."""
    deck = (np.abs(u) < p["half"]) & (v >= 0) & (v < 1.0)
    arch = (u / (0.75 * p["half"])) ** 2 + (v / 0.7) ** 2 < 1.0
    return [(BRIDGE, deck & ~arch)]


SHAPES = {"tree": tree_shape, "bush": bush_shape, "rock": rock_shape, "house": house_shape,
          "building": building_shape, "tent": tent_shape, "straw": straw_shape, "person": person_shape,
          "animal": animal_shape, "boat": boat_shape, "car": car_shape, "bird": bird_shape, "band": band_shape,
          "bridge": bridge_shape}


# ---------------------------------------------------------------------------------------------------------
# the scene

MIN_PIXELS = 2.0   # an object is at least this many pixels tall, so far ones stay visible at 64x64


class Scene:
    """Every random choice of one landscape, in image units (x to the right, y down, both in [0, 1]), drawn from
    the Generator `r` in a fixed order."""

    def __init__(self, r):
        self.h = h = r.uniform(0.36, 0.56)                    # the horizon's row
        self.winter = r.random() < 0.12
        self.clouds = [self.cloud(r) for _ in range(r.choice(6, p=[0.2, 0.25, 0.2, 0.15, 0.12, 0.08]))]
        self.mountains = None
        if r.random() < (0.9 if self.winter else 0.68):
            self.mountains = dict(ridge=Noise1D(r, (3, 6, 12, 24, 48)), height=r.uniform(0.12, 0.35),
                                  snow=r.uniform(0.5, 0.75) if (self.winter or r.random() < 0.4) else None,
                                  snow_edge=Noise1D(r, (16,)))
        self.hills = dict(ridge=Noise1D(r, (2, 5)), height=r.uniform(0.05, 0.16)) if r.random() < 0.6 else None
        grounds = (SNOW,) if self.winter else (GRASS,) * 6 + (DIRT, DIRT, SAND, GRAVEL)
        self.ground = grounds[r.integers(len(grounds))]
        self.patch_noise = Noise2D(r, [(4, 4), (8, 8)])
        self.patches = [self.patch(r, cls) for cls in self.patch_classes(r)]
        self.river = self.band(r, width=(0.08, 0.2), sway=0.8) if r.random() < 0.25 else None
        self.road = self.band(r, width=(0.1, 0.22), sway=0.5) if r.random() < 0.35 else None
        self.railroad = self.band(r, width=(0.05, 0.08), sway=0.3) if r.random() < 0.05 else None
        self.sea = None
        if r.random() < 0.3:
            self.sea = dict(shore=Noise1D(r, (3, 7)), depth=r.uniform(0.04, 0.22),
                            beach=r.uniform(0.02, 0.08) if r.random() < 0.7 else 0.0, beach_edge=Noise1D(r, (5,)))
        self.lakes = [self.lake(r) for _ in range(int(r.random() < 0.22) + int(r.random() < 0.04))]
        self.fog = dict(up=r.uniform(0.03, 0.1), down=r.uniform(0.02, 0.08), edge=Noise1D(r, (4, 9))) \
            if r.random() < 0.06 else None
        self.things = self.place_things(r)

    # -- stuff
    @staticmethod
    def cloud(r):
        x, y, w = r.uniform(-0.1, 1.1), r.uniform(0.04, 0.3), r.uniform(0.08, 0.3)
        return [(x + r.uniform(-0.5, 0.5) * w, y + r.uniform(-0.08, 0.08) * w, w * r.uniform(0.3, 0.6),
                 w * r.uniform(0.12, 0.25)) for _ in range(r.integers(2, 6))]

    def patch_classes(self, r):
        options = [c for c in (DIRT, GRAVEL, SAND, GRASS) if c != self.ground] if not self.winter else [DIRT, ROCK]
        classes = [options[r.integers(len(options))] for _ in range(r.choice(4, p=[0.35, 0.35, 0.2, 0.1]))]
        if r.random() < 0.07:
            classes.append(MUD)
        if self.ground == GRASS and r.random() < 0.35:
            classes += [FLOWER] * int(r.integers(1, 4))
        return classes

    def patch(self, r, cls):
        t = r.uniform(0.08, 1.0)                              # depth: 0 at the horizon, 1 at the bottom row
        y = self.h + t * (1 - self.h)
        w = (r.uniform(0.15, 0.5) if cls != FLOWER else r.uniform(0.06, 0.18)) * (0.3 + t)
        return dict(cls=cls, x=r.uniform(0.0, 1.0), y=y, rx=w, ry=w * r.uniform(0.2, 0.4) * (0.5 + t))

    @staticmethod
    def band(r, width, sway):
        """A road or river on the ground: its centre x(y) and half width, both growing with y - horizon."""
        return dict(x=r.uniform(0.25, 0.75), width=r.uniform(*width), sway=r.uniform(-sway, sway),
                    drift=r.uniform(-0.6, 0.6), freq=r.uniform(0.15, 0.5), phase=r.uniform(0, 2 * np.pi))

    def band_centre(self, band, y):
        d = np.maximum(y - self.h, 0.0)
        return band["x"] + d * (band["drift"] + band["sway"] * np.sin(band["freq"] / (d + 0.04) + band["phase"]))

    def in_band(self, band, x, y):
        d = y - self.h
        return (d > 0) & (np.abs(x - self.band_centre(band, y)) < band["width"] * d + 0.004)

    def lake(self, r):
        t = r.uniform(0.1, 0.55)
        rx = r.uniform(0.15, 0.4) * (0.2 + t)
        return dict(x=r.uniform(0.1, 0.9), y=self.h + t * (1 - self.h), rx=rx, ry=rx * r.uniform(0.15, 0.3),
                    bumps=[(r.uniform(0, 0.12), f, r.uniform(0, 2 * np.pi)) for f in (2, 3, 5)])

    def in_lake(self, lake, x, y):
        return _lumpy(x, -y, lake["x"], -lake["y"], lake["rx"], lake["ry"], lake["bumps"])

    def shore(self, x):
        return self.h + self.sea["depth"] * (0.45 + 0.55 * (0.5 + 0.5 * self.sea["shore"](x)))

    def on_water(self, x, y):
        wet = any(bool(self.in_lake(lake, x, y)) for lake in self.lakes)
        wet = wet or (self.river is not None and bool(self.in_band(self.river, x, y)))
        return wet or (self.sea is not None and y < float(self.shore(x)[0]))

    def on_land(self, x, y):
        """Free ground at (x, y): no water, road or railroad there."""
        paved = any(b is not None and bool(self.in_band(b, x, y)) for b in (self.road, self.railroad))
        beach = self.sea is not None and y < float(self.shore(x)[0]) + self.sea["beach"]
        return not (paved or beach or self.on_water(x, y))

    # -- objects
    def at_depth(self, r, t_range=(0.03, 1.0), power=1.6):
        """A base row on the ground (more far than near) and its perspective scale t in (0, 1]."""
        t = t_range[0] + (t_range[1] - t_range[0]) * r.random() ** power
        return self.h + t * (1 - self.h), t

    def ground_spot(self, r, water=False, tries=12, t_range=(0.03, 1.0)):
        for _ in range(tries):
            y, t = self.at_depth(r, t_range)
            x = r.uniform(0.0, 1.0)
            if (self.on_water(x, y) if water else self.on_land(x, y)):
                return x, y, t
        return None

    def place_things(self, r):
        things = []

        def add(kind, size, extent, water=False, t_range=(0.03, 1.0), **params):
            spot = self.ground_spot(r, water, t_range=t_range)
            if spot is not None:
                x, y, t = spot
                things.append(Thing(kind, x, y, size * t, extent, **params))

        def bumps(n=3):
            return [(r.uniform(0.03, 0.12), int(f), r.uniform(0, 2 * np.pi)) for f in r.integers(3, 9, n)]

        conifer_share = 0.9 if self.winter else 0.35
        if r.random() < 0.8:
            for _ in range(r.integers(1, 8)):
                add("tree", r.uniform(0.5, 0.9), (0.45, 1.05, 0.02), conifer=r.random() < conifer_share,
                    bumps=bumps())
        if r.random() < 0.2:   # a row of trees at one depth
            t0 = r.uniform(0.05, 0.35)
            for _ in range(r.integers(6, 15)):
                add("tree", r.uniform(0.45, 0.7), (0.45, 1.05, 0.02), t_range=(t0, t0 + 0.03),
                    conifer=r.random() < conifer_share, bumps=bumps())
        for _ in range(r.integers(1, 6) if r.random() < 0.6 else 0):
            add("bush", r.uniform(0.15, 0.3), (0.75, 0.6, 0.02), bumps=bumps())
        for _ in range(r.integers(1, 5) if r.random() < (0.6 if self.mountains else 0.35) else 0):
            add("rock", r.uniform(0.12, 0.3), (0.7, 0.75, 0.05), bumps=bumps(2))
        for _ in range(r.integers(1, 4) if r.random() < 0.3 else 0):
            add("house", r.uniform(0.35, 0.6), (0.9, 1.15, 0.02), width=r.uniform(0.9, 1.6),
                roof=r.uniform(0.3, 0.5))
        for cls, chance in ((WALL, 0.1), (FENCE, 0.18)):
            if r.random() < chance:
                y, t = self.at_depth(r, (0.15, 1.0), power=1.0)
                height = (0.08 if cls == WALL else 0.1) * t
                x0, x1 = sorted(r.uniform(-0.1, 1.1, 2))
                half = max(x1 - x0, 0.3) / 2
                things.append(Thing("band", x0 + half, y, height, (half, 1.05, 0.0), scale_u=1.0, cls=cls,
                                    half=half, period=0.5 * height))
        if self.river is not None and r.random() < 0.5:
            y, t = self.at_depth(r, (0.1, 0.7), power=1.0)
            half = (self.river["width"] * (y - self.h) + 0.004) * r.uniform(1.4, 2.0)
            things.append(Thing("bridge", float(self.band_centre(self.river, y)), y,
                                r.uniform(0.05, 0.09) * t, (half, 1.05, 0.0), scale_u=1.0, half=half))
        if r.random() < 0.05:
            add("building", r.uniform(0.8, 1.4), (0.2, 1.4, 0.02), t_range=(0.03, 0.5))
        for kind, cls, chance, count, size, extent in (
                ("tent", TENT, 0.05, (1, 3), (0.15, 0.25), (0.65, 0.8, 0.02)),
                ("straw", STRAW, 0.06, (1, 6), (0.1, 0.16), (0.55, 0.55, 0.02)),
                ("person", PERSON, 0.08, (1, 4), (0.25, 0.35), (0.2, 1.0, 0.02)),
                ("animal", COW, 0.12, (1, 5), (0.2, 0.26), (0.9, 1.0, 0.02)),
                ("animal", SHEEP, 0.07, (2, 7), (0.13, 0.18), (0.9, 1.0, 0.02)),
                ("animal", HORSE, 0.06, (1, 3), (0.24, 0.3), (0.9, 1.05, 0.02))):
            if r.random() < chance:
                for _ in range(r.integers(*count)):
                    add(kind, r.uniform(*size), extent, cls=cls, facing=r.choice((-1.0, 1.0)))
        if (self.sea is not None or self.lakes or self.river is not None) and r.random() < 0.5:
            for _ in range(r.integers(1, 4)):
                add("boat", r.uniform(0.12, 0.2), (1.0, 1.15, 0.02), water=True, sail=r.random() < 0.5)
        if self.road is not None and r.random() < 0.4:
            for _ in range(r.integers(1, 3)):
                y, t = self.at_depth(r, (0.05, 0.9))
                x = float(self.band_centre(self.road, y)) + r.uniform(-0.5, 0.5) * self.road["width"] * (y - self.h)
                things.append(Thing("car", x, y, r.uniform(0.1, 0.14) * t, (0.95, 0.75, 0.02)))
        things.sort(key=lambda thing: thing.y)               # far first: near objects occlude them
        if r.random() < 0.1:   # birds, first: in the sky, in front of the mountains, behind near trees
            for _ in range(r.integers(1, 6)):
                things.insert(0, Thing("bird", r.uniform(0.05, 0.95), r.uniform(0.05, self.h - 0.05),
                                       r.uniform(0.015, 0.035), (0.55, 0.8, 0.2)))
        return things

    # -- drawing
    def lay_out(self, canvas):
        X, Y, h, xs = canvas.X, canvas.Y, self.h, canvas.coords
        for ellipses in self.clouds:
            mask = np.zeros_like(X, bool)
            for cx, cy, rx, ry in ellipses:
                mask |= _ellipse(X, Y, cx, cy, rx, ry)
            canvas.add_region(mask & (Y < h), CLOUD)
        if self.mountains is not None:
            m = self.mountains
            # peaks sharper than valleys: the noise in [0, 1], raised to a power
            ridge = h - m["height"] * (0.1 + 0.9 * np.clip(0.5 + 0.7 * m["ridge"](xs), 0, 1) ** 1.6)
            mountain = Y >= ridge[None, :]
            canvas.fill(mountain, MOUNTAIN)
            if m["snow"] is not None:
                line = h - m["height"] * (m["snow"] + 0.08 * m["snow_edge"](xs))
                canvas.fill(mountain & (Y < line[None, :]), SNOW)
        if self.hills is not None:
            ridge = h + 0.005 - self.hills["height"] * (0.3 + 0.7 * (0.5 + 0.5 * self.hills["ridge"](xs)))
            canvas.fill(Y >= ridge[None, :], HILL)
        ground = Y >= h
        canvas.fill(ground, self.ground)
        edge = self.patch_noise.field(xs, xs)
        for p in self.patches:
            canvas.fill(ground & (((X - p["x"]) / p["rx"]) ** 2 + ((Y - p["y"]) / p["ry"]) ** 2 + 0.5 * edge < 1),
                        p["cls"])
        if self.river is not None:
            canvas.fill(self.in_band(self.river, X, Y), RIVER)
        for lake in self.lakes:
            canvas.add_region(self.in_lake(lake, X, Y) & ground, LAKE)
        for band, cls in ((self.road, ROAD), (self.railroad, RAILROAD)):
            if band is not None:
                mask = self.in_band(band, X, Y)
                if self.river is not None and cls == ROAD:    # where the road crosses the river: a bridge
                    crossing = mask & (canvas.label == RIVER)
                    mask &= ~crossing
                    canvas.add_region(crossing, BRIDGE)
                canvas.fill(mask, cls)
        if self.sea is not None:
            shore = self.shore(xs)[None, :]
            canvas.fill(ground & (Y < shore), SEA)
            beach = shore + self.sea["beach"] * (0.5 + 0.5 * self.sea["beach_edge"](xs))[None, :]
            canvas.fill(ground & (Y >= shore) & (Y < beach), SAND)
        if self.fog is not None:
            f = self.fog
            wobble = 1.0 + 0.4 * f["edge"](xs)[None, :]
            canvas.fill((Y > h - f["up"] * wobble) & (Y < h + f["down"] * wobble), FOG)
        for thing in self.things:
            canvas.put_object(thing)


# ---------------------------------------------------------------------------------------------------------
# appearance: per class a pattern t in [0, 1] between two colours, plus pixel noise

# (centre RGB, standard deviation of the per-image colour, pattern, contrast, pixel noise); the related groups
# have 0 here: their per-image colour is GROUP_SHIFT and OWN_SHIFT below
LOOKS = {
    SKY: ((95, 150, 215), 14, "sky", 0.0, 2), CLOUD: ((228, 232, 238), 8, "coarse", 0.3, 3),
    FOG: ((200, 202, 206), 6, "coarse", 0.08, 2), MOUNTAIN: ((118, 112, 118), 0, "mid", 0.25, 3),
    HILL: ((148, 140, 88), 12, "coarse", 0.25, 4), SNOW: ((240, 244, 250), 5, "coarse", 0.12, 3),
    ROCK: ((120, 108, 98), 0, "fine", 0.45, 6), TREE: ((42, 92, 40), 0, "fine", 0.55, 6),
    BUSH: ((72, 122, 46), 0, "mid", 0.45, 6), GRASS: ((108, 162, 62), 0, "streaks", 0.35, 5),
    FLOWER: ((220, 70, 90), 25, "fine", 0.5, 8), SAND: ((222, 200, 155), 10, "fine", 0.12, 5),
    DIRT: ((136, 100, 68), 10, "mid", 0.3, 6), GRAVEL: ((165, 158, 145), 8, "fine", 0.6, 10),
    MUD: ((86, 70, 54), 6, "coarse", 0.3, 3), SEA: ((38, 88, 132), 14, "ripples", 0.45, 3),
    ROAD: ((80, 80, 86), 8, "coarse", 0.1, 4), RAILROAD: ((108, 92, 80), 6, "sleepers", 0.5, 4),
    HOUSE: ((212, 178, 138), 22, "windows", 0.55, 3), ROOF: ((150, 62, 48), 20, "hstripes", 0.3, 4),
    WALL: ((150, 140, 126), 10, "bricks", 0.4, 5), FENCE: ((130, 98, 66), 15, "vstripes", 0.3, 4),
    BRIDGE: ((158, 140, 118), 10, "bricks", 0.3, 4), BUILDING: ((172, 166, 156), 10, "windows", 0.5, 3),
    TENT: ((230, 120, 40), 30, "flat", 0.0, 3), PERSON: ((60, 70, 150), 40, "coarse", 0.3, 4),
    COW: ((230, 228, 220), 10, "blotches", 0.85, 4), SHEEP: ((226, 222, 206), 8, "fine", 0.25, 6),
    HORSE: ((118, 72, 42), 12, "coarse", 0.3, 4), BIRD: ((45, 42, 40), 6, "flat", 0.0, 3),
    BOAT: ((210, 70, 55), 30, "hstripes", 0.3, 3), CAR: ((180, 40, 50), 40, "coarse", 0.2, 3),
    STRAW: ((214, 178, 92), 10, "streaks", 0.4, 6),
}
LOOKS[RIVER] = LOOKS[LAKE] = LOOKS[SEA]
# The related groups: one random shift per image for the group, plus a little of each class's own.
GROUP_SHIFT = {"greens": 14.0, "stone": 14.0}
OWN_SHIFT = 4.0
HAZE = 0.35   # how much of the horizon's sky colour the mountains take on


class Look:
    """One appearance model: colours c1 -> c2 along a pattern t, and a pixel noise amplitude."""

    def __init__(self, c1, c2, pattern, noise):
        self.c1, self.c2 = np.asarray(c1, np.float32), np.asarray(c2, np.float32)
        self.pattern, self.noise = pattern, noise


_CENTRES = np.array([LOOKS[c][0] for c in range(NUM_CLASSES)], np.float64)       # (N, 3)
_SPREADS = np.array([LOOKS[c][1] for c in range(NUM_CLASSES)], np.float64)[:, None]
_CONTRASTS = np.array([LOOKS[c][3] for c in range(NUM_CLASSES)], np.float64)[:, None]
_GROUPS = list(GROUP_SHIFT)
# per class: the index in _GROUPS of its related group, -1 for none
_GROUP_OF = np.array([next((_GROUPS.index(g) for g, (_, names) in APPEARANCE_GROUPS.items()
                            if g in GROUP_SHIFT and CLASS_NAMES[c] in names), -1) for c in range(NUM_CLASSES)])


def draw_looks(rng):
    """The appearance models of one image: {class id: Look}; the water classes share one object."""
    shifts = rng.normal(0.0, 1.0, (len(_GROUPS), 3)) * np.array([GROUP_SHIFT[g] for g in _GROUPS])[:, None]
    z = rng.normal(0.0, 1.0, (NUM_CLASSES, 3))
    related = _GROUP_OF >= 0
    c1 = np.where(related[:, None], _CENTRES + shifts[_GROUP_OF] + OWN_SHIFT * z, _CENTRES + _SPREADS * z)
    c1 = np.clip(c1, 0, 255)
    # dark colours vary towards brighter, light ones towards darker, keeping their hue
    dark = c1.mean(1, keepdims=True) < 110
    c2 = np.clip(c1 * np.where(dark, 1 + _CONTRASTS, 1 - _CONTRASTS), 0, 255)
    horizon = np.clip(c1[SKY] + rng.normal((75, 55, 25), 8), 0, 255)
    c2[SKY] = horizon                                         # the sky: zenith colour to horizon colour
    c1[MOUNTAIN] = (1 - HAZE) * c1[MOUNTAIN] + HAZE * horizon
    c2[MOUNTAIN] = c1[MOUNTAIN] * (1 - _CONTRASTS[MOUNTAIN]) + _CONTRASTS[MOUNTAIN] * horizon
    c2[COW] = np.clip(rng.normal((40, 34, 30), 8), 0, 255)   # black patches on white
    looks = {cls: Look(c1[cls], c2[cls], LOOKS[cls][2], LOOKS[cls][4]) for cls in range(NUM_CLASSES)}
    looks[RIVER] = looks[LAKE] = looks[SEA]
    return looks


class Fields:
    """The texture fields of one image at one size, computed once and shared by all classes."""

    def __init__(self, rng, scene, size):
        xs = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.xs, self.h = xs, scene.h
        self.coarse = Noise2D(rng, [(3, 3), (6, 6)]).field(xs, xs)
        self.mid = Noise2D(rng, [(8, 8), (16, 16), (32, 32)]).field(xs, xs)
        self.fine = Noise2D(rng, [(48, 48), (96, 96)]).field(xs, xs)
        self.streaks = Noise2D(rng, [(6, 64), (12, 128)]).field(xs, xs)
        self.freq = rng.uniform(0.8, 1.25)                   # stripes and bricks: one scale per image

    def pattern(self, name, mask):
        """t in [0, 1] at the pixels of `mask` ((S, S) bool) -> (k,) float32."""
        rows, cols = np.nonzero(mask)
        y, x = self.xs[rows], self.xs[cols]
        f = self.freq
        if name == "flat":
            return np.zeros(len(rows), np.float32)
        if name == "sky":                                    # zenith colour at the top, horizon colour below
            return np.clip(y / max(self.h, 1e-3), 0, 1) ** 1.5
        if name in ("coarse", "mid", "fine", "streaks"):
            return 0.5 + 0.5 * np.clip(getattr(self, name)[rows, cols] * 1.6, -1, 1)
        if name == "blotches":
            return (self.mid[rows, cols] > 0.1).astype(np.float32)
        if name == "ripples":                                # waves, denser towards the horizon
            depth = 1.0 / (y - self.h + 0.03)
            return 0.5 + 0.5 * np.sin(1.3 * f * depth + 3.0 * self.coarse[rows, cols] + 8 * x)
        if name == "sleepers":
            return (np.sin(4.0 * f / (y - self.h + 0.02)) > 0.2).astype(np.float32)
        if name == "hstripes":
            return 0.5 + 0.5 * np.sin(2 * np.pi * 40 * f * y)
        if name == "vstripes":
            return 0.5 + 0.5 * np.sin(2 * np.pi * 45 * f * x)
        if name == "windows":
            return ((np.sin(2 * np.pi * 30 * f * x) > 0.4) & (np.sin(2 * np.pi * 25 * f * y) > 0.2)).astype(
                np.float32)
        if name == "bricks":
            row = y * 50 * f
            offset = 0.5 * (np.floor(row) % 2)
            mortar = (np.mod(row, 1.0) < 0.2) | (np.mod(x * 25 * f + offset, 1.0) < 0.12)
            return mortar.astype(np.float32)
        raise ValueError(f"unknown pattern {name!r}")


def paint(rng, scene, canvas):
    """The image (S, S, 3) uint8 of a laid-out canvas."""
    size = canvas.size
    looks = draw_looks(rng)
    fields = Fields(rng, scene, size)
    offset = rng.random()
    exposure, warmth = rng.uniform(0.9, 1.08), rng.uniform(-8, 8)
    noise = rng.standard_normal((size, size)).astype(np.float32)   # last: the only draw that depends on size

    image = np.empty((size, size, 3), np.float32)
    label, instance = canvas.label, canvas.instance
    for cls in np.unique(label):
        mask = label == cls
        look = looks[int(cls)]
        t = fields.pattern(look.pattern, mask)
        colour = look.c1 + t[:, None] * (look.c2 - look.c1) + look.noise * noise[mask][:, None]
        inst = instance[mask]
        if cls != SKY:   # objects vary a little in brightness, one factor per instance
            colour *= np.where(inst >= INSTANCE_BASE, 1.0 + 0.14 * (np.mod(inst * 0.618034 + offset, 1.0) - 0.5),
                               1.0)[:, None]
        image[mask] = colour
    # aerial perspective: the ground near the horizon takes on the sky's horizon colour
    depth = np.abs(canvas.coords - scene.h)[:, None, None]
    haze = 0.22 * np.exp(-depth / 0.05) * (label >= SNOW)[..., None]
    image = image * (1 - haze) + haze * looks[SKY].c2
    image = image * exposure + np.array([warmth, 0.0, -warmth], np.float32)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def draw(index, seed=0, size=64, phase="train"):
    """Draw landscape `index`. -> (label (size, size) uint8 ids 0..34, instance (size, size) int32,
    image (size, size, 3) uint8)."""
    rng = sample_rng(index, seed, phase)
    scene = Scene(rng)
    canvas = Canvas(size)
    scene.lay_out(canvas)
    return canvas.label, canvas.instance, paint(rng, scene, canvas)


def preview(count=8, size=128, seed=0, phase="test", per_row=4, gap=4):
    """Landscapes 0..count-1 of `phase`, each layout (in the pages' label colours) left of its image, `per_row`
    pairs a row, on white with `gap` pixels between. -> (H, W, 3) uint8."""
    palette = labelcolormap(NUM_CLASSES + 2, "landscapes")
    rows = -(-count // per_row)
    pair_w = 2 * size + gap
    sheet = np.full((rows * (size + gap) - gap, per_row * (pair_w + 2 * gap) - 2 * gap, 3), 255, np.uint8)
    for k in range(count):
        label, _, image = draw(k, seed, size, phase)
        r, q = divmod(k, per_row)
        y, x = r * (size + gap), q * (pair_w + 2 * gap)
        sheet[y:y + size, x:x + size] = palette[label]
        sheet[y:y + size, x + size + gap:x + pair_w] = image
    return sheet


# ---------------------------------------------------------------------------------------------------------
# the dataset mode

@DATASETS.register("landscapes")
class LandscapesDataset(DrawnDataset):
    """Landscapes drawn at --load_size, then through the transforms every mode uses. Instance maps come with
    every sample; --no_instance leaves them out."""

    # the appearance groups as the semantic-vector analysis (tools/analyze_sv.py) reads them: every pair
    # of classes of one group is expected to come out close
    twin_classes = tuple((a, b) for _, (_, names) in APPEARANCE_GROUPS.items()
                         for i, a in enumerate(names) for b in names[i + 1:])

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser = Pix2pixDataset.modify_commandline_options(parser, is_train)
        parser.add_argument("--num_synthetic", type=bounded(int, min=1), default=200,
                            help="number of landscapes per phase")
        parser.set_defaults(label_nc=NUM_CLASSES, preprocess_mode="resize_and_crop", load_size=64, crop_size=64,
                            display_winsize=128)
        parser.set_defaults(**CPU_DEMO_DEFAULTS)   # --dataset_mode synthetic's: one budget for both
        return parser

    @staticmethod
    def drawn_class_names():
        return CLASS_NAMES

    def sample_paths(self, index):
        name = f"landscapes/{self.opt.phase}/{index:05d}.png"
        return name, name, None if self.opt.no_instance else name

    def load_sample(self, index):
        label, instance, image = draw(index, self.opt.seed, self.opt.load_size, self.opt.phase)
        return (Image.fromarray(label, mode="L"), Image.fromarray(image, mode="RGB"),
                None if self.opt.no_instance else Image.fromarray(instance, mode="I"))
