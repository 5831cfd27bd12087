"""--num_threads (options/base_options.py): PyTorch's CPU threads of train.py, test.py, evaluate.py and demo.py,
set before any work and printed in the run's header."""
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from options.demo_options import DemoOptions
from options.eval_options import EvalOptions
from options.test_options import TestPageOptions
from options.train_options import TrainOptions
from tests.test_inference import GENERATOR_ARGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the options class each command parses (train.py, test.py, evaluate.py, demo.py), and its arguments
COMMANDS = {"train.py": TrainOptions, "test.py": TestPageOptions, "evaluate.py": EvalOptions, "demo.py": DemoOptions}


@pytest.fixture
def threads_kept(monkeypatch):
    """Restores this process's intra-op threads afterwards; inter-op threads can be set once per process, so the
    call is recorded instead of made."""
    asked = []
    monkeypatch.setattr(torch, "set_num_interop_threads", asked.append)
    before = torch.get_num_threads()
    yield asked
    torch.set_num_threads(before)


def test_every_command_parses_one_of_these_options_classes():
    for script, options in COMMANDS.items():
        assert f"{options.__name__}()" in open(os.path.join(ROOT, script)).read(), script


@pytest.mark.parametrize("script", sorted(COMMANDS))
def test_num_threads_sets_pytorchs_threads_and_the_header_says_so(script, tiny_experiment, tmp_path, threads_kept):
    folder, _ = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    argv = ["--name", folder.name, "--checkpoints_dir", str(folder.parent), "--gpu_ids", "-1"]
    if script == "train.py":
        argv = ["--name", "threads", "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1", "--dataset_mode",
                "synthetic"]
    wanted = 3 if torch.get_num_threads() != 3 else 2   # not what PyTorch chose for this machine
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        opt = COMMANDS[script]().parse(argv + ["--num_threads", str(wanted)], save=False)
    assert opt.num_threads == wanted and torch.get_num_threads() == wanted and threads_kept == [wanted]
    assert f"\nthreads: {wanted} intra-op, " in out.getvalue()
    assert f"(--num_threads {wanted})\n" in out.getvalue()


def test_without_num_threads_pytorchs_choice_stays_and_the_header_says_so(tiny_experiment, threads_kept):
    folder, _ = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    before = torch.get_num_threads()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        opt = TestPageOptions().parse(["--name", folder.name, "--checkpoints_dir", str(folder.parent)])
    assert opt.num_threads == 0 and torch.get_num_threads() == before and threads_kept == []
    assert (f"\nthreads: {before} intra-op, {torch.get_num_interop_threads()} inter-op (PyTorch's choice; "
            f"--num_threads N to change)\n") in out.getvalue()


def test_test_py_does_not_take_the_num_threads_training_was_given(tiny_experiment, tmp_path, threads_kept):
    """A run's thread count belongs to the machine it runs on, not to the trained model."""
    folder, _ = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    copy = tmp_path / "checkpoints" / folder.name
    shutil.copytree(folder, copy)
    saved = json.loads((copy / "opt.json").read_text())
    (copy / "opt.json").write_text(json.dumps(dict(saved, num_threads=1)))
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TestPageOptions().parse(["--name", folder.name, "--checkpoints_dir", str(copy.parent)])
    assert opt.num_threads == 0 and threads_kept == []


def test_test_py_runs_with_the_threads_it_was_given(tiny_experiment, tmp_path):
    """In a process of its own, where the inter-op threads can still be set."""
    folder, _ = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    wanted = 3 if (os.cpu_count() or 1) != 3 else 2
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    run = subprocess.run([sys.executable, "test.py", "--name", folder.name, "--checkpoints_dir", str(folder.parent),
                          "--results_dir", str(tmp_path), "--gpu_ids", "-1", "--how_many", "1", "--num_threads",
                          str(wanted)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert f"\nthreads: {wanted} intra-op, {wanted} inter-op (--num_threads {wanted})\n" in run.stdout
