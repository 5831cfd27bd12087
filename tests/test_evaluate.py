"""evaluate.py end to end on a saved tiny SC-GAN (synthetic dataset, CPU): metrics.json, the page, the
protocol, --from_results, and the one-line errors for missing weights files."""
import json
import os

import pytest
import torch

import evaluate
import test as test_script
from util.train_segmenter import UNet, save_torchscript

pytestmark = pytest.mark.usefixtures("no_downloads")


@pytest.fixture(scope="module")
def seg_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("seg") / "seg.pt"
    save_torchscript(UNet(9, width=4).eval(), str(path))
    return str(path)


def run(tiny_scgan, tmp_path, *argv):
    _, name, base = tiny_scgan
    summary = evaluate.main([*base, "--results_dir", str(tmp_path / "results"), "--how_many", "6",
                             "--batchSize", "4", *map(str, argv)])
    return summary, tmp_path / "results" / name / "eval_latest"


def test_miou_alone_runs_without_the_downloaded_weights(tiny_scgan, tmp_path, seg_model, capsys):
    summary, out = run(tiny_scgan, tmp_path, "--metrics", "miou", "--seg_model", seg_model, "--num_examples", 2)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    metrics, protocol = saved["metrics"], saved["protocol"]
    assert set(metrics) == {"miou", "pixel_accuracy", "miou_real", "pixel_accuracy_real"}
    assert 0 <= metrics["miou"] <= 1 and 0 <= metrics["pixel_accuracy"] <= 1
    assert protocol["num_images"] == 6 and protocol["image_size_hw"] == [64, 64]
    assert protocol["data"]["label_resize_filter"].startswith("nearest")
    assert protocol["segmentation"]["classes"] == 9 and protocol["segmentation"]["label_map"] == "identity"
    assert set(protocol["weights_sha256"]) == {"seg_model", "generator"}
    assert len(protocol["weights_sha256"]["seg_model"]["sha256"]) == 64
    page = (out / "index.html").read_text()
    assert "pixel_accuracy" in page and "weights_sha256" in page
    assert sorted(os.listdir(out / "images")) == ["input_label", "real_image", "segmented_label",
                                                 "synthesized_image"]
    assert len(os.listdir(out / "images" / "synthesized_image")) == 2
    assert "miou: " in capsys.readouterr().out


def test_all_metrics_with_the_converted_weights_and_from_results(tiny_scgan, tmp_path, seg_model, eval_weights):
    summary, out = run(tiny_scgan, tmp_path, "--metrics", "fid,kid,lpips,miou", "--seg_model", seg_model,
                       "--inception_weights", eval_weights("inception.pth"),
                       "--lpips_weights", eval_weights("lpips_alex.pth"), "--kid_subset_size", 3)
    metrics, protocol = summary["metrics"], summary["protocol"]
    assert metrics["fid"] > 0 and torch.isfinite(torch.tensor(metrics["kid"]))
    assert 0 < metrics["lpips"] < 1.5
    assert protocol["kid"]["subset_size"] == 3
    assert "299x299" in protocol["inception"]["resize"] and "rounded" in protocol["inception"]["input"]
    assert set(protocol["weights_sha256"]) == {"inception", "lpips_alex", "seg_model", "generator"}
    page = (out / "index.html").read_text()
    assert "FID depends on the number of images" in page

    # the same number from the images test.py wrote (they went through uint8 PNGs, hence the tolerance)
    _, name, base = tiny_scgan
    test_script.main([*base, "--results_dir", str(tmp_path / "results"), "--how_many", "6"])
    again, _ = run(tiny_scgan, tmp_path, "--metrics", "lpips", "--from_results",
                   "--lpips_weights", eval_weights("lpips_alex.pth"))
    assert again["metrics"]["lpips"] == pytest.approx(metrics["lpips"], abs=2e-3)
    assert "generator" not in again["protocol"]["weights_sha256"]


def test_missing_weights_stop_with_one_message_naming_option_and_file(tiny_scgan, tmp_path, seg_model):
    with pytest.raises(SystemExit, match=r"--inception_weights .*none.pth: file not found"):
        run(tiny_scgan, tmp_path, "--metrics", "fid", "--inception_weights", tmp_path / "none.pth")
    with pytest.raises(SystemExit, match=r"--lpips_weights .*lpips_vgg_none.pth: file not found.*lpips --net vgg"):
        run(tiny_scgan, tmp_path, "--metrics", "lpips", "--lpips_net", "vgg",
            "--lpips_weights", tmp_path / "lpips_vgg_none.pth")
    with pytest.raises(SystemExit, match=r"--metrics miou needs --seg_model PATH.*train_segmenter"):
        run(tiny_scgan, tmp_path, "--metrics", "miou")
    with pytest.raises(SystemExit, match=r"--metrics fid,psnr: unknown \['psnr'\]"):
        run(tiny_scgan, tmp_path, "--metrics", "fid,psnr")
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("metrics.json"))


def test_the_protocol_names_the_generator_file_that_renders_the_images(tiny_experiment):
    import argparse
    from util.evaluation import Evaluation
    folder, _ = tiny_experiment("ema", "--netG", "spade", ema=True)
    opt = argparse.Namespace(metrics=[], from_results=False, checkpoints_dir=str(folder.parent), name=folder.name,
                             which_epoch="latest", no_ema=False, protocol="custom", dataset_mode="synthetic")
    assert Evaluation(opt).weights["generator"] == str(folder / "latest_net_G_ema.pth")   # as test.py uses it
    opt.no_ema = True
    assert Evaluation(opt).weights["generator"] == str(folder / "latest_net_G.pth")
