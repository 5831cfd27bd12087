"""benchmarks/ablation.py: each paper variant maps to its train.py options, runs shared between tables train once,
the VGG variant waits for its weights, and a tiny real run (one variant, one seed, one epoch) is trained, evaluated,
reported through tools.compare and skipped when run again. The machinery it shares with
benchmarks.compare_generators (resume, timings) is tested in tests/test_grid.py."""
import json
import shlex

import pytest

from benchmarks import ablation, grid


def dry_run(capsys, *argv):
    ablation.main(["--dry_run", *map(str, argv)])
    return [shlex.split(line[2:]) for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]


def option(command, name):
    return command[command.index(name) + 1]


def trains(commands):
    return {option(c, "--name"): c for c in commands if "train.py" in c}


def test_each_paper_variant_trains_with_its_option_and_shared_runs_train_once(tmp_path, capsys):
    commands = dry_run(capsys, "--tables", "3,4,6", "--seeds", 2, "--out", tmp_path, "--vgg_weights",
                       tmp_path / "absent.pth")
    runs = trains(commands)
    # Table 3's SCC+SCN, Table 4's l1 and Table 6's softmax are one configuration: trained once per seed
    assert sorted({name.rsplit("_seed", 1)[0] for name in runs}) == sorted(
        f"ablation_{k}" for k in ("conv_bn", "conv_scn", "scc_bn", "default", "no_ls", "ls_l2",
                                  "sigmoid", "tanh", "relu", "none"))
    assert len(runs) == 20 and len([c for c in commands if "evaluate.py" in c]) == 20
    conv_bn = runs["ablation_conv_bn_seed1"]
    assert option(conv_bn, "--sc_conv") == "conv" and option(conv_bn, "--sc_norm") == "bn"
    assert option(conv_bn, "--seed") == "1" and option(conv_bn, "--netG") == "scgan"
    assert option(runs["ablation_no_ls_seed0"], "--sv_loss") == "none"
    assert option(runs["ablation_ls_l2_seed0"], "--sv_loss") == "l2"
    assert option(runs["ablation_none_seed0"], "--sv_activation") == "none"
    assert "--sc_conv" not in runs["ablation_default_seed0"] and "--sv_loss" not in runs["ablation_default_seed0"]
    # every evaluation: one protocol (same images, segmenter and count), whatever the training seed
    for c in commands:
        if "evaluate.py" in c:
            assert option(c, "--seed") == "0" and option(c, "--how_many") == "200"
            assert option(c, "--metrics") == "fid,lpips,miou"
            assert option(c, "--seg_model") == str(tmp_path / "synthetic_seg.pt")
    segmenter, = [c for c in commands if "tools.train_segmenter" in c]
    assert option(segmenter, "--out") == str(tmp_path / "synthetic_seg.pt")


def test_the_vgg_variant_runs_only_with_the_vgg_weights(tmp_path, capsys):
    ablation.main(["--dry_run", "--tables", "4", "--seeds", "1", "--out", str(tmp_path), "--vgg_weights",
                   str(tmp_path / "absent.pth")])
    out = capsys.readouterr().out
    assert f"Table 4, L_s (vgg): skipped, no VGG19 weights at {tmp_path / 'absent.pth'} (--vgg_weights)" in out
    assert "ablation_ls_vgg" not in out
    vgg = tmp_path / "vgg19.pth"
    vgg.write_bytes(b"")
    runs = trains(dry_run(capsys, "--tables", "4", "--seeds", "1", "--out", tmp_path, "--vgg_weights", vgg))
    command = runs["ablation_ls_vgg_seed0"]
    assert option(command, "--sv_loss") == "vgg" and option(command, "--vgg_weights") == str(vgg)


def test_budget_dataset_and_device_reach_every_command(tmp_path, capsys):
    commands = dry_run(capsys, "--tables", "5", "--seeds", "1", "--out", tmp_path, "--epochs", 3, "--gpu_ids", "0",
                       "--dataset_mode", "cityscapes", "--dataroot", tmp_path / "city", "--seg_model",
                       tmp_path / "drn.pt", "--eval_images", 500)
    runs = trains(commands)
    n1 = runs["ablation_n1_seed0"]
    assert option(n1, "--sc_conv_candidates") == "1" and option(n1, "--sc_norm_candidates") == "4"   # Table 5
    assert option(n1, "--niter") == "2" and option(n1, "--niter_decay") == "1"
    for c in commands:
        assert option(c, "--gpu_ids") == "0" and option(c, "--dataroot") == str(tmp_path / "city")
    assert not any("tools.train_segmenter" in c for c in commands)   # the given segmenter is used
    assert all(option(c, "--how_many") == "500" for c in commands if "evaluate.py" in c)
    with pytest.raises(SystemExit, match="give the dataset's segmenter with --seg_model"):
        ablation.main(["--dry_run", "--dataset_mode", "cityscapes", "--out", str(tmp_path)])


@pytest.mark.parametrize("saved_epoch, state", [(2, "partial"), (3, "done")])
def test_an_interrupted_run_continues_and_a_trained_one_is_only_evaluated(tmp_path, capsys, saved_epoch, state):
    import torch
    from checkpointing.storage import save_unit
    folder = tmp_path / "checkpoints" / "ablation_relu_seed0"
    folder.mkdir(parents=True)
    (folder / "opt.json").write_text(json.dumps({"niter": 1, "niter_decay": 1}))
    # the unit train.py saves at the end of an epoch says which epoch comes next: 3 after the last of 1 + 1
    save_unit(str(folder), 8, {"G": {"w": torch.zeros(2)}}, {}, ["latest"],
              {"epoch": saved_epoch, "epoch_iter": 0, "total_steps": 8})
    assert grid.training_state(str(folder)) == state
    commands = dry_run(capsys, "--tables", "6", "--variants", "relu", "--seeds", "1", "--out", tmp_path)
    steps = [c[1] for c in commands if "--name" in c]
    if state == "partial":
        assert steps == ["train.py", "evaluate.py"] and commands[-2][-1] == "--continue_train"
    else:
        assert steps == ["evaluate.py"]
    assert grid.training_state(str(tmp_path / "checkpoints" / "never_trained")) == "none"


TINY = ["--tables", "6", "--variants", "relu", "--seeds", "1", "--epochs", "1", "--seg_iterations", "5",
        "--eval_images", "4", "--dataset_args", "--num_synthetic 8", "--train_args", "--ngf 8 --nrf 8 --nff 8 --ndf 8"]


@pytest.mark.slow
def test_a_tiny_ablation_trains_evaluates_reports_and_resumes(tmp_path, capsys, eval_weights, monkeypatch):
    eval_weights("inception.pth"), eval_weights("lpips_alex.pth")
    readme = ablation.main([*TINY, "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "checkpoints" / "ablation_relu_seed0" / "opt.json").read_text())
    assert saved["sv_activation"] == "relu" and saved["seed"] == 0 and saved["niter"] + saved["niter_decay"] == 1
    metrics = json.loads((tmp_path / "results" / "ablation_relu_seed0" / "eval_latest" / "metrics.json").read_text())
    assert {"fid", "lpips", "miou", "miou_real"} <= set(metrics["metrics"]) and metrics["protocol"]["num_images"] == 4
    table = (tmp_path / "table6" / "report.md").read_text()
    assert "| ReLU | 1 |" in table and "Every measured row: protocol custom on synthetic" in table
    ratio = metrics["metrics"]["miou"] / metrics["metrics"]["miou_real"]
    assert f"| ReLU | 61.7 | 66.5 | {ratio:.4f} |" in open(readme).read()   # the paper's numbers beside ours
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert set(timings) == {"segmenter synthetic", "ablation_relu_seed0 train", "ablation_relu_seed0 evaluate"}
    assert grid.training_state(str(tmp_path / "checkpoints" / "ablation_relu_seed0")) == "done"

    def refuse(*args, **kwargs):
        raise AssertionError(f"ran {args[0]} again")
    monkeypatch.setattr(grid.subprocess, "run", refuse)
    capsys.readouterr()
    ablation.main([*TINY, "--out", str(tmp_path)])
    assert "ablation_relu_seed0: evaluated already, skipped" in capsys.readouterr().out
    # trained but not evaluated: only the evaluation runs
    (tmp_path / "results" / "ablation_relu_seed0" / "eval_latest" / "metrics.json").unlink()
    commands = dry_run(capsys, *TINY, "--out", tmp_path)
    assert [c[1] for c in commands] == ["evaluate.py"]
