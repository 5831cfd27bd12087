"""ONNX export (inference/export.py, tools/export.py): every registered generator, run in ONNX Runtime (CPU) at
batch 1 and 3 against PyTorch on outputs that are not saturated, and the sidecar JSON."""
import errno
import importlib
import json
import os
import re

import numpy as np
import pytest
import torch

from inference.synthesizer import load_networks
from models import networks
from models.pix2pix_model import semantic_layout
from tests.test_inference import DONTCARE_ARGS, GENERATOR_ARGS


def optional_module(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# The export extras (requirements-export.txt). Without them each test skips by itself, so the suite collects
# the same tests with and without them (the README's total is checked against that count).
EXTRAS = {name: optional_module(name) for name in ("onnxruntime", "onnxscript", "onnx")}
ort, onnx = EXTRAS["onnxruntime"], EXTRAS["onnx"]
MISSING = [name for name, module in EXTRAS.items() if module is None]


@pytest.fixture(autouse=True)
def export_extras():
    if MISSING:
        pytest.skip(f"{', '.join(MISSING)} not installed (torch.onnx.export and ONNX Runtime): pip install -r "
                    f"requirements-export.txt")


# One case per registered generator; together they cover every kind of input: spade with a style code and
# OASIS's noise, scgan with the dontcare channel and instance edges, scgan_unpaired with two images.
EXPORT_CASES = {
    "spade": GENERATOR_ARGS["spade"] + ["--use_vae", "--z_dim", "16", "--oasis_noise_nc", "4"],
    "scgan": DONTCARE_ARGS,
    "ccfpse": GENERATOR_ARGS["ccfpse"],
    "pix2pixhd": GENERATOR_ARGS["pix2pixhd"],
    "scgan_unpaired": GENERATOR_ARGS["scgan_unpaired"],
}
# float32 PyTorch and ONNX Runtime sum in different orders: the largest difference measured over these cases on
# unsaturated pixels was 5.0e-6 (pix2pixhd's class-id graph; the others at most 8.9e-7, docs/inference.md);
# 1e-4 leaves room for other CPUs' kernels.
TOLERANCE = 1e-4


def test_every_registered_generator_is_exported():
    assert sorted(EXPORT_CASES) == networks.GENERATORS.names()


def inputs_and_expected(netG, opt, batch, seed, layout_input="ids"):
    """-> ({input name: array}, PyTorch's image): the same random inputs for both."""
    g = torch.Generator().manual_seed(seed)
    if opt.label_nc == 0:
        reference, source = (torch.rand(batch, 3, 32, 32, generator=g) * 2 - 1 for _ in range(2))
        with torch.no_grad():
            expected = netG(reference, source)
        return {"reference": reference.numpy(), "source": source.numpy()}, expected
    ids = torch.randint(0, opt.label_nc + int(opt.contain_dontcare_label), (batch, 1, 32, 32), generator=g)
    instance = torch.randint(0, 3, (batch, 1, 32, 32), generator=g)
    layout = semantic_layout(ids, instance, opt.label_nc, opt.contain_dontcare_label, opt.no_instance)
    feeds, z = {"layout": layout.numpy()}, None
    if layout_input == "ids":
        feeds = {"ids": ids[:, 0].numpy(), **({} if opt.no_instance else {"instance": instance[:, 0].numpy()})}
    if opt.use_vae:
        z = torch.randn(batch, opt.z_dim, generator=g)
        feeds["z"] = z.numpy()
    with torch.no_grad():
        torch.manual_seed(seed)
        expected = netG(layout, z=z)   # draws OASIS's noise first, as with_3d_noise does ...
    if getattr(netG, "noise_nc", 0):  # spade and scgan have the option
        torch.manual_seed(seed)        # ... which the exported graph takes as its input
        feeds["noise"] = torch.randn(batch, netG.noise_nc, 1, 1)[:, :, 0, 0].numpy()
    return feeds, expected


@pytest.mark.parametrize("name,layout_input", [(name, "default") for name in sorted(EXPORT_CASES)]
                         + [(name, "one_hot") for name in ("spade", "scgan")])
def test_onnx_runtime_matches_pytorch_at_batch_1_and_3(tiny_experiment, tmp_path, capsys, name, layout_input):
    """Every generator's default graph (the class ids read by lookup), and for spade (a style code and noise) and
    scgan (dontcare and instance edges) the other one (the one-hot layout convolved)."""
    from tools import export
    folder, opt = tiny_experiment(f"export_{name}", *EXPORT_CASES[name])
    out = tmp_path / "generator.onnx"
    export.main(["--name", folder.name, "--checkpoints_dir", str(folder.parent), "--to", "onnx", "--out", str(out)]
                + (["--layout_input", layout_input] if layout_input != "default" else []))
    layout_input = "ids" if layout_input == "default" else layout_input
    assert f"wrote {out}" in capsys.readouterr().out
    info = json.loads((tmp_path / "generator.onnx.json").read_text())
    graph = onnx.load(str(out)).graph
    assert not any("parametrizations" in t.name or t.name.endswith(("_u", "_v")) for t in graph.initializer)
    # the lookups as Gather and Add nodes: F.embedding_bag exported as a Loop over the output pixels
    assert not {n.op_type for n in graph.node} & {"Loop", "SequenceEmpty", "ConcatFromSequence"}
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(info["inputs"])
    for i in session.get_inputs():
        assert isinstance(i.shape[0], str) and i.shape[1:] == info["inputs"][i.name]["shape"][1:]   # dynamic B
    netG, _, _ = load_networks(opt, str(folder))
    for batch in (1, 3):
        feeds, expected = inputs_and_expected(netG, opt, batch, seed=batch, layout_input=layout_input)
        got = session.run(None, feeds)[0]
        assert got.shape == (batch, 3, 32, 32) == tuple(expected.shape)
        unsaturated = expected.abs().numpy() < 0.99
        assert unsaturated.mean() > 0.9
        assert np.abs(got - expected.numpy())[unsaturated].max() <= TOLERANCE


def test_the_sidecar_says_what_the_inputs_must_be(tiny_experiment):
    from inference.export import exported_module, sidecar

    def opt_of(name):
        return tiny_experiment(f"export_{name}", *EXPORT_CASES[name])[1]

    def described(name):
        folder, opt = tiny_experiment(f"export_{name}", *EXPORT_CASES[name])
        netG, _, _ = load_networks(opt, str(folder))
        module, shapes, meaning = exported_module(netG, opt)
        return netG, module, sidecar(opt, shapes, meaning)

    netG, module, info = described("scgan")     # label_nc 6, dontcare, instance edges; the class-id graph
    assert {k: (v["shape"], v["dtype"]) for k, v in info["inputs"].items()} == {
        "ids": (["B", 32, 32], "int64"), "instance": (["B", 32, 32], "int64")}
    assert "6 for dontcare" in info["inputs"]["ids"]["meaning"]
    assert info["layout"]["label_nc"] == 6 and info["layout"]["channels"] == 8
    assert info["layout"]["dontcare"] == {"channel": 6, "label_file_value": 255}
    assert info["layout"]["instance_edges"]["channel"] == 7
    assert info["size_hw"] == [32, 32] and info["output"]["range"] == [-1.0, 1.0]
    info = sidecar(opt_of("scgan"), *exported_module(netG, opt_of("scgan"), "one_hot")[1:])   # the one-hot graph
    assert list(info["inputs"]) == ["layout"] and info["inputs"]["layout"]["shape"] == ["B", 8, 32, 32]
    assert (info["inputs"]["layout"]["dtype"], info["layout"]["channels"]) == ("float32", 8)
    _, module, info = described("spade")        # a style code and OASIS's noise, no dontcare, no instances
    assert {k: v["shape"] for k, v in info["inputs"].items()} == {"ids": ["B", 32, 32], "z": ["B", 16],
                                                                  "noise": ["B", 4]}
    assert module.noise_nc == 4 and module.netG.noise_nc == 0   # the exported copy draws no noise
    assert info["layout"]["dontcare"] is None and info["layout"]["instance_edges"] is None
    _, _, info = described("scgan_unpaired")
    assert "layout" not in info and {k: v["shape"] for k, v in info["inputs"].items()} == {
        "reference": ["B", 3, 32, 32], "source": ["B", 3, 32, 32]}


def test_a_missing_experiment_is_named(tmp_path):
    from tools import export
    with pytest.raises(SystemExit, match=f"error: no experiment at {tmp_path}/nope"):
        export.main(["--name", "nope", "--checkpoints_dir", str(tmp_path), "--to", "onnx", "--out", "x.onnx"])


@pytest.mark.parametrize("where, message", [
    ("readonly/generator.onnx", r"cannot write to {tmp}/readonly \(Permission denied\): make it writable or "
                                r"choose another folder"),
    ("a_file/generator.onnx", r"cannot write into {tmp}/a_file: it is a file, not a folder"),
    ("a_folder", r"{tmp}/a_folder is a folder: give the file to write, e.g. {tmp}/a_folder/generator.onnx"),
])
def test_an_unwritable_out_is_refused_before_any_export_work(tiny_experiment, tmp_path, monkeypatch, where,
                                                             message):
    import tempfile

    import inference.export
    import inference.synthesizer
    from tools import export
    folder, _ = tiny_experiment("export_scgan", *EXPORT_CASES["scgan"])
    (tmp_path / "readonly").mkdir()
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_folder").mkdir()
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):   # a read-only folder, which chmod cannot make for root
        if dir is not None and os.path.abspath(dir) == str(tmp_path / "readonly"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_mkstemp(*args, dir=dir, **kwargs)

    def never(*args, **kwargs):
        raise AssertionError("the generator was loaded or exported before --out was checked")

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(inference.synthesizer, "load_networks", never)
    monkeypatch.setattr(inference.export, "export_onnx", never)
    with pytest.raises(SystemExit) as e:
        export.main(["--name", folder.name, "--checkpoints_dir", str(folder.parent), "--to", "onnx", "--out",
                     str(tmp_path / where)])
    assert re.fullmatch("error: --out: " + message.format(tmp=re.escape(str(tmp_path))), str(e.value))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "a_folder", "readonly"]
    assert not any((tmp_path / "readonly").iterdir()) and not any((tmp_path / "a_folder").iterdir())
