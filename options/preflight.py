"""Checks made before anything is built or created: what train.py (and test.py) can know from the options
and the file system alone. Every problem found becomes one line naming the option and the file, and all of them
are reported at once (`Problems`), so a run with no dataset and no VGG file says both, in seconds, instead of
one per run after building a generator; and a run that stops here leaves no experiment folder behind.
"""
import os

import data
from checkpointing.storage import CheckpointError, check_writable, network_path
from evaluation import metrics
from models import MODELS
from models.networks.loss import missing_vgg_message
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
        note = "" if dataroot_given else f" (--dataroot was not given: {opt.dataroot} is its default)"
        if opt.dataroot in str(e) and not os.path.isdir(opt.dataroot):
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
    problems = []
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
            problems.append(file_problem(opt.seg_model, "--seg_model", metrics.SEG_HOW, asked))
        if dataset is not None:  # else the same folders were named already
            _, problem = dataset_or_problem(validation_options(opt), dataroot_given)
            problems.append(f"{asked}, the validation images: {problem}" if problem else None)
    return [p for p in problems if p], dataset


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
    dataset, problem = dataset_or_problem(opt)
    problems += [problem, folder_problem(web_dir, "--results_dir")]
    return [p for p in problems if p], dataset
