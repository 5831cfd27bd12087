"""What happens when one rank of a DDP run fails (util/distributed.py, docs/what-happens-when.md): a bad file
that only rank 1 reads stops both ranks after the same step, with rank 0 saving it and naming the file; a rank
killed with -9 ends the run with one line naming it; a collective that never completes ends at --dist_timeout
naming the rank that stopped answering. The runs are torchrun with 2 CPU processes (gloo)."""
import os
import re
import signal
import subprocess
import sys

import pytest
import torch

from checkpointing import storage as checkpoint
from data import EpochSampler
from tests.limits import HANG_GUARD_S
from util.distributed import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--gpu_ids", "-1", "--netG", "spade", "--ngf", "8", "--ndf", "8", "--batchSize", "4", "--crop_size", "32",
        "--load_size", "32", "--no_vgg_loss", "--print_freq", "1000", "--display_freq", "1000"]


def torchrun(tmp_path, name, *extra):
    """A 2-process torchrun of train.py, its console (stdout and stderr) read line by line."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "train.py", "--name", name, "--checkpoints_dir", str(tmp_path / "checkpoints"), *TINY, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def worker_pid(launcher, rank):
    """The pid of torchrun's worker of `rank` (its children are the workers; each has RANK in its environment)."""
    children = open(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read().split()
    for pid in children:
        if f"RANK={rank}".encode() in open(f"/proc/{pid}/environ", "rb").read().split(b"\0"):
            return int(pid)
    raise AssertionError(f"no worker of rank {rank} among {children}")


def rank_lines(out, rank):
    return [line[len(f"[rank{rank}]: "):] for line in out.splitlines() if line.startswith(f"[rank{rank}]: ")]


@pytest.mark.slow
@pytest.mark.parametrize("threads", ["0", "2"])
def test_a_bad_file_only_rank_1_reads_stops_both_ranks_after_saving(tmp_path, tiny_dataset, threads):
    """8 samples at global batch 4: rank 1 meets the file in its second batch. Both ranks stop after the first
    step, rank 0 saves it and prints rank 1's line (with --nThreads 2 the file is read in a loading worker)."""
    root, argv = tiny_dataset("custom", n=8, size=(32, 32), instance=False)
    sampler = EpochSampler(8, shuffle=True, seed=0, rank=1, world_size=2, global_batch=4)
    sampler.set_epoch(1)
    bad = root / "images" / f"img{sampler.indices()[2]}.png"  # the first sample of rank 1's second batch
    bad.write_bytes(bad.read_bytes()[:len(bad.read_bytes()) // 2])
    proc = torchrun(tmp_path, "bad", *argv, "--niter", "1", "--nThreads", threads)
    out, _ = proc.communicate(timeout=HANG_GUARD_S)  # a safety net: the run used to hang here until killed
    assert proc.returncode != 0, out
    lines = rank_lines(out, 0)
    assert f"error: rank 1: cannot read {bad}: " in "\n".join(lines), out
    assert "(saved the latest checkpoint at epoch 1, image 4; fix the data and resume with --continue_train)" in lines
    assert "Traceback" not in "\n".join(lines), out
    assert not [line for line in rank_lines(out, 1) if "Traceback" in line or "error" in line], out  # one message
    unit, manifest = checkpoint.newest_complete_unit(str(tmp_path / "checkpoints" / "bad"))
    assert (manifest["epoch"], manifest["epoch_iter"], manifest["total_steps"]) == (1, 4, 4)
    assert torch.load(os.path.join(unit, "train_state.pth"), weights_only=True)["world_size"] == 2


@pytest.mark.slow
def test_a_rank_killed_with_sigkill_ends_the_run_with_one_line(tmp_path):
    proc = torchrun(tmp_path, "killed", "--dataset_mode", "synthetic", "--num_synthetic", "16", "--niter", "1000",
                    "--save_latest_freq", "8")
    seen = []
    for line in proc.stdout:  # no wall-clock budget: wait for the first save, however slow the machine
        seen.append(line)
        if "saving the latest model" in line:
            break
    else:
        raise AssertionError("training ended before saving:\n" + "".join(seen))
    os.kill(worker_pid(proc, 1), signal.SIGKILL)
    out, _ = proc.communicate(timeout=HANG_GUARD_S)
    out = "".join(seen) + out
    assert proc.returncode != 0, out
    lines = rank_lines(out, 0)
    errors = [line for line in lines if line.startswith("error")]
    assert len(errors) == 1 and re.fullmatch(r"error at epoch \d+, image \d+: rank 1 stopped answering \(.+\); not "
                                             r"saved \(the ranks can no longer agree on a step\): --continue_train "
                                             r"resumes from the last complete checkpoint", errors[0]), out
    assert "Traceback" not in "\n".join(lines), out


# ---------------------------------------------------------------------------------------------------------
# a collective that never completes (in-process ranks: rank 1 stops answering after a first all-reduce)

def _silent_rank_process(rank, port, tmp, ready, done):
    import torch.distributed as dist

    from util import distributed
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2")
    torch.set_num_threads(1)
    ready.wait()  # both processes have imported torch: the timeout below starts counting for both together
    ctx = distributed.setup([], timeout_s=5)
    dist.all_reduce(torch.ones(1))
    if rank == 1:  # stops answering: it takes part in no collective until rank 0 has given up on it
        done.wait()
        return
    try:
        dist.all_reduce(torch.ones(1))
        result = "the all-reduce completed"
    except RuntimeError as e:
        assert distributed.is_collective_failure(e), e
        result, speaks = distributed.stopped_answering(e, ctx, wait_s=1)
        assert speaks
    finally:
        done.set()
    with open(os.path.join(tmp, "result.txt"), "w") as f:
        f.write(result)


@pytest.mark.slow
def test_a_collective_that_never_completes_names_the_rank_that_stopped_answering(tmp_path):
    import torch.multiprocessing as mp
    spawn = mp.get_context("spawn")
    ready, done = spawn.Barrier(2), spawn.Event()
    mp.start_processes(_silent_rank_process, args=(free_port(), str(tmp_path), ready, done), nprocs=2,
                       start_method="spawn")
    result = (tmp_path / "result.txt").read_text()
    assert re.fullmatch(r"rank 1 stopped answering \(Timed out waiting 5000ms for .+\)", result), result


def test_dist_timeout_reaches_the_process_group(monkeypatch, tmp_path, capsys):
    import train as train_script
    asked = {}

    class Joined(Exception):
        pass

    def setup(gpu_ids, timeout_s):
        asked.update(gpu_ids=gpu_ids, timeout_s=timeout_s)
        raise Joined
    monkeypatch.setattr(train_script, "setup", setup)
    with pytest.raises(Joined):
        train_script.main(["--dataset_mode", "synthetic", "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path),
                           "--dist_timeout", "42"])
    assert asked == {"gpu_ids": [], "timeout_s": 42.0}
    with pytest.raises(SystemExit):
        train_script.main(["--dataset_mode", "synthetic", "--gpu_ids", "-1", "--dist_timeout", "0"])
    assert "argument --dist_timeout: must be a number > 0, got 0" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# what travels at the step boundary: one line per failed rank

class _Failing(torch.utils.data.Dataset):
    def __init__(self, error):
        self.error = error

    def __len__(self):
        return 2

    def __getitem__(self, index):
        raise self.error


@pytest.mark.parametrize("workers", [0, 1])
def test_a_loading_error_becomes_one_line(workers, capsys):
    """DatasetError: its message (it names the file); anything else: type and message, with its traceback on
    stderr. A loading worker's exception reads the same as the main process's."""
    from data import DatasetError, next_batch
    for error, line in [(DatasetError("cannot read a.png: OSError: image file is truncated"),
                         "cannot read a.png: OSError: image file is truncated"),
                        (OSError(28, "No space left on device"), "OSError: [Errno 28] No space left on device")]:
        batches = iter(torch.utils.data.DataLoader(_Failing(error), num_workers=workers))
        assert next_batch(batches) == (None, line)
        assert ("Traceback" in capsys.readouterr().err) == (not isinstance(error, DatasetError))
    batch, error = next_batch(iter(torch.utils.data.DataLoader([5])))
    assert torch.equal(batch, torch.tensor([5])) and error is None
    assert next_batch(iter([])) == (None, None)  # the end of the epoch
