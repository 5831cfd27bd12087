"""Where training progress and test results become files a person looks at.

Training (checkpoints_dir/name/): loss_log.txt in SPADE's line format, web/index.html with every displayed
step (newest first) and web/loss_curves.png, optionally TensorBoard under logs/ (--tf_log).
Test (results_dir/name/test_EPOCH/): images/<visual>/<basename>.png and a row per image on index.html.
The page is rebuilt from the file names in web/images, so it lists the steps of earlier runs after a restart.
"""
import math
import ntpath
import os
import re
import time
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from util import util
from util.html import HTML

REFRESH_SECONDS = 5                     # SPADE's training page reloads itself this often
DISPLAY_NAME = "epoch%03d_iter%07d_%s.png"
DISPLAY_RE = re.compile(r"^epoch(\d+)_iter(\d+)_(.+)\.png$")
LOG_LINE_RE = re.compile(r"^\(epoch: (\d+), iters: (\d+), time: [^)]*\) (.*)$")
LOG_VALUE_RE = re.compile(r"(\S+): (\S+)")
CURVE_COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


# the order of a training page row before the first display of a (resumed) run: the models' visuals
DISPLAY_ORDER = ("input_label", "source_image", "reference_image", "synthesized_image", "real_image")


def _summary_writer(log_dir):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise SystemExit(f"--tf_log needs the tensorboard package, which cannot be imported ({e}): "
                         f"pip install tensorboard, or train without --tf_log") from e
    return SummaryWriter(log_dir)


def read_loss_log(path):
    """loss_log.txt -> [(epoch, {name: value})], one entry per logged line, in file order."""
    history = []
    if not os.path.exists(path):
        return history
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LOG_LINE_RE.match(line.strip())
            if m:
                errors = {}
                for name, value in LOG_VALUE_RE.findall(m.group(3)):
                    try:
                        errors[name] = float(value)
                    except ValueError:
                        pass
                history.append((int(m.group(1)), errors))
    return history


def nice_ticks(lo, hi, target=5):
    """About `target` round values (1, 2 or 5 times a power of ten apart) in [lo, hi], with their labels."""
    raw = (hi - lo) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    decimals = max(0, -math.floor(math.log10(step)))
    first = math.ceil(lo / step)
    ticks = [k * step for k in range(first, math.floor(hi / step) + 1)]
    return [(v, f"{v:.{decimals}f}") for v in ticks]


def draw_loss_curves(history, path, size=(900, 420)):
    """Line chart of [(epoch, {name: value})] to a PNG: one point per entry, ticks where epochs begin."""
    draw_chart_panels([history], path, size)


def draw_chart_panels(histories, path, size=(900, 420)):
    """Line charts of several histories (each as draw_loss_curves takes), stacked in one PNG."""
    panels = [chart(history, size) for history in histories]
    image = Image.new("RGB", (size[0], size[1] * len(panels)), "white")
    for k, panel in enumerate(panels):
        image.paste(panel, (0, size[1] * k))
    with util.atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def chart(history, size):
    """One line chart of [(epoch, {name: value})] as a PIL image."""
    width, height = size
    left, right, top, bottom, legend_w = 70, 20, 20, 45, 150
    x0, x1, y0, y1 = left, width - right - legend_w, top, height - bottom   # plot area
    font = ImageFont.load_default()
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)

    names = list(OrderedDict((n, None) for _, errors in history for n in errors))
    values = [v for _, errors in history for v in errors.values() if math.isfinite(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    lo, hi = lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)
    n = len(history)

    def px(k):
        return x0 + (x1 - x0) * (k / (n - 1) if n > 1 else 0.5)

    def py(v):
        return y1 - (y1 - y0) * (v - lo) / (hi - lo)

    # axes, y ticks
    draw.rectangle([x0, y0, x1, y1], outline="black")
    for v, label in nice_ticks(lo, hi):
        draw.line([x0 - 4, py(v), x0, py(v)], fill="black")
        draw.line([x0 + 1, py(v), x1 - 1, py(v)], fill=(230, 230, 230))
        draw.text((5, py(v) - 6), label, fill="black", font=font)
    # x ticks at the first entry of each epoch, thinned to at most ~12 labels
    starts = [k for k, (epoch, _) in enumerate(history) if k == 0 or history[k - 1][0] != epoch]
    step = max(1, math.ceil(len(starts) / 12))
    for k in starts[::step]:
        draw.line([px(k), y1, px(k), y1 + 4], fill="black")
        draw.text((px(k) - 6, y1 + 7), str(history[k][0]), fill="black", font=font)
    draw.text(((x0 + x1) // 2 - 15, height - 18), "epoch", fill="black", font=font)

    for c, name in enumerate(names):
        color = CURVE_COLORS[c % len(CURVE_COLORS)]
        segment = []
        for k, (_, errors) in enumerate(history + [(None, {})]):   # sentinel flushes the last segment
            v = errors.get(name, float("nan"))
            if math.isfinite(v):
                segment.append((px(k), py(v)))
                continue
            if len(segment) > 1:
                draw.line(segment, fill=color, width=2)
            elif segment:
                (x, y), = segment
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
            segment = []
        ly = y0 + 16 * c
        draw.line([x1 + 12, ly + 6, x1 + 32, ly + 6], fill=color, width=3)
        draw.text((x1 + 38, ly), name, fill="black", font=font)
    return image


class Visualizer:
    def __init__(self, opt):
        self.opt = opt
        self.win_size = opt.display_winsize
        self.n_label_colors = opt.label_nc + 2   # SPADE's count: room for the dontcare / instance ids
        if not opt.isTrain:
            return

        self.tile = opt.batchSize > 8
        self.use_html = not opt.no_html
        expr_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.writer = _summary_writer(os.path.join(expr_dir, "logs")) if opt.tf_log else None
        self.web_dir = os.path.join(expr_dir, "web")
        self.img_dir = os.path.join(self.web_dir, "images")
        if self.use_html:
            util.mkdirs(self.img_dir)
        util.mkdirs(expr_dir)
        self.log_name = os.path.join(expr_dir, "loss_log.txt")
        self.loss_history = read_loss_log(self.log_name)   # a resumed run keeps its curve
        self.display_order = list(DISPLAY_ORDER)          # until the model names its pictures
        self.epoch = self.loss_history[-1][0] if self.loss_history else 0
        with open(self.log_name, "a", encoding="utf-8") as log_file:
            log_file.write(f"================ Training Loss ({time.strftime('%c')}) ================\n")

    # ---------------------------------------------------------------- training
    def print_current_errors(self, epoch, i, errors, t, progress=""):
        """errors: {name: float}; t: seconds per image; progress: appended on stdout only."""
        self.epoch = epoch
        message = "(epoch: %d, iters: %d, time: %.3f) " % (epoch, i, t)
        for name, value in errors.items():
            message += "%s: %.3f " % (name, _scalar(value))
        print(message + progress, flush=True)
        with open(self.log_name, "a", encoding="utf-8") as log_file:
            log_file.write(message + "\n")

    def plot_current_errors(self, errors, step):
        """Add a point to the loss curves (drawn on the next display) and to TensorBoard at `step`.

        The curves count points, one per call, labelled by epoch (the last one printed or displayed): the
        curve re-read from loss_log.txt, which holds no step, is then drawn exactly as it was before a restart.
        """
        errors = {name: _scalar(value) for name, value in errors.items()}
        self.loss_history.append((self.epoch, errors))
        if self.writer is not None:
            for name, value in errors.items():
                self.writer.add_scalar(name, value, step)

    def display_current_results(self, visuals, epoch, step):
        """visuals: {name: tensor}; labels (B, 1, H, W) ids, images (B, 3, H, W) in [-1, 1]."""
        self.epoch = epoch
        pictures = self.convert_visuals_to_numpy(visuals, tile=self.tile)
        if self.writer is not None:
            for name, picture in pictures.items():
                self.writer.add_image(name, picture, step, dataformats="HWC")
            self.writer.flush()
        if not self.use_html:
            return
        for name, picture in pictures.items():
            util.save_image(picture, os.path.join(self.img_dir, DISPLAY_NAME % (epoch, step, name)))
        if self.loss_history:
            draw_loss_curves(self.loss_history, os.path.join(self.web_dir, "loss_curves.png"))
        self.display_order = list(pictures)
        self.write_index()

    def write_index(self):
        """Rebuild web/index.html from every display step saved in web/images, newest first; each row's pictures
        in the order the model names them (label, synthesized, real, then the generator's extra images), also
        when the page is rebuilt for another reason (a new eval_curves.png)."""
        order = self.display_order
        steps = {}
        for file_name in os.listdir(self.img_dir):
            m = DISPLAY_RE.match(file_name)
            if m:
                steps.setdefault((int(m.group(1)), int(m.group(2))), []).append((m.group(3), file_name))

        def rank(entry):
            name = entry[0]
            return (order.index(name) if name in order else len(order), name)

        webpage = HTML(self.web_dir, f"Experiment name = {self.opt.name}", refresh=REFRESH_SECONDS)
        for figure in ("loss_curves.png", "eval_curves.png"):  # FID, mIoU: --eval_freq
            if os.path.exists(os.path.join(self.web_dir, figure)):
                webpage.add_figure(figure)
        for (epoch, step) in sorted(steps, reverse=True):
            entries = sorted(steps[(epoch, step)], key=rank)
            webpage.add_header(f"epoch [{epoch}], iter [{step}]")
            files = [file_name for _, file_name in entries]
            webpage.add_images(files, [name for name, _ in entries], files, width=self.win_size)
        webpage.save()

    # ---------------------------------------------------------------- shared
    def convert_visuals_to_numpy(self, visuals, tile=False):
        """{name: tensor} -> {name: uint8 (H, W, 3)}; integer tensors and names with 'label' are label maps."""
        pictures = OrderedDict()
        for name, t in visuals.items():
            if isinstance(t, np.ndarray):
                pictures[name] = t
            elif "label" in name or not t.is_floating_point():
                pictures[name] = util.tensor2label(t, self.n_label_colors, tile=tile,
                                                   dataset_mode=self.opt.dataset_mode)
            else:
                pictures[name] = util.tensor2im(t, tile=tile)
        return pictures

    # ---------------------------------------------------------------- test
    def save_images(self, webpage, visuals, image_path):
        """Save one sample's visuals as images/<name>/<basename>.png and add its header and row.

        image_path: the source file's path (or a list whose first item is it), e.g. data['path'][b:b + 1].
        """
        if isinstance(image_path, (list, tuple)):
            image_path = image_path[0]
        basename = os.path.splitext(ntpath.basename(str(image_path)))[0]
        pictures = self.convert_visuals_to_numpy(visuals, tile=False)

        webpage.add_header(basename)
        ims = []
        for name, picture in pictures.items():
            image_name = os.path.join(name, basename + ".png")
            util.save_image(picture, os.path.join(webpage.get_image_dir(), image_name))
            ims.append(image_name)
        webpage.add_images(ims, list(pictures), ims, width=self.win_size)


def _scalar(value):
    """A float from a float or a tensor (a tensor is averaged, e.g. one value per GPU)."""
    return float(value.detach().float().mean()) if torch.is_tensor(value) else float(value)
