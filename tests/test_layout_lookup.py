"""Layout convolutions as table lookups (models/networks/layout_lookup.py), proved equal to the convolution of
the one-hot tensor in float64: every case one layer meets, then every registered network read both ways."""
import copy
import itertools

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import models.networks.layout_lookup as layout_lookup
from models import networks
from models.networks.layout_lookup import (Layout, LayoutConv2d, LayoutReflectionPad2d, as_layout, average_3x3,
                                           lookup_conv2d, set_layout_path)
from models.networks.normalization import spectral_norm
from models.pix2pix_model import layout_of_labels, semantic_layout

F64 = torch.float64
MEASURED_RULES = (layout_lookup.POOLED_LOOKUP_COST, layout_lookup.MIN_LOOKUP_PIXELS)   # as the module sets them
TOL = 1e-12  # float64: the lookup sums the same k*k terms as the convolution, in another order


@pytest.fixture(autouse=True)
def lookup_at_any_size(monkeypatch):
    """Every layer of these tiny tests reads by lookup where it can (the size rule, which would convolve so few
    pixels, has a test of its own)."""
    monkeypatch.setattr(layout_lookup, "MIN_LOOKUP_PIXELS", 0)


@pytest.fixture
def count_lookups(monkeypatch):
    """-> a list that grows by one per lookup_conv2d call (so a test knows the lookup ran)."""
    calls, original = [], layout_lookup.lookup_conv2d

    def counting(*args, **kwargs):
        calls.append(args[1].shape)
        return original(*args, **kwargs)
    monkeypatch.setattr(layout_lookup, "lookup_conv2d", counting)
    return calls


def labels(b=2, k=11, h=16, w=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, k, (b, h, w), generator=g)


def edges_of(ids):
    return semantic_layout(ids[:, None], ids[:, None], 1000, False, False, F64)[:, -1:]


def grads(out, module, upstream):
    return torch.autograd.grad((out * upstream).sum(), [p for p in module.parameters()])


def assert_same(conv_out, lookup_out, conv_grads, lookup_grads):
    assert conv_out.shape == lookup_out.shape
    assert (conv_out - lookup_out).abs().max() <= TOL
    for a, b in zip(conv_grads, lookup_grads):
        assert (a - b).abs().max() <= TOL


# ------------------------------------------------------------------------------------------------ one layer

CASES = [case for case in itertools.product([1, 3, 4, 7], [1, 2], [0, 1, 3], ["zeros", "reflect"])
         if case[3] == "zeros" or case[2] > 0]   # reflection only where there is padding to reflect


@pytest.mark.parametrize("kernel,stride,padding,pad_mode", CASES)
def test_lookup_equals_the_convolution_of_the_one_hot_map(kernel, stride, padding, pad_mode):
    ids, k = labels(k=13), 13
    weight = torch.randn(5, k, kernel, kernel, dtype=F64, requires_grad=True)
    dense = F.one_hot(ids, k).permute(0, 3, 1, 2).to(F64)
    padded = F.pad(dense, [padding] * 4, mode=pad_mode) if pad_mode == "reflect" else dense
    want = F.conv2d(padded, weight, stride=stride, padding=0 if pad_mode == "reflect" else padding)
    got = lookup_conv2d(ids, weight, stride, padding, pad_mode)
    upstream = torch.randn_like(want)
    assert_same(want, got, torch.autograd.grad((want * upstream).sum(), weight),
                torch.autograd.grad((got * upstream).sum(), weight))


@pytest.mark.parametrize("pool", [2, 4])
def test_a_block_mean_level_is_the_mean_of_its_phases_lookups(pool, count_lookups, monkeypatch):
    """SC-GAN's pyramid: the f x f block mean of the one-hot map (bilinear x0.5, f/2 times), read by lookup (at
    any cost: 9 classes would be convolved)."""
    monkeypatch.setattr(layout_lookup, "POOLED_LOOKUP_COST", 0)
    ids, k = labels(h=32, w=32, k=9), 9
    layout = Layout.from_ids(ids, k, dtype=F64)
    for _ in range(pool.bit_length() - 1):
        layout = layout.block_mean()
    conv = LayoutConv2d(k, 6, 3, padding=1).to(F64)
    set_layout_path(conv, "lookup")
    dense = F.one_hot(ids, k).permute(0, 3, 1, 2).to(F64)
    for _ in range(pool.bit_length() - 1):
        dense = F.interpolate(dense, scale_factor=0.5, mode="bilinear", align_corners=False)
    want, got = conv(dense), conv(layout)
    assert len(count_lookups) == 1
    upstream = torch.randn_like(want)
    assert_same(want, got, grads(want, conv, upstream), grads(got, conv, upstream))


@pytest.mark.parametrize("edges,before,after,spectral", list(itertools.product([False, True], [0, 3], [0, 2],
                                                                               [False, True])))
def test_a_layer_reading_the_layout_with_other_channels_splits_its_kernel(edges, before, after, spectral,
                                                                          count_lookups):
    """[noise or features | classes | instance edges | features or image]: lookup for the classes, convolution
    for the rest; spectral norm reads the normalized kernel on both paths."""
    ids, k = labels(k=12), 12
    torch.manual_seed(1)
    layout = Layout.from_ids(ids, k, edges_of(ids) if edges else None, dtype=F64)
    h, w = ids.shape[1:]
    if before:
        layout = layout.with_before(torch.randn(2, before, h, w, dtype=F64))
    if after:
        layout = layout.with_after(torch.randn(2, after, h, w, dtype=F64))
    conv = LayoutConv2d(layout.shape[1], 7, 3, padding=1).to(F64)
    if spectral:
        conv = spectral_norm(conv)
    set_layout_path(conv, "lookup")
    dense = layout.tensor().clone()
    conv.eval()  # the same normalized kernel for both calls
    want = conv(dense)
    got = conv(Layout(layout.ids, k, layout.edges, layout.before, layout.after, dtype=F64))
    assert len(count_lookups) == 1
    upstream = torch.randn_like(want)
    assert_same(want, got, grads(want, conv, upstream), grads(got, conv, upstream))


@pytest.mark.parametrize("size", [(16, 20), (15, 9)])
def test_the_3x3_average_of_the_multiscale_discriminator_is_read_by_lookup(size, count_lookups, monkeypatch):
    """average_3x3 (stride 2, the pixels inside the image) of the one-hot map, then its first layer (4x4, stride
    2, padding 2): the weighted lookups of the 9 neighbour phases, the image's channels convolved."""
    monkeypatch.setattr(layout_lookup, "POOLED_LOOKUP_COST", 0)
    ids, k = labels(h=size[0], w=size[1], k=10), 10
    image = torch.randn(2, 3, *size, dtype=F64)
    layout = Layout.from_ids(ids, k, edges_of(ids), dtype=F64).with_after(image)
    conv = LayoutConv2d(k + 4, 5, 4, stride=2, padding=2).to(F64)
    want = conv(average_3x3(layout.tensor()))
    got = conv(layout.averaged_3x3())
    assert len(count_lookups) == 1
    upstream = torch.randn_like(want)
    assert_same(want, got, grads(want, conv, upstream), grads(got, conv, upstream))
    assert torch.equal(layout.averaged_3x3().tensor(), average_3x3(layout.tensor())) or \
        (layout.averaged_3x3().tensor() - average_3x3(layout.tensor())).abs().max() <= TOL


def test_reflection_padding_reflects_the_ids(count_lookups):
    """pix2pixHD's entry: ReflectionPad2d(3), then a 7x7 convolution without padding."""
    ids, k = labels(k=10), 10
    pad, conv = LayoutReflectionPad2d(3), LayoutConv2d(k + 1, 4, 7).to(F64)
    layout = Layout.from_ids(ids, k, edges_of(ids), dtype=F64)
    want = conv(pad(layout.tensor()))
    got = conv(pad(layout))
    assert len(count_lookups) == 1
    upstream = torch.randn_like(want)
    assert_same(want, got, grads(want, conv, upstream), grads(got, conv, upstream))


def test_nearest_resizes_resize_the_ids():
    ids = labels(h=24, w=36, k=7)
    layout = Layout.from_ids(ids, 7, edges_of(ids), dtype=F64)
    for size in [(12, 18), (6, 9), (10, 14), (24, 36)]:
        resized = layout.resized(size)
        assert torch.equal(resized.tensor(), F.interpolate(layout.tensor(), size=size, mode="nearest"))
        assert resized.ids is not None   # still read by lookup


def test_no_gradient_reaches_the_layout_and_a_layout_asking_for_one_is_convolved(count_lookups):
    ids, k = labels(k=9), 9
    conv = LayoutConv2d(k, 4, 3, padding=1).to(F64)
    dense = F.one_hot(ids, k).permute(0, 3, 1, 2).to(F64).requires_grad_()
    out = conv(as_layout(conv, dense))
    out.sum().backward()
    assert not count_lookups and dense.grad is not None and dense.grad.abs().sum() > 0
    with torch.no_grad():
        conv(as_layout(conv, dense))
    assert len(count_lookups) == 1


@pytest.mark.parametrize("change", ["soft", "blended", "nan", "negative", "two_hot"])
def test_a_layout_that_is_not_one_hot_is_convolved_as_it_is(change, count_lookups):
    ids, k = labels(k=9), 9
    dense = F.one_hot(ids, k).permute(0, 3, 1, 2).to(F64)
    if change == "soft":
        dense = F.avg_pool2d(dense, 3, 1, 1)
    elif change == "blended":
        dense = 0.7 * dense + 0.3 * dense.roll(1, dims=1)
    elif change == "nan":
        dense[0, 0, 0, 0] = float("nan")
    elif change == "negative":
        dense[0, 1, 0, 0] = -1.0
        dense[0, 2, 0, 0] = 1.0
    else:
        dense[0, :, 0, 0] = 0.0
        dense[0, :2, 0, 0] = 1.0
    conv = LayoutConv2d(k, 4, 3, padding=1).to(F64)
    with torch.no_grad():
        got = conv(as_layout(conv, dense))
        want = F.conv2d(dense, conv.weight, conv.bias, padding=1)
    assert not count_lookups
    assert torch.equal(got, want) or (change == "nan" and torch.equal(got.isnan(), want.isnan()))


def test_a_one_hot_tensor_with_or_without_edges_is_read_by_lookup(count_lookups):
    ids, k = labels(k=9), 9
    for edges in (None, edges_of(ids)):
        layout = Layout.from_ids(ids, k, edges, dtype=F64)
        found = Layout.from_tensor(layout.tensor())
        assert torch.equal(found.ids, ids) and found.num_classes == k
        assert (found.edges is None) == (edges is None)


def test_the_path_is_chosen_per_device_and_by_the_option():
    conv = LayoutConv2d(3, 2, 1)
    assert conv.reads_by_lookup("cpu") and not conv.reads_by_lookup("cuda")   # auto: measured per device
    set_layout_path(conv, "conv")
    assert not conv.reads_by_lookup("cpu")
    set_layout_path(conv, "lookup")
    assert conv.reads_by_lookup("cuda")
    with pytest.raises(ValueError, match="--layout_conv fast: expected one of auto, lookup, conv"):
        set_layout_path(conv, "fast")


def test_state_dict_keys_are_those_of_nn_conv2d():
    plain, lookup = nn.Conv2d(5, 3, 3), LayoutConv2d(5, 3, 3)
    assert list(plain.state_dict()) == list(lookup.state_dict())
    lookup.load_state_dict(plain.state_dict())


# ------------------------------------------------------------------------------------------------ every network

def network_options(parse_options, kind, name, extra):
    argv = ["--dataset_mode", "synthetic", "--crop_size", SIZE[kind], "--ngf", 4, "--ndf", 4, "--label_nc", 40, *extra]
    argv += ["--netG", name] if kind == "G" else ["--netD", name]
    if name == "pix2pixhd":
        argv += ["--resnet_n_blocks", 1]
    if name == "scgan":
        argv += ["--nrf", 4, "--nff", 4]
    return parse_options(*argv)


SIZE = {"G": 32, "D": 64}   # float64 convolutions are slow; 64 is the FPSE discriminator's smallest
# instance edges and the dontcare class for every network; no edges, and OASIS's noise before the layout, where
# a generator reads them
LAYOUTS = {"edges+dontcare": ["--contain_dontcare_label"], "no_instance": ["--no_instance"],
           "noise": ["--oasis_noise_nc", 4]}
CASES_OF_NETWORKS = ([("G", name, "edges+dontcare") for name in networks.GENERATORS.names()
                      if name != "scgan_unpaired"]   # that one reads images
                     + [("G", "spade", "no_instance"), ("G", "spade", "noise"), ("G", "scgan", "noise")]
                     + [("D", name, "edges+dontcare") for name in networks.DISCRIMINATORS.names()])


@pytest.mark.parametrize("kind,name,case", CASES_OF_NETWORKS)
def test_every_network_gives_the_same_output_and_gradients_both_ways(parse_options, kind, name, case,
                                                                      count_lookups, monkeypatch):
    """One state dict in both; a training step's output and every parameter's gradient agree in float64. Every
    average of the layout (SC-GAN's pyramid, the multiscale discriminator's lower scale) read by lookup too."""
    monkeypatch.setattr(layout_lookup, "POOLED_LOOKUP_COST", 0)
    opt = network_options(parse_options, kind, name, LAYOUTS[case])
    torch.manual_seed(0)
    build = networks.define_G if kind == "G" else networks.define_D
    by_lookup = build(opt, verbose=False).to(F64).train()
    by_conv = copy.deepcopy(by_lookup)
    set_layout_path(by_lookup, "lookup")
    set_layout_path(by_conv, "conv")
    g = torch.Generator().manual_seed(1)
    size = SIZE[kind]
    label = torch.randint(0, opt.label_nc + int(opt.contain_dontcare_label), (2, 1, size, size), generator=g)
    instance = torch.randint(0, 3, (2, 1, size, size), generator=g)
    image = torch.randn(2, 3, size, size, generator=g, dtype=F64)

    def step(net):
        torch.manual_seed(2)   # OASIS's noise: the same draw for both
        layout = layout_of_labels(label, instance, opt.label_nc, opt.contain_dontcare_label, opt.no_instance, F64)
        if kind == "G":
            return net(layout).square().mean()
        if net.segments_image:
            return net(image).square().mean()
        scores, features = net(layout, image)
        return sum(s.square().mean() for s in scores) + sum(f.square().mean() for g in features for f in g)

    want = step(by_conv)
    calls_by_conv = len(count_lookups)
    got = step(by_lookup)
    assert calls_by_conv == 0 and (len(count_lookups) > 0) == (name != "oasis")
    assert (want - got).abs() <= 1e-10 * max(1.0, want.abs().item())
    names = [pname for pname, _ in by_conv.named_parameters()]
    conv_grads = torch.autograd.grad(want, list(by_conv.parameters()), allow_unused=True)
    lookup_grads = torch.autograd.grad(got, list(by_lookup.parameters()), allow_unused=True)
    for pname, ga, gb in zip(names, conv_grads, lookup_grads):
        assert (ga is None) == (gb is None), pname
        if ga is not None:
            assert (ga - gb).abs().max() <= 1e-10 * max(1.0, ga.abs().max().item()), pname


def test_layout_conv_reaches_every_layout_layer_of_a_training_model(parse_options):
    from models.pix2pix_model import Pix2PixModel
    for path in ("conv", "lookup", "auto"):
        opt = parse_options("--dataset_mode", "synthetic", "--crop_size", 64, "--ngf", 4, "--ndf", 4, "--netG", "scgan",
                            "--nrf", 4, "--nff", 4, "--layout_conv", path)
        model = Pix2PixModel(opt)
        layers = [m for net in (model.netG, model.netD) for m in net.modules() if isinstance(m, LayoutConv2d)]
        assert len(layers) > 10 and {m.layout_path for m in layers} == {path}



def test_the_lookup_is_chosen_where_it_was_measured_the_cheaper(count_lookups, monkeypatch):
    """An average of P phases is read by lookup while P * POOLED_LOOKUP_COST <= K, and a layer with fewer than
    MIN_LOOKUP_PIXELS output pixels in the batch convolves. A pyramid level whose phases no lookup would read is
    the tensor's block mean, the same values without 4^t phases to carry (a traced graph sliced each of them:
    35,000 ONNX nodes for a 32x32 scgan)."""
    monkeypatch.setattr(layout_lookup, "MIN_LOOKUP_PIXELS", MEASURED_RULES[1])   # not lookup_at_any_size's 0
    conv = LayoutConv2d(100, 3, 3, padding=1).to(F64)
    ids = labels(b=1, h=128, w=128, k=100)
    layout, dense = Layout.from_ids(ids, 100, dtype=F64), F.one_hot(ids, 100).permute(0, 3, 1, 2).to(F64)
    read, phases = [], []
    for _ in range(3):   # 1, 4 and 16 phases
        del count_lookups[:]
        conv(layout)
        read.append(bool(count_lookups))
        phases.append(None if layout.dense_only else len(layout.phases))
        assert torch.equal(layout.tensor(), dense)
        layout = layout.block_mean()
        dense = F.interpolate(dense, scale_factor=0.5, mode="bilinear", align_corners=False)
    assert MEASURED_RULES == (20, 512)
    assert read == [True, True, False]   # 4 * 20 <= 100 < 16 * 20
    assert phases == [1, 4, None]        # the level of 16 phases is a tensor
    del count_lookups[:]
    conv(Layout.from_ids(labels(b=2, h=16, w=16, k=100), 100, dtype=F64))   # 512 pixels: the lookup
    conv(Layout.from_ids(labels(b=1, h=16, w=16, k=100), 100, dtype=F64))   # 256: the convolution
    assert len(count_lookups) == 1
