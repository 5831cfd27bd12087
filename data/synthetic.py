"""The bundled synthetic dataset: face-like label maps with procedural textures.

Each sample is drawn from a numpy Generator seeded by (seed, index, phase), so it is the same on every
machine and in every worker, and the test phase holds other samples than the training phase.

Layout: a face ellipse of skin (random position, size and slight rotation) over a hair region, with a hair
fringe, two eyes, two brows, a nose and two lips, on a background.

Appearance rules, the paper's Figure 3 finding made exact, so that SC-GAN's semantic vectors can be checked:
- left and right eye are painted by ONE appearance model per image, each in its own (mirrored) local frame;
- upper and lower lip likewise share one model;
- the nose is the face's skin texture, slightly shaded;
- hair, background, skin, eyes, lips and brows each get their own model, drawn around the class's own colour
  (CLASS_COLOURS: bluish background, dark hair, brown brows, teal eyes, red lips; skin from light to medium
  tones), so that a label map says roughly what colour each region has, as in real faces, while every image
  still differs in tone, pattern and noise.
An appearance model is two colours, a pattern (flat, gradient, stripes or checks) and a noise level.

Two domains for unpaired translation (``--dataset_mode synthetic_unaligned``, ``--model unpaired``): domain A
holds the faces as drawn above; domain B ("winter") other faces in a cold monochrome scheme, the rule
`winter`: each pixel's luma Y (ITU-R 601) becomes (0.55 Y + 10, 0.8 Y + 25, Y + 40), clipped to 255, so every
pixel of B has blue > green > red and its colour depends on its luma only, while A's skin is red > blue.
Sample i of domain A in phase P is `render(i, seed, size, P + "A")`, of domain B `winter` of
`render(i, seed, size, P + "B")`: the two domains never share a face.

Command line: ``python -m tools.write_synthetic --out DIR --n 200 [--size 128 --seed 0]`` writes DIR/labels/*.png
and DIR/images/*.png, the layout of ``--dataset_mode custom``; with ``--unaligned`` it writes the two domains
in CycleGAN's layout, DIR/trainA, trainB, testA, testB (--n images each), for ``--dataset_mode unaligned``.
"""
import os
import zlib

import numpy as np
from PIL import Image

CLASS_NAMES = ("background", "hair", "skin", "nose", "left_eye", "right_eye", "brows", "upper_lip", "lower_lip")
BACKGROUND, HAIR, SKIN, NOSE, LEFT_EYE, RIGHT_EYE, BROWS, UPPER_LIP, LOWER_LIP = range(9)

PATTERNS = ("flat", "gradient", "stripes", "checks")
LIGHT_SKIN, DARK_SKIN = np.array([245.0, 215.0, 185.0]), np.array([105.0, 70.0, 50.0])
SKIN_TONES = (0.0, 0.5)  # where a face's skin lies between LIGHT_SKIN (0) and DARK_SKIN (1)
# Each class's appearance is drawn around its own colour: (RGB centre, standard deviation per channel). The
# centres are at least 70 apart (and from the skin tones), so a class is recognisable by colour too.
CLASS_COLOURS = {BACKGROUND: ((80.0, 120.0, 170.0), 25.0), HAIR: ((45.0, 32.0, 28.0), 12.0),
                 BROWS: ((115.0, 72.0, 40.0), 12.0), LEFT_EYE: ((40.0, 140.0, 120.0), 18.0),
                 UPPER_LIP: ((200.0, 60.0, 75.0), 18.0)}


def sample_rng(index, seed=0, phase="train"):
    """The Generator of one sample: a function of (seed, index, phase) only."""
    return np.random.default_rng([seed % 2 ** 32, index, zlib.crc32(phase.encode())])


def render(index, seed=0, size=64, phase="train"):
    """Draw sample `index`. Returns (label (size, size) uint8 with ids 0..8, image (size, size, 3) uint8)."""
    rng = sample_rng(index, seed, phase)
    c = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0
    X, Y = np.meshgrid(c, c)  # image coordinates in [-1, 1], Y pointing down

    # The face frame (U, V): the face is the unit disc, U to the image right, V down.
    cx, cy = rng.uniform(-0.12, 0.12), rng.uniform(-0.02, 0.12)
    a = rng.uniform(0.42, 0.52)
    b = a * rng.uniform(1.15, 1.3)
    theta = rng.uniform(-0.25, 0.25)
    cos, sin = np.cos(theta), np.sin(theta)
    dx, dy = X - cx, Y - cy
    U = (dx * cos + dy * sin) / a
    V = (-dx * sin + dy * cos) / b

    label = np.zeros((size, size), np.uint8)
    hair_length = rng.uniform(0.2, 0.5)
    label[((U / 1.25) ** 2 + ((V + 0.2) / 1.12) ** 2 <= 1) & (V < hair_length)] = HAIR
    face = U ** 2 + V ** 2 <= 1
    label[face] = SKIN
    fringe = rng.uniform(-0.68, -0.52) + 0.06 * np.sin(U * rng.uniform(4, 9) + rng.uniform(0, 2 * np.pi))
    label[face & (V < fringe)] = HAIR

    # Local frames of the twin parts: each member in its own frame, mirrored so the pair is symmetric.
    LU, LV = U.copy(), V.copy()

    def part(mask, cls, lu, lv):
        label[mask] = cls
        LU[mask], LV[mask] = lu[mask], lv[mask]

    ex, ey = rng.uniform(0.33, 0.42), rng.uniform(-0.22, -0.1)
    erx = rng.uniform(0.15, 0.2)
    ery = erx * rng.uniform(0.5, 0.7)
    brow_dy, brow_ry = rng.uniform(0.18, 0.24), rng.uniform(0.07, 0.09)
    for side, eye_cls in ((-1, LEFT_EYE), (1, RIGHT_EYE)):
        bu, bv = (U - side * ex) / (erx * 1.3), (V - ey + brow_dy) / brow_ry
        part(bu ** 2 + bv ** 2 <= 1, BROWS, side * bu, bv)
        eu, ev = (U - side * ex) / erx, (V - ey) / ery
        part(eu ** 2 + ev ** 2 <= 1, eye_cls, side * eu, ev)

    nu, nv = U / rng.uniform(0.08, 0.11), (V - rng.uniform(0.08, 0.16)) / rng.uniform(0.15, 0.2)
    nose = nu ** 2 + nv ** 2 <= 1
    label[nose] = NOSE

    my, mw = rng.uniform(0.48, 0.56), rng.uniform(0.25, 0.32)
    upper_h, lower_h = rng.uniform(0.09, 0.12), rng.uniform(0.11, 0.15)
    mu = U / mw
    up, low = (V - my) / upper_h, (V - my) / lower_h
    part((mu ** 2 + up ** 2 <= 1) & (V < my), UPPER_LIP, mu, up)
    part((mu ** 2 + low ** 2 <= 1) & (V >= my), LOWER_LIP, mu, -low)  # mirrored: lip edge up, mouth line down

    # Appearance models: one per class around its colour; the twins share theirs.
    skin_tone = LIGHT_SKIN + rng.uniform(*SKIN_TONES) * (DARK_SKIN - LIGHT_SKIN) + rng.normal(0, 6, 3)
    models = {SKIN: appearance(rng, skin_tone, noise=(2, 5), spread=12, patterns=("flat", "gradient"))}
    for cls, (centre, deviation) in CLASS_COLOURS.items():
        models[cls] = appearance(rng, np.clip(rng.normal(centre, deviation), 0, 255))
    models[RIGHT_EYE], models[LOWER_LIP] = models[LEFT_EYE], models[UPPER_LIP]

    noise = rng.standard_normal((size, size)).astype(np.float32)
    image = np.empty((size, size, 3), np.float32)
    for cls, (u, v) in ((BACKGROUND, (X, Y)), (HAIR, (X, Y)), (SKIN, (U, V)), (NOSE, (U, V)),
                        (BROWS, (LU, LV)), (LEFT_EYE, (LU, LV)), (RIGHT_EYE, (LU, LV)),
                        (UPPER_LIP, (LU, LV)), (LOWER_LIP, (LU, LV))):
        mask = label == cls
        if not mask.any():
            continue
        if cls == NOSE:  # skin, a little darker towards the nose's sides
            shade = 0.88 - 0.06 * np.abs(nu[mask])[:, None]
            image[mask] = paint(models[SKIN], u[mask], v[mask], noise[mask]) * shade
        else:
            image[mask] = paint(models[cls], u[mask], v[mask], noise[mask])
    return label, np.clip(image + 0.5, 0, 255).astype(np.uint8)


def appearance(rng, colour, noise=(3, 10), spread=30, patterns=PATTERNS):
    """One appearance model: base colour, a second colour near it, a pattern and a noise amplitude."""
    return {"c1": np.asarray(colour, np.float32),
            "c2": np.clip(colour + rng.normal(0, spread, 3), 0, 255).astype(np.float32),
            "pattern": patterns[rng.integers(len(patterns))],
            "freq": rng.uniform(2.0, 5.0), "angle": rng.uniform(0, np.pi), "phase": rng.uniform(0, 2 * np.pi),
            "noise": rng.uniform(*noise)}


def paint(model, u, v, noise):
    """Colours (k, 3) of k pixels at coordinates u, v (k,) of the model's frame, with noise (k,)."""
    s = u * np.cos(model["angle"]) + v * np.sin(model["angle"])
    pattern = model["pattern"]
    if pattern == "flat":
        t = np.zeros_like(s)
    elif pattern == "gradient":
        t = np.clip(0.5 + 0.5 * s, 0, 1)
    elif pattern == "stripes":
        t = 0.5 + 0.5 * np.sin(np.pi * model["freq"] * s + model["phase"])
    else:  # checks
        t = (np.sin(np.pi * model["freq"] * u) * np.sin(np.pi * model["freq"] * v) > 0).astype(np.float32)
    return model["c1"] + t[:, None] * (model["c2"] - model["c1"]) + model["noise"] * noise[:, None]


WINTER_SCALE, WINTER_LIFT = np.array([0.55, 0.8, 1.0]), np.array([10.0, 25.0, 40.0])
LUMA = np.array([0.299, 0.587, 0.114])
DOMAINS = ("A", "B")


def winter(image):
    """Domain B's colour scheme: (H, W, 3) uint8 -> (H, W, 3) uint8 with blue > green > red at every pixel,
    a function of the pixel's luma."""
    luma = image.astype(np.float64) @ LUMA
    return np.clip(np.rint(luma[..., None] * WINTER_SCALE + WINTER_LIFT), 0, 255).astype(np.uint8)


def render_domain(index, domain, seed=0, size=64, phase="train"):
    """Image `index` (size, size, 3) uint8 of domain "A" (faces as drawn) or "B" (other faces, in `winter`)."""
    if domain not in DOMAINS:
        raise ValueError(f"domain {domain!r}: expected A or B")
    _, image = render(index, seed, size, phase + domain)
    return image if domain == "A" else winter(image)


def write_dataset(out, n, size=128, seed=0, phase="train"):
    """Write samples 0..n-1 as out/labels/NNNNN.png (ids) and out/images/NNNNN.png."""
    for sub in ("labels", "images"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for i in range(n):
        label, image = render(i, seed, size, phase)
        Image.fromarray(label, mode="L").save(os.path.join(out, "labels", f"{i:05d}.png"))
        Image.fromarray(image, mode="RGB").save(os.path.join(out, "images", f"{i:05d}.png"))


def write_unaligned_dataset(out, n, size=128, seed=0, phases=("train", "test")):
    """Write images 0..n-1 of both domains as out/{phase}A/NNNNN.png and out/{phase}B/NNNNN.png."""
    for phase in phases:
        for domain in DOMAINS:
            folder = os.path.join(out, phase + domain)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                Image.fromarray(render_domain(i, domain, seed, size, phase), mode="RGB").save(
                    os.path.join(folder, f"{i:05d}.png"))
