"""Multi-process training on the CPU (gloo) through torchrun and through SPADE's --gpu_ids habit:
2 processes at global batch 4 train exactly as 1 process at batch 4 (losses and weights), the ranks take their
share of one epoch order, rank 0 alone writes and prints, and a resumed 2-process run ends where an
uninterrupted one does."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from checkpointing import storage as checkpoint
from data import EpochSampler
from tests.limits import HANG_GUARD_S
from util.distributed import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# spade's norm is spectralspadesyncbatch3x3: its batch norms must see the global batch
RUN = ["--dataset_mode", "synthetic", "--gpu_ids", "-1", "--netG", "spade", "--ngf", "8", "--ndf", "8",
       "--batchSize", "4", "--crop_size", "32", "--load_size", "40", "--preprocess_mode", "resize_and_crop",
       "--num_synthetic", "16", "--niter", "1", "--niter_decay", "0", "--print_freq", "4", "--display_freq", "8",
       "--save_latest_freq", "4", "--ema_decay", "0.9", "--ema_bn_batches", "2"]


def train(tmp_path, name, processes, *extra):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                "--master_port", str(free_port())] if processes > 1 else [sys.executable]
    cmd = [*launcher, "train.py", "--name", name, "--checkpoints_dir", str(tmp_path), *RUN, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def weights(folder, net="G"):
    return torch.load(folder / f"latest_net_{net}.pth", weights_only=True)


def losses(folder):
    """[(iters, {name: value})] from loss_log.txt."""
    out = []
    for line in (folder / "loss_log.txt").read_text().splitlines():
        m = re.match(r"\(epoch: \d+, iters: (\d+), time: [\d.]+\) (.*)", line)
        if m:
            out.append((int(m.group(1)), {k: float(v) for k, v in re.findall(r"(\w+): (-?[\d.]+)", m.group(2))}))
    return out


def assert_same_weights(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for k in a:
        if a[k].is_floating_point():
            assert torch.allclose(a[k], b[k], atol=atol, rtol=1e-4), (k, (a[k] - b[k]).abs().max())
        else:
            assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    one = train(tmp, "one", 1)
    two = train(tmp, "two", 2)
    return tmp, one, two


# ---------------------------------------------------------------------------------------------------------
# 2 processes x 2 images == 1 process x 4 images, step by step (in-process trainers, gloo)
#
# The claim is exact equality of the mathematics, so it is checked in float64: in float32 the two runs sum in
# different orders (batch norm statistics over 2 + 2 images, gradients averaged over ranks, conv kernels that
# differ between CPUs), and four GAN steps amplify those roundings far beyond any tolerance that could stay both
# tight and portable (measured on one CPU, 32x32: after 4 steps losses up to 3e-4 apart, running variances 80%).

SIZE = 32  # at 64x64 the float64 steps take 7x longer, for the same checks
TRAINER_ARGV = ["--dataset_mode", "synthetic", "--gpu_ids", "-1", "--netG", "spade", "--ngf", "8", "--ndf", "8",
                "--batchSize", "4", "--crop_size", str(SIZE), "--load_size", str(SIZE), "--ema_decay", "0.5",
                "--num_D", "1"]


def make_trainer(tmp, world, rank, dtype):
    """The trainer of TRAINER_ARGV with its networks built in `dtype` (the default dtype while they are built;
    every step then computes in their dtype), optimized by SGD at lr 0.001."""
    import contextlib
    import io

    from options.train_options import TrainOptions
    from trainers.pix2pix_trainer import Pix2PixTrainer
    from util.distributed import RunContext
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse([*TRAINER_ARGV, "--checkpoints_dir", str(tmp)], save=False, verbose=False)
        torch.manual_seed(0)
        default = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            trainer = Pix2PixTrainer(opt, RunContext(rank=rank, world_size=world))
        finally:
            torch.set_default_dtype(default)
    # SGD, not the trainer's Adam: Adam divides each gradient by its own magnitude (plus eps 1e-8), so a gradient
    # that is zero up to rounding (a conv bias before batch norm) still moves its weight, and rounding becomes a
    # step. Measured in float64: with Adam the two runs end 1.7e-9 apart in the losses and 1.2e-7 in a running
    # mean, with SGD 6e-15 and 2e-13; with SGD the weights show what the gradients are.
    trainer.optimizer_G = torch.optim.SGD(trainer.generator_parameters(), lr=0.001)
    trainer.optimizer_D = torch.optim.SGD(trainer.model.netD.parameters(), lr=0.001)
    return trainer


def global_batches(dtype):
    g = torch.Generator().manual_seed(1)
    return [{"label": torch.randint(0, 9, (4, 1, SIZE, SIZE), generator=g), "instance": 0,
             "image": (torch.rand(4, 3, SIZE, SIZE, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)}
            for _ in range(4)]


def share(batch, rank, world):
    n = 4 // world
    return {k: v[rank * n:(rank + 1) * n] if torch.is_tensor(v) else v for k, v in batch.items()}


def four_iterations(trainer, rank, world, dtype):
    """G and D steps on 4 global batches -> ([losses averaged over ranks, per step], {net: state dict})."""
    losses = []
    for batch in global_batches(dtype):
        trainer.run_generator_one_step(share(batch, rank, world))
        trainer.run_discriminator_one_step(share(batch, rank, world))
        losses.append(trainer.get_latest_losses())
    nets = {n: {k: v.detach().clone() for k, v in net.state_dict().items()}
            for n, net in trainer.networks_to_save().items()}
    return losses, nets


def first_generator_losses(trainer, rank, world):
    """The losses of one G step (a forward pass through sync batch norm and D), averaged over ranks."""
    trainer.run_generator_one_step(share(global_batches(torch.float32)[0], rank, world))
    return trainer.get_latest_losses()


def both_runs(tmp, rank, world):
    return (four_iterations(make_trainer(tmp, world, rank, torch.float64), rank, world, torch.float64),
            first_generator_losses(make_trainer(tmp, world, rank, torch.float32), rank, world))


def _rank_process(rank, world, port, tmp):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    result = both_runs(tmp, rank, world)
    if rank == 0:
        torch.save(result, os.path.join(tmp, "two.pt"))
    dist.destroy_process_group()


def relative_difference(a: dict, b: dict):
    """max |a - b| / |a| over the losses {name: value} of one step."""
    assert a.keys() == b.keys()
    return max(abs(a[k] - b[k]) / abs(a[k]) for k in a)


def test_two_processes_train_exactly_as_one(tmp_path):
    """Sync batch norm (SPADE's norms), the loss averaging, gradient averaging, spectral norm and the EMA update:
    4 G and D steps of 2 gloo processes at global batch 4 equal 1 process at batch 4, in float64 (losses,
    weights, buffers); in float32, the first generator step's losses agree as closely as rounding allows."""
    import torch.multiprocessing as mp
    mp.start_processes(_rank_process, args=(2, free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    (losses_two, nets_two), first_two = torch.load(tmp_path / "two.pt", weights_only=True)
    torch.set_num_threads(1)
    (losses_one, nets_one), first_one = both_runs(tmp_path, 0, 1)

    # float64. Measured (AMD EPYC with AVX-512): losses 8.9e-16 apart relative to themselves, every tensor within
    # 1.4e-14 of its largest entry. Other CPUs' kernels sum in other orders but round no more coarsely: 1e-9
    # leaves them a factor above 1e4, and still fails a float32 step anywhere (the losses averaged over ranks in
    # float32 put them 7.9e-8 apart; unsynchronized batch norms, 1.5e-2).
    for step, (a, b) in enumerate(zip(losses_one, losses_two)):
        assert relative_difference(a, b) < 1e-9, (step, a, b)
    for name in ("G", "D", "G_ema"):
        assert nets_one[name].keys() == nets_two[name].keys()
        for k, v in nets_one[name].items():
            w = nets_two[name][k]
            if not v.is_floating_point():
                assert torch.equal(v, w), (name, k)
                continue
            assert v.dtype == w.dtype == torch.float64, (name, k, v.dtype, w.dtype)  # nothing fell back to fp32
            # + 1e-15: a weight whose gradient is zero up to rounding (a conv bias before batch norm, which the
            # norm cancels) holds nothing but rounding noise, measured below 7.9e-18
            assert (v - w).abs().max() <= 1e-9 * v.abs().max() + 1e-15, (name, k, (v - w).abs().max())

    # float32, one generator step: its losses come from the initial weights through continuous functions, so
    # the runs differ by rounding only (later steps carry gradients, which jump where rounding decides the side
    # of a ReLU or hinge, and from there the runs drift apart). Measured relative differences between one and two
    # processes, with oneDNN's convolutions and without (a different summation order): 3.9e-7 to 4.1e-6, each run
    # within 2.6e-6 of float64. 1e-4 leaves a factor of 25 for other CPUs' kernels; batch norms that missed the
    # other process's images moved these losses 4.7e-4 (GAN_Feat) and 3.5e-2 (GAN) apart.
    assert relative_difference(first_one, first_two) < 1e-4, (first_one, first_two)


@pytest.mark.slow
def test_rank_0_alone_writes_and_prints(runs):
    tmp, _, out = runs
    assert out.count("Training was successfully finished.") == 1
    assert len(re.findall(r"^\(epoch: 1, iters: 4,", out, re.M)) == 1  # progress printed once
    assert out.count("----------------- Options ---------------") == 1
    folder = tmp / "two"
    assert (folder / "latest_net_G_ema.pth").is_file() and (folder / "1_net_G_ema.pth").is_file()
    log = (folder / "loss_log.txt").read_text()
    assert log.count("================ Training Loss") == 1  # one writer
    unit, manifest = checkpoint.newest_complete_unit(str(folder))
    state = torch.load(os.path.join(unit, "train_state.pth"), weights_only=True)
    assert state["world_size"] == 2 and len(state["rng_torch"]) == 2


@pytest.mark.slow
def test_a_resumed_two_process_run_ends_as_the_uninterrupted_one(runs):
    """Resume from the save after iteration 2 (the newer ones removed, as if the run had died there)."""
    tmp, _, _ = runs
    shutil.copytree(tmp / "two", tmp / "resumed")
    units = checkpoint.list_units(str(tmp / "resumed"))
    for _, path in units[:1]:
        shutil.rmtree(path)
    unit, manifest = checkpoint.newest_complete_unit(str(tmp / "resumed"))
    assert manifest["total_steps"] == 12
    checkpoint.publish_unit(str(tmp / "resumed"), unit, manifest)  # latest_net_*.pth as the run left them there
    out = train(tmp, "resumed", 2, "--continue_train")
    assert "resuming at epoch 1, image 12 of the epoch" in out
    for net in ("G", "D", "G_ema"):
        assert_same_weights(weights(tmp / "two", net), weights(tmp / "resumed", net), atol=1e-6)


def test_ranks_take_contiguous_shares_of_each_global_batch():
    whole = EpochSampler(10, shuffle=True, seed=3, global_batch=4)
    whole.set_epoch(2)
    order = whole.indices()
    shares = []
    for rank in range(2):
        s = EpochSampler(10, shuffle=True, seed=3, rank=rank, world_size=2, global_batch=4)
        s.set_epoch(2)
        shares.append(s.indices())
    assert shares[0] == order[0:2] + order[4:6] and shares[1] == order[2:4] + order[6:8]  # 8 of 10: full batches
    s = EpochSampler(10, shuffle=True, seed=3, rank=1, world_size=2, global_batch=4)
    s.set_epoch(2, start=4)  # resumed after one global batch
    assert s.indices() == order[6:8] and list(s) == [(i, 2) for i in order[6:8]]


def test_gpu_ids_launch_one_process_per_gpu(monkeypatch):
    """`--gpu_ids 0,1` starts two DDP processes through util.distributed.launch (the CUDA devices are faked:
    only the launch is checked here)."""
    import train as train_script
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    launched = {}
    monkeypatch.setattr(train_script, "launch", lambda fn, args, world: launched.update(fn=fn, args=args, n=world))
    train_script.main(["--gpu_ids", "0,1", "--batchSize", "4", "--dataset_mode", "synthetic"])
    assert launched["n"] == 2 and launched["fn"] is train_script.main
    assert launched["args"] == (["--gpu_ids", "0,1", "--batchSize", "4", "--dataset_mode", "synthetic"],)


def test_batch_summed_losses_count_the_whole_global_batch(parse_options):
    """KLD is summed over the batch (SPADE): under DDP each rank's sum is scaled by the world size, so the
    averaged gradient is that of the global sum."""
    from trainers.pix2pix_trainer import Pix2PixTrainer
    from util.distributed import RunContext
    opt = parse_options("--dataset_mode", "synthetic", "--crop_size", 32, "--load_size", 32, "--ngf", 4, "--ndf", 4)
    raw = {"KLD": torch.tensor(1.0), "GAN": torch.tensor(1.0)}
    one = Pix2PixTrainer(opt).weighted(raw)
    trainer = Pix2PixTrainer(opt)
    trainer.ctx = RunContext(rank=0, world_size=4)
    four = trainer.weighted(raw)
    assert four["KLD"].item() == pytest.approx(4 * one["KLD"].item()) and four["GAN"] == one["GAN"]
