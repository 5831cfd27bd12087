"""The trainer's opt-in switches (issue 8): mixed precision (--amp bf16 on the CPU), --channels_last, --compile,
and the EMA generator (--ema_decay): its update arithmetic, its batch-norm refresh, its file in the checkpoint
unit and test.py's use of it."""
import os

import pytest
import torch

import test as test_script
import train as train_script
from trainers.pix2pix_trainer import Pix2PixTrainer

DATA = {"label": torch.randint(0, 9, (2, 1, 32, 32), generator=torch.Generator().manual_seed(0)), "instance": 0,
        "image": torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1}


def trainer(parse_options, *argv):
    opt = parse_options("--dataset_mode", "synthetic", "--crop_size", 32, "--load_size", 32, "--ngf", 8,
                        "--ndf", 8, "--batchSize", 2, *argv)
    return Pix2PixTrainer(opt)


def one_step(t):
    before = [p.detach().clone() for p in t.model.netG.parameters()]
    t.run_generator_one_step(DATA)
    t.run_discriminator_one_step(DATA)
    losses = t.get_latest_losses()
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    assert t.nonfinite_total == 0
    assert any(not torch.equal(a, b) for a, b in zip(before, t.model.netG.parameters()))
    return losses


def test_amp_bf16_runs_the_step_in_bf16_and_keeps_fp32_weights(parse_options, monkeypatch):
    t = trainer(parse_options, "--amp", "bf16")
    seen = []
    original = t.model.generator_losses

    def spy(seg, real, *nets):
        out = original(seg, real, *nets)
        seen.append(out[1].dtype)  # the generated image, as autocast made it
        return out
    monkeypatch.setattr(t.model, "generator_losses", spy)
    one_step(t)
    assert seen == [torch.bfloat16]
    assert all(p.dtype == torch.float32 for p in t.model.netG.parameters())
    assert not t.scaler_G.is_enabled()  # bf16 needs no loss scaling


def test_fp16_uses_a_grad_scaler(parse_options):
    t = trainer(parse_options, "--amp", "fp16")
    assert t.amp_dtype == torch.float16 and t.scaler_G.is_enabled() and t.scaler_D.is_enabled()


def test_channels_last_runs_one_step(parse_options):
    t = trainer(parse_options, "--channels_last")
    weight = next(p for p in t.model.netD.parameters() if p.dim() == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last)
    one_step(t)


@pytest.mark.slow
def test_compile_runs_one_step(parse_options):
    t = trainer(parse_options, "--compile", "--netG", "pix2pixhd", "--resnet_n_blocks", 1)
    assert hasattr(t.netG, "_orig_mod") and hasattr(t.netD, "_orig_mod")  # torch.compile wrappers
    one_step(t)


def test_ema_update_arithmetic(parse_options):
    t = trainer(parse_options, "--ema_decay", "0.75")
    ema0 = [p.detach().clone() for p in t.netG_ema.parameters()]
    t.run_generator_one_step(DATA)
    for e0, e, p in zip(ema0, t.netG_ema.parameters(), t.model.netG.parameters()):
        assert torch.allclose(e, 0.75 * e0 + 0.25 * p.detach(), atol=1e-7)
    for e, b in zip(t.netG_ema.buffers(), t.model.netG.buffers()):
        assert torch.equal(e, b)  # spectral-norm vectors and batch-norm statistics are copied
    assert not any(p.requires_grad for p in t.netG_ema.parameters())


def test_ema_batchnorm_refresh_averages_the_batches_and_keeps_the_rng(parse_options):
    t = trainer(parse_options, "--ema_decay", "0.9")
    norms = [m for m in t.netG_ema.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms  # spade's param-free sync batch norms
    rng = torch.get_rng_state()
    t.refresh_ema_batchnorm([DATA, DATA])
    assert torch.equal(rng, torch.get_rng_state()) and not t.netG_ema.training
    assert all(int(m.num_batches_tracked) == 2 and m.momentum == 0.1 for m in norms)
    # nothing changed since: a second refresh (the save after the evaluation) is skipped; an EMA update renews it
    t.refresh_ema_batchnorm([DATA])
    assert all(int(m.num_batches_tracked) == 2 for m in norms)
    t.run_generator_one_step(DATA)
    t.refresh_ema_batchnorm([DATA])
    assert all(int(m.num_batches_tracked) == 1 for m in norms)


def test_ema_is_saved_in_the_unit_and_used_by_test_py(tmp_path, capsys):
    argv = ["--name", "ema", "--checkpoints_dir", str(tmp_path), "--dataset_mode", "synthetic", "--gpu_ids", "-1",
            "--netG", "spade", "--ngf", "8", "--ndf", "8", "--batchSize", "2", "--crop_size", "32", "--load_size",
            "32", "--num_synthetic", "4", "--niter", "1", "--niter_decay", "0", "--ema_decay", "0.9",
            "--ema_bn_batches", "1"]
    train_script.main(argv)
    folder = tmp_path / "ema"
    for name in ("latest_net_G_ema.pth", "1_net_G_ema.pth", "saves/step_000000000004/net_G_ema.pth"):
        assert (folder / name).is_file(), name
    ema = torch.load(folder / "latest_net_G_ema.pth", weights_only=True)
    g = torch.load(folder / "latest_net_G.pth", weights_only=True)
    assert ema.keys() == g.keys() and any(not torch.equal(ema[k], g[k]) for k in g)
    common = ["--name", "ema", "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1", "--how_many", "1",
              "--results_dir", str(tmp_path / "results")]
    capsys.readouterr()
    test_script.main(common)
    assert "using the EMA generator" in capsys.readouterr().out
    test_script.main([*common, "--no_ema"])
    assert "using the EMA generator" not in capsys.readouterr().out
