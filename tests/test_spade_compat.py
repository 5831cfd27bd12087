"""State dicts interchangeable with NVlabs SPADE: same keys and shapes as their networks for the same options
(tests/data/spade_state_dict_keys.json, written from their module structure), strict loading of their
hook-based spectral-norm keys, and the same outputs after loading."""
import json
import os

import pytest
import torch
from torch import nn

from checkpointing import storage as checkpoint
from models import networks
from models.networks.base_network import LEGACY_SPECTRAL_SUFFIXES

DATA = json.load(open(os.path.join(os.path.dirname(__file__), "data", "spade_state_dict_keys.json")))
TO_LEGACY = {new: old for old, new in LEGACY_SPECTRAL_SUFFIXES.items()}


def legacy_key(key):
    for new, old in TO_LEGACY.items():
        if key.endswith("." + new):
            return key[: -len(new)] + old
    return key


@pytest.fixture
def spade_nets(parse_options):
    cfg = DATA["config"]
    opt = parse_options("--netG", "spade", "--dataset_mode", "synthetic", "--label_nc", cfg["label_nc"],
                        "--ngf", cfg["ngf"], "--ndf", cfg["ndf"], "--crop_size", cfg["crop_size"],
                        "--load_size", cfg["crop_size"], "--use_vae", "--num_D", cfg["num_D"],
                        "--n_layers_D", cfg["n_layers_D"], "--norm_G", cfg["norm_G"], "--norm_D", cfg["norm_D"],
                        "--norm_E", cfg["norm_E"])
    opt.no_instance = False
    opt.semantic_nc = cfg["semantic_nc"]
    return {"netG": networks.define_G(opt, verbose=False), "netD": networks.define_D(opt, verbose=False),
            "netE": networks.define_E(opt, verbose=False)}


@pytest.mark.parametrize("net", ["netG", "netD", "netE"])
def test_saved_files_have_nvlabs_keys_and_shapes(spade_nets, net, tmp_path):
    """What we save is what NVlabs' code saves (weight_orig/_u/_v, not parametrization keys), so their
    SPADEGenerator and test.py read our latest_net_G.pth strictly."""
    checkpoint.save_network(spade_nets[net], str(tmp_path), "latest", net[3:])
    saved = torch.load(tmp_path / f"latest_net_{net[3:]}.pth", weights_only=True)
    assert {k: list(v.shape) for k, v in saved.items()} == {k: shape for k, shape in DATA[net]}


def test_our_saved_conv_loads_into_hook_based_spectral_norm():
    """The other direction of the test below: our file into torch.nn.utils.spectral_norm (NVlabs' layer)."""
    from models.networks.base_network import BaseNetwork
    from models.networks.normalization import spectral_norm

    class Net(BaseNetwork):
        def __init__(self):
            super().__init__()
            self.conv = spectral_norm(nn.Conv2d(3, 5, 3, padding=1))

    torch.manual_seed(0)
    ours, x = Net(), torch.randn(2, 3, 8, 8)
    for _ in range(5):
        ours.conv(x)  # training-mode power iterations move u and v
    ours.eval()
    legacy = torch.nn.utils.spectral_norm(nn.Conv2d(3, 5, 3, padding=1))
    legacy.load_state_dict({k[len("conv."):]: v for k, v in ours.state_dict().items()}, strict=True)
    legacy.eval()
    assert torch.allclose(legacy(x), ours.conv(x), atol=1e-6)


@pytest.mark.parametrize("net", ["netG", "netD", "netE"])
def test_nvlabs_state_dict_loads_strictly(spade_nets, net):
    torch.manual_seed(0)
    state = {k: torch.randn(shape) if shape else torch.tensor(0) for k, shape in DATA[net]}
    for k in state:
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(7)
    spade_nets[net].load_state_dict(state, strict=True)
    loaded = {legacy_key(k): v for k, v in spade_nets[net].state_dict().items()}
    for k, v in state.items():
        assert torch.equal(loaded[k], v), k


def test_loaded_legacy_spectral_conv_computes_the_same_output():
    torch.manual_seed(0)
    legacy = torch.nn.utils.spectral_norm(nn.Conv2d(3, 5, 3, padding=1))
    x = torch.randn(2, 3, 8, 8)
    for _ in range(5):
        legacy(x)  # a few training-mode power iterations, so u and v are not at their initial values
    legacy.eval()
    from models.networks.base_network import BaseNetwork
    from models.networks.normalization import spectral_norm

    class Net(BaseNetwork):
        def __init__(self):
            super().__init__()
            self.conv = spectral_norm(nn.Conv2d(3, 5, 3, padding=1))

    ours = Net()
    ours.load_state_dict({f"conv.{k}": v for k, v in legacy.state_dict().items()}, strict=True)
    ours.eval()
    assert torch.allclose(ours.conv(x), legacy(x), atol=1e-6)
