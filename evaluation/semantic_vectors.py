"""Semantic-vector analysis of an SC-GAN generator (paper §3.1, Figure 3).

  python -m tools.analyze_sv --name NAME [--which_epoch latest] [--num_images 50] [--out DIR] [dataset options]

collects the semantic vectors V_t (SCC) and Vn_t (SCN) of `netG.semantic_vectors(seg)` for every pixel of N
label maps of the test phase, each read against the label map resized (nearest) to its scale, and writes to
results/NAME/sv_EPOCH/ (or --out):
  cosine.png / cosine.csv   cosine similarity of the class means of V (all scales concatenated per pixel),
                            a class-by-class heatmap with names and values, and the matrix as CSV
  cosine_<stream>.png       the same per stream (conv_1 ... conv_T, norm_1 ... norm_T)
  map.png                   sampled per-pixel vectors in 2-D (PCA with numpy; t-SNE if scikit-learn is
                            installed), coloured by class
  stats.json, index.html    per stream: how far V is from uniform (normalized entropy 1 = uniform, for
                            non-negative V summing to 1; spread = std over the n entries) and a discriminating
                            measure (mean distance between class means / mean within-class RMS spread)
The paper's finding: classes of one appearance (left and right eye, upper and lower lip) get similar vectors.
"""
import csv
import io
import json
import math
import os
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch.nn import functional as F
from tqdm import tqdm

from checkpointing.storage import atomic_write_bytes
from util import util


class ClassAccumulator:
    """Per-class sums of vectors, of squared norms, of entropies and of spreads, for vectors (P, d)."""

    def __init__(self, num_classes, dim):
        self.count = torch.zeros(num_classes, dtype=torch.float64)
        self.sum = torch.zeros(num_classes, dim, dtype=torch.float64)
        self.sum_sq = torch.zeros(num_classes, dtype=torch.float64)
        self.entropy = 0.0
        self.spread = 0.0
        self.pixels = 0
        self.is_distribution = True   # every vector non-negative and summing to 1 (softmax)

    def update(self, vectors, classes):
        """vectors: (P, d); classes: (P,) long in [0, num_classes)."""
        v = vectors.detach().double()
        self.count.index_add_(0, classes, torch.ones_like(classes, dtype=torch.float64))
        self.sum.index_add_(0, classes, v)
        self.sum_sq.index_add_(0, classes, (v * v).sum(1))
        self.is_distribution &= bool((v >= -1e-6).all() and torch.allclose(v.sum(1), torch.ones(len(v),
                                                                           dtype=v.dtype), atol=1e-3))
        p = v.clamp_min(1e-12)
        self.entropy += float(-(p * p.log()).sum(1).sum()) / math.log(v.shape[1]) if v.shape[1] > 1 else 0.0
        self.spread += float(v.std(1, unbiased=False).sum())
        self.pixels += len(v)

    def means(self):
        """(K, d) class means; NaN rows for classes never seen."""
        return self.sum / self.count[:, None].clamp_min(1) + torch.where(self.count[:, None] > 0, 0.0, float("nan"))

    def within_rms(self):
        """(K,) RMS distance of each class's vectors to their mean (NaN for classes never seen)."""
        means = self.means()
        return (self.sum_sq / self.count.clamp_min(1) - (means ** 2).sum(1)).clamp_min(0).sqrt()

    def separation(self):
        """(K, K): distance between two classes' means relative to their spread, |m_i - m_j| /
        sqrt((r_i^2 + r_j^2) / 2) with r the within-class RMS; ~0 when the classes share one distribution of
        vectors, >> 1 when they are told apart. Unlike the cosine it does not saturate near uniform vectors."""
        means, rms = self.means(), self.within_rms()
        spread = ((rms[:, None] ** 2 + rms[None, :] ** 2) / 2).sqrt()
        return torch.cdist(means, means) / spread

    def statistics(self):
        means = self.means()
        seen = self.count > 0
        within = self.within_rms()[seen]
        m = means[seen]
        pairwise = torch.cdist(m, m)[~torch.eye(len(m), dtype=torch.bool)] if len(m) > 1 else torch.zeros(1)
        spread_within = float(within.mean()) if len(within) else float("nan")
        return OrderedDict(
            dim=int(self.sum.shape[1]), pixels=self.pixels,
            normalized_entropy=self.entropy / self.pixels if self.is_distribution and self.pixels else None,
            spread=self.spread / self.pixels if self.pixels else None,
            mean_distance_between_class_means=float(pairwise.mean()),
            mean_within_class_rms=spread_within,
            discrimination=float(pairwise.mean()) / spread_within if spread_within > 0 else float("inf"))


def cosine_matrix(means):
    """means: (K, d) -> (K, K) cosine similarities (NaN where a class was never seen or its mean is 0)."""
    norms = means.norm(dim=1, keepdim=True)
    unit = means / torch.where(norms > 0, norms, torch.full_like(norms, float("nan")))
    return unit @ unit.T


def pair_report(accumulator, names, pairs, exempt=()):
    """The paper's twin claim, measured: for each pair (i, j) of class names, its cosine and separation next to
    the most similar other pair of classes (largest cosine, smallest separation), leaving out `exempt` pairs
    (e.g. skin and nose, which share an appearance on purpose) and the other twin pairs."""
    index = {name: k for k, name in enumerate(names)}
    cosine, separation = cosine_matrix(accumulator.means()), accumulator.separation()
    special = {frozenset(p) for p in (*pairs, *exempt)}
    others = [(a, b) for a in range(len(names)) for b in range(a + 1, len(names))
              if frozenset((names[a], names[b])) not in special and bool(accumulator.count[a] > 0)
              and bool(accumulator.count[b] > 0)]
    top_cos = max(others, key=lambda ab: float(cosine[ab].nan_to_num(-2)))
    low_sep = min(others, key=lambda ab: float(separation[ab].nan_to_num(float("inf"))))
    report = OrderedDict()
    for a, b in pairs:
        i, j = index[a], index[b]
        report[f"{a}/{b}"] = OrderedDict(
            cosine=float(cosine[i, j]), separation=float(separation[i, j]),
            largest_other_cosine=float(cosine[top_cos]), largest_other_cosine_pair=f"{names[top_cos[0]]}/"
            f"{names[top_cos[1]]}", smallest_other_separation=float(separation[low_sep]),
            smallest_other_separation_pair=f"{names[low_sep[0]]}/{names[low_sep[1]]}",
            holds_by_cosine=bool(cosine[i, j] >= 0.99 and cosine[i, j] > cosine[top_cos]),
            holds_by_separation=bool(separation[i, j] < separation[low_sep]))
    return report


def pixel_streams(v_conv, v_norm, label):
    """V_t: (B, n, h_t, w_t) lists; label: (B, 1, H, W) ids -> OrderedDict stream -> (vectors (P, n), classes (P,)),
    including 'all': every V upsampled (nearest) to H x W and concatenated per pixel."""
    streams = OrderedDict()
    full = []
    for kind, vectors in (("conv", v_conv), ("norm", v_norm)):
        for t, v in enumerate(vectors, start=1):
            ids = F.interpolate(label.float(), size=v.shape[2:], mode="nearest").long()
            streams[f"{kind}_{t}"] = (v.permute(0, 2, 3, 1).reshape(-1, v.shape[1]), ids.flatten())
            full.append(F.interpolate(v, size=label.shape[2:], mode="nearest"))
    everything = torch.cat(full, 1)
    streams["all"] = (everything.permute(0, 2, 3, 1).reshape(-1, everything.shape[1]), label.long().flatten())
    return streams


# ---------------------------------------------------------------------------------------------------------
# pictures

def _font():
    return ImageFont.load_default()


def _diverging(value):
    """-1 blue, 0 white, 1 red; NaN grey."""
    if not math.isfinite(value):
        return (200, 200, 200)
    v = max(-1.0, min(1.0, value))
    t = int(255 * (1 - abs(v)))
    return (255, t, t) if v >= 0 else (t, t, 255)


def draw_heatmap(matrix, names, path, title="", cell=44):
    """(K, K) matrix in [-1, 1] -> PNG with class names on both axes and the value in every cell."""
    k = len(names)
    font = _font()
    margin = 8 + 7 * max(len(n) for n in names)
    top = margin + (18 if title else 0)
    image = Image.new("RGB", (margin + k * cell + 10, top + k * cell + 10), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((6, 4), title, fill="black", font=font)
    for i, name in enumerate(names):
        draw.text((4, top + i * cell + cell // 2 - 6), name, fill="black", font=font)
        label = Image.new("RGB", (margin, 14), "white")
        ImageDraw.Draw(label).text((2, 1), name, fill="black", font=font)
        image.paste(label.rotate(90, expand=True), (margin + i * cell + cell // 2 - 7, top - margin))
        for j in range(k):
            value = float(matrix[i][j])
            x0, y0 = margin + j * cell, top + i * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=_diverging(value), outline=(255, 255, 255))
            text = f"{value:.2f}" if math.isfinite(value) else "-"
            draw.text((x0 + 8, y0 + cell // 2 - 6), text, fill="black", font=font)
    with util.atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def project_2d(vectors):
    """(P, d) -> ((P, 2), method): t-SNE when scikit-learn is installed (and P > 30), else PCA by SVD."""
    x = np.asarray(vectors, dtype=np.float64)
    try:
        from sklearn.manifold import TSNE
        if len(x) > 30:
            return TSNE(n_components=2, init="pca", random_state=0,
                        perplexity=min(30.0, (len(x) - 1) / 3)).fit_transform(x), "t-SNE"
    except ImportError:
        pass
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    out = x @ vt[:2].T
    if out.shape[1] < 2:
        out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    return out, "PCA"


def draw_scatter(points, classes, names, path, title, size=480):
    """points: (P, 2); classes: (P,) -> PNG, one colour per class, with a legend."""
    colors = util.labelcolormap(max(len(names), 2))
    legend_w = 12 + 7 * max(len(n) for n in names)
    image = Image.new("RGB", (size + legend_w, size), "white")
    draw = ImageDraw.Draw(image)
    font = _font()
    lo, hi = points.min(0), points.max(0)
    scale = np.where(hi - lo > 0, hi - lo, 1.0)
    xy = 20 + (points - lo) / scale * (size - 40)
    for (x, y), c in zip(xy, classes):
        color = tuple(int(v) for v in colors[int(c)])
        draw.ellipse([x - 2, size - y - 2, x + 2, size - y + 2], fill=color)
    draw.text((6, 4), title, fill="black", font=font)
    for i, name in enumerate(names):
        color = tuple(int(v) for v in colors[i])
        draw.rectangle([size + 4, 24 + 16 * i, size + 14, 34 + 16 * i], fill=color, outline="black")
        draw.text((size + 18, 23 + 16 * i), name, fill="black", font=font)
    with util.atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def write_csv(matrix, names, path):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["class", *names])
    for name, row in zip(names, matrix):
        writer.writerow([name, *(f"{float(v):.6f}" for v in row)])
    atomic_write_bytes(path, buffer.getvalue().encode())


# ---------------------------------------------------------------------------------------------------------

def analyze(accumulators, samples, names, out_dir, title, twins=(), exempt=()):
    """Write every picture, CSV, stats.json and index.html from filled accumulators.

    accumulators: {stream: ClassAccumulator}; samples: (vectors (P, d), classes (P,)) of the 'all' stream;
    twins: pairs of class names expected to get one vector (reported per stream, see pair_report)."""
    from dominate.tags import pre

    from util.html import HTML
    util.mkdirs(out_dir)
    matrix = cosine_matrix(accumulators["all"].means())
    draw_heatmap(matrix.tolist(), names, os.path.join(out_dir, "cosine.png"),
                 "cosine of class means of V (all scales)")
    write_csv(matrix.tolist(), names, os.path.join(out_dir, "cosine.csv"))
    stats = OrderedDict()
    for stream, acc in accumulators.items():
        stats[stream] = acc.statistics()
        if stream != "all":
            draw_heatmap(cosine_matrix(acc.means()).tolist(), names, os.path.join(out_dir, f"cosine_{stream}.png"),
                         f"cosine of class means, {stream}")
    vectors, classes = samples
    points, method = project_2d(vectors.numpy())
    draw_scatter(points, classes.numpy(), names, os.path.join(out_dir, "map.png"),
                 f"{method} of {len(classes)} sampled pixel vectors")
    summary = OrderedDict(classes=names, cosine=matrix.tolist(), projection=method, streams=stats)
    if twins:
        summary["twins"] = OrderedDict((stream, pair_report(acc, names, twins, exempt))
                                       for stream, acc in accumulators.items())
    atomic_write_bytes(os.path.join(out_dir, "stats.json"),
                       (json.dumps(summary, indent=2, allow_nan=True) + "\n").encode())

    page = HTML(out_dir, title)
    page.add_header("Cosine similarity of the class means of V (all scales concatenated per pixel)")
    page.add_figure("cosine.png")
    page.add_header(f"Sampled per-pixel vectors ({method}), coloured by class")
    page.add_figure("map.png")
    page.add_header("Per stream: normalized entropy (1 = uniform), spread, discrimination "
                    "(distance between class means / within-class RMS spread)")
    with page.doc:
        pre(json.dumps(stats, indent=2))
    if twins:
        page.add_header("Twin classes per stream: cosine and separation (distance of the class means / their RMS "
                        "spread) next to the most similar other pair")
        with page.doc:
            pre(json.dumps(summary["twins"], indent=2))
    for stream in accumulators:
        if stream != "all":
            page.add_header(stream)
            page.add_figure(f"cosine_{stream}.png")
    page.save()
    return summary


def collect(model, loader, num_classes, num_images, samples_per_class=200, seed=0):
    """Run the generator's SVG on the first `num_images` label maps of `loader` -> ({stream: ClassAccumulator},
    (vectors, classes) sampled from the 'all' stream, up to `samples_per_class` per class, images seen)."""
    from models.networks.generator import with_3d_noise
    g = torch.Generator().manual_seed(seed)
    accumulators, samples, seen = OrderedDict(), ([], []), 0
    per_class = torch.zeros(num_classes, dtype=torch.long)
    with torch.no_grad(), tqdm(total=min(num_images, len(loader.dataset)), unit="image", desc="V") as bar:
        for batch in loader:
            if seen >= num_images:
                break
            keep = min(batch["label"].shape[0], num_images - seen)
            batch = {k: v[:keep] if torch.is_tensor(v) and v.dim() else v for k, v in batch.items()}
            seg, _ = model.preprocess_input(batch)
            # a generator trained with OASIS's 3-D noise reads it too: one draw per image
            v_conv, v_norm, _ = model.netG.semantic_vectors(with_3d_noise(seg, model.netG.noise_nc))
            streams = pixel_streams(v_conv, v_norm, batch["label"].to(seg.device))
            for stream, (vectors, classes) in streams.items():
                if stream not in accumulators:
                    accumulators[stream] = ClassAccumulator(num_classes, vectors.shape[1])
                accumulators[stream].update(vectors.cpu(), classes.cpu())
            vectors, classes = (x.cpu() for x in streams["all"])
            for c in classes.unique():   # a few random pixels of each class, up to samples_per_class
                room = samples_per_class - int(per_class[c])
                idx = (classes == c).nonzero().flatten()
                idx = idx[torch.randperm(len(idx), generator=g)[:max(0, min(room, 20))]]
                samples[0].append(vectors[idx])
                samples[1].append(classes[idx])
                per_class[c] += len(idx)
            seen += keep
            bar.update(keep)
    return accumulators, (torch.cat(samples[0]), torch.cat(samples[1])), seen
