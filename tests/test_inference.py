"""The inference API (inference/synthesizer.py) and spectral-norm folding (inference/folding.py)."""
import contextlib
import copy
import io
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn.utils import parametrize

from checkpointing.storage import CheckpointError
from inference import Synthesizer, fold_spectral_norms, prepare_for_inference
from inference.folding import spectral_parametrizations
from inference.synthesizer import load_networks
from models import networks
from models.networks.normalization import spectral_norm
from models.networks.semantic_composition import CandidateSpectralNorm, SCConv2d
from models.networks import layout_lookup
from models.networks.layout_lookup import set_layout_path
from models.pix2pix_model import layout_of_labels
from tests.conftest import probe_inputs
from util import util

# Tiny options of every registered generator (pix2pixhd with spectral norms, so that its transposed convs fold).
GENERATOR_ARGS = {
    "spade": ["--netG", "spade"],
    "scgan": ["--netG", "scgan", "--nrf", "8", "--nff", "8"],
    "ccfpse": ["--netG", "ccfpse"],
    "pix2pixhd": ["--netG", "pix2pixhd", "--norm_G", "spectralinstance", "--resnet_n_blocks", "2"],
    "scgan_unpaired": ["--model", "unpaired", "--dataset_mode", "synthetic_unaligned", "--nrf", "8", "--nff", "8"],
}
LABEL_GENERATORS = [name for name in GENERATOR_ARGS if name != "scgan_unpaired"]
# label_nc 6 with the dontcare class and instance edges: 8 input channels
DONTCARE_ARGS = ["--netG", "scgan", "--nrf", "8", "--nff", "8", "--dataset_mode", "custom", "--label_dir", "unused",
                 "--label_nc", "6", "--contain_dontcare_label"]


def test_every_registered_generator_is_covered():
    assert sorted(GENERATOR_ARGS) == networks.GENERATORS.names()


def max_difference(a, b):
    return float((a.double() - b.double()).abs().max())


def to(args, kwargs, dtype):
    return tuple(a.to(dtype) for a in args), {k: v.to(dtype) for k, v in kwargs.items()}


# ------------------------------------------------------------------------------------------------ folding
@pytest.mark.parametrize("name", sorted(GENERATOR_ARGS))
def test_folding_keeps_the_eval_output_and_leaves_no_parametrization(tiny_experiment, name):
    folder, opt = tiny_experiment(f"fold_{name}", *GENERATOR_ARGS[name])
    unfolded, _, _ = load_networks(opt, str(folder), fold=False)
    found = spectral_parametrizations(unfolded)
    assert found, "every registered generator has spectral norms with these options"
    if name.startswith("scgan"):
        assert any(isinstance(m.parametrizations.weight[0], CandidateSpectralNorm) for m, _ in found)
    args, kwargs = probe_inputs(unfolded, opt, batch=2, seed=1)
    for dtype, bound in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        reference = copy.deepcopy(unfolded).to(dtype)
        folded = copy.deepcopy(reference)
        assert fold_spectral_norms(folded) == len(found)
        assert not any(parametrize.is_parametrized(m) for m in folded.modules())
        a, k = to(args, kwargs, dtype)
        with torch.no_grad():
            expected, got = reference(*a, **k), folded(*a, **k)
        assert (expected.abs() < 0.99).float().mean() > 0.9      # the comparison is not between saturated +-1
        assert max_difference(got, expected) <= bound, dtype
    assert spectral_parametrizations(unfolded) == found          # the loaded network is left as it was


@pytest.mark.parametrize("name", LABEL_GENERATORS)
def test_prepared_generator_reads_the_layout_by_lookup_and_keeps_the_output(tiny_experiment, name, monkeypatch):
    """prepare_for_inference: folded, and the layout read by lookup (models/networks/layout_lookup.py) whatever
    the classes present, with the image of the convolution of the one-hot layout."""
    folder, opt = tiny_experiment(f"fold_{name}", *GENERATOR_ARGS[name])
    unfolded, _, _ = load_networks(opt, str(folder), fold=False)
    g = torch.Generator().manual_seed(3)
    few = torch.tensor([1, 4, 6])[torch.randint(0, 3, (2, 1, 32, 32), generator=g)]   # 3 of label_nc 9 classes
    every = torch.randint(0, opt.label_nc, (2, 1, 32, 32), generator=g)
    lookups, original = [], layout_lookup.lookup_conv2d
    monkeypatch.setattr(layout_lookup, "lookup_conv2d", lambda *a, **k: lookups.append(1) or original(*a, **k))
    for dtype, bound in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        reference = set_layout_path(copy.deepcopy(unfolded).to(dtype), "conv")
        prepared = prepare_for_inference(copy.deepcopy(unfolded).to(dtype))
        assert not any(parametrize.is_parametrized(m) for m in prepared.modules())
        for ids in (few, every):
            layout = layout_of_labels(ids, ids, opt.label_nc, opt.contain_dontcare_label, opt.no_instance, dtype)
            with torch.no_grad():
                expected = reference(layout)
                del lookups[:]
                got = prepared(layout)
            assert lookups, "the prepared generator read its layout by convolution"
            assert (expected.abs() < 0.99).float().mean() > 0.9
            assert max_difference(got, expected) <= bound, (dtype, ids is few)


def test_synthesizer_runs_the_layout_path_it_is_given(tiny_experiment):
    folder, _ = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    paths = {m.layout_path for m in Synthesizer.from_experiment(str(folder)).netG.modules()
             if isinstance(m, layout_lookup.LayoutConv2d)}
    assert paths == {"auto"}
    synth = Synthesizer.from_experiment(str(folder), layout_path="conv")
    assert {m.layout_path for m in synth.netG.modules() if isinstance(m, layout_lookup.LayoutConv2d)} == {"conv"}


def test_generate_returns_ordinary_tensors(tiny_experiment):
    """The generator runs under torch.inference_mode; what the API returns can be changed in place and used
    with autograd, as tensors made under no_grad could."""
    folder, _ = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    synth = Synthesizer.from_experiment(str(folder))
    image, aux = synth.generate(synth.layout(np.zeros((32, 32), np.int64)), seed=0, return_aux=True)
    tensors = [image, *[t for value in aux.values() for t in (value if isinstance(value, list) else [value])]]
    assert len(tensors) > 2 and not any(t.is_inference() for t in tensors)
    image.mul_(2)
    assert synth(np.zeros((32, 32), np.int64), output="tensor").add_(1).requires_grad_().sum().requires_grad


def test_a_folded_weight_is_w_over_the_sigma_of_the_stored_u_and_v():
    torch.manual_seed(0)
    scc = SCConv2d(3, 4, 3, n_candidates=3, spectral=True).double()
    conv = spectral_norm(nn.Conv2d(3, 5, 3)).double()
    transposed = spectral_norm(nn.ConvTranspose2d(4, 6, 3)).double()
    expected = []
    with torch.no_grad():
        for m in (scc, conv, transposed):   # u, v stay as stored: no longer the exact singular vectors
            m.parametrizations.weight.original.add_(0.3 * torch.randn_like(m.parametrizations.weight.original))
        w, p = scc.parametrizations.weight.original, scc.parametrizations.weight[0]
        sigma = torch.einsum("no,nok,nk->n", p._u, w.flatten(2), p._v)
        expected.append(w / sigma.view(-1, 1, 1, 1, 1))
        for m, dim in ((conv, 0), (transposed, 1)):
            w, p = m.parametrizations.weight.original, m.parametrizations.weight[0]
            mat = w.movedim(dim, 0).flatten(1)
            expected.append(w / (p._u @ mat @ p._v))
    for m, weight in zip((scc, conv, transposed), expected):
        assert fold_spectral_norms(m) == 1
        assert type(m.weight) is nn.Parameter and torch.allclose(m.weight, weight, rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------------------ the API
def pix2pix_model(folder):
    """The experiment's Pix2PixModel as test.py built it before the API: unfolded."""
    from models import create_model
    from options.test_options import TestOptions
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TestOptions().parse(["--name", folder.name, "--checkpoints_dir", str(folder.parent), "--gpu_ids", "-1"],
                                  save=False)
        return create_model(opt).eval()


@pytest.mark.parametrize("name", LABEL_GENERATORS)
def test_synthesizer_renders_what_pix2pix_model_inference_renders(tiny_experiment, name):
    folder, opt = tiny_experiment(f"api_{name}", *GENERATOR_ARGS[name])
    synth = Synthesizer.from_experiment(str(folder))
    assert not any(parametrize.is_parametrized(m) for m in synth.netG.modules())     # folded at load
    ids = torch.randint(0, opt.label_nc, (3, 32, 32), generator=torch.Generator().manual_seed(2))
    expected = pix2pix_model(folder)({"label": ids[:, None], "instance": 0}, mode="inference")
    got = synth(ids, output="tensor")
    assert (expected.abs() < 0.99).float().mean() > 0.9
    assert got.shape == (3, 3, 32, 32) and max_difference(got, expected) <= 1e-6
    pictures = synth(ids)
    assert pictures.dtype == np.uint8 and pictures.shape == (3, 32, 32, 3)
    assert np.array_equal(pictures[1], util.tensor2im(got[1]))


def test_the_ema_generator_is_the_default(tiny_experiment):
    folder, _ = tiny_experiment("ema", *GENERATOR_ARGS["spade"], ema=True)
    ema, plain = Synthesizer.from_experiment(str(folder)), Synthesizer.from_experiment(str(folder), ema=False)
    assert ema.uses_ema and ema.generator_file.endswith("latest_net_G_ema.pth")
    assert not plain.uses_ema and plain.generator_file.endswith("latest_net_G.pth")
    ids = np.zeros((32, 32), np.uint8)
    ids[8:24, 4:20] = 3
    assert max_difference(ema(ids, output="tensor"), plain(ids, output="tensor")) > 1e-3


def test_every_input_form_gives_the_same_image(tiny_experiment, tmp_path):
    folder, opt = tiny_experiment("forms", *DONTCARE_ARGS)
    synth = Synthesizer.from_experiment(str(folder))
    assert synth.opt.semantic_nc == 8 and synth.label_channels == 7
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, (2, 32, 32)).astype(np.uint8)
    ids[0, :4, :4] = 255                                   # dontcare, as label files hold it
    Image.fromarray(ids[0]).save(tmp_path / "a.png")
    with_label_nc = np.where(ids == 255, 6, ids)           # dontcare as the class id label_nc
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(with_label_nc).long(), 7).permute(0, 3, 1, 2).float()
    single, batch = synth(ids[0]), synth(ids)
    assert single.shape == (32, 32, 3) and batch.shape == (2, 32, 32, 3)
    forms = [str(tmp_path / "a.png"), tmp_path / "a.png", Image.open(tmp_path / "a.png"), with_label_nc[0],
             torch.from_numpy(ids[0]).long(), one_hot[0], [ids[0]]]
    for form in forms:
        picture = synth(form)
        got = picture[0] if isinstance(form, list) else picture
        assert np.array_equal(got, single), type(form).__name__
    assert np.array_equal(synth(one_hot), batch) and np.array_equal(synth(list(ids)), batch)
    # a sample of a batch is the sample alone, up to the convolutions' summation order
    assert max_difference(synth(ids, output="tensor")[0], synth(ids[0], output="tensor")[0]) <= 1e-5
    pil = synth(list(ids), output="pil")
    assert len(pil) == 2 and np.array_equal(np.asarray(pil[1]), batch[1])
    # instance edges: by default the label map's own regions; given instance maps change the input
    layout = synth.layout(ids[0])
    assert layout.shape == (1, 8, 32, 32) and torch.equal(layout[0, 6, :4, :4], torch.ones(4, 4))   # dontcare
    region_edges = layout[0, 7]
    one_instance = synth.layout(ids[0], instances=np.zeros((32, 32), np.int64))
    assert region_edges.sum() > 0 and one_instance[0, 7].sum() == 0
    assert torch.equal(one_instance[0, :7], layout[0, :7])


@pytest.mark.parametrize("bad, message", [
    (np.full((32, 32), 7, np.uint8), "holds the class id 7, out of range for this model's label_nc 6"),
    (np.full((32, 32), -2, np.int64), "holds the class id -2"),
    (torch.zeros(2, 5, 32, 32), r"a one-hot label map of shape \(2, 5, 32, 32\): this model reads 7 channels"),
    (torch.full((7, 32, 32), 0.5), "is not one-hot"),
    (np.zeros((16, 32), np.uint8), "a layout of 16x32, but the model was built for 32x32"),
    (np.zeros((32, 32), np.float32), "class ids must be integers"),
])
def test_bad_label_maps_get_one_clear_error(tiny_experiment, bad, message):
    folder, _ = tiny_experiment("forms", *DONTCARE_ARGS)
    with pytest.raises(ValueError, match=message):
        Synthesizer.from_experiment(str(folder))(bad)


def test_an_empty_batch_gets_one_clear_error(tiny_experiment):
    folder, _ = tiny_experiment("forms", *DONTCARE_ARGS)
    synth = Synthesizer.from_experiment(str(folder))
    # every form that can hold no label map at all: ids (B, H, W) and (B, 1, H, W), a one-hot (B, C, H, W),
    # a layout given to generate, and a dataset batch
    for empty in (torch.zeros(0, 32, 32, dtype=torch.long), np.zeros((0, 1, 32, 32), np.uint8),
                  torch.zeros(0, 7, 32, 32)):
        with pytest.raises(ValueError, match=r"^an empty batch of label maps \(shape \(0, "):
            synth(empty)
    with pytest.raises(ValueError, match=r"^an empty batch of layouts \(shape \(0, 8, 32, 32\)\)"):
        synth.generate(torch.zeros(0, 8, 32, 32))
    with pytest.raises(ValueError, match=r"^an empty batch of label maps"):
        synth.synthesize_batch({"label": torch.zeros(0, 1, 32, 32), "instance": 0})


def test_a_missing_experiment_and_bad_settings_are_named(tiny_experiment, tmp_path):
    with pytest.raises(CheckpointError, match=re.escape(f"no experiment at {tmp_path / 'nope'}")):
        Synthesizer.from_experiment(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"opt.json not found"):
        Synthesizer.from_experiment(str(tmp_path / "empty"))
    folder, _ = tiny_experiment("forms", *DONTCARE_ARGS)
    with pytest.raises(CheckpointError, match=r"checkpoint .*7_net_G.pth not found"):
        Synthesizer.from_experiment(str(folder), which_epoch="7")
    with pytest.raises(ValueError, match="precision fp16 runs on CUDA only"):
        Synthesizer.from_experiment(str(folder), precision="fp16")
    with pytest.raises(ValueError, match="precision 'fp64'"):
        Synthesizer.from_experiment(str(folder), precision="fp64")
    with pytest.raises(ValueError, match="needs a model trained with --use_vae"):
        Synthesizer.from_experiment(str(folder))(np.zeros((32, 32), np.uint8), style=torch.zeros(16))
    unpaired, _ = tiny_experiment("fold_scgan_unpaired", *GENERATOR_ARGS["scgan_unpaired"])
    with pytest.raises(ValueError, match="reads no label maps"):
        Synthesizer.from_experiment(str(unpaired))


def test_a_seed_fixes_the_style_and_the_noise_and_keeps_the_global_random_state(tiny_experiment):
    folder, _ = tiny_experiment("style", "--netG", "spade", "--use_vae", "--z_dim", "16", "--oasis_noise_nc", "4")
    synth = Synthesizer.from_experiment(str(folder))
    assert synth.uses_style and synth.netE is not None
    ids = np.zeros((2, 32, 32), np.uint8)
    ids[:, 10:20] = 4
    state = torch.get_rng_state()
    first = synth(ids, seed=3, output="tensor")
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(synth(ids, seed=3, output="tensor"), first)
    assert max_difference(synth(ids, seed=4, output="tensor"), first) > 1e-3
    z = synth.random_codes(2, 3)                           # the seed's codes, given as the style ...
    assert torch.equal(z, synth.random_codes(2, 3)) and z.shape == (2, 16)
    assert torch.equal(synth(ids, style=z, seed=3, output="tensor"), first)
    other = synth(ids, style=torch.zeros(16), seed=3, output="tensor")  # ... or one code for the batch
    assert max_difference(other, first) > 1e-3
    noise_only = synth(ids, style=z, seed=5, output="tensor")           # the same code, other noise
    assert max_difference(noise_only, first) > 1e-4
    with pytest.raises(ValueError, match=r"a style of shape \(3, 16\) for 2 label maps"):
        synth(ids, style=torch.zeros(3, 16))
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(synth.encode_style(images), synth.netE(images)[0])   # the posterior mean


def test_bf16_stays_near_fp32(tiny_experiment):
    folder, opt = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    ids = torch.randint(0, opt.label_nc, (2, 32, 32), generator=torch.Generator().manual_seed(4))
    fp32 = Synthesizer.from_experiment(str(folder))(ids, output="tensor")
    bf16 = Synthesizer.from_experiment(str(folder), precision="bf16")
    assert next(bf16.netG.parameters()).dtype == torch.bfloat16
    got = bf16(ids, output="tensor")
    assert got.dtype == torch.float32 and max_difference(got, fp32) <= 0.05   # measured 0.012: bf16 keeps 8 bits


# CPU capabilities as torch.cpu.get_capabilities() reports them, and PyTorch's dispatch level for each
AVX2_CPU = ({"architecture": "x86_64", "avx2": True, "fma3": True}, "AVX2")
AVX512_CPU = ({**AVX2_CPU[0], "avx512_f": True, "avx512_bw": True, "avx512_vl": True, "avx512_dq": True}, "AVX512")
AVX512_BF16_CPU = ({**AVX512_CPU[0], "avx512_bf16": True}, "AVX512")
AMX_CPU = ({**AVX512_CPU[0], "amx_tile": True, "amx_bf16": True}, "AVX512")
AVX2_COST = ("this CPU has no bf16 instructions (AVX512-BF16 or AMX-BF16) and no AVX-512 (PyTorch's CPU "
             "capability: AVX2): oneDNN runs bf16 convolutions in reference code, tens to hundreds of times slower "
             "than fp32")


def pretend_cpu(monkeypatch, cpu):
    capabilities, level = cpu
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: level)


@pytest.mark.parametrize("cpu, cost", [
    (AVX2_CPU, AVX2_COST),
    (AVX512_CPU, "this CPU has no bf16 instructions (AVX512-BF16 or AMX-BF16): oneDNN emulates bf16 with AVX-512, "
                 "2 to 4 times slower than fp32"),
    (AVX512_BF16_CPU, None),
    (AMX_CPU, None),
    (({"architecture": "arm64", "neon": True}, "DEFAULT"), "this CPU has no bf16 instructions: bf16 is emulated, "
                                                           "likely slower than fp32 (not measured here)"),
    (({"architecture": "arm64", "neon": True, "bf16": True}, "DEFAULT"), None),
])
def test_bf16_on_a_cpu_without_bf16_instructions_says_what_it_costs(tiny_experiment, monkeypatch, cpu, cost):
    from inference.synthesizer import SlowPrecisionWarning, bf16_cpu_cost
    pretend_cpu(monkeypatch, cpu)
    assert bf16_cpu_cost() == cost
    folder, _ = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    for precision in ("bf16", "fp32"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Synthesizer.from_experiment(str(folder), precision=precision)
        said = [str(w.message) for w in caught if issubclass(w.category, SlowPrecisionWarning)]
        assert said == ([f"precision bf16 on the CPU: {cost}; fp32 is faster here"]
                        if cost and precision == "bf16" else []), precision


def test_test_py_says_once_what_bf16_costs_on_this_cpu(tiny_experiment, tmp_path, monkeypatch):
    import test as test_script
    pretend_cpu(monkeypatch, AVX2_CPU)
    folder, _ = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        test_script.main(["--name", folder.name, "--checkpoints_dir", str(folder.parent), "--results_dir",
                          str(tmp_path), "--gpu_ids", "-1", "--how_many", "1", "--precision", "bf16"])
    line = f"--precision bf16: {AVX2_COST}; --precision fp32 is faster here (docs/inference.md)"
    assert out.getvalue().count(line) == 1 and f"\n{line}\n" in out.getvalue()
    assert [str(w.message) for w in caught] == []   # said once, as a line, not again as a Python warning


def test_a_released_file_goes_through_the_importer(tiny_experiment, tmp_path):
    from tools.import_checkpoint import export_checkpoint, released_synthesizer
    folder, opt = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    released = tmp_path / "released_G.pth"
    with contextlib.redirect_stdout(io.StringIO()):
        export_checkpoint("scgan", ["--name", folder.name, "--checkpoints_dir", str(folder.parent), "--gpu_ids",
                                    "-1"], str(released))
        imported = released_synthesizer("scgan", released, "imported", "synthetic", tmp_path / "checkpoints",
                                        options=GENERATOR_ARGS["scgan"][2:] + ["--ngf", "8", "--crop_size", "32"])
    ids = torch.randint(0, opt.label_nc, (2, 32, 32), generator=torch.Generator().manual_seed(5))
    expected = Synthesizer.from_experiment(str(folder))(ids, output="tensor")
    assert max_difference(imported(ids, output="tensor"), expected) == 0


def test_a_dataset_batch_renders_as_test_py_rendered_it_with_the_style_of_the_real_image(tiny_experiment):
    folder, _ = tiny_experiment("style", "--netG", "spade", "--use_vae", "--z_dim", "16", "--oasis_noise_nc", "4")
    g = torch.Generator().manual_seed(6)
    data = {"label": torch.randint(0, 9, (2, 1, 32, 32), generator=g), "instance": 0,
            "image": torch.rand(2, 3, 32, 32, generator=g) * 2 - 1}
    synth, model = Synthesizer.from_experiment(str(folder)), pix2pix_model(folder)
    torch.manual_seed(1)   # the same global draws: the posterior sample of z, then OASIS's noise
    got = synth.synthesize_batch(data)
    torch.manual_seed(1)
    expected = model(data, mode="inference")
    assert (expected.abs() < 0.99).float().mean() > 0.9 and max_difference(got, expected) <= 1e-6
    torch.manual_seed(2)
    assert max_difference(synth.synthesize_batch(data), expected) > 1e-4   # the sample does depend on the draw


# ------------------------------------------------------------------------------------------------ test.py
def run_test_py(folder, results, *extra):
    import test as test_script
    with contextlib.redirect_stdout(io.StringIO()):
        test_script.main(["--name", folder.name, "--checkpoints_dir", str(folder.parent), "--results_dir",
                          str(results), "--gpu_ids", "-1", "--how_many", "2", *map(str, extra)])
    return results / folder.name / "test_latest" / "images" / "synthesized_image"


def test_test_py_renders_in_the_asked_precision(tiny_experiment, tmp_path):
    import data
    folder, _ = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    pages = {p: run_test_py(folder, tmp_path / p, "--precision", p) for p in ("fp32", "bf16")}
    test_opt = pix2pix_model(folder).opt   # test.py's options: its first batch holds the two results
    first = next(iter(data.create_dataloader(test_opt, data.create_dataset(test_opt))))
    rendered = {p: Synthesizer.from_experiment(str(folder), precision=p).synthesize_batch(first) for p in pages}
    for i, name in enumerate(["00000.png", "00001.png"]):
        for p in pages:
            assert np.array_equal(np.asarray(Image.open(pages[p] / name)), util.tensor2im(rendered[p][i])), (p, name)
        assert not np.array_equal(*(np.asarray(Image.open(pages[p] / name)) for p in pages))   # bf16 is not fp32


def test_test_py_reads_layouts_by_the_path_of_layout_conv(tiny_experiment, tmp_path, monkeypatch):
    folder, _ = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    lookups, original = [], layout_lookup.lookup_conv2d
    monkeypatch.setattr(layout_lookup, "lookup_conv2d", lambda *a, **k: lookups.append(1) or original(*a, **k))
    by_lookup = run_test_py(folder, tmp_path / "auto")
    assert lookups
    del lookups[:]
    by_conv = run_test_py(folder, tmp_path / "conv", "--layout_conv", "conv")
    assert not lookups
    for name in ["00000.png", "00001.png"]:   # the same images, up to the sums' order (8-bit pixels)
        a, b = (np.asarray(Image.open(folder / name), dtype=int) for folder in (by_lookup, by_conv))
        assert np.abs(a - b).max() <= 1


@pytest.mark.parametrize("extra, message", [
    (["--precision", "fp16"], "--precision fp16 runs on CUDA only, and --gpu_ids -1 is the CPU"),
    (["--precision", "fp64"], "argument --precision: invalid choice: 'fp64'"),
])
def test_test_py_refuses_a_precision_it_cannot_run(tiny_experiment, tmp_path, extra, message, capsys):
    folder, _ = tiny_experiment("api_scgan", *GENERATOR_ARGS["scgan"])
    with pytest.raises(SystemExit) as e:
        run_test_py(folder, tmp_path / "results", *extra)
    assert message in f"{e.value}\n{capsys.readouterr().err}"
    assert not (tmp_path / "results").exists()


def test_test_py_keeps_unpaired_translation_in_fp32(tiny_experiment, tmp_path):
    folder, _ = tiny_experiment("api_scgan_unpaired", *GENERATOR_ARGS["scgan_unpaired"])
    with pytest.raises(SystemExit, match="--precision bf16: --model unpaired renders with the model's own method, "
                                         "in fp32 only"):
        run_test_py(folder, tmp_path / "results", "--precision", "bf16")
    assert not (tmp_path / "results").exists()
