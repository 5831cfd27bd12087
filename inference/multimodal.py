"""Multimodal synthesis and style interpolation through the VAE encoder (paper §4.2, Figure 8).

A model trained with --use_vae renders a layout from a style code z (B, z_dim). test.py adds two kinds of rows
to the result page:
  --n_samples K (K >= 2)   input label, sample_1 .. sample_K, real image: K random codes z_k ~ N(0, I), drawn
                           once from --seed, so column k shows one style across all labels and a rerun gives
                           the same images; the real image is not encoded.
  --interpolate STEPS      input label, style A, STEPS results for z = (1 - t) z_a + t z_b with t = 0 .. 1,
  --style_a A --style_b B  style B; z_a, z_b are the posterior means mu of the two encoded style images.
Files: images/<visual>/<label basename>.png, as SPADE's test page, and images/style/style_{a,b}.png once.
Every result is one pass of the Synthesizer's generator (inference/synthesizer.py: spectral norms folded, in
test.py's --precision) per code over the batch of labels, so a code's image is `synth.generate(layout, z)` for
that batch.
"""
import ntpath
import os
from collections import OrderedDict

import torch
from PIL import Image

from data.base_dataset import check_crop_fits, image_to_tensor, open_image, preprocess, resized_size
from util import util


def check_options(opt):
    """Raise ValueError naming the option when --n_samples / --interpolate / --style_a / --style_b cannot work
    together (each one's range is declared with the option, options/test_options.py)."""
    if opt.interpolate is None:
        given = [name for name in ("style_a", "style_b") if getattr(opt, name)]
        if given:
            raise ValueError(f"--{given[0]} is used only with --interpolate STEPS")
    else:
        missing = [f"--{name}" for name in ("style_a", "style_b") if not getattr(opt, name)]
        if missing:
            raise ValueError(f"--interpolate needs --style_a IMG and --style_b IMG, the two style images to "
                             f"encode ({' and '.join(missing)} not given)")
        for name in ("style_a", "style_b"):
            if not os.path.isfile(getattr(opt, name)):
                raise ValueError(f"--{name} {getattr(opt, name)}: file not found")
    asked = [f"--n_samples {opt.n_samples}"] if opt.n_samples > 1 else []
    asked += [f"--interpolate {opt.interpolate}"] if opt.interpolate is not None else []
    if asked and not opt.use_vae:
        raise ValueError(f"{' and '.join(asked)} needs a model trained with --use_vae (an encoder and a style code "
                         f"z); '{opt.name}' was trained without it: train with --use_vae")


def asked(opt):
    """Whether test.py writes multimodal rows."""
    return opt.n_samples > 1 or opt.interpolate is not None


# ------------------------------------------------------------------------------------------------ codes
def load_style_image(path, opt):
    """An image file -> (1, 3, H, W) in [-1, 1], resized as the dataset's images are (--preprocess_mode,
    --load_size, --crop_size), a crop taken from the centre, never flipped. An unreadable file or one smaller
    than the crop raises DatasetError naming it."""
    img = open_image(path).convert("RGB")
    check_crop_fits(opt, img.size, path)
    w, h = resized_size(opt, img.size)
    params = {"crop_pos": ((w - opt.crop_size) // 2, (h - opt.crop_size) // 2), "flip": False}
    return image_to_tensor(preprocess(img, opt, params, Image.BICUBIC)).unsqueeze(0)


def interpolation_codes(z_a, z_b, steps: int):
    """z_a, z_b: (z_dim,) -> (steps, z_dim) rows (1 - t) z_a + t z_b for t = 0, 1/(steps-1), ..., 1; the first
    row is exactly z_a and the last exactly z_b."""
    if steps < 2:
        raise ValueError(f"--interpolate {steps}: needs at least 2 steps (t = 0 and t = 1)")
    t = torch.tensor([i / (steps - 1) for i in range(steps)], dtype=z_a.dtype, device=z_a.device)[:, None]
    return (1 - t) * z_a[None] + t * z_b[None]


def generate_per_code(synth, layout, codes):
    """synth: an inference.Synthesizer; layout: (B, semantic_nc, H, W); codes: (K, z_dim) -> K images
    (B, 3, H, W), image k rendered with code k for every label of the batch."""
    return [synth.generate(layout, style=z) for z in codes]


# ------------------------------------------------------------------------------------------------ page rows
def visual_names(prefix: str, n: int, start: int):
    """['sample_1', ..., 'sample_9'] or, for 10 and more, zero-padded so the folders sort in order."""
    width = len(str(start + n - 1))
    return [f"{prefix}_{i:0{width}d}" for i in range(start, start + n)]


class MultimodalRows:
    """Writes test.py's rows for a --use_vae model: per label, the samples row (or, with --n_samples 1, the
    usual input / synthesized / real row) and the interpolation row when --interpolate is given."""

    def __init__(self, synth, opt, visualizer, webpage):
        """synth: the inference.Synthesizer of the experiment (a --use_vae one, with its encoder)."""
        self.synth, self.opt, self.visualizer, self.webpage = synth, opt, visualizer, webpage
        # z ~ N(0, I) from a CPU generator seeded by --seed: the same codes on every run and device
        self.codes = synth.random_codes(opt.n_samples, opt.seed) if opt.n_samples > 1 else None
        self.sample_names = visual_names("sample", opt.n_samples, 1)
        self.interpolation = None
        if opt.interpolate is not None:
            styles = [load_style_image(getattr(opt, name), opt) for name in ("style_a", "style_b")]
            z_a, z_b = (synth.encode_style(image)[0].float() for image in styles)   # the posterior means
            self.interpolation = interpolation_codes(z_a, z_b, opt.interpolate)
            self.step_names = visual_names("interp", opt.interpolate, 0)
            self.style_files = []
            for name, image in zip(("style_a", "style_b"), styles):
                file_name = os.path.join("style", f"{name}.png")
                util.save_image(util.tensor2im(image), os.path.join(webpage.get_image_dir(), file_name))
                self.style_files.append(file_name)

    def write(self, data_i, count: int):
        """data_i: a test batch (without 'image' when the test set has labels only); rows for its first `count`
        labels."""
        has_images = "image" in data_i
        layout = self.synth.layout_of_ids(data_i["label"].long(), data_i["instance"])
        if self.codes is None:  # the usual result: the real image's style when there is one
            single = self.synth.synthesize_batch(data_i)
        else:
            samples = generate_per_code(self.synth, layout, self.codes)
        if self.interpolation is not None:
            steps = generate_per_code(self.synth, layout, self.interpolation)
        for b in range(count):
            basename = os.path.splitext(ntpath.basename(str(data_i["path"][b])))[0]
            visuals = OrderedDict([("input_label", data_i["label"][b:b + 1])])
            if self.codes is None:
                visuals["synthesized_image"] = single[b:b + 1]
            else:
                visuals.update((name, image[b:b + 1]) for name, image in zip(self.sample_names, samples))
            if has_images:
                visuals["real_image"] = data_i["image"][b:b + 1]
            self.webpage.add_header(basename)
            files = self.save(basename, visuals)
            self.webpage.add_images(files, list(visuals), files, width=self.visualizer.win_size)
            if self.interpolation is not None:
                self.add_interpolation_row(basename, [image[b:b + 1] for image in steps])

    def add_interpolation_row(self, basename, images):
        """input label (saved by the row above), style A, the STEPS results, style B."""
        pictures = self.save(basename, OrderedDict(zip(self.step_names, images)))
        style_a, style_b = (f"{name}: {ntpath.basename(getattr(self.opt, name))}" for name in ("style_a", "style_b"))
        steps = len(images)
        captions = [f"t = {i / (steps - 1):.2f}" for i in range(steps)]
        files = ([os.path.join("input_label", basename + ".png"), self.style_files[0]] + pictures
                 + [self.style_files[1]])
        self.webpage.add_images(files, ["input_label", style_a, *captions, style_b], files,
                                width=self.visualizer.win_size)

    def save(self, basename, visuals):
        """visuals {name: (1, C, H, W)} -> their files images/<name>/<basename>.png, relative to images/."""
        files = []
        for name, picture in self.visualizer.convert_visuals_to_numpy(visuals).items():
            file_name = os.path.join(name, basename + ".png")
            util.save_image(picture, os.path.join(self.webpage.get_image_dir(), file_name))
            files.append(file_name)
        return files
