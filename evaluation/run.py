"""The evaluation run behind evaluate.py: metrics over the validation set, metrics.json and an HTML page.

`Evaluation(opt)` sets up the protocol's metrics (evaluation/protocols.py; each from a local weights file,
checked before any image is made), `add(fake, real, label)` takes one batch, `finish(...)` returns {'metrics',
'protocol', 'experiment'[, 'speed']}, and `write(...)` writes results_dir/NAME/eval_EPOCH/metrics.json and
index.html. `protocol` holds the protocol's name, the dataset mode and `settings`, everything that decides whether
two results can be compared (segmenter and its input size, label mapping, dontcare handling, metrics, image count
and size), then the details: the data options the dataset mode uses, resize filters, the libraries, per-class IoU
with class names, and the sha256 of every weights file.
"""
import json
import ntpath
import os
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image

from checkpointing.storage import atomic_write_bytes, network_path
from evaluation import metrics as M
from evaluation import protocols
from inference.synthesizer import generator_label
from util import util
from util.html import HTML

FID_COUNT_NOTE = ("FID depends on the number of images: it is biased upwards for small sets (two disjoint samples "
                  "of one distribution, real 64x64 synthetic-dataset images, give FID 65 at 64 + 64 images and 44 at "
                  "128 + 128), so compare FIDs only at equal image counts and protocols.")


def library_version(name):
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def sample_name(path):
    return os.path.splitext(ntpath.basename(str(path)))[0]


def portable_path(path, experiment_folder):
    """How metrics.json names a file, without the machine's folders: relative to the experiment's folder
    (checkpoints_dir/NAME) for its own files, else to the folder evaluate.py ran in, else under ~; any other file
    by its name alone (its sha256 beside it says which file it was)."""
    path = os.path.abspath(path)
    for start, prefix in ((os.path.abspath(experiment_folder), ""), (os.getcwd(), ""),
                          (os.path.expanduser("~"), "~/")):
        if start != os.sep and os.path.commonpath([path, start]) == start:
            return prefix + os.path.relpath(path, start).replace(os.sep, "/")
    return os.path.basename(path)


def results_folder(opt):
    """Where test.py wrote the synthesized images of this experiment."""
    return os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.which_epoch}", "images", "synthesized_image")


def read_result_images(folder, paths, size):
    """The synthesized PNGs named after the samples in `paths` -> (B, 3, H, W) in [-1, 1]."""
    images = []
    for path in paths:
        file = os.path.join(folder, sample_name(path) + ".png")
        if not os.path.isfile(file):
            raise FileNotFoundError(f"--from_results: {file} not found (run test.py with the same --name, "
                                    f"--which_epoch and --results_dir first)")
        picture = np.asarray(Image.open(file).convert("RGB"))
        if picture.shape[:2] != tuple(size):
            raise ValueError(f"--from_results: {file} is {picture.shape[1]}x{picture.shape[0]}, the real images "
                             f"are {size[1]}x{size[0]} (same --crop_size as test.py?)")
        images.append(torch.from_numpy(picture.copy()).permute(2, 0, 1).float() / 127.5 - 1)
    return torch.stack(images)


def data_settings(opt):
    """The data options that decide which images `opt.dataset_mode` loads and how: the common geometry, the
    options its hook adds, and --dataroot only when the hook sets its default (the modes that read it)."""
    import argparse

    import data
    scratch = argparse.ArgumentParser(add_help=False)
    scratch.add_argument("--dataroot", default=None)
    data.DATASETS.get(opt.dataset_mode).modify_commandline_options(scratch, False)
    own = [a.dest for a in scratch._actions if a.dest != "dataroot"]
    settings = OrderedDict(dataset_mode=opt.dataset_mode)
    if scratch.get_default("dataroot") is not None:
        settings["dataroot"] = opt.dataroot and portable_path(opt.dataroot, os.path.join(opt.checkpoints_dir,
                                                                                       opt.name))
    settings.update((k, getattr(opt, k)) for k in own)
    settings.update(phase=opt.phase, label_nc=opt.label_nc, contain_dontcare_label=opt.contain_dontcare_label,
                    no_instance=opt.no_instance, preprocess_mode=opt.preprocess_mode, load_size=opt.load_size,
                    crop_size=opt.crop_size, aspect_ratio=opt.aspect_ratio)
    return settings


def custom_dontcare(opt, mapped):
    """Which target pixels the custom protocol does not count, in words."""
    ignored = [f"dontcare (id {opt.label_nc})"] if opt.contain_dontcare_label else []
    ignored += ["ids missing from --seg_label_map"] if mapped else []
    return " and ".join(ignored) + " not counted" if ignored else "none (every pixel counted)"


class Evaluation:
    def __init__(self, opt, device="cpu"):
        self.opt, self.device = opt, device
        self.count, self.image_size = 0, None
        self.weights = OrderedDict()
        self.lpips_values = []
        self.real_features = self.fake_features = self.lpips = self.segmenter = None
        self.paper = protocols.chosen_protocol(opt)
        asked = set(opt.metrics)

        if asked & {"fid", "kid"}:
            extractor = M.load_inception(opt.inception_weights, device)
            self.weights["inception"] = opt.inception_weights
            self.real_features, self.fake_features = M.InceptionFeatures(extractor), M.InceptionFeatures(extractor)
        if "lpips" in asked:
            self.lpips = M.load_lpips(opt.lpips_net, opt.lpips_weights, device)
            self.weights[f"lpips_{opt.lpips_net}"] = opt.lpips_weights
        if "miou" in asked:
            self.segmenter = protocols.segmentation_scorer(opt, device)
            if self.paper is not None:
                for i, path in enumerate(self.segmenter.weights):
                    self.weights[f"segmenter_{i}" if len(self.segmenter.weights) > 1 else "segmenter"] = path
            else:
                self.weights["seg_model"] = opt.seg_model
            self.seg_scores = self.real_seg_scores = None   # sized at the first batch
        self.generator_file = None
        if not opt.from_results:   # the file that renders the images: the EMA generator when there is one
            folder = os.path.join(opt.checkpoints_dir, opt.name)
            generator = network_path(folder, opt.which_epoch, generator_label(folder, opt.which_epoch, not opt.no_ema))
            if os.path.isfile(generator):
                self.weights["generator"] = self.generator_file = generator

    # -------------------------------------------------------------------------------------------------
    def add(self, fake, real, label):
        """fake, real: (B, 3, H, W) in [-1, 1]; label: (B, 1, H, W) dataset class ids. -> {name: (B, ...)}
        of extra pictures for the example rows (the segmentation of the synthesized image)."""
        self.count += fake.shape[0]
        self.image_size = list(fake.shape[2:])
        extras = {}
        if self.real_features is not None:
            self.fake_features.update(M.to_uint8(fake))
            self.real_features.update(M.to_uint8(real))
        if self.lpips is not None:
            self.lpips_values.append(M.lpips_distance(self.lpips, fake, real))
        if self.segmenter is not None:
            predicted_fake, predicted_real = self.segmenter.predict(fake), self.segmenter.predict(real)
            target = self.segmenter.targets(label)
            if self.seg_scores is None:
                self.seg_scores, self.real_seg_scores = self.segmenter.new_scores(), self.segmenter.new_scores()
            self.seg_scores.update(predicted_fake, target)
            self.real_seg_scores.update(predicted_real, target)
            extras["segmented_label"] = predicted_fake[:, None]
        return extras

    # -------------------------------------------------------------------------------------------------
    def settings(self):
        """What decides comparability: the protocol's segmenter, label mapping, metrics, images."""
        opt, settings = self.opt, OrderedDict()
        settings["metrics"] = list(opt.metrics)
        settings["num_images"] = self.count
        settings["image_size_hw"] = self.image_size
        if self.paper is not None:
            settings["paper_image_size_hw"] = list(self.paper.image_size_hw)
        # the segmentation keys are always there (null without mIoU), so readers can compare them directly
        settings.update(segmenter=None, segmenter_input_size=None, label_mapping=None, dontcare=None)
        if "miou" in opt.metrics:
            if self.paper is not None:
                spec = self.paper.segmenter
                settings.update(segmenter=spec.network, segmenter_files=list(spec.files),
                                segmenter_input_size=spec.input_size, label_mapping=spec.label_mapping,
                                dontcare=spec.dontcare)
            else:
                settings.update(segmenter=f"TorchScript --seg_model {os.path.basename(opt.seg_model)}",
                                segmenter_input_size="the image as generated",
                                label_mapping=(f"--seg_label_map ({len(self.segmenter.label_map)} pairs)"
                                               if self.segmenter.label_map else "identity"),
                                dontcare=custom_dontcare(opt, bool(self.segmenter.label_map)))
            settings["accuracy"] = protocols.ACCURACY_NOTE
        if self.real_features is not None:
            settings["inception"] = f"torch-fidelity {M.INCEPTION_EXTRACTOR}, pool3, bilinear (TF1) to 299x299"
        if self.lpips is not None:
            settings["lpips"] = f"{opt.lpips_net}, v0.1"
        deviations = []
        if self.paper is not None and self.image_size is not None and \
                list(self.paper.image_size_hw) != self.image_size:
            h, w = self.paper.image_size_hw
            deviations.append(f"images are {self.image_size[0]}x{self.image_size[1]} (HxW), the paper's "
                              f"{opt.dataset_mode} images {h}x{w}")
        if self.paper is not None and set(opt.metrics) != set(self.paper.metrics):
            deviations.append(f"measured {','.join(opt.metrics)} of the paper's {','.join(self.paper.metrics)}")
        settings["deviations"] = deviations
        return settings

    def finish(self, class_names=None, generator_parameters=None, speed=None):
        """-> the summary written to metrics.json. class_names: the dataset's (per label id) or None;
        generator_parameters: the generator's parameter count when it ran; speed: {'generator_images_per_s',
        'device', 'threads'} when it ran."""
        opt = self.opt
        experiment = os.path.join(opt.checkpoints_dir, opt.name)   # files are named relative to it (portable_path)
        results, protocol = OrderedDict(), OrderedDict()
        protocol["name"] = opt.protocol
        protocol["dataset_mode"] = opt.dataset_mode
        if self.paper is not None:
            protocol["source"] = self.paper.source
        protocol["settings"] = self.settings()
        protocol["num_images"] = self.count
        protocol["image_size_hw"] = self.image_size
        protocol["seed"] = opt.seed
        protocol["data"] = data_settings(opt)
        protocol["data"].update(
            image_resize_filter="bicubic (PIL) at loading", label_resize_filter="nearest (PIL) at loading",
            synthesized_images=(f"read from {portable_path(results_folder(opt), experiment)}" if opt.from_results
                                else f"generator {opt.netG}, checkpoint {opt.which_epoch}"))
        if self.real_features is not None:
            real, fake = self.real_features.features(), self.fake_features.features()
            protocol["inception"] = OrderedDict(
                library=f"torch-fidelity {library_version('torch-fidelity')}", extractor=M.INCEPTION_EXTRACTOR,
                feature="2048 (pool3)", input=f"uint8 {self.image_size[0]}x{self.image_size[1]}, rounded from [-1, 1]",
                resize="TF1-compatible bilinear to 299x299 (torch-fidelity), then (x - 128) / 128",
                compared="synthesized vs real images of the same label maps")
            if "fid" in opt.metrics:
                results["fid"] = M.fid(fake, real)
            if "kid" in opt.metrics:
                mean, std, size = M.kid(fake, real, opt.kid_subsets, opt.kid_subset_size, seed=opt.seed)
                results["kid"] = mean
                if std is not None:
                    results["kid_std"] = std
                protocol["kid"] = OrderedDict(
                    subsets=opt.kid_subsets if std is not None else 1, subset_size=size,
                    subset_size_rule=f"--kid_subset_size {opt.kid_subset_size}, at most half the images so "
                                     f"that subsets differ; fewer than 4 images: one subset, no std",
                    seed=opt.seed, kernel="polynomial (x.y / 2048 + 1)^3, unbiased MMD^2")
            protocol["fid_note"] = FID_COUNT_NOTE
        if self.lpips is not None:
            values = torch.cat(self.lpips_values)
            results["lpips"] = float(values.mean())
            protocol["lpips"] = OrderedDict(
                library=f"lpips {library_version('lpips')}", net=opt.lpips_net, version="0.1",
                input=f"[-1, 1] {self.image_size[0]}x{self.image_size[1]}, no resize",
                compared="each synthesized image vs the real image of its label map, averaged")
        if self.segmenter is not None:
            fake_scores, real_scores = self.seg_scores.compute(), self.real_seg_scores.compute()
            results["miou"], results["pixel_accuracy"] = fake_scores["miou"], fake_scores["pixel_accuracy"]
            results["miou_real"], results["pixel_accuracy_real"] = real_scores["miou"], real_scores["pixel_accuracy"]
            names = self.segmenter.class_names(class_names)
            segmentation = OrderedDict(
                library=f"torchmetrics {library_version('torchmetrics')} (confusion matrix)",
                input=f"[-1, 1] {self.image_size[0]}x{self.image_size[1]}",
                classes=len(fake_scores["per_class_iou"]))
            if self.paper is None:
                segmentation["label_map"] = ({str(k): v for k, v in self.segmenter.label_map.items()}
                                             if self.segmenter.label_map else "identity")
            segmentation.update(
                averaging="one confusion matrix over all pixels; IoU per class occurring in target or "
                          "prediction, then the mean (classes that never occur: null); *_real: the same "
                          "segmenter on the real images",
                per_class_iou=OrderedDict(zip(names, fake_scores["per_class_iou"])),
                per_class_iou_real=OrderedDict(zip(names, real_scores["per_class_iou"])))
            protocol["segmentation"] = segmentation
        protocol["weights_sha256"] = OrderedDict((k, {"path": portable_path(p, experiment), "sha256": M.sha256(p)})
                                                 for k, p in self.weights.items())
        summary = OrderedDict(metrics=results, protocol=protocol)
        summary["experiment"] = OrderedDict(
            name=opt.name, which_epoch=opt.which_epoch, netG=opt.netG,
            generator_file=portable_path(self.generator_file, experiment) if self.generator_file else None,
            parameters={"G": generator_parameters})
        if speed is not None:
            summary["speed"] = speed
        return summary


def save_example(visualizer, web_dir, visuals, path):
    """Save one sample's pictures under web_dir/images/<visual>/<name>.png -> (name, [(caption, file)])."""
    name = sample_name(path)
    cells = []
    for caption, picture in visualizer.convert_visuals_to_numpy(visuals).items():
        file = os.path.join(caption, name + ".png")
        util.save_image(picture, os.path.join(web_dir, "images", file))
        cells.append((caption, file))
    return name, cells


def write(web_dir, title, summary, example_rows):
    """web_dir/metrics.json and web_dir/index.html: the example rows first, then the numbers, the protocol's name
    and FID note, and the protocol, experiment and speed as JSON, folded away.

    example_rows: [(name, [(caption, file relative to web_dir/images)])]."""
    from dominate.tags import details, p, pre, table, td, th, tr
    from dominate.tags import summary as fold

    atomic_write_bytes(os.path.join(web_dir, "metrics.json"), (json.dumps(summary, indent=2) + "\n").encode())
    page = HTML(web_dir, title)
    for name, cells in example_rows:
        page.add_header(name)
        page.add_images([f for _, f in cells], [c for c, _ in cells], [f for _, f in cells], width=192)
    page.add_header("Metrics")
    with page.doc:
        with table(border=1, style="border-collapse: collapse;"):
            tr(th("metric"), th("value"))
            for name, value in summary["metrics"].items():
                tr(td(name), td(f"{value:.4f}" if isinstance(value, float) else str(value)))
        protocol = summary["protocol"]
        p(f"Protocol '{protocol['name']}' on {protocol['dataset_mode']}, {protocol['num_images']} images. " +
          (FID_COUNT_NOTE if "fid_note" in protocol else ""))
        for line in protocol["settings"]["deviations"]:
            p(f"Deviation from the paper's protocol: {line}.")
        with details():
            fold("Protocol, experiment and speed (as in metrics.json)")
            pre(json.dumps({k: summary[k] for k in ("protocol", "experiment", "speed") if k in summary}, indent=2))
    return page.save()
