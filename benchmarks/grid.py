"""Grids of training runs, each trained, scored with one protocol and timed: the machinery shared by
benchmarks.ablation (SC-GAN's variants) and benchmarks.compare_generators (the generators side by side).

A grid is a list of `Run`s (an experiment name, its dataset, its seed and its train.py options). `run_grid` takes
them in turn: a run whose metrics.json exists is skipped, a trained one is only evaluated, an interrupted one goes
on with --continue_train and a new one is trained from the start. Before the runs, the bundled U-Net segmenter of
each dataset that has no --seg_model is trained once (python -m tools.train_segmenter). Every run is scored by one
`Protocol`: evaluate.py --metrics fid,lpips,miou --seed 0 on the first `images` test images, so every run of a
dataset is measured on the same layouts with the same segmenter. Every command's wall and CPU seconds are added to
OUT/timings.json, so a grid stopped and started again keeps the seconds of its earlier part.

Layout under OUT: checkpoints/NAME/ (train.py), results/NAME/eval_latest/metrics.json (evaluate.py),
DATASET_seg.pt (the segmenters trained here), timings.json.
"""
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The dataset modes drawn on the fly: no published segmenter exists for them, the grid trains the bundled U-Net.
PROCEDURAL = ("synthetic", "landscapes")
METRICS = "fid,lpips,miou"


@dataclass(frozen=True)
class Dataset:
    """One dataset of a grid. arguments: --dataroot DIR and any more dataset options, given to every command of
    the dataset (the segmenter's training, train.py, evaluate.py); seg_model: the segmenter for mIoU, trained by
    the grid first when `train_segmenter`, with `seg_arguments` (more tools.train_segmenter options)."""
    mode: str
    arguments: tuple
    seg_model: str
    train_segmenter: bool
    seg_arguments: tuple = ()


@dataclass(frozen=True)
class Protocol:
    """How every run is scored: the first `images` test images (evaluate.py --seed 0: the same layouts for every
    training seed), FID, LPIPS and the dataset segmenter's mIoU; the segmenters trained for `seg_iterations`
    steps; `eval_args`: more evaluate.py options."""
    images: int
    seg_iterations: int
    eval_args: tuple = ()
    gpu_ids: str = "-1"


@dataclass(frozen=True)
class Run:
    name: str
    dataset: Dataset
    seed: int
    options: tuple   # train.py options after the common ones: the network, the budget, a variant's options


def bundled_segmenter(out, mode):
    return os.path.join(out, f"{mode}_seg.pt")


def folders(out):
    """-> (checkpoints_dir, results_dir) of a grid written under `out`."""
    return os.path.join(out, "checkpoints"), os.path.join(out, "results")


def metrics_file(out, name):
    return os.path.join(folders(out)[1], name, "eval_latest", "metrics.json")


# ------------------------------------------------------------------------------------------------ commands
def segmenter_command(dataset, protocol):
    return [sys.executable, "-m", "tools.train_segmenter", "--dataset_mode", dataset.mode, "--out",
            dataset.seg_model, "--iterations", str(protocol.seg_iterations), *dataset.seg_arguments,
            *dataset.arguments]


def train_command(out, run, protocol, resume):
    checkpoints, _ = folders(out)
    return [sys.executable, "train.py", "--name", run.name, "--checkpoints_dir", checkpoints, "--dataset_mode",
            run.dataset.mode, "--seed", str(run.seed), "--gpu_ids", protocol.gpu_ids, *run.dataset.arguments,
            *run.options, *(["--continue_train"] if resume else [])]


def evaluate_command(out, run, protocol):
    checkpoints, results = folders(out)
    return [sys.executable, "evaluate.py", "--name", run.name, "--checkpoints_dir", checkpoints, "--results_dir",
            results, "--gpu_ids", protocol.gpu_ids, "--metrics", METRICS, "--seg_model", run.dataset.seg_model,
            "--how_many", str(protocol.images), "--seed", "0", "--num_examples", "4", *run.dataset.arguments,
            *protocol.eval_args]


def training_state(folder):
    """'none' (no checkpoint), 'partial' (a checkpoint, epochs left) or 'done' (its last epoch saved)."""
    from checkpointing.storage import newest_complete_unit
    saved = newest_complete_unit(folder, warn=lambda line: None) if os.path.isdir(folder) else None
    if saved is None:
        return "none"
    with open(os.path.join(folder, "opt.json"), encoding="utf-8") as f:
        options = json.load(f)
    return "done" if saved[1]["epoch"] > options["niter"] + options["niter_decay"] else "partial"


def steps(out, run, protocol):
    """What is left of a run: [] (evaluated already) or [(step, command)], step 'train' or 'evaluate'."""
    if os.path.isfile(metrics_file(out, run.name)):
        return []
    state = training_state(os.path.join(folders(out)[0], run.name))
    left = [] if state == "done" else [("train", train_command(out, run, protocol, state == "partial"))]
    return left + [("evaluate", evaluate_command(out, run, protocol))]


# ------------------------------------------------------------------------------------------------ timings
def load_timings(path):
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return {}


def write_json(path, content):
    """Write a JSON file atomically (a stop mid-write leaves the previous file)."""
    from checkpointing.storage import atomic_write_bytes
    atomic_write_bytes(path, (json.dumps(content, indent=2) + "\n").encode())


def save_timings(path, timings):
    write_json(path, timings)


def run_command(command, timings, label, timings_path):
    """Run one command from the repository root; add its wall and CPU seconds to timings[label] and save them.

    Added, not replaced: a run resumed after a stop keeps the seconds of its earlier part. A command that fails
    is counted too, then stops the script."""
    print("$ " + shlex.join(command), flush=True)
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
    result = subprocess.run(command, cwd=REPO)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = timings.setdefault(label, {"wall_s": 0.0, "cpu_s": 0.0})
    spent["wall_s"] = round(spent["wall_s"] + time.time() - start, 1)
    spent["cpu_s"] = round(spent["cpu_s"] + after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)
    save_timings(timings_path, timings)
    if result.returncode != 0:
        sys.exit(f"error: {label} failed (exit status {result.returncode}); fix it and run the same command again "
                 f"to go on from there")


def run_cpu_seconds(timings, name):
    """The CPU seconds a finished run took (its training and its evaluation), or None if either is unmeasured."""
    train, evaluate = timings.get(f"{name} train"), timings.get(f"{name} evaluate")
    if train is None or evaluate is None:
        return None
    return train["cpu_s"] + evaluate["cpu_s"]


# ------------------------------------------------------------------------------------------------ the grid
def run_grid(runs, out, protocol, dry_run=False):
    """Train the segmenters the runs need, then train (or resume) and evaluate every run not evaluated yet.
    dry_run: print the commands instead ('$ ' lines) and run nothing."""
    timings_path = os.path.join(out, "timings.json")
    timings = load_timings(timings_path)
    segmenters = {run.dataset.mode: run.dataset for run in runs if run.dataset.train_segmenter}
    for mode, dataset in segmenters.items():
        if os.path.isfile(dataset.seg_model):
            continue
        if dry_run:
            print("$ " + shlex.join(segmenter_command(dataset, protocol)))
            continue
        os.makedirs(os.path.dirname(dataset.seg_model) or ".", exist_ok=True)
        run_command(segmenter_command(dataset, protocol), timings, f"segmenter {mode}", timings_path)
    for run in runs:
        left = steps(out, run, protocol)
        if not left:
            print(f"{run.name}: evaluated already, skipped")
        for step, command in left:
            if dry_run:
                print("$ " + shlex.join(command))
                continue
            run_command(command, timings, f"{run.name} {step}", timings_path)
