"""evaluate.py end to end on a saved tiny SC-GAN (synthetic dataset, CPU): metrics.json, the page, the
protocol, --from_results, and the one-line errors for missing weights files; the paper protocol of each real
dataset (evaluation/protocols.py) with weights files in the released layouts, written here."""
import json
import os

import pytest
import torch

import evaluate
import test as test_script
from evaluation.synthetic_segmenter import UNet, save_segmenter
from tests.test_segmenters import write_released_files   # random weights under the released file names

pytestmark = pytest.mark.usefixtures("no_downloads")


@pytest.fixture(scope="module")
def seg_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("seg") / "seg.pt"
    save_segmenter(UNet(9, width=4).eval(), str(path))
    return str(path)


def generator_parameters(tiny_scgan):
    """Parameters of the tiny SC-GAN's generator as built from its saved options (spectral norms unfolded)."""
    from models import networks
    from options.test_options import TestOptions
    opt = TestOptions().parse(tiny_scgan[2], save=False, verbose=False)
    return sum(p.numel() for p in networks.define_G(opt, verbose=False).parameters())


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
    # the custom protocol by default on synthetic, and its settings
    assert protocol["name"] == "custom" and protocol["dataset_mode"] == "synthetic"
    settings = protocol["settings"]
    assert settings["metrics"] == ["miou"] and settings["num_images"] == 6 and settings["image_size_hw"] == [64, 64]
    assert settings["segmenter"] == "TorchScript --seg_model seg.pt" and settings["label_mapping"] == "identity"
    assert settings["dontcare"] == "none (every pixel counted)"   # synthetic label maps have no dontcare
    assert settings["deviations"] == [] and "paper_image_size_hw" not in settings
    # only the data options the synthetic mode reads: no --dataroot, but its sample count
    assert "dataroot" not in protocol["data"] and protocol["data"]["num_synthetic"] == 200
    # per-class IoU under the dataset's class names
    from data.synthetic import CLASS_NAMES
    assert list(protocol["segmentation"]["per_class_iou"]) == list(CLASS_NAMES)
    assert list(protocol["segmentation"]["per_class_iou_real"]) == list(CLASS_NAMES)
    # the experiment and the generator's speed, measured while it ran
    experiment = saved["experiment"]
    assert experiment["name"] == "tiny" and experiment["which_epoch"] == "latest" and experiment["netG"] == "scgan"
    assert experiment["generator_file"] == "latest_net_G.pth"   # relative to the experiment, checkpoints_dir/NAME
    assert experiment["generator_file"] == protocol["weights_sha256"]["generator"]["path"]
    assert protocol["weights_sha256"]["seg_model"]["path"] == "seg.pt"   # outside the experiment and the repository
    for machine_folder in (str(tmp_path.parent.parent), os.getcwd()):
        assert machine_folder not in (out / "metrics.json").read_text()
    assert experiment["parameters"]["G"] == generator_parameters(tiny_scgan)
    speed = saved["speed"]
    assert speed["generator_images_per_s"] > 0 and speed["device"] == "cpu" and speed["threads"] >= 1
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
    assert protocol["kid"]["subset_size"] == 3 and metrics["kid_std"] > 0
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
    assert again["experiment"]["generator_file"] is None and "speed" not in again
    assert again["protocol"]["settings"]["segmenter"] is None and again["protocol"]["settings"]["metrics"] == ["lpips"]


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


def test_metrics_json_names_files_without_the_machines_folders(tmp_path, monkeypatch):
    from evaluation.run import portable_path
    experiment, repo, home = tmp_path / "checkpoints" / "exp", tmp_path / "repo", tmp_path / "home"
    for folder in (experiment, repo / ".weights", home / ".cache"):
        folder.mkdir(parents=True)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("HOME", str(home))
    assert portable_path(str(experiment / "latest_net_G.pth"), str(experiment)) == "latest_net_G.pth"
    assert portable_path(".weights/inception.pth", str(experiment)) == ".weights/inception.pth"   # as run from repo
    assert portable_path(str(home / ".cache" / "vgg.pth"), str(experiment)) == "~/.cache/vgg.pth"
    assert portable_path("/elsewhere/seg.pt", str(experiment)) == "seg.pt"   # its sha256 says which file


def test_the_protocol_names_the_generator_file_that_renders_the_images(tiny_experiment):
    import argparse

    from evaluation.run import Evaluation
    folder, _ = tiny_experiment("ema", "--netG", "spade", ema=True)
    opt = argparse.Namespace(metrics=[], from_results=False, checkpoints_dir=str(folder.parent), name=folder.name,
                             which_epoch="latest", no_ema=False, protocol="custom", dataset_mode="synthetic")
    assert Evaluation(opt).weights["generator"] == str(folder / "latest_net_G_ema.pth")   # as test.py uses it
    opt.no_ema = True
    assert Evaluation(opt).weights["generator"] == str(folder / "latest_net_G.pth")


def test_metrics_json_names_the_ema_generator_that_rendered_the_images(tiny_experiment, tmp_path, eval_weights):
    folder, _ = tiny_experiment("ema", "--netG", "spade", ema=True)
    argv = ["--name", "ema", "--checkpoints_dir", str(folder.parent), "--gpu_ids", "-1", "--how_many", "2",
            "--results_dir", str(tmp_path), "--metrics", "lpips", "--lpips_weights", eval_weights("lpips_alex.pth"),
            "--num_examples", "0"]
    ema = evaluate.main(argv)
    plain = evaluate.main([*argv, "--no_ema"])
    assert ema["experiment"]["generator_file"] == "latest_net_G_ema.pth"   # in the experiment's folder
    assert plain["experiment"]["generator_file"] == "latest_net_G.pth"
    assert ema["metrics"]["lpips"] != plain["metrics"]["lpips"]   # the two files render different images


# ---------------------------------------------------------------------------------------------------------
# the paper protocol (evaluation/protocols.py): the papers' segmenters from files in their released layouts

def eval_options(*argv):
    """EvalOptions on argv without an experiment (only the protocol's choices are looked at)."""
    import contextlib
    import io
    from options.eval_options import EvalOptions

    class NoExperiment(EvalOptions):
        requires_experiment = False
    with contextlib.redirect_stdout(io.StringIO()):
        return NoExperiment().parse(["--gpu_ids", "-1", *map(str, argv)], save=False)


PAPER = {  # dataset -> (metrics, segmenter class, its build options, network named in the settings, paper size)
    "coco": (["fid", "miou"], "CocoStuffSegmenter", {"image_size": None}, "DeepLab v2 ResNet-101 MSC", [256, 256]),
    "ade20k": (["fid", "miou"], "ADE20KSegmenter", {"short_sides": (300, 375, 450, 525, 600)},
               "UPerNet ResNet-101", [256, 256]),
    "cityscapes": (["fid", "miou"], "CityscapesSegmenter", {"image_size": None}, "DRN-D-105", [256, 512]),
    "celebamaskhq": (["fid", "lpips", "miou"], "CelebAMaskHQSegmenter", {"image_size": 512,
                                                                          "resize_mode": "bicubic"},
                     "face-parsing U-Net", [512, 512]),
}


@pytest.mark.parametrize("dataset", sorted(PAPER))
def test_the_paper_protocol_picks_the_papers_segmenter_and_settings(dataset, tmp_path):
    from evaluation.run import Evaluation
    metrics, segmenter, options, network, size = PAPER[dataset]
    opt = eval_options("--dataset_mode", dataset)
    assert opt.protocol == "paper" and opt.metrics == metrics   # the default for the four datasets
    files = write_released_files(tmp_path, dataset, seed=1)
    opt = eval_options("--dataset_mode", dataset, "--metrics", "miou", "--segmenter_weights", *files)
    run = Evaluation(opt)
    model = run.segmenter.model
    assert type(model).__name__ == segmenter and not model.training
    for key, value in options.items():
        assert getattr(model, key) == value, key
    first = next(iter(torch.load(files[-1], weights_only=True).items()))
    assert torch.equal(model.released_modules()[-1].state_dict()[first[0]], first[1])   # the file was loaded
    settings = run.settings()
    assert settings["metrics"] == ["miou"] and settings["paper_image_size_hw"] == size
    assert settings["segmenter"].startswith(network)
    assert settings["segmenter_files"] == [os.path.basename(f) for f in files]
    assert settings["label_mapping"] and settings["dontcare"] and settings["segmenter_input_size"]
    assert settings["deviations"] == [f"measured miou of the paper's {','.join(metrics)}"]
    assert list(run.weights) == (["segmenter_0", "segmenter_1"] if dataset == "ade20k" else ["segmenter"])
    # the label mapping: dontcare / unevaluated ids are not counted, evaluated ones land on the network's class
    label = torch.tensor({"coco": [182, 5], "ade20k": [150, 7], "cityscapes": [6, 26],
                          "celebamaskhq": [0, 12]}[dataset]).view(1, 1, 1, 2)
    expected = {"coco": [255, 5], "ade20k": [255, 7], "cityscapes": [255, 13], "celebamaskhq": [0, 12]}[dataset]
    assert run.segmenter.targets(label).flatten().tolist() == expected


def test_the_paper_protocol_refuses_what_it_does_not_measure(tmp_path):
    with pytest.raises(SystemExit, match=r"--protocol paper: the paper measures coco, ade20k, cityscapes, "
                                         r"celebamaskhq; --dataset_mode synthetic has no paper protocol"):
        eval_options("--dataset_mode", "synthetic", "--protocol", "paper")
    with pytest.raises(SystemExit, match=r"--metrics fid,kid: --protocol paper measures fid,miou on coco .*for "
                                         r"kid use --protocol custom"):
        eval_options("--dataset_mode", "coco", "--metrics", "fid,kid")
    with pytest.raises(SystemExit, match=r"--seg_model: --protocol paper scores with the paper's segmenter"):
        eval_options("--dataset_mode", "cityscapes", "--seg_model", "seg.pt")
    with pytest.raises(SystemExit, match=r"--segmenter_weights: .* for --protocol paper"):
        eval_options("--dataset_mode", "synthetic", "--segmenter_weights", "x.pth")
    opt = eval_options("--dataset_mode", "coco", "--protocol", "custom", "--metrics", "kid")
    assert opt.protocol == "custom" and opt.metrics == ["kid"]
    # the default files are the released names under .weights/
    opt = eval_options("--dataset_mode", "ade20k")
    assert [os.path.basename(f) for f in opt.segmenter_weights] == ["encoder_epoch_50.pth", "decoder_epoch_50.pth"]


def test_a_missing_or_miscounted_segmenter_file_is_refused_in_one_line(tmp_path):
    from evaluation.run import Evaluation
    from evaluation.metrics import MetricSetupError
    missing = tmp_path / "drn-d-105_ms_cityscapes.pth"
    with pytest.raises(MetricSetupError) as e:
        Evaluation(eval_options("--dataset_mode", "cityscapes", "--metrics", "miou", "--segmenter_weights", missing))
    assert str(e.value) == (f"--segmenter_weights {missing}: file not found: the released "
                            f"drn-d-105_ms_cityscapes.pth of DRN-D-105, Cityscapes, 19 train ids (fyu/drn), "
                            f"published by github.com/fyu/drn (its README: http://go.yf.io/drn-cityscapes-models)")
    with pytest.raises(MetricSetupError, match=r"^--segmenter_weights a.pth: the ade20k segmenter takes 2 file\(s\), "
                                               r"encoder_epoch_50.pth and decoder_epoch_50.pth \(published under "
                                               r"http://sceneparsing"):
        Evaluation(eval_options("--dataset_mode", "ade20k", "--metrics", "miou", "--segmenter_weights", "a.pth"))


@pytest.fixture
def celeba_experiment(tmp_path, tiny_dataset):
    """A saved, untrained SPADE experiment on 4 tiny CelebAMask-HQ test samples (32x32): -> argv for evaluate."""
    import contextlib
    import io
    from models import networks
    from options.train_options import TrainOptions
    from checkpointing.storage import save_network
    _, data_argv = tiny_dataset("celebamaskhq", n=4, size=(32, 32), phase="test")
    checkpoints = str(tmp_path / "checkpoints")
    argv = ["--name", "celeba", "--checkpoints_dir", checkpoints, "--gpu_ids", "-1"]
    with contextlib.redirect_stdout(io.StringIO()):
        torch.manual_seed(0)
        opt = TrainOptions().parse([*argv, *data_argv, "--netG", "spade", "--ngf", "8"], save=True)
        save_network(networks.define_G(opt, verbose=False), f"{checkpoints}/celeba", "latest", "G")
    return [*argv, "--results_dir", str(tmp_path / "results"), "--batchSize", "2"]


def test_paper_protocol_on_celebamaskhq_end_to_end(celeba_experiment, tmp_path, eval_weights, capsys):
    from data.celebamaskhq_dataset import CLASS_NAMES
    files = write_released_files(tmp_path, "celebamaskhq")
    summary = evaluate.main([*celeba_experiment, "--segmenter_weights", *files, "--kid_subset_size", "2",
                             "--inception_weights", eval_weights("inception.pth"),
                             "--lpips_weights", eval_weights("lpips_alex.pth")])
    out = capsys.readouterr().out
    saved = json.loads((tmp_path / "results" / "celeba" / "eval_latest" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert set(saved["metrics"]) == {"fid", "lpips", "miou", "pixel_accuracy", "miou_real", "pixel_accuracy_real"}
    protocol = saved["protocol"]
    assert protocol["name"] == "paper" and protocol["dataset_mode"] == "celebamaskhq"
    settings = protocol["settings"]
    assert settings["metrics"] == ["fid", "lpips", "miou"] and settings["num_images"] == 4
    assert settings["image_size_hw"] == [32, 32] and settings["paper_image_size_hw"] == [512, 512]
    assert settings["segmenter"].startswith("face-parsing U-Net") and settings["segmenter_files"] == ["model.pth"]
    assert settings["segmenter_input_size"].startswith("512x512, bicubic")
    assert settings["deviations"] == ["images are 32x32 (HxW), the paper's celebamaskhq images 512x512"]
    assert "deviation from the paper's protocol: images are 32x32" in out and "protocol paper on celebamaskhq" in out
    assert list(protocol["segmentation"]["per_class_iou"]) == CLASS_NAMES
    assert protocol["data"]["dataroot"].endswith("celebamaskhq")   # a mode that reads --dataroot records it
    assert set(protocol["weights_sha256"]) == {"inception", "lpips_alex", "segmenter", "generator"}
    assert saved["experiment"]["netG"] == "spade" and saved["experiment"]["parameters"]["G"] > 0
    page = (tmp_path / "results" / "celeba" / "eval_latest" / "index.html").read_text()
    assert "Protocol &#x27;paper&#x27; on celebamaskhq" in page or "Protocol 'paper' on celebamaskhq" in page
    assert "Deviation from the paper" in page


def test_evaluate_stops_on_a_missing_segmenter_file_with_one_line_before_any_image(celeba_experiment, tmp_path):
    missing = tmp_path / "model.pth"
    with pytest.raises(SystemExit) as e:
        evaluate.main([*celeba_experiment, "--metrics", "miou", "--segmenter_weights", str(missing)])
    assert str(e.value).startswith(f"error: --segmenter_weights {missing}: file not found: the released model.pth")
    assert "\n" not in str(e.value) and not (tmp_path / "results").exists()


def test_evaluate_refuses_a_pickle_that_is_not_plain_weights_in_one_line(celeba_experiment, tmp_path):
    import argparse
    from tests.test_segmenters import random_state
    path = tmp_path / "model.pth"   # a training script's checkpoint: weights beside a pickled Namespace
    torch.save({"state_dict": random_state("face_parsing"), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(SystemExit) as e:
        evaluate.main([*celeba_experiment, "--metrics", "miou", "--segmenter_weights", str(path)])
    message = str(e.value)
    assert message.startswith(f"error: --segmenter_weights {path}: not a plain weights file (it pickles "
                              f"argparse.Namespace), and this project does not unpickle files"), message
    assert "\n" not in message and "weights_only" not in message and not (tmp_path / "results").exists()


def test_coco_resize_512_scores_at_512_against_label_maps_resized_by_nearest(tmp_path):
    from evaluation.run import Evaluation
    files = write_released_files(tmp_path, "coco")
    label = torch.arange(24).view(1, 1, 1, 24).expand(1, 1, 16, 24)   # column j holds id j
    default = Evaluation(eval_options("--dataset_mode", "coco", "--metrics", "miou", "--segmenter_weights", *files))
    assert default.segmenter.model.image_size is None
    assert torch.equal(default.segmenter.targets(label), label[:, 0])   # scored at the image's size
    run = Evaluation(eval_options("--dataset_mode", "coco", "--metrics", "miou", "--coco_resize", "512",
                                  "--segmenter_weights", *files))
    assert run.segmenter.model.image_size == 512
    assert run.settings()["segmenter_input_size"].startswith("longer side scaled to 512 (bilinear, "
                                                              "align_corners=True)")
    assert "scored there" in run.settings()["segmenter_input_size"]
    # 16x24 is scored at 341x512 (the longer side to 512): label column floor(j * 24 / 512), as imaginaire's
    # compute_hist resizes its label maps (torch's nearest)
    target = run.segmenter.targets(label)
    assert target.shape == (1, 341, 512)
    assert target[0, 0].tolist() == [j * 24 // 512 for j in range(512)] and (target == target[:, :1]).all()


def test_face_and_coco_resize_choose_the_published_variant_and_only_there(tmp_path):
    from evaluation.run import Evaluation
    files = write_released_files(tmp_path, "celebamaskhq")
    run = Evaluation(eval_options("--dataset_mode", "celebamaskhq", "--metrics", "miou", "--face_resize", "nearest",
                                  "--segmenter_weights", *files))
    assert run.segmenter.model.resize_mode == "nearest"
    assert run.settings()["segmenter_input_size"] == "512x512, PIL's nearest (the authors' tester.py)"
    with pytest.raises(SystemExit, match=r"^--face_resize: chooses how the paper's celebamaskhq segmenter sees the "
                                         r"images \(--protocol paper on --dataset_mode celebamaskhq\); this run is "
                                         r"--protocol paper on coco$"):
        eval_options("--dataset_mode", "coco", "--face_resize", "nearest")
    with pytest.raises(SystemExit, match=r"^--coco_resize: .* this run is --protocol custom on coco$"):
        eval_options("--dataset_mode", "coco", "--protocol", "custom", "--coco_resize", "512")
