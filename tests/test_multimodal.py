"""Multimodal synthesis and style interpolation (inference/multimodal.py through inference.Synthesizer,
Pix2PixModel's style-code methods, test.py --n_samples / --interpolate): codes reach the generator, one code
gives one image, interpolation ends at the encoded styles, and the page holds the promised rows and files."""
import contextlib
import io
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

import data
import test as test_script
import train as train_script
from inference import Synthesizer, multimodal
from models.pix2pix_model import Pix2PixModel
from options.test_options import TestPageOptions
from util import util

SIZES = {"spade": ["--crop_size", "32", "--load_size", "32"],
         "scgan": ["--crop_size", "64", "--load_size", "64", "--nrf", "8", "--nff", "8"]}


def vae_model(parse_options, netG):
    """A --use_vae model with random weights, in eval mode, a Synthesizer of its networks (unfolded, so that both
    run the same weights) and a batch of two random layouts for them."""
    opt = parse_options("--dataset_mode", "synthetic", "--netG", netG, "--ngf", 8, "--ndf", 8, "--use_vae",
                        "--z_dim", 8, *SIZES[netG])
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        model = Pix2PixModel(opt).eval()
    label = torch.randint(0, opt.label_nc, (2, 1, opt.crop_size, opt.crop_size),
                          generator=torch.Generator().manual_seed(1))
    layout, _ = model.preprocess_input({"label": label, "instance": torch.zeros_like(label)})
    return model, Synthesizer(model.netG, model.opt, model.netE), layout


def random_image(size, seed):
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("netG", ["spade", "scgan"])
def test_samples_with_different_codes_differ_and_one_code_repeats(parse_options, netG):
    model, synth, layout = vae_model(parse_options, netG)
    codes = synth.random_codes(3, seed=5)
    assert torch.equal(codes, torch.randn(3, 8, generator=torch.Generator().manual_seed(5)))  # z ~ N(0, I) from --seed
    assert torch.equal(codes, synth.random_codes(3, seed=5))
    samples = multimodal.generate_per_code(synth, layout, codes)
    assert len(samples) == 3 and all(s.shape == (2, 3, model.opt.crop_size, model.opt.crop_size) for s in samples)
    for i in range(3):
        for j in range(i + 1, 3):
            assert (samples[i] - samples[j]).abs().mean() > 0.05, (i, j)
    for k in range(3):  # sample k is code k shared by the batch; the same code again gives the same image
        expected = model.generate_with_code(layout, codes[k].expand(2, -1))
        assert torch.equal(samples[k], expected)
        assert torch.equal(model.generate_with_code(layout, codes[k]), expected)


@pytest.mark.parametrize("netG", ["spade", "scgan"])
def test_interpolation_ends_at_the_two_encoded_styles(parse_options, netG):
    model, synth, layout = vae_model(parse_options, netG)
    style_a, style_b = random_image(model.opt.crop_size, 2), random_image(model.opt.crop_size, 3)
    z_a, z_b = synth.encode_style(style_a)[0], synth.encode_style(style_b)[0]
    assert torch.equal(z_a, model.encode_style(style_a)[0])
    assert torch.equal(z_a, model.netE(style_a)[0][0])  # the posterior mean, no sampling noise
    codes = multimodal.interpolation_codes(z_a, z_b, 5)
    assert codes.shape == (5, 8) and torch.equal(codes[0], z_a) and torch.equal(codes[-1], z_b)
    for i, t in enumerate([0.0, 0.25, 0.5, 0.75, 1.0]):
        assert torch.allclose(codes[i], z_a + t * (z_b - z_a), atol=1e-6)
    images = multimodal.generate_per_code(synth, layout, codes)
    assert torch.equal(images[0], model.generate_with_code(layout, z_a))
    assert torch.equal(images[-1], model.generate_with_code(layout, z_b))
    assert (images[0] - images[-1]).abs().mean() > 0.05
    with pytest.raises(ValueError, match="--interpolate 1: needs at least 2 steps"):
        multimodal.interpolation_codes(z_a, z_b, 1)


def test_style_codes_need_a_vae_model(parse_options):
    opt = parse_options("--dataset_mode", "synthetic", "--netG", "spade", "--ngf", 8, "--ndf", 8, *SIZES["spade"])
    with contextlib.redirect_stdout(io.StringIO()):
        model = Pix2PixModel(opt)
    for call in (lambda: model.random_codes(2), lambda: model.encode_style(random_image(32, 0)),
                 lambda: model.generate_with_code(torch.zeros(1, opt.semantic_nc, 32, 32), torch.zeros(1, 256))):
        with pytest.raises(ValueError, match="needs a model trained with --use_vae"):
            call()


def test_a_code_of_the_wrong_size_is_refused(parse_options):
    model, _, layout = vae_model(parse_options, "spade")
    with pytest.raises(ValueError, match=r"z has shape \(2, 7\), expected \(2, 8\)"):
        model.generate_with_code(layout, torch.zeros(2, 7))


def test_pix2pixhd_refuses_use_vae(parse_options):
    opt = parse_options("--dataset_mode", "synthetic", "--netG", "pix2pixhd", "--use_vae", "--crop_size", 32)
    with pytest.raises(ValueError, match="--netG pix2pixhd has no input for a style code z"):
        Pix2PixModel(opt)


def test_style_image_is_loaded_as_the_dataset_loads_its_images(parse_options, tmp_path):
    rng = np.random.default_rng(0)
    for folder in ("labels", "images"):
        (tmp_path / folder).mkdir()
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(tmp_path / "labels" / "a.png")
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "images" / "a.png")
    opt = parse_options("--dataset_mode", "custom", "--label_dir", tmp_path / "labels", "--image_dir",
                        tmp_path / "images", "--label_nc", 2, "--no_instance", "--crop_size", 32, train=False)
    assert (opt.preprocess_mode, opt.load_size) == ("resize_and_crop", 32)  # a 48x48 image is resized
    style = multimodal.load_style_image(str(tmp_path / "images" / "a.png"), opt)
    assert style.shape == (1, 3, 32, 32)
    assert torch.equal(style[0], data.create_dataset(opt)[0]["image"])


# ---------------------------------------------------------------------------------------------------------
# test.py on a tiny trained --use_vae model

@pytest.fixture(scope="module")
def vae_experiment(tmp_path_factory):
    """A --use_vae SPADE trained for one iteration (synthetic, 32x32), and two style image files."""
    tmp = tmp_path_factory.mktemp("vae")
    with contextlib.redirect_stdout(io.StringIO()):
        train_script.main(["--name", "vae", "--checkpoints_dir", str(tmp / "checkpoints"), "--dataset_mode",
                           "synthetic", "--gpu_ids", "-1", "--netG", "spade", "--ngf", "8", "--ndf", "8",
                           "--use_vae", "--z_dim", "8", "--batchSize", "2", "--num_synthetic", "2", "--niter", "1",
                           "--niter_decay", "0", *SIZES["spade"]])
    rng = np.random.default_rng(0)
    styles = []
    for name in ("red.png", "noise.png"):
        pixels = np.zeros((40, 40, 3), np.uint8) + np.uint8([200, 30, 30]) if name == "red.png" else \
            rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp / name)
        styles.append(str(tmp / name))
    return tmp, styles


def run_test(experiment, results, *extra):
    tmp, _ = experiment
    argv = ["--name", "vae", "--checkpoints_dir", str(tmp / "checkpoints"), "--results_dir", str(tmp / results),
            "--gpu_ids", "-1", "--how_many", "2", *map(str, extra)]
    with contextlib.redirect_stdout(io.StringIO()):
        test_script.main(argv)
    return tmp / results / "vae" / "test_latest"


def test_page_has_k_samples_and_an_interpolation_row_per_label(vae_experiment):
    tmp, (style_a, style_b) = vae_experiment
    folder = run_test(vae_experiment, "results", "--n_samples", 3, "--interpolate", 4, "--style_a", style_a,
                      "--style_b", style_b)
    page = (folder / "index.html").read_text()
    tables = re.findall(r"<table.*?</table>", page, re.S)
    assert len(tables) == 4  # two labels, each a samples row and an interpolation row
    sample_row = ["input_label/00000.png", "sample_1/00000.png", "sample_2/00000.png", "sample_3/00000.png",
                  "real_image/00000.png"]
    interpolation_row = ["input_label/00000.png", "style/style_a.png", "interp_0/00000.png", "interp_1/00000.png",
                         "interp_2/00000.png", "interp_3/00000.png", "style/style_b.png"]
    assert re.findall(r'<img[^>]*src="images/([^"]+)"', tables[0]) == sample_row
    assert re.findall(r'<img[^>]*src="images/([^"]+)"', tables[1]) == interpolation_row
    assert page.count("<img") == 2 * (len(sample_row) + len(interpolation_row))
    assert "t = 0.33" in tables[1] and "style_a: red.png" in tables[1] and "style_b: noise.png" in tables[1]
    images = folder / "images"
    assert sorted(os.listdir(images)) == sorted(["input_label", "real_image", "sample_1", "sample_2", "sample_3",
                                                 "interp_0", "interp_1", "interp_2", "interp_3", "style"])
    for visual in os.listdir(images):
        expected = ["style_a.png", "style_b.png"] if visual == "style" else ["00000.png", "00001.png"]
        assert sorted(os.listdir(images / visual)) == expected, visual

    # the files are the model's images for the seeded codes and the encoded styles
    argv = ["--name", "vae", "--checkpoints_dir", str(tmp / "checkpoints"), "--gpu_ids", "-1"]
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TestPageOptions().parse(argv)
        model = Pix2PixModel(opt).eval()
    sample = data.create_dataset(opt)[1]
    layout, _ = model.preprocess_input({k: v[None] if torch.is_tensor(v) else v for k, v in sample.items()})
    codes = model.random_codes(3, torch.Generator().manual_seed(opt.seed))
    z_b = model.encode_style(multimodal.load_style_image(style_b, opt))
    for file_name, z in [("sample_2/00001.png", codes[1]), ("interp_3/00001.png", z_b)]:
        saved = np.asarray(Image.open(images / file_name)).astype(int)
        direct = util.tensor2im(model.generate_with_code(layout, z)).astype(int)
        # the page rendered the label in a batch of two, this one alone: convolutions may round differently, so
        # a pixel may land one 8-bit level away
        assert np.abs(saved - direct).max() <= 1, file_name


def test_samples_are_seeded(vae_experiment):
    pictures = {}
    for results, seed in (("seed0", 0), ("seed0_again", 0), ("seed1", 1)):
        folder = run_test(vae_experiment, results, "--n_samples", 2, "--seed", seed)
        pictures[results] = [(folder / "images" / f"sample_{k}" / "00000.png").read_bytes() for k in (1, 2)]
    assert pictures["seed0"] == pictures["seed0_again"]
    assert pictures["seed0"][0] != pictures["seed0"][1]
    assert all(a != b for a, b in zip(pictures["seed0"], pictures["seed1"]))


def test_one_sample_keeps_the_usual_row_beside_the_interpolation(vae_experiment):
    _, (style_a, style_b) = vae_experiment
    folder = run_test(vae_experiment, "results_single", "--interpolate", 2, "--style_a", style_a,
                      "--style_b", style_b)
    tables = re.findall(r"<table.*?</table>", (folder / "index.html").read_text(), re.S)
    assert [len(re.findall("<img", t)) for t in tables] == [3, 5, 3, 5]
    assert "synthesized_image/00001.png" in tables[2] and "sample_1" not in tables[2]


@pytest.mark.parametrize("extra, message", [
    (["--interpolate", "3"], "--interpolate needs --style_a IMG and --style_b IMG"),
    (["--interpolate", "3", "--style_a", "STYLE"], r"\(--style_b not given\)"),
    (["--interpolate", "1", "--style_a", "STYLE", "--style_b", "STYLE"],
     "argument --interpolate: must be an integer >= 2, got 1"),
    (["--interpolate", "3", "--style_a", "STYLE", "--style_b", "nowhere/b.png"],
     "--style_b nowhere/b.png: file not found"),
    (["--style_a", "STYLE"], "--style_a is used only with --interpolate STEPS"),
    (["--n_samples", "0"], "argument --n_samples: must be an integer >= 1, got 0"),
])
def test_bad_multimodal_options_stop_with_one_clear_line(vae_experiment, extra, message, capsys):
    tmp, (style, _) = vae_experiment
    extra = [style if a == "STYLE" else a for a in extra]
    with pytest.raises(SystemExit) as e:
        run_test(vae_experiment, "results_bad", *extra)
    assert re.search(message, f"{e.value}\n{capsys.readouterr().err}")  # ranges are refused by argparse
    assert not (tmp / "results_bad").exists()


@pytest.mark.parametrize("extra", [["--n_samples", "4"], ["--interpolate", "3", "--style_a", "A", "--style_b", "B"]])
def test_multimodal_rows_need_a_vae_model(tiny_scgan, tmp_path, extra):
    checkpoints, _, argv = tiny_scgan
    for name in ("A", "B"):
        (tmp_path / name).write_bytes(b"")
    extra = [str(tmp_path / a) if a in ("A", "B") else a for a in extra]
    with pytest.raises(SystemExit, match=f"{extra[0]} {extra[1]} needs a model trained with --use_vae .*'tiny' was "
                                         "trained without it: train with --use_vae"):
        test_script.main([*argv, "--results_dir", str(tmp_path / "results"), *extra])
    assert not (tmp_path / "results").exists()


def test_unreadable_style_image_is_named(vae_experiment, capsys):
    tmp, (style, _) = vae_experiment
    broken = tmp / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(SystemExit, match=f"error: cannot read {re.escape(str(broken))}"):
        run_test(vae_experiment, "results_broken", "--interpolate", 2, "--style_a", style, "--style_b", broken)
