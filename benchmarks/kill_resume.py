"""Robustness check (not a test): kill -9 a training run at random moments, resume it with --continue_train
until it finishes, and compare its final weights with an uninterrupted run. Random crops and flips are on.

    python -m benchmarks.kill_resume --trials 24 [--seed 0] [--out /tmp/kill_resume]

Each trial starts a fresh experiment and kills it 1 to 3 times, each time after a random delay measured from a
random 'saving the latest model' line (so kills land before, during and after saves), then resumes. A trial
passes when every resumed weight equals the uninterrupted run's bit for bit. Prints one line per trial and a
summary; exits non-zero if any trial fails.
"""
import argparse
import glob
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = ["--dataset_mode", "synthetic", "--gpu_ids", "-1", "--netG", "spade", "--ngf", "8", "--ndf", "8",
       "--batchSize", "2", "--crop_size", "32", "--load_size", "40", "--preprocess_mode", "resize_and_crop",
       "--num_synthetic", "16", "--niter", "2", "--niter_decay", "1", "--save_latest_freq", "4",
       "--print_freq", "1000", "--display_freq", "1000", "--save_epoch_freq", "1"]


def command(out, name, *extra):
    return [sys.executable, "-u", "train.py", "--name", name, "--checkpoints_dir", out, *RUN, *extra]


def weights(out, name):
    return torch.load(os.path.join(out, name, "latest_net_G.pth"), weights_only=True)


def mid_save(folder):
    """Whether a kill left a save half-written: a staging folder of a unit, or a temporary file."""
    return bool(glob.glob(os.path.join(folder, "saves", ".step_*.tmp")) or glob.glob(os.path.join(folder, ".*.tmp")))


def run_killed(cmd, rng):
    """Start `cmd`; after the k-th save announcement wait a random moment and SIGKILL it. -> True if killed."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    target, seen = rng.randint(1, 4), 0
    delay = rng.choice([0.0, rng.uniform(0, 0.05), rng.uniform(0, 0.5)])
    for line in proc.stdout:
        if "saving" in line:
            seen += 1
            if seen == target:
                timer = threading.Timer(delay, lambda: proc.poll() is None and proc.send_signal(signal.SIGKILL))
                timer.start()
                proc.stdout.read()
                proc.wait()
                timer.cancel()
                return proc.returncode == -signal.SIGKILL
    proc.wait()
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="/tmp/kill_resume")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    shutil.rmtree(args.out, ignore_errors=True)
    subprocess.run(command(args.out, "straight"), cwd=ROOT, check=True, capture_output=True)
    reference = weights(args.out, "straight")

    failures, kills, during_save = 0, 0, 0
    for trial in range(args.trials):
        name = f"trial{trial}"
        started = time.time()
        killed_here = 0
        for _ in range(rng.randint(1, 3)):
            extra = ["--continue_train"] if os.path.isdir(os.path.join(args.out, name, "saves")) else []
            killed = run_killed(command(args.out, name, *extra), rng)
            killed_here += killed
            during_save += killed and mid_save(os.path.join(args.out, name))
        extra = ["--continue_train"] if os.path.isdir(os.path.join(args.out, name, "saves")) else []
        done = subprocess.run(command(args.out, name, *extra), cwd=ROOT, capture_output=True, text=True)
        finished = done.returncode == 0 or "already finished" in done.stdout + done.stderr
        same = finished and all(torch.equal(reference[k], v) for k, v in weights(args.out, name).items())
        kills += killed_here
        failures += not same
        print(f"trial {trial:2d}: {killed_here} kill(s) -9, resumed, final weights "
              f"{'identical' if same else 'DIFFER'} ({time.time() - started:.0f} s)", flush=True)
        shutil.rmtree(os.path.join(args.out, name), ignore_errors=True)
    print(f"{args.trials - failures} of {args.trials} trials identical to the uninterrupted run after {kills} "
          f"kill -9 in all, {during_save} of them during a save (a staging folder or temporary file left behind)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
