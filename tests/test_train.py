"""End to end on the CPU: short training runs of each generator on the synthetic dataset, checkpoints and
pages, exact resume after an interruption, SIGKILL and Ctrl-C, test.py's result page (also from labels
alone, and in a real browser), and the parameter summary."""
import json
import os
import re
import signal
import subprocess
import sys

import pytest
import torch

import test as test_script
import train as train_script
from checkpointing import storage as checkpoint
from tests.limits import HANG_GUARD_S
from tools import summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--dataset_mode", "synthetic", "--gpu_ids", "-1", "--ngf", "8", "--ndf", "8", "--batchSize", "2",
        "--niter", "1", "--niter_decay", "0", "--display_freq", "2", "--print_freq", "2"]
SIZES = {"spade": ["--crop_size", "32", "--load_size", "32"], "pix2pixhd": ["--crop_size", "32", "--load_size",
         "32", "--resnet_n_blocks", "2"], "scgan": ["--crop_size", "64", "--load_size", "64", "--nrf", "8",
         "--nff", "8", "--netD", "fpse"], "ccfpse": ["--crop_size", "64", "--load_size", "64", "--netD", "fpse"]}


def run_train(tmp_path, name, *extra):
    argv = ["--name", name, "--checkpoints_dir", str(tmp_path / "checkpoints"), *TINY, *extra]
    train_script.main(argv)
    return tmp_path / "checkpoints" / name


@pytest.mark.parametrize("netG", ["spade", "pix2pixhd", "scgan", "ccfpse"])
def test_two_iterations_write_checkpoints_and_the_page(tmp_path, netG, capsys):
    folder = run_train(tmp_path, netG, "--netG", netG, "--num_synthetic", "4", *SIZES[netG])
    out = capsys.readouterr().out
    for name in ["latest_net_G.pth", "latest_net_D.pth", "1_net_G.pth", "1_net_D.pth", "iter.txt", "opt.txt",
                 "opt.json", "loss_log.txt", "web/index.html", "web/loss_curves.png"]:
        assert (folder / name).is_file(), name
    assert not (folder / "opt.pkl").exists()
    assert checkpoint.read_iter_file(str(folder)) == (2, 0)  # epoch 1 done: go on at epoch 2, image 0
    unit, manifest = checkpoint.newest_complete_unit(str(folder))
    assert manifest["save_id"] == 4 and manifest["labels"] == ["latest", "1"]
    state = torch.load(os.path.join(unit, "train_state.pth"), weights_only=True)
    assert (state["epoch"], state["total_steps"]) == (2, 4) and state["optimizer_G"]["state"]
    log = (folder / "loss_log.txt").read_text().splitlines()
    assert log[0].startswith("================ Training Loss (")
    assert re.fullmatch(r"\(epoch: 1, iters: 2, time: \d+\.\d{3}\) GAN: -?\d+\.\d{3} .*D_real: -?\d+\.\d{3} ", log[1])
    assert re.search(r"\| epoch 1/1, 4/4 images \| \d+\.\d img/s \| ETA 0:00:00", out)  # progress on stdout
    page = (folder / "web" / "index.html").read_text()
    for label in ["input_label", "synthesized_image", "real_image"] + (["svg_image"] if netG == "scgan" else []):
        assert f"epoch001_iter0000004_{label}.png" in page
        assert (folder / "web" / "images" / f"epoch001_iter0000004_{label}.png").is_file()
    assert "Training was successfully finished." in out


def final_weights(folder):
    return torch.load(folder / "latest_net_G.pth", weights_only=True)


def test_interrupted_run_resumes_exactly_with_flips_on(tmp_path, monkeypatch):
    """Ctrl-C in the middle of a step: the step finishes, `latest` is saved at that boundary, and the resumed
    run ends with the weights of an uninterrupted one (random crops and flips included)."""
    args = ["--netG", "spade", "--crop_size", "32", "--load_size", "40", "--preprocess_mode", "resize_and_crop",
            "--num_synthetic", "8", "--niter", "2"]
    straight = final_weights(run_train(tmp_path, "straight", *args))

    calls = {"n": 0}
    original = train_script.Pix2PixTrainer.run_generator_one_step

    def ctrl_c_during_the_sixth_step(self, data):
        calls["n"] += 1
        if calls["n"] == 6:  # epoch 2, second batch
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, data)

    monkeypatch.setattr(train_script.Pix2PixTrainer, "run_generator_one_step", ctrl_c_during_the_sixth_step)
    with pytest.raises(SystemExit) as e:
        run_train(tmp_path, "resumed", *args)
    assert e.value.code == 128 + signal.SIGINT
    monkeypatch.setattr(train_script.Pix2PixTrainer, "run_generator_one_step", original)
    folder = tmp_path / "checkpoints" / "resumed"
    assert checkpoint.read_iter_file(str(folder)) == (2, 4)  # the sixth step finished before the save
    folder = run_train(tmp_path, "resumed", *args, "--continue_train")
    resumed = final_weights(folder)
    assert straight.keys() == resumed.keys()
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k
    assert checkpoint.read_iter_file(str(folder)) == (3, 0)


def test_two_runs_with_one_seed_are_identical_with_flips_on(tmp_path):
    args = ["--netG", "spade", "--crop_size", "32", "--load_size", "40", "--preprocess_mode", "resize_and_crop",
            "--num_synthetic", "4"]
    a = final_weights(run_train(tmp_path, "a", *args))
    b = final_weights(run_train(tmp_path, "b", *args))
    assert all(torch.equal(a[k], b[k]) for k in a)


def start_training(tmp_path, name, *extra, own_group=False):
    """A long run (it cannot finish before the tests below signal it) in a subprocess, output line by line;
    own_group: in its own process group (with its loading workers), as a shell job or a Slurm step is."""
    argv = [sys.executable, "-u", "train.py", "--name", name, "--checkpoints_dir", str(tmp_path / "checkpoints"),
            *TINY, "--netG", "spade", *SIZES["spade"], "--num_synthetic", "40", "--niter", "1000",
            "--save_latest_freq", "8", "--print_freq", "1000", "--display_freq", "1000", *extra]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=own_group)


def wait_for_saves(proc, count):
    """Read the run's output until it announced `count` saves (no wall-clock budget: a slow machine waits)."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if sum("saving the latest model" in s for s in seen) >= count:
            return seen
    raise AssertionError("training ended before saving:\n" + "".join(seen))


@pytest.mark.slow
def test_sigkill_mid_epoch_then_continue_train(tmp_path):
    proc = start_training(tmp_path, "killed")
    wait_for_saves(proc, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    folder = tmp_path / "checkpoints" / "killed"
    unit, manifest = checkpoint.newest_complete_unit(str(folder))
    assert manifest["save_id"] in (8, 16)  # the kill may land while the second save is written
    epoch_iter = manifest["epoch_iter"]
    proc = start_training(tmp_path, "killed", "--continue_train", "--niter", "1",
                          "--num_synthetic", str(epoch_iter + 4))
    out, _ = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 0, out
    assert f"resuming at epoch 1, image {epoch_iter} of the epoch" in out
    assert "Training was successfully finished." in out
    assert not list(folder.glob(".*.tmp")) and not list(folder.glob("saves/.*"))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_save_latest_and_say_one_line(tmp_path, sig):
    proc = start_training(tmp_path, "interrupted")
    wait_for_saves(proc, 1)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 128 + sig, out
    name = signal.Signals(sig).name
    lines = [line for line in out.splitlines() if line.startswith(name)]
    assert len(lines) == 1 and re.fullmatch(rf"{name}: saved the latest checkpoint at epoch 1, image \d+; resume "
                                            r"with --continue_train", lines[0]), out
    assert "Traceback" not in out
    epoch_iter = int(re.search(r"at epoch 1, image (\d+)", lines[0]).group(1))
    folder = tmp_path / "checkpoints" / "interrupted"
    assert checkpoint.read_iter_file(str(folder)) == (1, epoch_iter)
    assert checkpoint.newest_complete_unit(str(folder))[1]["epoch_iter"] == epoch_iter


@pytest.mark.slow
def test_sigterm_to_the_whole_process_group_with_loading_workers(tmp_path):
    """`timeout` and Ctrl-C in a shell signal the whole process group: the loading workers have groups of their
    own, so the signal reaches the main process alone, which saves and stops as with a signal of its own."""
    proc = start_training(tmp_path, "group", "--nThreads", "2", own_group=True)
    wait_for_saves(proc, 1)
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert re.search(r"^SIGTERM: saved the latest checkpoint at epoch 1, image \d+", out, re.M), out
    assert "Traceback" not in out and "DataLoader worker" not in out


def test_missing_vgg_weights_stop_before_training(tmp_path):
    missing = tmp_path / "vgg19-dcbb9e9d.pth"
    with pytest.raises(SystemExit) as e:
        run_train(tmp_path, "vgg", *SIZES["spade"], "--lambda_vgg", "10", "--vgg_weights", str(missing))
    assert f"--vgg_weights {missing}: file not found" in str(e.value) and "--no_vgg_loss" in str(e.value)
    assert not (tmp_path / "checkpoints" / "vgg" / "latest_net_G.pth").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trained")
    run_train(tmp, "scg", "--netG", "scgan", "--num_synthetic", "4", *SIZES["scgan"])
    return tmp


def run_test(trained, *extra, results="results"):
    test_script.main(["--name", "scg", "--checkpoints_dir", str(trained / "checkpoints"),
                      "--results_dir", str(trained / results), "--gpu_ids", "-1", *extra])
    return trained / results / "scg" / "test_latest"


def test_test_page_holds_label_result_and_real_image(trained):
    folder = run_test(trained, "--how_many", "3")
    page = (folder / "index.html").read_text()
    assert "Experiment = scg, Phase = test, Epoch = latest" in page
    for visual in ["input_label", "synthesized_image", "real_image"]:
        files = sorted(os.listdir(folder / "images" / visual))
        assert files == ["00000.png", "00001.png", "00002.png"], visual  # exactly --how_many
        assert f"images/{visual}/00000.png" in page


def test_test_from_labels_alone(trained):
    labels = trained / "labels_only"
    subprocess.run([sys.executable, "-m", "tools.write_synthetic", "--out", str(labels), "--n", "2", "--size", "64",
                    "--seed", "5"], cwd=ROOT, check=True, capture_output=True)
    folder = run_test(trained, "--dataset_mode", "custom", "--label_dir", str(labels / "labels"),
                      results="results_labels_only")
    assert sorted(os.listdir(folder / "images")) == ["input_label", "synthesized_image"]
    page = (folder / "index.html").read_text()
    assert "synthesized_image" in page and "real_image" not in page


def test_test_page_images_load_in_a_browser(trained):
    from tests.browser import assert_page_images_load
    folder = run_test(trained, "--how_many", "2", results="results_browser")
    assert assert_page_images_load(str(folder / "index.html")) == 2 * 3


def test_summary_prints_counts_per_block_and_per_network(tmp_path, capsys):
    summary.main(["--netG", "scgan", "--dataset_mode", "synthetic", "--checkpoints_dir", str(tmp_path),
                  "--gpu_ids", "-1", "--ngf", "8", "--nrf", "8", "--nff", "8", "--use_vae"])
    out = capsys.readouterr().out
    from models.networks.scgan import SCGANGenerator
    g = SCGANGenerator(semantic_nc=9, ngf=8, nrf=8, nff=8, crop_size=64, use_vae=True)
    total = sum(p.numel() for p in g.parameters())
    svg = sum(p.numel() for p in g.svg.parameters())
    assert out.rstrip().splitlines()[-3] == f"G scgan: {total:,} parameters"
    assert re.search(r"^D fpse: [\d,]+ parameters$", out, re.M) and re.search(r"^E conv: [\d,]+ parameters$", out, re.M)
    assert re.search(rf"= SVG \(semantic vector generator\)\s+{svg:,}", out)
    assert re.search(rf"= SRG \(semantic render generator\)\s+{total - svg:,}", out)
    for block in ["head_0", "G_middle_0", "up_3", "svg.stages.0 (V1)", "svg.to_image"]:
        assert block in out
    assert not (tmp_path / "label2coco").exists()  # nothing written


def test_d_steps_per_g(tmp_path, monkeypatch):
    steps = []
    for kind in ("generator", "discriminator"):
        method = f"run_{kind}_one_step"
        original = getattr(train_script.Pix2PixTrainer, method)

        def counted(self, data, original=original, kind=kind):
            steps.append(kind[0].upper())
            return original(self, data)
        monkeypatch.setattr(train_script.Pix2PixTrainer, method, counted)
    run_train(tmp_path, "dsteps", *SIZES["spade"], "--num_synthetic", "8", "--D_steps_per_G", "2")
    assert "".join(steps) == "GDDGDD"  # 4 batches: G on the 1st and 3rd, D on every one


def eval_log(folder):
    return [json.loads(line) for line in (folder / "eval_log.jsonl").read_text().splitlines()]


def test_fid_during_training_is_plotted_and_keeps_the_best_generator(tmp_path, eval_weights, no_downloads, capsys):
    """--eval_freq 1: an FID per epoch in eval_log.jsonl, the curve on the training page, best_net_G.pth from the
    unit of the best epoch when --best_metric fid asks for it."""
    folder = run_train(tmp_path, "fid", "--netG", "spade", *SIZES["spade"], "--num_synthetic", "4", "--niter", "2",
                       "--save_epoch_freq", "1", "--eval_freq", "1", "--eval_how_many", "4", "--inception_weights",
                       eval_weights("inception.pth"), "--best_metric", "fid")
    out = capsys.readouterr().out
    history = eval_log(folder)
    assert [e["epoch"] for e in history] == [1, 2] and all(set(e) == {"epoch", "FID"} and e["FID"] >= 0
                                                            for e in history)
    assert re.search(r"end of epoch 2: FID \d+\.\d\d \(4 validation images", out)
    page = (folder / "web" / "index.html").read_text()
    assert (folder / "web" / "eval_curves.png").is_file() and "eval_curves.png" in page
    best_epoch = min(history, key=lambda e: e["FID"])["epoch"]
    assert os.path.samefile(folder / "best_net_G.pth", folder / f"{best_epoch}_net_G.pth")
    assert ("--eval_freq 1: best_net_G.pth by FID (lower is better; asked by --best_metric fid although FID at 4 "
            "images is dominated by its bias)") in out
    assert re.search(rf"best: epoch {best_epoch} by FID \d+\.\d\d \(lower is better", out)


def test_fid_alone_on_few_images_publishes_no_best_generator_and_says_why(tmp_path, eval_weights, no_downloads,
                                                                          capsys):
    folder = run_train(tmp_path, "fid", "--netG", "spade", *SIZES["spade"], "--num_synthetic", "4",
                       "--eval_freq", "1", "--eval_how_many", "4", "--inception_weights", eval_weights("inception.pth"))
    out = capsys.readouterr().out
    assert ("--eval_freq 1: no best_net_G.pth: FID at 4 images is dominated by its bias (below 2048 images): "
            "measure --eval_metrics miou, raise --eval_how_many to 2048, or ask --best_metric fid") in out
    assert [e["epoch"] for e in eval_log(folder)] == [1] and not (folder / "best_net_G.pth").exists()
    assert "best: epoch" not in out


def test_the_best_metric_picks_by_its_own_direction_where_the_metrics_disagree(tmp_path):
    from trainers.eval_monitor import EvalMonitor, choose_best_metric
    assert choose_best_metric("auto", ["fid", "miou"], 50) == (
        "mIoU", "higher is better; FID at 50 images is dominated by its bias")
    assert choose_best_metric("auto", ["fid"], 2048) == ("FID", "lower is better")
    assert choose_best_metric("auto", ["fid"], 2047)[0] is None
    assert choose_best_metric("none", ["fid", "miou"], 5000) == (None, "--best_metric none")
    # epoch 2 has the best FID, epoch 3 the best mIoU
    measured = [{"epoch": 1, "FID": 90.0, "mIoU": 0.2}, {"epoch": 2, "FID": 50.0, "mIoU": 0.3},
                {"epoch": 3, "FID": 70.0, "mIoU": 0.6}]
    for name, key, expected in (("fid", "FID", [1, 2]), ("miou", "mIoU", [1, 2, 3]), ("none", None, [])):
        monitor = EvalMonitor.__new__(EvalMonitor)   # its choice alone, without data or networks
        monitor.key, monitor.why = choose_best_metric(name, ["fid", "miou"], 5000)
        assert monitor.key == key
        monitor.history, best = [], []
        for values in measured:
            monitor.history.append(values)
            if monitor.is_best(values):
                best.append(values["epoch"])
        assert best == expected, name
    with pytest.raises(SystemExit, match=r"--best_metric miou is not measured: add it to --eval_metrics fid"):
        run_train(tmp_path, "x", *SIZES["spade"], "--eval_freq", "1", "--best_metric", "miou")


@pytest.fixture(scope="module")
def tiny_segmenter(tmp_path_factory):
    """A U-Net trained for a few steps on the real synthetic images and saved as tools.train_segmenter saves it
    (evaluation/synthetic_segmenter.py)."""
    from evaluation import synthetic_segmenter as train_segmenter
    from tools import train_segmenter as segmenter_tool
    tmp = tmp_path_factory.mktemp("segmenter")
    argv = ["--dataset_mode", "synthetic", "--max_dataset_size", "16", "--checkpoints_dir", str(tmp),
            "--load_size", "32", "--crop_size", "32"]
    model = train_segmenter.train(segmenter_tool.dataset_options(argv, "train"), iterations=30, batch_size=4,
                                  lr=5e-3, width=8, progress=False)
    train_segmenter.save_segmenter(model, str(tmp / "seg.pt"))
    return model, str(tmp / "seg.pt")


@pytest.mark.usefixtures("eval_extras")  # the mIoU is torchmetrics'
def test_miou_during_training_next_to_the_real_images_miou(tmp_path, tiny_segmenter, capsys):
    """--eval_metrics miou: the segmenter's mIoU on the synthesized validation images per epoch, beside its
    mIoU on the real ones (computed once, the same every epoch); best_net_G follows the highest mIoU when no FID
    is measured."""
    from evaluation import synthetic_segmenter as train_segmenter
    from trainers.eval_monitor import validation_options
    model, path = tiny_segmenter
    folder = run_train(tmp_path, "miou", "--netG", "spade", *SIZES["spade"], "--num_synthetic", "4", "--niter", "3",
                       "--save_epoch_freq", "1", "--eval_freq", "1", "--eval_how_many", "6", "--eval_metrics",
                       "miou", "--seg_model", path)
    out = capsys.readouterr().out
    history = eval_log(folder)
    assert [e["epoch"] for e in history] == [1, 2, 3]
    assert all(set(e) == {"epoch", "mIoU", "accuracy", "real_mIoU", "real_accuracy"} for e in history)
    # the real images' mIoU is the segmenter's score on the test images (4 of them), computed another way
    opt = train_script.TrainOptions().parse(["--dataset_mode", "synthetic", "--crop_size", "32", "--load_size",
                                             "32", "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path / "x"),
                                             "--num_synthetic", "4", "--eval_how_many", "6"], save=False,
                                            verbose=False)
    expected = train_segmenter.score(model, validation_options(opt))
    assert [e["real_mIoU"] for e in history] == pytest.approx([expected["miou"]] * 3, abs=1e-9)
    assert re.search(r"end of epoch 3: mIoU \d\.\d{3} \(real images \d\.\d{3}, ratio \d+\.\d\d\), pixel accuracy", out)
    best_epoch = max(history, key=lambda e: e["mIoU"])["epoch"]
    assert os.path.samefile(folder / "best_net_G.pth", folder / f"{best_epoch}_net_G.pth")
    assert "--eval_freq 1: best_net_G.pth by mIoU (higher is better)" in out   # auto: the segmenter is trusted
    chosen = [int(e) for e in re.findall(r"best: epoch (\d+) by mIoU \d\.\d{3} \(higher is better\)", out)]
    assert chosen[0] == 1 and chosen[-1] == best_epoch
    for epoch in chosen:   # each announced epoch beat every earlier one by mIoU
        assert history[epoch - 1]["mIoU"] == max(e["mIoU"] for e in history[:epoch])
    # the last evaluation measured the EMA generator exactly as it was saved (batch-norm statistics included)
    from evaluation.metrics import SegmentationScores
    from models import create_model
    test_opt = test_script.TestPageOptions().parse(["--name", "miou", "--checkpoints_dir", str(folder.parent),
                                                    "--gpu_ids", "-1"], save=False, verbose=False)
    saved = create_model(test_opt).eval()
    scores = SegmentationScores(9)
    for batch in train_script.data.create_dataloader(validation_options(opt)):
        with torch.no_grad():
            scores.update(model(saved(batch, mode="inference")).argmax(1), batch["label"][:, 0].long())
    assert scores.compute()["miou"] == pytest.approx(history[-1]["mIoU"], abs=1e-9)


@pytest.mark.usefixtures("eval_extras")
def test_miou_during_training_scores_with_the_papers_segmenter_as_evaluate_does(tmp_path, tiny_dataset):
    """--protocol paper (the default on the papers' datasets): --eval_metrics miou scores with the paper's segmenter
    from --segmenter_weights (random weights in the released layout here), and evaluate.py, which takes the
    experiment's protocol and files, gives the real images the same scores."""
    import evaluate
    from options.eval_options import EvalOptions
    from evaluation.metrics import sha256
    from tests.test_segmenters import write_released_files
    _, data_argv = tiny_dataset("celebamaskhq", n=2, size=(32, 32))
    tiny_dataset("celebamaskhq", n=2, size=(32, 32), phase="test")
    files = write_released_files(tmp_path, "celebamaskhq", seed=4)
    with pytest.raises(SystemExit, match=r"^--seg_model: --protocol paper scores with the paper's segmenter "
                                         r"\(face-parsing U-Net"):
        run_train(tmp_path, "face", *data_argv, "--eval_freq", "1", "--eval_metrics", "miou", "--seg_model", "s.pt")
    folder = run_train(tmp_path, "face", "--netG", "spade", *data_argv, "--no_vgg_loss", "--eval_freq", "1",
                       "--eval_how_many", "2", "--eval_metrics", "miou", "--segmenter_weights", *files)
    history = eval_log(folder)
    assert [set(e) for e in history] == [{"epoch", "mIoU", "accuracy", "real_mIoU", "real_accuracy"}]
    experiment = ["--name", "face", "--checkpoints_dir", str(tmp_path / "checkpoints"), "--gpu_ids", "-1"]
    summary = evaluate.main([*experiment, *data_argv, "--results_dir", str(tmp_path / "results"), "--metrics",
                             "miou", "--batchSize", "2", "--num_examples", "0"])
    assert summary["protocol"]["name"] == "paper"
    assert summary["protocol"]["weights_sha256"]["segmenter"]["sha256"] == sha256(files[0])
    assert summary["metrics"]["miou_real"] == history[0]["real_mIoU"]
    assert summary["metrics"]["pixel_accuracy_real"] == history[0]["real_accuracy"]
    # --protocol custom on the same experiment leaves the saved segmenter files behind instead of refusing them
    assert EvalOptions().parse([*experiment, "--protocol", "custom"], save=False, verbose=False).segmenter_weights \
        is None


def test_miou_during_training_needs_a_segmenter(tmp_path):
    with pytest.raises(SystemExit, match=r"--eval_metrics miou needs --seg_model PATH"):
        run_train(tmp_path, "miou", *SIZES["spade"], "--eval_freq", "1", "--eval_metrics", "miou")
    with pytest.raises(SystemExit, match=r"--eval_metrics fid,psnr: choose from fid,miou"):
        run_train(tmp_path, "miou", *SIZES["spade"], "--eval_freq", "1", "--eval_metrics", "fid,psnr")


def test_fid_during_training_needs_the_inception_file(tmp_path):
    missing = tmp_path / "nothere.pth"
    with pytest.raises(SystemExit, match=rf"--inception_weights {missing}"):
        run_train(tmp_path, "fid", *SIZES["spade"], "--eval_freq", "1", "--inception_weights", str(missing))
    assert not (tmp_path / "checkpoints" / "fid" / "opt.json").exists()


# ---------------------------------------------------------------------------------------------------------
# everything is checked before anything is built or created (options/preflight.py)

def test_a_run_without_data_and_weights_says_everything_at_once_and_builds_nothing(tmp_path, monkeypatch):
    from models.networks.scgan import SCGANGenerator
    monkeypatch.chdir(tmp_path)  # no ./datasets/ here, and ./checkpoints/ must stay absent
    built = []
    original = SCGANGenerator.__init__
    monkeypatch.setattr(SCGANGenerator, "__init__", lambda self, *a, **k: built.append(1) or original(self, *a, **k))
    vgg = tmp_path / "vgg19-dcbb9e9d.pth"
    with pytest.raises(SystemExit) as e:
        train_script.main(["--name", "coco_scgan", "--netG", "scgan", "--gpu_ids", "-1", "--vgg_weights", str(vgg)])
    lines = str(e.value).splitlines()
    assert lines[0] == "error: 2 problems found before building anything:" and len(lines) == 3, lines
    assert lines[1].startswith(f"  --vgg_weights {vgg}: file not found.") and "--no_vgg_loss" in lines[1]
    # a coco run looks in coco's default folder, and says that --dataroot was not given
    assert lines[2].startswith("  --dataroot ./datasets/coco_stuff/: no such folder (--dataroot was not given: "
                               "./datasets/coco_stuff/ is its default)")
    assert built == [] and not (tmp_path / "checkpoints").exists()


def test_problems_of_the_folder_the_data_and_the_evaluation_come_together(tmp_path):
    folder = tmp_path / "checkpoints" / "exp"
    folder.mkdir(parents=True)
    (folder / "latest_net_G.pth").write_bytes(b"")
    (tmp_path / "coco").mkdir()  # given, but without coco's folders
    missing = tmp_path / "inception.pth"
    with pytest.raises(SystemExit) as e:
        run_train(tmp_path, "exp", *SIZES["spade"], "--dataset_mode", "coco", "--dataroot", str(tmp_path / "coco"),
                  "--eval_freq", "1", "--eval_metrics", "fid,miou", "--inception_weights", str(missing),
                  "--no_vgg_loss")
    lines = str(e.value).splitlines()
    assert lines[0] == "error: 4 problems found before building anything:", lines
    assert "already holds a trained model (latest_net_G.pth)" in lines[1] and "--overwrite" in lines[1]
    assert lines[2] == (f"  --dataset_mode coco: the folder of label maps {tmp_path / 'coco' / 'train_label'} does "
                        f"not exist (check --dataroot, --phase and the folder layout of --dataset_mode coco)")
    assert lines[3].startswith(f"  --inception_weights {missing}: file not found.")
    # coco measures mIoU under --protocol paper by default, as evaluate.py: the paper's segmenter file
    assert lines[4].startswith(f"  --segmenter_weights {ROOT}/.weights/deeplabv2_resnet101_msc-cocostuff164k-100000"
                               f".pth: file not found: the released deeplabv2_resnet101_msc"), lines[4]
    assert os.listdir(folder) == ["latest_net_G.pth"]


def test_an_unpaired_generator_under_the_label_map_model_is_refused_before_building(tmp_path, monkeypatch):
    from models.networks.scgan_unpaired import SCGANUnpairedGenerator
    built = []
    original = SCGANUnpairedGenerator.__init__
    monkeypatch.setattr(SCGANUnpairedGenerator, "__init__",
                        lambda self, *a, **k: built.append(1) or original(self, *a, **k))
    with pytest.raises(SystemExit) as e:
        run_train(tmp_path, "unp", *SIZES["spade"], "--netG", "scgan_unpaired", "--num_synthetic", "4")
    lines = str(e.value).splitlines()
    assert lines == ["error: 1 problem found before building anything:",
                     "  --netG scgan_unpaired translates images (a source and a reference) and trains only under "
                     "--model unpaired; --model pix2pix feeds its generator label maps: add --model unpaired (with "
                     "--dataset_mode unaligned or synthetic_unaligned), or choose a label-map generator: ccfpse, "
                     "pix2pixhd, scgan, spade"], lines
    assert built == [] and not (tmp_path / "checkpoints").exists()


def test_a_custom_mode_data_error_does_not_speak_of_dataroot(tmp_path):
    missing = tmp_path / "labels"
    with pytest.raises(SystemExit) as e:
        run_train(tmp_path, "custom", *SIZES["spade"], "--dataset_mode", "custom", "--label_dir", str(missing),
                  "--image_dir", str(tmp_path / "images"), "--no_instance", "--no_vgg_loss")
    lines = str(e.value).splitlines()
    assert lines[1] == (f"  --dataset_mode custom: the folder of label maps {missing} does not exist (check "
                        f"--label_dir)"), lines
    assert "dataroot" not in str(e.value)


@pytest.mark.parametrize("when", ["building", "before the first step"])
def test_sigterm_before_the_first_step_says_nothing_was_saved(tmp_path, monkeypatch, capsys, when):
    """SIGTERM while the networks are built (the handler stops the setup at once), or once training is about to
    start (the first step boundary): one line, exit status 128 + 15, no checkpoint."""
    if when == "building":
        target, name = train_script.Pix2PixTrainer, "__init__"
    else:
        target, name = train_script.data, "next_batch"
    original = getattr(target, name)

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)
    monkeypatch.setattr(target, name, signalled)
    with pytest.raises(SystemExit) as e:
        run_train(tmp_path, "stopped", *SIZES["spade"], "--num_synthetic", "4")
    assert e.value.code == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["SIGTERM: the run stopped before training started; nothing was saved"], err
    folder = tmp_path / "checkpoints" / "stopped"
    assert not list(folder.glob("*.pth")) and not (folder / "saves").exists()
    if when == "building":
        assert not folder.exists()


def test_continue_train_needs_a_checkpoint(tmp_path):
    with pytest.raises(SystemExit) as e:
        run_train(tmp_path, "never", *SIZES["spade"], "--continue_train")
    assert "--continue_train: " in str(e.value) and "holds no checkpoint to resume" in str(e.value)
    assert not (tmp_path / "checkpoints" / "never").exists()


def test_test_py_checks_checkpoint_data_and_folder_before_building(trained, monkeypatch):
    from models.networks.scgan import SCGANGenerator
    built = []
    original = SCGANGenerator.__init__
    monkeypatch.setattr(SCGANGenerator, "__init__", lambda self, *a, **k: built.append(1) or original(self, *a, **k))
    with pytest.raises(SystemExit) as e:
        run_test(trained, "--which_epoch", "7", "--dataset_mode", "custom", "--label_dir", str(trained / "nowhere"),
                 results="results_bad")
    lines = str(e.value).splitlines()
    assert lines[0] == "error: 2 problems found before building anything:", lines
    assert lines[1].startswith(f"  --which_epoch 7: {trained / 'checkpoints' / 'scg' / '7_net_G.pth'} not found "
                               f"(--name scg holds: 1_net_D.pth, 1_net_G.pth")
    assert lines[2].startswith(f"  --dataset_mode custom: the folder of label maps {trained / 'nowhere'} does not")
    assert built == [] and not (trained / "results_bad").exists()
