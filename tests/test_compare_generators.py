"""benchmarks/compare_generators.py: every generator trains with its paper's discriminator at one budget per dataset
(passed explicitly, the same for all), with its own seed count; every run is scored with one protocol; bad requests
stop in one line before anything runs; the estimate comes from finished runs, else from cost.json; a tiny real grid
trains, evaluates, reports (a table per dataset, one figure) and is skipped when run again; --cost measures each
generator in its own process; the landscapes dataset goes through the same grid."""
import json
import shlex

import pytest

from benchmarks import compare_generators as cg
from benchmarks import grid

BUDGET = ("--batchSize", "--niter", "--niter_decay", "--lr", "--ema_decay")


def dry_run(capsys, *argv):
    """-> (commands as token lists, the other lines)."""
    cg.main(["--dry_run", *map(str, argv)])
    lines = capsys.readouterr().out.splitlines()
    return [shlex.split(line[2:]) for line in lines if line.startswith("$ ")], \
        [line for line in lines if not line.startswith("$ ")]


def option(command, name):
    return command[command.index(name) + 1]


def trains(commands):
    return {option(c, "--name"): c for c in commands if "train.py" in c}


def test_every_generator_trains_with_its_discriminator_at_one_budget(tmp_path, capsys):
    commands, lines = dry_run(capsys, "--datasets", "synthetic", "--seeds", "3,ccfpse=2", "--out", tmp_path)
    runs = trains(commands)
    assert sorted(runs) == sorted(f"compare_synthetic_{key}_seed{s}" for key in cg.CONFIGS
                                  for s in range(2 if key == "ccfpse" else 3))
    pairs = {key: (option(runs[f"compare_synthetic_{key}_seed0"], "--netG"),
                   option(runs[f"compare_synthetic_{key}_seed0"], "--netD")) for key in cg.CONFIGS}
    assert pairs == {"scgan": ("scgan", "fpse"), "spade": ("spade", "multiscale"),
                     "pix2pixhd": ("pix2pixhd", "multiscale"), "ccfpse": ("ccfpse", "fpse"),
                     "oasis": ("spade", "oasis")}
    oasis = runs["compare_synthetic_oasis_seed2"]
    assert option(oasis, "--oasis_noise_nc") == "64" and option(oasis, "--beta2") == "0.999"
    assert "--no_vgg_loss" in oasis and "--no_vgg_loss" not in runs["compare_synthetic_spade_seed0"]
    # the synthetic dataset's own budget, given explicitly to every run so no preset can change it
    for name, command in runs.items():
        assert [option(command, o) for o in BUDGET] == ["4", "5", "5", "0.0003", "0.995"], name
        assert option(command, "--seed") == name[-1] and option(command, "--dataset_mode") == "synthetic"
    assert "synthetic: 2,000 images seen per run (10 epochs of 200), batch 4, lr 0.0003 for 5 epochs, then " \
           "linearly to 0 over 5 epochs (TTUR: G 0.00015, D 0.0006), EMA generator 0.995" in lines
    # one protocol: the same images, count, metrics and segmenter for every run, whatever its training seed
    evaluations = [c for c in commands if "evaluate.py" in c]
    assert len(evaluations) == len(runs) == 14
    for c in evaluations:
        assert option(c, "--seed") == "0" and option(c, "--how_many") == "200"
        assert option(c, "--metrics") == "fid,lpips,miou"
        assert option(c, "--seg_model") == str(tmp_path / "synthetic_seg.pt")
    segmenter, = [c for c in commands if "tools.train_segmenter" in c]
    assert option(segmenter, "--out") == str(tmp_path / "synthetic_seg.pt")


def test_the_budget_options_and_the_datasets_reach_every_command(tmp_path, capsys):
    seg = tmp_path / "seg.pt"
    commands, lines = dry_run(capsys, "--datasets", "synthetic", "--generators", "spade,oasis", "--seeds", 1,
                              "--epochs", 3, "--batch", 2, "--lr", 0.001, "--ema_decay", 0, "--eval_images", 50,
                              "--dataset_args", "synthetic=--num_synthetic 9", "--seg_model", f"synthetic={seg}",
                              "--out", tmp_path)
    runs = trains(commands)
    assert sorted(runs) == ["compare_synthetic_oasis_seed0", "compare_synthetic_spade_seed0"]
    for command in runs.values():
        assert [option(command, o) for o in BUDGET] == ["2", "2", "1", "0.001", "0.0"]
        assert option(command, "--num_synthetic") == "9"
    for c in commands:
        if "evaluate.py" in c:
            assert option(c, "--how_many") == "50" and option(c, "--seg_model") == str(seg)
            assert option(c, "--num_synthetic") == "9"
    assert not any("tools.train_segmenter" in c for c in commands)   # the given segmenter is used
    # 9 images, batch 2: train.py drops the last partial batch, so an epoch is 8 images
    assert any(line.startswith("synthetic: 24 images seen per run (3 epochs of 8), batch 2") for line in lines)
    assert any("no EMA generator" in line for line in lines)


@pytest.mark.parametrize("argv, message", [
    (["--datasets", "synthetic,nowhere"], "error: --datasets synthetic,nowhere: nowhere is not a registered dataset "
                                          "mode; registered: "),
    (["--seeds", "3,foo=2"], "error: argument --seeds: 3,foo=2: expected N[,GENERATOR=N...]"),
    (["--seeds", "0"], "error: argument --seeds: 0: expected N[,GENERATOR=N...] with counts of at least 1"),
    (["--generators", "scgan,stylegan"], "error: argument --generators: scgan,stylegan: choose from scgan,spade,"),
    (["--datasets", "synthetic", "--seg_model", "landscapes=x.pt"],
     "error: --seg_model landscapes=...: landscapes is not among --datasets synthetic"),
    (["--datasets", "cityscapes"], "error: --datasets cityscapes: give its segmenter with --seg_model "
                                   "cityscapes=FILE"),
    (["--datasets", "synthetic", "--seg_model", "synthetic=absent.pt"],
     "error: --seg_model synthetic=absent.pt: no such file"),
    (["--datasets", "synthetic", "--train_args", "--ngf 0"],
     "error: synthetic scgan: train.py refuses its options (--netG scgan --netD fpse --batchSize 4 --niter 5 "
     "--niter_decay 5 --lr 0.0003 --ema_decay 0.995 --ngf 0): argument --ngf: must be an integer >= 1, got 0"),
    (["--cost", "--dry_run"], "error: --cost and --dry_run: give one"),
])
def test_a_bad_request_stops_in_one_line_before_anything_runs(tmp_path, argv, message):
    with pytest.raises(SystemExit) as stop:
        cg.main([*argv, "--out", str(tmp_path / "out")])
    assert str(stop.value).startswith(message) and "\n" not in str(stop.value)
    assert not (tmp_path / "out").exists()


def test_the_estimate_comes_from_finished_runs_else_from_the_cost_file(tmp_path, capsys):
    out = tmp_path / "out"
    # scgan: seed 0 finished (trained, evaluated, its seconds measured); seed 1 left
    grid.write_json(str(out / "timings.json"), {"compare_synthetic_scgan_seed0 train": {"wall_s": 80, "cpu_s": 150},
                                                "compare_synthetic_scgan_seed0 evaluate": {"wall_s": 20, "cpu_s": 30}})
    metrics = out / "results" / "compare_synthetic_scgan_seed0" / "eval_latest" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text("{}")
    # spade: not run yet, measured by --cost: 0.1 CPU s per training image, an evaluation of 60 CPU s
    grid.write_json(str(out / "cost.json"), {"datasets": {"synthetic": {"spade": {"training_cpu_s_per_image": 0.1}}},
                                             "evaluation": {"synthetic": {"cpu_s": 60.0}}})
    _, lines = dry_run(capsys, "--datasets", "synthetic", "--generators", "scgan,spade,pix2pixhd", "--seeds", 2,
                       "--out", out)
    assert "  synthetic scgan: 1 runs left x 3.0 CPU min (1 finished run(s) in timings.json)" in lines
    assert "  synthetic spade: 2 runs left x 4.3 CPU min (cost.json: 0.100 CPU s per training image x 2,000 + " \
           "evaluation 60 CPU s; without train.py's start and saves)" in lines   # 2,000 x 0.1 s + 60 s = 260 s
    assert "  synthetic pix2pixhd: 2 runs left x ? (not measured: run --cost (or one seed) first)" in lines
    estimate, = [line for line in lines if line.startswith("estimate:")]
    assert estimate.startswith(f"estimate: {(180 + 2 * 260) / 3600:.1f} CPU hours for the 5 runs left, not counting "
                               f"synthetic pix2pixhd (not measured)")
    assert "compare_synthetic_scgan_seed0: evaluated already, skipped" in lines


# FID's 2048x2048 matrix square root costs about 10 CPU seconds per evaluation whatever the image count, so the tiny
# grids score without it (a later --metrics wins); the grid's FID is scored in tests/test_ablation.py's tiny run.
TINY = ["--datasets", "synthetic", "--seeds", "1", "--epochs", "1", "--seg_iterations", "5", "--eval_images", "4",
        "--dataset_args", "synthetic=--num_synthetic 8", "--train_args", "--ngf 8 --ndf 8",
        "--eval_args", "--metrics lpips,miou"]


@pytest.mark.slow
def test_a_tiny_grid_trains_scores_reports_and_resumes(tmp_path, capsys, eval_weights, monkeypatch):
    """Two of the five generators run for real (SC-GAN, and OASIS with its own options): each run costs two
    processes, and every generator's command is checked by the dry runs above and trains in
    tests/test_landscapes.py."""
    eval_weights("lpips_alex.pth")
    keys = ("scgan", "oasis")
    page = cg.main([*TINY, "--generators", ",".join(keys), "--out", str(tmp_path)])
    assert page == str(tmp_path / "index.html")
    for key, (netG, netD) in {"scgan": ("scgan", "fpse"), "oasis": ("spade", "oasis")}.items():
        name = f"compare_synthetic_{key}_seed0"
        saved = json.loads((tmp_path / "checkpoints" / name / "opt.json").read_text())
        assert (saved["netG"], saved["netD"], saved["batchSize"], saved["niter"] + saved["niter_decay"]) == \
            (netG, netD, 4, 1)
        assert saved.get("oasis_noise_nc", 0) == (64 if key == "oasis" else 0)   # OASIS's 3-D noise, its own
        summary = json.loads((tmp_path / "results" / name / "eval_latest" / "metrics.json").read_text())
        assert {"lpips", "miou", "miou_real"} <= set(summary["metrics"])
        assert summary["protocol"]["num_images"] == 4 and summary["protocol"]["seed"] == 0
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert set(timings) == {"segmenter synthetic"} | {f"compare_synthetic_{k}_seed0 {step}" for k in keys
                                                      for step in ("train", "evaluate")}

    # the dataset's report: a row per generator, a column for the settings that differ, the rest said once
    report = (tmp_path / "synthetic" / "report.md").read_text()
    header, = [line for line in report.splitlines() if line.startswith("| experiment |")]
    assert header.startswith("| experiment | generator | discriminator | n | lpips ↓ |")
    assert "| oasis | spade | oasis | 1 |" in report and "| scgan | scgan | fpse | 1 |" in report
    assert "Every measured row: protocol custom on synthetic; epoch latest; images seen 8." in report
    # the overview: the budget, every dataset's table and the one figure
    overview = (tmp_path / "README.md").read_text()
    assert "Budget on synthetic: 8 images seen per run (1 epoch of 8), batch 4" in overview
    assert "## synthetic: [page](synthetic/index.html)" in overview and "| scgan | scgan | fpse | 1 |" in overview
    assert "![quality against cost](images/quality_vs_cost.png)" in overview
    assert (tmp_path / "images" / "quality_vs_cost.png").is_file()

    def refuse(*args, **kwargs):
        raise AssertionError(f"ran {args[0]} again")
    monkeypatch.setattr(grid.subprocess, "run", refuse)
    capsys.readouterr()
    cg.main([*TINY, "--generators", ",".join(keys), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert all(f"compare_synthetic_{k}_seed0: evaluated already, skipped" in out for k in keys)


@pytest.mark.slow
def test_cost_measures_a_generator_in_its_own_process_times_one_evaluation_and_keeps_the_others(tmp_path, capsys,
                                                                                                 eval_weights):
    eval_weights("lpips_alex.pth")
    earlier = {"training_cpu_s_per_image": 0.5, "parameters_G": 1}   # measured before, by another --cost
    grid.write_json(str(tmp_path / "cost.json"), {"datasets": {"synthetic": {"spade": earlier}}})
    cg.main([*TINY, "--generators", "pix2pixhd", "--cost", "--cost_warmup", "1", "--cost_iterations", "1",
             "--cost_windows", "2", "--out", str(tmp_path)])
    costs = json.loads((tmp_path / "cost.json").read_text())
    assert costs["datasets"]["synthetic"]["spade"] == earlier
    measured = costs["datasets"]["synthetic"]["pix2pixhd"]
    assert measured["peak_memory_mib"] > 0
    assert measured["training_cpu_s_per_image"] > 0 and measured["inference_cpu_s_per_image"] > 0
    for column in ("training_images_per_s", "inference_images_per_s"):
        assert measured[column]["n"] == 2 and measured[column]["mean"] > 0   # two windows: an error bar
    # the generator's parameters as the run's options build it
    from models import networks
    opt = cg.train_options(["--dataset_mode", "synthetic", "--netG", "pix2pixhd", "--netD", "multiscale", "--ngf",
                            "8", "--ndf", "8", "--num_synthetic", "8"])
    assert measured["parameters_G"] == sum(p.numel() for p in networks.define_G(opt, verbose=False).parameters())
    evaluation = costs["evaluation"]["synthetic"]
    assert evaluation["cpu_s"] > 0 and evaluation["images"] == 4 and evaluation["generator"] == "pix2pixhd"
    assert costs["machine"]["threads"] >= 1 and costs["machine"]["load_average"] >= 0   # how busy it was
    assert costs["settings"] == {"warmup": 1, "iterations": 1, "windows": 2}
    assert not (tmp_path / "checkpoints").exists()   # the probe lived in a temporary folder
    # the estimate now has a number for every run: cost.json's
    _, lines = dry_run(capsys, *TINY, "--generators", "spade,pix2pixhd", "--out", tmp_path)
    assert all("cost.json: " in line for line in lines if line.startswith("  synthetic "))


def test_the_landscapes_dataset_goes_through_the_same_grid(tmp_path, capsys):
    commands, lines = dry_run(capsys, "--datasets", "landscapes,synthetic", "--generators", "scgan,oasis",
                              "--seeds", 1, "--seg_args", "landscapes=--iterations 800 --seg_width 32",
                              "--out", tmp_path)
    runs = trains(commands)
    assert sorted(runs) == ["compare_landscapes_oasis_seed0", "compare_landscapes_scgan_seed0",
                            "compare_synthetic_oasis_seed0", "compare_synthetic_scgan_seed0"]
    assert option(runs["compare_landscapes_scgan_seed0"], "--dataset_mode") == "landscapes"
    segmenters = {option(c, "--dataset_mode"): c for c in commands if "tools.train_segmenter" in c}
    assert {mode: option(c, "--out") for mode, c in segmenters.items()} == {
        "landscapes": str(tmp_path / "landscapes_seg.pt"), "synthetic": str(tmp_path / "synthetic_seg.pt")}
    # a dataset's own segmenter options come after the common ones, so they win
    assert segmenters["landscapes"][-6:] == ["--iterations", "400", "--iterations", "800", "--seg_width", "32"]
    assert option(segmenters["synthetic"], "--iterations") == "400" and "--seg_width" not in segmenters["synthetic"]
    for c in commands:
        if "evaluate.py" in c and "landscapes" in option(c, "--name"):
            assert option(c, "--seg_model") == str(tmp_path / "landscapes_seg.pt")
    assert any(line.startswith("landscapes: 2,000 images seen per run") for line in lines)


@pytest.mark.slow
def test_a_tiny_landscapes_run_trains_scores_and_reports(tmp_path, eval_weights):
    eval_weights("lpips_alex.pth")
    tiny = [a.replace("synthetic=", "landscapes=") for a in TINY]
    tiny[tiny.index("--datasets") + 1] = "landscapes"
    cg.main([*tiny, "--generators", "scgan", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "results" / "compare_landscapes_scgan_seed0" / "eval_latest" /
                          "metrics.json").read_text())
    assert summary["protocol"]["dataset_mode"] == "landscapes" and summary["protocol"]["num_images"] == 4
    assert (tmp_path / "landscapes_seg.pt").is_file()
    overview = (tmp_path / "README.md").read_text()
    assert "## landscapes: [page](landscapes/index.html)" in overview and "| scgan | 1 |" in overview
