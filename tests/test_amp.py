"""Mixed precision: the networks train under autocast (bf16 on the CPU here) with finite outputs and
gradients, while spectral norm's power iteration and sigma stay fp32 and batch-norm statistics stay fp32."""
import pytest
import torch
from torch import nn

from models.networks.ccfpse import CCFPSEGenerator
from models.networks.discriminator import MultiscaleDiscriminator
from models.networks.fpse_discriminator import FPSEDiscriminator
from models.networks.generator import SPADEGenerator
from models.networks.normalization import SpectralNormFP32
from models.networks.scgan import SCGANGenerator
from models.networks.semantic_composition import CandidateSpectralNorm, CandidateSum

SEMANTIC_NC = 5


def tiny_pair(name):
    if name == "scgan+fpse":
        return (SCGANGenerator(SEMANTIC_NC, ngf=4, nrf=4, nff=4, crop_size=64, n_conv=3, n_norm=2),
                FPSEDiscriminator(SEMANTIC_NC, ndf=4))
    if name == "ccfpse+fpse":
        return CCFPSEGenerator(SEMANTIC_NC, ngf=4, crop_size=64), FPSEDiscriminator(SEMANTIC_NC, ndf=4)
    return SPADEGenerator(SEMANTIC_NC, ngf=4, crop_size=64), MultiscaleDiscriminator(SEMANTIC_NC + 3, ndf=4)


def layout(batch=2, size=64):
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, SEMANTIC_NC, (batch, 1, size, size), generator=gen)
    return torch.zeros(batch, SEMANTIC_NC, size, size).scatter_(1, labels, 1.0)


def spectral_parametrizations(net):
    return [m for m in net.modules() if isinstance(m, (SpectralNormFP32, CandidateSpectralNorm))]


@pytest.mark.parametrize("name", ["scgan+fpse", "spade+multiscale", "ccfpse+fpse"])
def test_forward_backward_under_bf16_autocast_is_finite(name):
    torch.manual_seed(0)
    netG, netD = tiny_pair(name)
    seg = layout()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = netG(seg)
        scores, features = netD(seg, fake)
        loss = sum(s.float().mean() for s in scores) + sum(f.float().mean() for g in features for f in g)
    assert fake.dtype == torch.bfloat16  # autocast really ran the convs in bf16
    assert torch.isfinite(fake).all() and all(torch.isfinite(s).all() for s in scores)
    loss.backward()
    for net in (netG, netD):
        grads = [(n, p.grad) for n, p in net.named_parameters() if p.grad is not None]
        assert grads
        for n, g in grads:
            assert g.dtype == torch.float32 and torch.isfinite(g).all(), n
        for n, b in net.named_buffers():
            if b.is_floating_point():
                assert b.dtype == torch.float32 and torch.isfinite(b).all(), n  # u, v, running stats


@pytest.mark.parametrize("name", ["scgan+fpse", "spade+multiscale", "ccfpse+fpse"])
def test_spectral_sigma_is_fp32_under_autocast(name):
    """In eval mode (no power step) the normalized weight is the same tensor, bit for bit, with and without
    autocast: sigma was computed in fp32."""
    torch.manual_seed(0)
    for net in tiny_pair(name):
        net.eval()
        owners = [m for m in net.modules() if hasattr(m, "parametrizations")]
        assert len(owners) == len(spectral_parametrizations(net)) > 0
        plain = [m.weight for m in owners]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            amp = [m.weight for m in owners]
        for a, b in zip(plain, amp):
            assert b.dtype == torch.float32 and torch.equal(a, b)


def test_power_iteration_under_autocast_equals_fp32():
    torch.manual_seed(0)
    a = SCGANGenerator(SEMANTIC_NC, ngf=4, nrf=4, nff=4, crop_size=64)
    b = SCGANGenerator(SEMANTIC_NC, ngf=4, nrf=4, nff=4, crop_size=64)
    b.load_state_dict(a.state_dict())
    owners_a = [m for m in a.modules() if hasattr(m, "parametrizations")]
    owners_b = [m for m in b.modules() if hasattr(m, "parametrizations")]
    for ma, mb in zip(owners_a, owners_b):
        wa = ma.weight  # training mode: one power step
        with torch.autocast("cpu", dtype=torch.bfloat16):
            wb = mb.weight
        assert torch.equal(wa, wb)


def test_candidate_sum_keeps_the_conv_dtype():
    y = torch.randn(2, 3, 4, 5, 5, dtype=torch.bfloat16, requires_grad=True)
    v = torch.softmax(torch.randn(2, 3, 5, 5), 1).requires_grad_()  # softmax is fp32 under autocast
    out = CandidateSum.apply(y, v)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert y.grad.dtype == torch.bfloat16 and v.grad.dtype == torch.float32


def test_batch_norm_statistics_are_fp32_under_autocast():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    x = torch.randn(4, 3, 8, 8) * 3 + 2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bn(nn.functional.conv2d(x, torch.eye(3)[:, :, None, None]))  # bf16 input, as after an autocast conv
    expected = 0.9 * torch.zeros(3) + 0.1 * x.to(torch.bfloat16).float().mean(dim=(0, 2, 3))
    assert bn.running_mean.dtype == torch.float32
    # measured: within 1.2e-8 of the float64 mean (equal to torch's fp32 mean here), while a mean taken in bf16
    # is 2.3e-4 off; 1e-5 lies between, far from both
    assert torch.allclose(bn.running_mean, expected, atol=1e-5)
