"""Importing released checkpoints (checkpointing/released.py) and the SVG's position encoding
(models/networks/position_encoding.py).

The authors' generator is re-implemented here as plain functions over THEIR state dict, written from reading
dvlab-research/SCGAN (model/net/generator.py, model/ops/layer.py, model/ops/norm.py): candidate convs in a loop,
hook-based spectral norm W / (u . W v), adaptive channel pooling, Softmax2d, the (n, 2C) SCN matmul. An imported
model must return the same image.
"""
import contextlib
import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

import test as test_script
from checkpointing.released import expected_keys, export_state_dict, import_state_dict
from checkpointing.storage import CheckpointError, load_network, read_state_dict, save_network
from data import DATASETS
from data.pix2pix_dataset import Pix2pixDataset
from models import networks
from models.networks.position_encoding import IterativeGaussian, gaussian_window, layout_pyramid
from tools.import_checkpoint import build_options, main

from .conftest import write_id_map

DATA = json.load(open(os.path.join(os.path.dirname(__file__), "data", "scgan_ade20k_state_dict_keys.json")))
SPADE_SMALL = ["--ngf", "4", "--ndf", "4", "--crop_size", "64", "--load_size", "64", "--gpu_ids", "-1"]
SMALL = SPADE_SMALL + ["--nrf", "4", "--nff", "4"]  # scgan


@pytest.fixture(autouse=True)
def one_thread():
    """These tiny networks run 10-50x faster on one thread when the CPU is shared (thread-pool contention)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def built_in_float64():
    """Networks, layouts and references made inside are float64: an equivalence of two implementations is
    checked where rounding is 1e-16, not where float32 kernels (which differ between CPUs) decide it."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(default)


def one_hot(b, c, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, c, (b, 1, h // 8, w // 8), generator=g)
    label = F.interpolate(label.float(), size=(h, w)).long()
    return torch.zeros(b, c, h, w).scatter_(1, label, 1.0)


def randomize(net, seed=0, seg=None, z=None):
    """Weights of unit-ish gain, spectral-norm vectors estimated for them (a few training-mode passes over
    `seg`), non-trivial batch-norm statistics and SCN candidates: outputs are neither ~0 nor exploding."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in) * (1.0 if p.dim() > 1 else 0.1))
        if seg is not None:
            net.train()
            for _ in range(8):
                net(seg, z)
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return net.eval()


def calibrate(G, seg, z=None):
    """Scale G's last conv so its output (before the hardtanh) has std 0.5: compared images are not saturated."""
    captured = []
    handle = G.conv_img.register_forward_hook(lambda m, i, o: captured.append(o))
    with torch.no_grad():
        G(seg, z)
        handle.remove()
        factor = 0.5 / captured[0].std()
        G.conv_img.weight.mul_(factor)
        G.conv_img.bias.mul_(factor)
    return G


def options(tmp_path, family, *argv, train=False):
    small = SMALL if family == "scgan" else SPADE_SMALL
    return build_options(family, [*small, "--checkpoints_dir", str(tmp_path / "checkpoints"), *argv], train=train)[1]


# ---------------------------------------------------------------------------------------------------------
# the authors' generator as functions of their state dict

def blur_by_shifts(x, size=7, sigma=1.5):
    """Depthwise zero-padded Gaussian (unnormalized) as a sum of shifted copies: another way than conv2d."""
    g = [math.exp(-(i - size // 2) ** 2 / (2 * sigma ** 2)) for i in range(size)]
    r = size // 2
    padded = F.pad(x, (r, r, r, r))
    h, w = x.shape[2:]
    out = torch.zeros_like(x)
    for dy in range(size):
        for dx in range(size):
            out += g[dy] * g[dx] * padded[:, :, dy:dy + h, dx:dx + w]
    return out


def their_conv(s, p, x, padding=1):
    if p + ".weight_orig" in s:
        w = s[p + ".weight_orig"]
        w = w / torch.dot(s[p + ".weight_u"], torch.mv(w.flatten(1), s[p + ".weight_v"]))
    else:
        w = s[p + ".weight"]
    return F.conv2d(x, w, s.get(p + ".bias"), padding=padding)


def their_bn(s, p, x):
    return F.batch_norm(x, s[p + ".running_mean"], s[p + ".running_var"], training=False, eps=1e-5)


def their_spade(s, p, x, seg):
    seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
    actv = F.relu(their_conv(s, p + ".mlp_shared.0", seg))
    return their_bn(s, p + ".param_free_norm", x) * (1 + their_conv(s, p + ".mlp_gamma", actv)) \
        + their_conv(s, p + ".mlp_beta", actv)


def their_scn(s, p, x, v):
    a = s[p + ".affine_params_groups"]
    b, c, h, w = x.shape
    affine = torch.matmul(v.permute(0, 2, 3, 1).reshape(-1, a.shape[0]), a).view(b, h, w, -1).permute(0, 3, 1, 2)
    return their_bn(s, p + ".param_free_norm", x) * (1 + affine[:, :c]) + affine[:, c:]


def their_scc(s, p, x, v):
    return sum(their_conv(s, f"{p}.conv_bases.{i}", x) * v[:, i:i + 1] for i in range(v.shape[1]))


def their_block(s, p, x, v, vn, seg):
    dx = their_scc(s, p + ".conv_0", F.leaky_relu(their_scn(s, p + ".norm_0", x, vn), 0.2), v)
    dx = their_scc(s, p + ".conv_1", F.leaky_relu(their_scn(s, p + ".norm_1", dx, vn), 0.2), v)
    shortcut = their_conv(s, p + ".conv_s", their_spade(s, p + ".norm_s", x, seg)) if p + ".conv_s.bias" in s else x
    return shortcut + dx


def their_generator(s, seg, n_conv, n_norm, tau, pyr_pos=False, pyr_rng=4, z=None, nff=4):
    """seg: their one-hot (B, C, H, W) -> image, for num_upsampling_layers normal (6 levels)."""
    T = 6
    levels = [None] * T
    levels[T - 1] = seg
    for i in range(T - 2, -1, -1):
        if pyr_pos:
            levels[i] = levels[i + 1][:, :, ::2, ::2]  # nearest x0.5 keeps the even rows and columns
            if T - i < pyr_rng:
                levels[i] = blur_by_shifts(levels[i]) * levels[i]
        else:
            levels[i] = F.avg_pool2d(levels[i + 1], 2)  # bilinear x0.5 without antialiasing
    if pyr_pos:
        levels[T - 1] = blur_by_shifts(levels[T - 1]) * levels[T - 1]
    svg = "pyramid_spaital_routing"
    x = their_conv(s, f"{svg}.labelDec1.2", F.leaky_relu(their_conv(s, f"{svg}.labelDec1.0", levels[0]), 0.2))
    raws = [x]
    for t in range(1, T):
        x = torch.cat([x.repeat_interleave(2, 2).repeat_interleave(2, 3), levels[t]], 1)
        x = their_conv(s, f"{svg}.labelDec{t + 1}.1", F.leaky_relu(x, 0.2))
        x = their_conv(s, f"{svg}.labelDec{t + 1}.3", F.leaky_relu(x, 0.2))
        raws.append(x)

    def pool(r, n):
        return F.adaptive_avg_pool3d(r.unsqueeze(1), (n, r.shape[2], r.shape[3])).squeeze(1)

    v = [torch.softmax(pool(r, n_conv) * tau, 1) for r in raws]
    vn = [torch.softmax(pool(r, n_norm) * tau, 1) for r in raws]
    sh, sw = levels[0].shape[2:]
    if z is not None:
        x = F.linear(z, s["fc.weight"], s["fc.bias"]).view(-1, 16 * nff, sh, sw)
    else:
        x = their_conv(s, "fc", F.interpolate(seg, size=(sh, sw)))
    for name, t, up in [("head_0", 0, False), ("G_middle_0", 1, True), ("G_middle_1", 1, False), ("up_0", 2, True),
                        ("up_1", 3, True), ("up_2", 4, True), ("up_3", 5, True)]:
        if up:
            x = x.repeat_interleave(2, 2).repeat_interleave(2, 3)
        x = their_block(s, name, x, v[t], vn[t], seg)
    return F.hardtanh(their_conv(s, "conv_img", F.leaky_relu(x, 0.2)))


# ---------------------------------------------------------------------------------------------------------
# layout, round trip, equivalence

@pytest.mark.parametrize("net", ["netG", "netD"])
def test_importer_expects_the_authors_ade20k_keys_and_shapes(tmp_path, net):
    cfg = DATA["config"]
    assert (cfg["ngf"], cfg["crop_size"], cfg["semantic_nc"]) == (4, 64, 151)  # what SMALL and ade20k give
    opt = options(tmp_path, "scgan", "--dataset_mode", "ade20k", train=True)
    assert (opt.sc_conv_candidates, opt.sc_norm_candidates, opt.semantic_nc, opt.netD) == (3, 4, 151, "fpse")
    model = networks.define_G(opt, verbose=False) if net == "netG" else networks.define_D(opt, verbose=False)
    assert expected_keys(model) == {k: shape for k, shape in DATA[net]}


def test_export_import_round_trip_gives_identical_outputs(tmp_path):
    opt = options(tmp_path, "scgan", "--dataset_mode", "ade20k")
    seg = one_hot(2, 151, 64, 64)
    G = randomize(networks.define_G(opt, verbose=False), 0, seg)
    theirs = export_state_dict(G)
    assert set(theirs) == {k for k, _ in DATA["netG"]}
    src = tmp_path / "their_G.pth"
    torch.save({"module." + k: v for k, v in theirs.items()}, src)  # as saved from DataParallel
    main(["--from", "scgan", "--src", str(src), "--name", "rt", "--dataset_mode", "ade20k", *SMALL,
          "--checkpoints_dir", str(tmp_path / "checkpoints")])
    folder = tmp_path / "checkpoints" / "rt"
    assert (folder / "latest_net_G.pth").is_file() and (folder / "opt.txt").is_file()
    again = load_network(networks.define_G(opt, verbose=False), str(folder), "latest", "G").eval()
    with torch.no_grad():
        assert torch.equal(again(seg), G(seg))
    back = tmp_path / "back_G.pth"
    main(["--to", "scgan", "--name", "rt", "--dst", str(back), "--checkpoints_dir", str(tmp_path / "checkpoints"),
          "--gpu_ids", "-1"])
    exported = read_state_dict(str(back), "--dst")
    assert exported.keys() == theirs.keys() and all(torch.equal(exported[k], theirs[k]) for k in theirs)


def in_float64(tensors: dict) -> dict:
    return {k: v.double() if v.is_floating_point() else v for k, v in tensors.items()}


def test_imported_ade20k_generator_returns_the_authors_image(tmp_path):
    opt = options(tmp_path, "scgan", "--dataset_mode", "ade20k")
    seg = one_hot(2, 151, 64, 64, seed=2)
    theirs = export_state_dict(calibrate(randomize(networks.define_G(opt, verbose=False), 1, seg), seg))
    with built_in_float64():  # their weights, made in float32, compared in float64
        theirs, seg = in_float64(theirs), seg.double()
        G = import_state_dict(networks.define_G(opt, verbose=False), dict(theirs)).eval()
        with torch.no_grad():
            ours, reference = G(seg), their_generator(theirs, seg, n_conv=3, n_norm=4, tau=0.05)
    assert ours.dtype == reference.dtype == torch.float64
    assert reference.std() > 0.1 and (reference.abs() < 0.99).float().mean() > 0.5  # not ~0, not saturated
    # measured 4.0e-15 (4.1e-15 below); 1e-12 leaves a factor above 200 for other summation orders. In float32
    # the two differed by 2.2e-6, a fifth of the 1e-5 this test used to allow.
    assert (ours - reference).abs().max() < 1e-12


def test_imported_celebamaskhq_generator_with_position_encoding_returns_the_authors_image(tmp_path):
    opt = options(tmp_path, "scgan", "--dataset_mode", "celebamaskhq")
    assert (opt.use_vae, opt.no_spectral_on_routing, opt.sv_position, opt.semantic_nc) == (True, True, "pyramid", 19)
    G = networks.define_G(opt, verbose=False)
    assert G.svg.position_encoding is not None and G.svg.position_blurred_levels == 2
    from checkpointing.released_layouts import LABEL_ORDER
    order = LABEL_ORDER["scgan"]["celebamaskhq"]
    ids = one_hot(2, 19, 64, 64, seed=4).argmax(1, keepdim=True)           # CelebAMask-HQ ids 0..18
    seg_ours = torch.zeros(2, 19, 64, 64).scatter_(1, ids, 1.0)              # our channel k = id k
    seg_theirs = torch.zeros(2, 19, 64, 64).scatter_(1, (ids - 1) % 19, 1.0)  # theirs: id k -> k - 1, 0 -> 18
    z = torch.randn(2, 256, generator=torch.Generator().manual_seed(5))
    theirs = export_state_dict(calibrate(randomize(G, 3, seg_ours, z), seg_ours, z), order)
    with built_in_float64():
        theirs, seg_ours, seg_theirs, z = in_float64(theirs), seg_ours.double(), seg_theirs.double(), z.double()
        G2 = import_state_dict(networks.define_G(opt, verbose=False), dict(theirs), label_order=order).eval()
        with torch.no_grad():
            ours = G2(seg_ours, z)
            reference = their_generator(theirs, seg_theirs, n_conv=3, n_norm=3, tau=0.05, pyr_pos=True, pyr_rng=4,
                                        z=z)
    assert ours.dtype == reference.dtype == torch.float64
    assert reference.std() > 0.1 and (reference.abs() < 0.99).float().mean() > 0.5
    assert (ours - reference).abs().max() < 1e-12  # measured 4.1e-15


# ---------------------------------------------------------------------------------------------------------
# refusals

def test_a_file_that_does_not_fit_is_refused_naming_the_key_and_shapes(tmp_path):
    opt = options(tmp_path, "scgan", "--dataset_mode", "ade20k")
    theirs = export_state_dict(networks.define_G(opt, verbose=False))
    G = networks.define_G(opt, verbose=False)
    wrong = dict(theirs)
    wrong["conv_img.weight"] = torch.zeros(3, 8, 3, 3)
    del wrong["head_0.norm_0.affine_params_groups"]
    wrong["head_0.extra"] = torch.zeros(2)
    with pytest.raises(CheckpointError) as e:
        import_state_dict(G, wrong, "--src G.pth")
    message = str(e.value)
    assert "--src G.pth" in message
    assert "missing key 'head_0.norm_0.affine_params_groups' (expected shape [4, 128])" in message
    assert "unexpected key 'head_0.extra' (shape [2])" in message
    assert "key 'conv_img.weight' has shape [3, 8, 3, 3] in the file but [3, 4, 3, 3] is expected" in message


class WritesMarker:
    """Unpickling this object calls open(marker, 'w'): what a malicious checkpoint could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("family,dataset", [("scgan", "ade20k"), ("spade", "coco")])
def test_a_file_needing_full_unpickling_is_refused_unless_trusted(tmp_path, family, dataset):
    marker = tmp_path / "marker"
    src = tmp_path / "G.pth"
    torch.save({"fc.weight": torch.zeros(1), "payload": WritesMarker(str(marker))}, src)
    argv = ["--from", family, "--src", str(src), "--name", "x", "--dataset_mode", dataset,
            *(SMALL if family == "scgan" else SPADE_SMALL),
            "--checkpoints_dir", str(tmp_path / "checkpoints")]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert str(src) in str(e.value) and "--trust_pickle" in str(e.value) and "weights_only=True" in str(e.value)
    assert not marker.exists()
    with pytest.raises(SystemExit) as e:  # trusted: unpickled (the marker appears), then refused as no state dict
        main(argv + ["--trust_pickle"])
    assert marker.exists() and "not a state dict" in str(e.value)


# ---------------------------------------------------------------------------------------------------------
# NVlabs SPADE through the same command

def test_spade_files_import_through_the_same_command(tmp_path):
    opt = options(tmp_path, "spade", "--dataset_mode", "ade20k", train=True)
    assert opt.ade20k_raw_labels
    G, D = randomize(networks.define_G(opt, verbose=False)), randomize(networks.define_D(opt, verbose=False))
    for net, name in ((G, "G"), (D, "D")):
        state = export_state_dict(net)  # NVlabs names: hook-based spectral-norm keys
        assert any(k.endswith("weight_orig") for k in state) and not any("parametrizations" in k for k in state)
        torch.save(state, tmp_path / f"nv_{name}.pth")
    main(["--from", "spade", "--src", str(tmp_path / "nv_G.pth"), "--src_D", str(tmp_path / "nv_D.pth"),
          "--name", "nv", "--dataset_mode", "ade20k", *SPADE_SMALL, "--checkpoints_dir", str(tmp_path / "checkpoints")])
    folder = str(tmp_path / "checkpoints" / "nv")
    G2 = load_network(networks.define_G(opt, verbose=False), folder, "latest", "G").eval()
    D2 = load_network(networks.define_D(opt, verbose=False), folder, "latest", "D").eval()
    seg, image = one_hot(1, 151, 64, 64), torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(G2(seg), G(seg))
        assert torch.equal(D2(seg, image)[0][0], D(seg, image)[0][0])
    # test.py reads the saved options of the new experiment
    from options.test_options import TestOptions
    saved = TestOptions().parse(["--name", "nv", "--checkpoints_dir", str(tmp_path / "checkpoints"),
                                 "--gpu_ids", "-1"], save=False, verbose=False)
    assert (saved.netG, saved.dataset_mode, saved.ade20k_raw_labels, saved.ngf) == ("spade", "ade20k", True, 4)


def test_vae_configuration_needs_the_encoder_file(tmp_path):
    src = tmp_path / "G.pth"
    torch.save({}, src)
    with pytest.raises(SystemExit, match="--src_E"):
        main(["--from", "scgan", "--src", str(src), "--name", "c", "--dataset_mode", "celebamaskhq", *SMALL,
              "--checkpoints_dir", str(tmp_path / "checkpoints")])


# ---------------------------------------------------------------------------------------------------------
# every dataset mode: released weights onto one's own data

PAIRED = [m for m in DATASETS.names() if issubclass(DATASETS.get(m), Pix2pixDataset)]  # label map -> image
UNPAIRED = [m for m in DATASETS.names() if m not in PAIRED]


def mode_argv(mode, tmp_path):
    """The options a mode cannot do without: custom names its label maps; cityscapes' generator (one more
    up-sampling, aspect ratio 2) needs a crop of 128 to start from a 1x2 map."""
    if mode == "custom":
        return ["--label_dir", str(tmp_path / "labels"), "--label_nc", "9", "--no_instance"]
    if mode == "cityscapes":
        return ["--crop_size", "128", "--load_size", "128"]
    return []


@pytest.mark.parametrize("mode", PAIRED)
def test_a_spade_generator_imports_for_every_paired_dataset_mode(tmp_path, mode):
    opt = options(tmp_path, "spade", "--dataset_mode", mode, *mode_argv(mode, tmp_path))
    G = randomize(networks.define_G(opt, verbose=False))
    torch.save(export_state_dict(G), tmp_path / "nv_G.pth")
    main(["--from", "spade", "--src", str(tmp_path / "nv_G.pth"), "--name", "mine", "--dataset_mode", mode,
          *SPADE_SMALL, *mode_argv(mode, tmp_path), "--checkpoints_dir", str(tmp_path / "checkpoints")])
    folder = str(tmp_path / "checkpoints" / "mine")
    G2 = load_network(networks.define_G(opt, verbose=False), folder, "latest", "G").eval()
    seg = one_hot(1, opt.semantic_nc, int(opt.crop_size / opt.aspect_ratio), opt.crop_size)
    with torch.no_grad():
        assert torch.equal(G2(seg), G(seg))
    saved = json.load(open(os.path.join(folder, "opt.json")))
    assert (saved["dataset_mode"], saved["semantic_nc"]) == (mode, opt.semantic_nc)


@pytest.mark.parametrize("mode", UNPAIRED)
def test_a_dataset_mode_without_label_maps_is_refused_naming_the_paired_ones(tmp_path, mode):
    src = tmp_path / "G.pth"
    torch.save({}, src)
    with pytest.raises(SystemExit) as e:
        main(["--from", "spade", "--src", str(src), "--name", "x", "--dataset_mode", mode, *SPADE_SMALL,
              "--checkpoints_dir", str(tmp_path / "checkpoints")])
    message = str(e.value)
    assert f"--dataset_mode {mode} holds unpaired images without label maps" in message
    assert all(m in message for m in PAIRED)
    assert not (tmp_path / "checkpoints" / "x").exists()


def test_test_py_runs_an_imported_model_on_ones_own_label_maps(tmp_path, capsys):
    labels = tmp_path / "labels"
    for i in range(2):
        write_id_map(labels / f"street{i}.png", np.arange(64 * 64).reshape(64, 64) // 7 % 9)
    argv = ["--dataset_mode", "custom", "--label_dir", str(labels), "--label_nc", "9", "--no_instance"]
    opt = options(tmp_path, "spade", *argv)
    torch.save(export_state_dict(randomize(networks.define_G(opt, verbose=False))), tmp_path / "nv_G.pth")
    checkpoints = str(tmp_path / "checkpoints")
    main(["--from", "spade", "--src", str(tmp_path / "nv_G.pth"), "--name", "mine", *argv, *SPADE_SMALL,
          "--checkpoints_dir", checkpoints])
    assert f"python test.py --name mine --label_dir {labels}" in capsys.readouterr().out
    test_script.main(["--name", "mine", "--label_dir", str(labels), "--checkpoints_dir", checkpoints,
                      "--results_dir", str(tmp_path / "results"), "--gpu_ids", "-1"])
    page = tmp_path / "results" / "mine" / "test_latest"
    results = sorted(p.name for p in (page / "images" / "synthesized_image").iterdir())
    assert results == ["street0.png", "street1.png"]
    assert Image.open(page / "images" / "synthesized_image" / "street0.png").size == (64, 64)


# ---------------------------------------------------------------------------------------------------------
# position encoding

def test_gaussian_window_is_their_unnormalized_window():
    w = gaussian_window(7, 1.5)
    assert w[3, 3] == 1.0 and w.sum().item() == pytest.approx(13.65, abs=0.01)
    assert torch.allclose(w, w.t()) and w[0, 3].item() == pytest.approx(math.exp(-9 / 4.5), rel=1e-6)


# float64: the library's conv2d and the shifted sums add the same products in other orders; measured equal (the
# 2x2 mean within 1.8e-15 of values near 14), so 1e-12 relative leaves a wide margin for other CPUs

@pytest.mark.parametrize("iters,relative", [(1, False), (2, False), (2, True)])
@built_in_float64()
def test_iterative_gaussian_matches_a_slow_reference(iters, relative):
    seg = one_hot(2, 4, 16, 16)
    x, previous = seg, seg
    for _ in range(iters):
        previous = x
        x = blur_by_shifts(x) * seg
    expected = x / (previous + 1e-8) if relative else x
    assert torch.allclose(IterativeGaussian(iters=iters, relative=relative)(seg), expected, rtol=1e-12, atol=0)


@built_in_float64()
def test_position_pyramid_matches_a_slow_reference():
    seg = one_hot(1, 3, 64, 64)
    levels = layout_pyramid(seg, 6, "pyramid", IterativeGaussian(), blurred_levels=2)
    expected = [seg]
    for halvings in range(1, 6):  # every second row and column of the level above, encoded twice below full
        level = expected[0][:, :, ::2, ::2]
        expected.insert(0, blur_by_shifts(level) * level if halvings <= 2 else level)
    expected[-1] = blur_by_shifts(seg) * seg
    assert [lv.shape[-1] for lv in levels] == [2, 4, 8, 16, 32, 64]
    for got, want in zip(levels, expected):
        assert torch.allclose(got, want, rtol=1e-12, atol=0)
    inside = levels[-1][0, :, 36, 36].max()  # 3+ pixels inside its 8x8 block: the window's full sum
    assert inside.item() == pytest.approx(13.65, abs=0.05)


@built_in_float64()
def test_full_position_mode_encodes_the_layout_but_not_the_edge_channel():
    seg = one_hot(1, 4, 32, 32)
    levels = layout_pyramid(seg, 3, "full", IterativeGaussian(), edge_channel=True)
    assert torch.allclose(levels[-1][:, :3], blur_by_shifts(seg[:, :3]) * seg[:, :3], rtol=1e-12, atol=0)
    assert torch.equal(levels[-1][:, 3:], seg[:, 3:])
    assert torch.allclose(levels[-2], F.avg_pool2d(levels[-1], 2), rtol=1e-12, atol=0)


def test_position_option_builds_and_runs(tmp_path):
    opt = options(tmp_path, "scgan", "--dataset_mode", "ade20k", "--sv_position", "full")
    G = networks.define_G(opt, verbose=False).eval()
    assert G.svg.position == "full" and G.svg.edge_channel is False
    with torch.no_grad():
        out = G(one_hot(1, 151, 64, 64))
    assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()
    default = options(tmp_path, "scgan", "--dataset_mode", "ade20k")
    assert default.sv_position == "none" and networks.define_G(default, verbose=False).svg.position_encoding is None
