"""Pix2PixTrainer: optimizers, TTUR, the learning-rate schedule and loss weighting."""
import pytest
import torch

from trainers.pix2pix_trainer import NonFiniteError, Pix2PixTrainer, loss_weights


def trainer(parse_options, *argv):
    opt = parse_options("--dataset_mode", "synthetic", "--crop_size", 32, "--load_size", 32, "--ngf", 4,
                        "--ndf", 4, "--lr", 0.0002, *argv)  # SPADE's rate (the synthetic demo's own is 3e-4)
    return Pix2PixTrainer(opt)


def lrs(t):
    return t.optimizer_G.param_groups[0]["lr"], t.optimizer_D.param_groups[0]["lr"]


def test_ttur_and_betas(parse_options):
    t = trainer(parse_options)
    assert lrs(t) == pytest.approx((1e-4, 4e-4))
    assert t.optimizer_G.param_groups[0]["betas"] == (0.0, 0.9)
    t = trainer(parse_options, "--no_TTUR")
    assert lrs(t) == pytest.approx((2e-4, 2e-4)) and t.optimizer_D.param_groups[0]["betas"] == (0.5, 0.999)
    t = trainer(parse_options, "--netG", "scgan", "--nrf", 4, "--nff", 4, "--crop_size", 64, "--load_size", 64)
    assert lrs(t) == pytest.approx((1e-4, 4e-4)) and t.optimizer_G.param_groups[0]["betas"] == (0.0, 0.999)


def test_linear_decay(parse_options):
    t = trainer(parse_options, "--niter", 2, "--niter_decay", 4, "--no_TTUR", "--lr", 1.0)
    assert [t.update_learning_rate(e)[0] for e in range(1, 7)] == pytest.approx([1, 1, 1, 0.75, 0.5, 0.25])
    assert lrs(t) == pytest.approx((0.25, 0.25))


def test_optimizers_cover_generator_encoder_and_discriminator(parse_options):
    t = trainer(parse_options, "--use_vae", "--optimizer", "adamw")
    model = t.model
    g_params = {id(p) for group in t.optimizer_G.param_groups for p in group["params"]}
    assert {id(p) for p in model.netE.parameters()} <= g_params
    assert {id(p) for p in model.netG.parameters()} <= g_params
    assert isinstance(t.optimizer_D, torch.optim.AdamW)


def test_losses_are_weighted_by_the_lambdas(parse_options):
    t = trainer(parse_options, "--lambda_feat", 3, "--netG", "scgan", "--lambda_sv", 5, "--nrf", 4, "--nff", 4,
                "--netD", "multiscale")
    assert t.weights["GAN_Feat"] == 3 and t.weights["SV"] == 5  # SC-GAN declares its own term
    assert "SV" not in loss_weights(t.opt)  # the generic weights know nothing of SC-GAN
    raw = {"GAN_Feat": torch.tensor(2.0), "SV": torch.tensor(2.0), "KLD": torch.tensor(1.0)}
    assert {k: v.item() for k, v in t.weighted(raw).items()} == pytest.approx({"GAN_Feat": 6.0, "SV": 10.0, "KLD": 0.05})


def test_one_step_each_changes_only_its_network(parse_options):
    t = trainer(parse_options)
    data = {"label": torch.randint(0, 9, (2, 1, 32, 32)), "instance": 0, "image": torch.rand(2, 3, 32, 32)}
    model = t.model
    g0 = [p.detach().clone() for p in model.netG.parameters()]
    d0 = [p.detach().clone() for p in model.netD.parameters()]
    t.run_generator_one_step(data)
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.netG.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(d0, model.netD.parameters()))
    t.run_discriminator_one_step(data)
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.netD.parameters()))
    assert set(t.get_latest_losses()) == {"GAN", "GAN_Feat", "D_Fake", "D_real"}
    assert all(p.requires_grad for p in model.netD.parameters())  # unfrozen again after the G step


def test_a_step_that_makes_a_buffer_non_finite_is_skipped_with_its_buffers_restored(parse_options, capsys):
    """A batch norm's running variance overflowing in the forward (what --lr 1e10 does while the losses stay
    finite) makes the step non-finite: no update, the buffers of before the step, one count toward
    --max_nonfinite_steps."""
    t = trainer(parse_options, "--norm_G", "spectralspadebatch3x3", "--max_nonfinite_steps", 2)
    data = {"label": torch.randint(0, 9, (2, 1, 32, 32)), "instance": 0, "image": torch.rand(2, 3, 32, 32)}
    model = t.model
    name, running_var = next((k, b) for k, b in model.netG.named_buffers() if k.endswith("running_var"))
    params = [p.detach().clone() for p in model.netG.parameters()]
    buffers = {k: b.clone() for k, b in model.netG.named_buffers()}
    losses = model.generator_losses

    def overflowing(*args, **kwargs):
        out = losses(*args, **kwargs)
        running_var.fill_(float("inf"))
        return out
    model.generator_losses = overflowing
    t.run_generator_one_step(data)
    assert f"warning: non-finite G step: netG's buffer {name} became NaN/Inf" in capsys.readouterr().out
    assert t.nonfinite_in_a_row == 1
    assert all(torch.equal(a, b) for a, b in zip(params, model.netG.parameters()))  # no update
    assert all(torch.equal(buffers[k], b) for k, b in model.netG.named_buffers())  # as before the step
    with pytest.raises(NonFiniteError, match=r"2 steps in a row were not finite \(--max_nonfinite_steps 2\)"):
        t.run_generator_one_step(data)
