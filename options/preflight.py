"""Checks made before anything is built or created: what train.py (and test.py) can know from the options
and the file system alone. Every problem found becomes one line naming the option and the file, and all of them
are reported at once (`Problems`), so a run with no dataset and no VGG file says both, in seconds, instead of
one per run after building a generator; and a run that stops here leaves no experiment folder behind.
"""
import os

import data
from checkpointing.storage import CheckpointError, check_writable, first_nonfinite, network_path, safe_load
from evaluation import metrics, protocols
from inference.synthesizer import generator_label
from models import MODELS
from models.networks import GENERATORS
from models.networks.loss import missing_vgg_message
from models.networks.scgan_unpaired import SCGANUnpairedGenerator
from models.unpaired_model import UnpairedModel
from trainers.eval_monitor import validation_options
from trainers.pix2pix_trainer import check_fresh_start, existing_checkpoints


class Problems(Exception):
    """The problems found before building anything, one line each."""

    def __init__(self, lines):
        self.lines = list(lines)
        super().__init__(f"{len(self.lines)} problem{'s' if len(self.lines) > 1 else ''} found before building "
                         f"anything:\n" + "\n".join(f"  {line}" for line in self.lines))


def folder_problem(folder, option):
    """None if `folder` can be written (or created: its nearest existing parent can be written), without
    creating it; else one line."""
    if os.path.isdir(folder):
        try:
            check_writable(folder)  # a real write test (read-only mounts, full disks), removed at once
        except CheckpointError as e:
            return f"{option}: {e}"
        return None
    parent = os.path.dirname(os.path.abspath(folder))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{option}: cannot create {folder}: {parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{option}: cannot create {folder}: {parent} is not writable; choose another {option}"
    return None


def dataset_or_problem(opt, dataroot_given=True):
    """(the dataset of the options, None), or (None, one line) when its files cannot be listed."""
    try:
        dataset = data.DATASETS.get(opt.dataset_mode)(opt)
    except data.DatasetError as e:
        # the default --dataroot is worth a remark only where the error is about a folder under it (custom mode
        # reads --label_dir and --image_dir instead)
        about_dataroot = opt.dataroot in str(e)
        note = ("" if dataroot_given or not about_dataroot else
                f" (--dataroot was not given: {opt.dataroot} is its default)")
        if about_dataroot and not os.path.isdir(opt.dataroot):
            return None, (f"--dataroot {opt.dataroot}: no such folder{note}: pass --dataroot DIR holding the "
                          f"{opt.dataset_mode} layout (docs/datasets.md)")
        return None, f"--dataset_mode {opt.dataset_mode}: {e}{note}"
    if opt.isTrain and len(dataset) < opt.batchSize:
        return None, (f"--batchSize {opt.batchSize}: the {opt.dataset_mode} dataset has {len(dataset)} samples: "
                      f"lower --batchSize or add data")
    return dataset, None


def training_problems(opt, dataroot_given=True):
    """-> (problems, dataset): every problem train.py can see before building a network, one line each, and
    the training set (None when it has a problem) so that it is listed once."""
    problems = [model_problem(opt)]
    folder = os.path.join(opt.checkpoints_dir, opt.name)
    try:
        check_fresh_start(opt)
    except CheckpointError as e:
        problems.append(f"--name {opt.name}: {e}")
    if opt.continue_train and not existing_checkpoints(folder):
        problems.append(f"--continue_train: {folder} holds no checkpoint to resume (no *_net_G.pth, no saves/): "
                        f"check --name and --checkpoints_dir, or start afresh without --continue_train")
    problems.append(folder_problem(folder, "--checkpoints_dir"))

    if MODELS.get(opt.model).needs_vgg(opt) and not os.path.isfile(opt.vgg_weights):
        problems.append(missing_vgg_message(opt.vgg_weights, opt.vgg_net))

    dataset, problem = dataset_or_problem(opt, dataroot_given)
    problems.append(problem)

    if opt.eval_freq > 0:
        asked = "--eval_freq with --eval_metrics " + ",".join(opt.eval_metrics)
        if "fid" in opt.eval_metrics:
            problems.append(file_problem(opt.inception_weights, "--inception_weights", metrics.INCEPTION_HOW))
        if "miou" in opt.eval_metrics:
            problems.append(segmenter_problem(opt, asked))
        if dataset is not None:  # else the same folders were named already
            _, problem = dataset_or_problem(validation_options(opt), dataroot_given)
            problems.append(f"{asked}, the validation images: {problem}" if problem else None)
    return [p for p in problems if p], dataset


def segmenter_problem(opt, asked_by):
    """The files of --protocol's segmenter: the paper's (--segmenter_weights) or --seg_model; None if there."""
    protocol = protocols.chosen_protocol(opt)
    if protocol is None:
        return file_problem(opt.seg_model, "--seg_model", metrics.SEG_HOW, asked_by)
    try:
        protocols.check_weights(protocol.segmenter, opt.segmenter_weights)
    except metrics.MetricSetupError as e:
        return str(e)
    return None


def model_problem(opt):
    """--netG and --model that cannot train together, or None. An image-to-image generator (scgan_unpaired reads a
    source and a reference image) under a model that feeds label maps would be built, then fail at its first
    step; UnpairedModel refuses the other generators itself, when it is built."""
    if not issubclass(GENERATORS.get(opt.netG), SCGANUnpairedGenerator) or \
            issubclass(MODELS.get(opt.model), UnpairedModel):
        return None
    label_maps = [name for name in GENERATORS.names() if not issubclass(GENERATORS.get(name), SCGANUnpairedGenerator)]
    return (f"--netG {opt.netG} translates images (a source and a reference) and trains only under --model unpaired; "
            f"--model {opt.model} feeds its generator label maps: add --model unpaired (with --dataset_mode "
            f"unaligned or synthetic_unaligned), or choose a label-map generator: {', '.join(label_maps)}")


def nonfinite_problem(path, allowed):
    """One line when the network file `path` holds NaN/Inf values (a warning when `allowed`), else None. A file
    that cannot be read is left to the load, which names what is wrong with it."""
    try:
        found = first_nonfinite(safe_load(path))
    except (CheckpointError, OSError):
        return None
    if found is None:
        return None
    key, count = found
    what = f"{path} holds non-finite weights (NaN/Inf in {key}{f' and {count - 1} more tensors' if count > 1 else ''})"
    if allowed:
        return f"warning: {what}; writing its images anyway (--allow_nonfinite)"
    return (f"{what}: its images would be black or noise; test another --which_epoch (or --no_ema for the EMA "
            f"generator), or pass --allow_nonfinite to write them anyway")


def file_problem(path, option, how_to_make, asked_by=None):
    if path and os.path.isfile(path):
        return None
    if not path:
        return f"{asked_by} needs {option} PATH. {how_to_make}"
    return f"{option} {path}: file not found. {how_to_make}"


def test_problems(opt, web_dir):
    """-> (problems, dataset) for test.py, before the model is built: the network files to load, the dataset
    (its --dataroot comes from the experiment's saved options when not given) and the results folder (not
    created here)."""
    problems = []
    folder = os.path.join(opt.checkpoints_dir, opt.name)
    wanted = [("G", "G_ema")] + ([("E", None)] if opt.use_vae else [])
    for net, alternative in wanted:
        paths = [network_path(folder, opt.which_epoch, n) for n in (net, alternative) if n]
        if not any(os.path.isfile(p) for p in paths):
            held = sorted(f for f in os.listdir(folder) if f.endswith(".pth")) if os.path.isdir(folder) else []
            problems.append(f"--which_epoch {opt.which_epoch}: {paths[0]} not found (--name {opt.name} holds: "
                            f"{', '.join(held) or 'no .pth files'})")
            continue
        used = generator_label(folder, opt.which_epoch, not opt.no_ema) if net == "G" else net
        problem = nonfinite_problem(network_path(folder, opt.which_epoch, used), opt.allow_nonfinite)
        if problem and problem.startswith("warning: "):
            print(problem)  # asked for: said, and the test goes on
        else:
            problems.append(problem)
    dataset, problem = dataset_or_problem(opt)
    problems += [problem, folder_problem(web_dir, "--results_dir")]
    return [p for p in problems if p], dataset
