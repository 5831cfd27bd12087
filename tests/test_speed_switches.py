"""The trainer's opt-in switches (trainers/pix2pix_trainer.py): mixed precision (--amp bf16 on the CPU),
--channels_last, --compile, each for every registered generator x discriminator; and the EMA generator
(--ema_decay): its update arithmetic, its batch-norm refresh, its file in the checkpoint unit and test.py's use
of it."""
import os

import pytest
import torch

import test as test_script
import train as train_script
from data import create_dataset
from models.networks import DISCRIMINATORS, ENCODERS, GENERATORS
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


# ---------------------------------------------------------------------------------------------------------
# Every registered generator x discriminator trains one step under each speed switch: a network is covered the
# day it is registered. Pairs the options refuse must be refused with a message saying why.

SWITCHES = {"none": [], "channels_last": ["--channels_last"], "bf16": ["--amp", "bf16"],
            "channels_last+bf16": ["--channels_last", "--amp", "bf16"]}
# a generator's model and data where they are not the default pix2pix model on synthetic layouts
GENERATOR_SETUP = {"scgan_unpaired": ["--model", "unpaired", "--dataset_mode", "synthetic_unaligned"]}
TINY_WIDTHS = {"scgan": ["--nrf", 8, "--nff", 8], "scgan_unpaired": ["--nrf", 8, "--nff", 8]}
CROP = {"fpse": 64, "oasis": 64}  # they down-sample 32 and 64 times; the others train at 32
REFUSED = {("scgan_unpaired", "fpse"): "--netD fpse projects a label map, which unpaired data lacks",
           ("scgan_unpaired", "oasis"): "--netD oasis segments the image into the label map's classes"}
PAIRS = [(g, d) for g in GENERATORS.names() for d in DISCRIMINATORS.names()]


def pair_options(parse_options, vgg_weights, netG, netD, *switches):
    crop = CROP.get(netD, 32)
    return parse_options("--netG", netG, "--netD", netD, "--dataset_mode", "synthetic",
                         *GENERATOR_SETUP.get(netG, []), *TINY_WIDTHS.get(netG, []), "--ngf", 8, "--ndf", 8,
                         "--crop_size", crop, "--load_size", crop, "--batchSize", 2, "--num_synthetic", 2,
                         "--vgg_weights", vgg_weights, *switches)


BATCHES = {}  # (dataset mode, crop) -> the first batch of its dataset, drawn once for all the tests


def batch_of(opt):
    key = (opt.dataset_mode, opt.crop_size)
    if key not in BATCHES:
        BATCHES[key] = next(iter(torch.utils.data.DataLoader(create_dataset(opt), batch_size=2)))
    return BATCHES[key]


def nets_of(t):
    return [n for n in (t.model.netG, t.model.netD, t.model.netE) if n is not None]


def train_one_step(t, data):
    """One G and one D step: finite losses, finite gradients reaching both networks, both updated."""
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in
              (("G", t.model.netG), ("D", t.model.netD))}
    t.run_generator_one_step(data)
    grads_G = [p.grad for p in t.model.netG.parameters() if p.grad is not None]
    t.run_discriminator_one_step(data)
    grads_D = [p.grad for p in t.model.netD.parameters() if p.grad is not None]
    losses = t.get_latest_losses()
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    assert t.nonfinite_total == 0
    for name, grads in (("G", grads_G), ("D", grads_D)):
        assert grads and all(torch.isfinite(g).all() for g in grads), name
    for name, net in (("G", t.model.netG), ("D", t.model.netD)):
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), name
    return losses


def assert_switches_took_effect(t, switches):
    """--channels_last: every 4-D parameter is channels-last (some of them differently from the contiguous
    layout) and so is the generated image; --amp bf16: the image comes out of autocast in bf16, the weights stay
    fp32. Without them: fp32 and contiguous."""
    channels_last, bf16 = "--channels_last" in switches, "bf16" in switches
    image = t.get_latest_generated()
    for net in nets_of(t):
        kernels = [p for p in net.parameters() if p.dim() == 4]
        assert all(p.dtype == torch.float32 for p in net.parameters())
        if channels_last:
            assert all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels), type(net).__name__
            assert any(not p.is_contiguous() for p in kernels), type(net).__name__  # not only 1x1 kernels
        else:
            assert all(p.is_contiguous() for p in kernels), type(net).__name__
    assert image.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert image.is_contiguous() != channels_last
    assert image.dtype == (torch.bfloat16 if bf16 else torch.float32)


@pytest.mark.parametrize("switch", SWITCHES)
@pytest.mark.parametrize("netG,netD", [pair for pair in PAIRS if pair not in REFUSED])
def test_every_pair_trains_one_step_under_each_switch(parse_options, vgg_weights, netG, netD, switch):
    opt = pair_options(parse_options, vgg_weights, netG, netD, *SWITCHES[switch])
    torch.manual_seed(0)
    t = Pix2PixTrainer(opt)
    train_one_step(t, batch_of(opt))
    assert_switches_took_effect(t, SWITCHES[switch])


@pytest.mark.parametrize("switch", SWITCHES)
@pytest.mark.parametrize("netE", ENCODERS.names())
def test_every_encoder_trains_one_step_under_each_switch(parse_options, vgg_weights, netE, switch):
    opt = pair_options(parse_options, vgg_weights, "spade", "multiscale", "--use_vae", "--netE", netE,
                       *SWITCHES[switch])
    torch.manual_seed(0)
    t = Pix2PixTrainer(opt)
    before = [p.detach().clone() for p in t.model.netE.parameters()]
    train_one_step(t, batch_of(opt))
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in t.model.netE.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, t.model.netE.parameters()))
    assert_switches_took_effect(t, SWITCHES[switch])


@pytest.mark.parametrize("netG,netD", list(REFUSED))
def test_refused_pairs_say_why(parse_options, vgg_weights, netG, netD):
    assert (netG, netD) in PAIRS  # a refusal of a network no longer registered is stale
    opt = pair_options(parse_options, vgg_weights, netG, netD)
    with pytest.raises(ValueError, match=REFUSED[netG, netD]):
        Pix2PixTrainer(opt)


# --compile, network by network: each generator (with the multiscale discriminator), each discriminator (with
# the pix2pixhd generator) and each encoder (with spade and multiscale), only that network compiled, together with
# the other switches (channels-last and bf16 autocast, which a user who compiles turns on too; walking --compile
# alone as well cost 33 s more on two cores, and test_compile_runs_one_step compiles without them). Inductor's
# code generation costs minutes per network on a CPU (test_compile_runs_one_step keeps one inductor run), so
# torch.compile runs with a cheaper backend: dynamo's eager backend (the network traced, its graphs run as they
# are); for a network built with our custom autograd Functions (SC-GAN's operators), aot_eager (AOTAutograd also
# traces the forward and backward with fake tensors, custom Functions, layouts and autocast's casts included).
COMPILE_SWITCHES = {"compile+channels_last+bf16": (["--compile", "--channels_last", "--amp", "bf16"], "aot_eager")}


def custom_autograd_modules():
    """The Python modules of models/ that define a torch.autograd.Function."""
    found, todo = set(), list(torch.autograd.Function.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("models."):
            found.add(cls.__module__)
    return found


def holds_custom_autograd(net):
    modules = custom_autograd_modules()
    return any(type(m).__module__ in modules for m in net.modules())


NETWORKS = ([("G", name) for name in GENERATORS.names()] + [("D", name) for name in DISCRIMINATORS.names()]
            + [("E", name) for name in ENCODERS.names()])


def compile_only(monkeypatch, cls, backend_name):
    """torch.compile as the trainer calls it, with the backend `backend_name` (aot_eager only where the network
    holds a custom autograd Function, else eager), for instances of `cls` only (the other networks run eagerly);
    -> the list of graphs the backend received."""
    graphs, compile_ = [], torch.compile

    def compile_network(net, **kwargs):
        if not isinstance(net, cls):
            return net
        chosen = backend_name if backend_name != "aot_eager" or holds_custom_autograd(net) else "eager"

        def backend(gm, example_inputs):
            graphs.append(gm)
            return torch._dynamo.lookup_backend(chosen)(gm, example_inputs)
        return compile_(net, backend=backend, **kwargs)
    monkeypatch.setattr(torch, "compile", compile_network)
    torch._dynamo.reset()  # no graph of an earlier test counts, nor its recompilations
    return graphs


@pytest.mark.slow  # about a minute in all on two cores
@pytest.mark.parametrize("switch", COMPILE_SWITCHES)
@pytest.mark.parametrize("kind,name", NETWORKS)
def test_every_network_trains_one_step_compiled(parse_options, vgg_weights, monkeypatch, kind, name, switch):
    netG, netD, extra = {"G": (name, "multiscale", []), "D": ("pix2pixhd", name, []),
                         "E": ("spade", "multiscale", ["--use_vae", "--netE", name])}[kind]
    switches, backend = COMPILE_SWITCHES[switch]
    opt = pair_options(parse_options, vgg_weights, netG, netD, *extra, *switches)
    registry = {"G": GENERATORS, "D": DISCRIMINATORS, "E": ENCODERS}[kind]
    graphs = compile_only(monkeypatch, registry.get(name), backend)
    torch.manual_seed(0)
    t = Pix2PixTrainer(opt)
    compiled = {"G": t.netG, "D": t.netD, "E": t.netE}[kind]
    assert hasattr(compiled, "_orig_mod")  # the torch.compile wrapper
    train_one_step(t, batch_of(opt))
    assert graphs  # dynamo traced the network (a silent fall-back to eager would leave this empty)
    assert_switches_took_effect(t, switches)
    torch._dynamo.reset()
