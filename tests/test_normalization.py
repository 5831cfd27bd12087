"""The one norm-string parser, the conv+norm wrapper, SPADE normalization (models/networks/normalization.py)."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from models.networks.normalization import (SPADE, NormSpec, conv_with_norm, param_free_norm, parse_norm,
                                           resize_nearest)


@pytest.mark.parametrize("text,spec", [
    ("spectralinstance", NormSpec(True, "instance", None, None)),
    ("instance", NormSpec(False, "instance", None, None)),
    ("spectralsync_batch", NormSpec(True, "syncbatch", None, None)),
    ("batch", NormSpec(False, "batch", None, None)),
    ("spectral", NormSpec(True, "none", None, None)),
    ("none", NormSpec(False, "none", None, None)),
    ("spectralspadesyncbatch3x3", NormSpec(True, "syncbatch", "spade", 3)),
    ("spadeinstance5x5", NormSpec(False, "instance", "spade", 5)),
    ("spectralsccsyncbatch3x3", NormSpec(True, "syncbatch", "scc", 3)),
])
def test_parse_norm(text, spec):
    assert parse_norm(text) == spec


@pytest.mark.parametrize("text", ["spectralgroup", "spadesyncbatch", "spadesyncbatch3x5", "scc"])
def test_parse_norm_rejects_bad_strings_naming_the_option(text):
    with pytest.raises(ValueError, match=f"--norm_D {text}"):
        parse_norm(text, "--norm_D")


def test_conv_with_norm_removes_the_bias_before_a_norm():
    wrapped = conv_with_norm(nn.Conv2d(3, 4, 3), parse_norm("spectralinstance"))
    assert isinstance(wrapped, nn.Sequential) and wrapped[0].bias is None
    assert isinstance(wrapped[1], nn.InstanceNorm2d) and not wrapped[1].affine
    assert hasattr(wrapped[0], "parametrizations")
    batch = conv_with_norm(nn.Conv2d(3, 4, 3), parse_norm("batch"))
    assert isinstance(batch[1], nn.BatchNorm2d) and batch[1].affine and not hasattr(batch[0], "parametrizations")
    plain = conv_with_norm(nn.Conv2d(3, 4, 3), parse_norm("spectral"))
    assert isinstance(plain, nn.Conv2d) and plain.bias is not None


def test_param_free_norms():
    assert isinstance(param_free_norm("syncbatch", 4), nn.BatchNorm2d)
    assert not param_free_norm("batch", 4).affine
    with pytest.raises(ValueError, match="unknown parameter-free norm"):
        param_free_norm("layer", 4)


def test_spade_equals_its_definition():
    torch.manual_seed(0)
    spade = SPADE(4, 3, "instance", 3)
    x = torch.randn(2, 4, 8, 8)
    seg = torch.rand(2, 3, 16, 16)
    seg_small = F.interpolate(seg, size=(8, 8), mode="nearest")
    actv = F.relu(spade.mlp_shared[0](seg_small))
    expected = F.instance_norm(x) * (1 + spade.mlp_gamma(actv)) + spade.mlp_beta(actv)
    assert torch.allclose(spade(x, seg), expected, atol=1e-6)


@pytest.mark.parametrize("size", [(16, 32), (4, 8), (32, 64), (5, 12), (7, 3), (64, 128)])
def test_resize_nearest_is_torchs_nearest_interpolation(size):
    # a strided view where the size divides (16x32 -> 16x32, 4x8, ...), torch's kernel otherwise (5x12, 7x3 and
    # the up-sampling 64x128): the same pixels either way
    x = torch.randn(2, 7, 16, 32)
    resized = resize_nearest(x, size)
    assert torch.equal(resized, F.interpolate(x, size=size, mode="nearest"))
