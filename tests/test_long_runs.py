"""What happens when a long run meets trouble (docs/what-happens-when.md): NaN/Inf losses and weights, a fresh run over
a trained experiment, a resumed run with options that do not fit, crafted or damaged checkpoint files, a full disk,
and foreseeable option mistakes. Each ends with one line naming the option, file or value, and loses nothing."""
import hashlib
import json
import os
import pickle
import re
import shutil
import signal

import pytest
import torch

import test as test_script
import train as train_script
from checkpointing import storage as checkpoint
from util import visualizer

TINY = ["--dataset_mode", "synthetic", "--gpu_ids", "-1", "--ngf", "8", "--ndf", "8", "--batchSize", "2",
        "--niter", "1", "--niter_decay", "0", "--display_freq", "2", "--print_freq", "2", "--netG", "spade",
        "--crop_size", "32", "--load_size", "32", "--num_synthetic", "4"]


def train(tmp_path, name, *extra):
    train_script.main(["--name", name, "--checkpoints_dir", str(tmp_path / "checkpoints"), *TINY, *extra])
    return tmp_path / "checkpoints" / name


def fails(tmp_path, name, *extra):
    with pytest.raises(SystemExit) as e:
        train(tmp_path, name, *extra)
    return str(e.value)


def digest(folder, options=True):
    """sha256 of every file of an experiment folder (web pages and logs aside; the option files too unless
    `options`: a resumed run records the options it ran with)."""
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(root, f)
            if "/web" not in path and not f.endswith("loss_log.txt") and (options or not f.startswith("opt.")):
                out[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


@pytest.fixture
def trained(tmp_path):
    return train(tmp_path, "exp")


# ---------------------------------------------------------------------------------------------------------
# NaN / Inf

def test_nan_losses_are_skipped_then_stop_without_touching_the_checkpoint(trained, tmp_path, monkeypatch, capsys):
    before = digest(trained, options=False)
    original = train_script.Pix2PixTrainer.weighted
    monkeypatch.setattr(train_script.Pix2PixTrainer, "weighted",
                        lambda self, losses: {k: v * float("nan") for k, v in original(self, losses).items()})
    model = None

    def remember_weights(self, *args, **kwargs):
        nonlocal model
        model = self.networks_to_save()["G"]
        return original_save(self, *args, **kwargs)
    original_save = train_script.Pix2PixTrainer.save
    monkeypatch.setattr(train_script.Pix2PixTrainer, "save", remember_weights)
    message = fails(tmp_path, "exp", "--continue_train", "--niter", "3", "--max_nonfinite_steps", "3")
    assert ("3 steps in a row were not finite (--max_nonfinite_steps 3): each had a NaN/Inf loss or batch-norm "
            "statistic; last finite losses: none yet") in message
    assert "Nothing was saved: the last complete checkpoint is intact" in message
    out = capsys.readouterr().out
    assert out.count("update skipped") == 3 and "non-finite G loss (GAN: nan" in out
    assert digest(trained, options=False) == before


def test_a_few_nan_steps_are_skipped_and_training_goes_on(tmp_path, monkeypatch, capsys):
    original = train_script.Pix2PixTrainer.weighted
    calls = {"n": 0}

    def second_step_is_nan(self, losses):
        calls["n"] += 1
        weighted = original(self, losses)
        return {k: v * float("nan") for k, v in weighted.items()} if calls["n"] == 2 else weighted
    monkeypatch.setattr(train_script.Pix2PixTrainer, "weighted", second_step_is_nan)
    folder = train(tmp_path, "exp")
    out = capsys.readouterr().out
    assert "non-finite D loss" in out and "(1 in a row, 1 in all)" in out
    assert "Training was successfully finished." in out
    weights = torch.load(folder / "latest_net_G.pth", weights_only=True)
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def test_a_nan_weight_is_never_saved(trained, tmp_path):
    from options.train_options import TrainOptions
    from trainers.pix2pix_trainer import NonFiniteError, Pix2PixTrainer
    before = digest(trained)
    opt = TrainOptions().parse(["--name", "exp", "--checkpoints_dir", str(tmp_path / "checkpoints"), *TINY,
                                "--continue_train"], save=False, verbose=False)
    trainer = Pix2PixTrainer(opt)
    trainer.resume()
    with torch.no_grad():
        next(trainer.pix2pix_model.netG.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"netG holds NaN/Inf values \(.*\): not saved, the last complete "
                                             r"checkpoint is intact"):
        trainer.save(2, 0, 99)
    assert digest(trained) == before


def test_lr_1e10_stops_at_the_steps_that_made_batch_norm_statistics_infinite(tmp_path, capsys):
    """A huge rate overflows a batch norm's running variance while the losses stay finite: the step says so, is
    skipped with its buffers restored, and counts toward --max_nonfinite_steps; the save never has to refuse."""
    message = fails(tmp_path, "big", "--lr", "1e10", "--niter", "20", "--max_nonfinite_steps", "2")
    assert "2 steps in a row were not finite (--max_nonfinite_steps 2)" in message and "holds NaN/Inf" not in message
    assert "Nothing was saved: there is no earlier checkpoint" in message and "intact" not in message
    out = capsys.readouterr().out
    assert re.search(r"warning: non-finite [GD] step: netG's buffer \S+running_var became NaN/Inf", out), out
    folder = tmp_path / "checkpoints" / "big"
    for _, unit in checkpoint.list_units(str(folder)):
        for name in ("net_G.pth", "net_D.pth"):
            state = torch.load(os.path.join(unit, name), weights_only=True)
            assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


# ---------------------------------------------------------------------------------------------------------
# experiments are not destroyed

def test_a_fresh_run_refuses_a_trained_folder_unless_overwrite(trained, tmp_path):
    before = digest(trained)
    message = fails(tmp_path, "exp", "--ngf", "16")
    assert "already holds a trained model (1_net_G.pth, latest_net_G.pth, saves/step_000000000004)" in message
    assert "--continue_train" in message and "--overwrite" in message
    assert digest(trained) == before
    train(tmp_path, "exp", "--overwrite", "--ngf", "16", "--niter", "2", "--save_epoch_freq", "2")
    assert sorted(f for f in os.listdir(trained) if f.endswith(".pth")) == [  # the old run's 1_net_* went
        "2_net_D.pth", "2_net_G.pth", "2_net_G_ema.pth", "latest_net_D.pth", "latest_net_G.pth",
        "latest_net_G_ema.pth"]
    assert json.loads((trained / "opt.json").read_text())["ngf"] == 16


def test_overwrite_starts_a_fresh_log_and_page(tmp_path, monkeypatch):
    folder = train(tmp_path, "exp", "--niter", "2")
    drawn = []
    original = visualizer.draw_loss_curves
    monkeypatch.setattr(visualizer, "draw_loss_curves", lambda history, path: (drawn.append(list(history)),
                                                                               original(history, path)))
    train(tmp_path, "exp", "--overwrite")
    log = (folder / "loss_log.txt").read_text()
    assert log.count("Training Loss") == 1 and log.startswith("================ Training Loss")
    assert [epoch for epoch, _ in visualizer.read_loss_log(str(folder / "loss_log.txt"))] == [1, 1]
    assert [epoch for epoch, _ in drawn[-1]] == [1, 1]  # web/loss_curves.png: one pass over epoch 1
    assert not [f for f in os.listdir(folder / "web" / "images") if f.startswith("epoch002")]
    assert not (folder / checkpoint.REPLACED_RUN).exists() and not (folder / "2_net_G.pth").exists()


def stop_after_saves(monkeypatch, n):
    """The run stops (as a kill would) after its n-th complete save; n = 0: before the first."""
    original, done = train_script.Pix2PixTrainer.save, []

    def save(self, *args, **kwargs):
        if len(done) < n:
            original(self, *args, **kwargs)
            done.append(1)
        if len(done) == n:
            raise KeyboardInterrupt
    monkeypatch.setattr(train_script.Pix2PixTrainer, "save", save)
    return monkeypatch


def test_the_first_save_of_an_overwrite_run_keeps_its_unit(tmp_path, monkeypatch):
    folder = train(tmp_path, "exp", "--niter", "2", "--save_latest_freq", "2")
    assert [s for s, _ in checkpoint.list_units(str(folder))] == [8, 6]
    stop_after_saves(monkeypatch, 1)
    fails(tmp_path, "exp", "--overwrite", "--save_latest_freq", "2")
    assert [s for s, _ in checkpoint.list_units(str(folder))] == [2]  # not pruned as older than the old run's
    assert os.path.samefile(folder / "latest_net_G.pth", folder / "saves" / "step_000000000002" / "net_G.pth")
    assert not (folder / checkpoint.REPLACED_RUN).exists() and not (folder / "2_net_G.pth").exists()


@pytest.mark.parametrize("then", ["--continue_train", "--overwrite"])
def test_an_overwrite_run_stopped_before_its_first_save_gives_the_old_run_back(tmp_path, monkeypatch, capsys, then):
    folder = train(tmp_path, "exp", "--niter", "2")
    old_log = (folder / "loss_log.txt").read_text()
    with monkeypatch.context() as patch:
        stop_after_saves(patch, 0)
        fails(tmp_path, "exp", "--overwrite", "--ngf", "16")
    assert (folder / checkpoint.REPLACED_RUN / "saves").is_dir()
    assert (folder / "loss_log.txt").read_text().count("Training Loss") == 1  # the new run's own log
    capsys.readouterr()
    train(tmp_path, "exp", then, "--niter", "3")
    out = capsys.readouterr().out
    assert "the run it was replacing (its checkpoints, loss_log.txt, web/ and options) is back in place" in out
    assert not (folder / checkpoint.REPLACED_RUN).exists()
    log = (folder / "loss_log.txt").read_text()
    if then == "--continue_train":  # the old run goes on: its checkpoint, its options, its log
        assert "resuming at epoch 3, image 0 of the epoch" in out
        assert log.startswith(old_log) and log.count("Training Loss") == 2
        assert json.loads((folder / "opt.json").read_text())["ngf"] == 8
    else:
        assert log.count("Training Loss") == 1 and "epoch: 3" in log
        assert [s for s, _ in checkpoint.list_units(str(folder))] == [12, 8]  # the new run's three epochs


# ---------------------------------------------------------------------------------------------------------
# fine-tuning SPADE's way: a latest_net_G.pth copied in, or --init_from

def test_a_copied_in_latest_net_g_stops_the_resume_naming_both_files(trained, tmp_path):
    other = train(tmp_path, "other", "--seed", "1")
    shutil.copy(other / "latest_net_G.pth", trained / "latest_net_G.pth")  # cp writes through the hard link
    before = digest(trained)
    message = fails(tmp_path, "exp", "--continue_train", "--niter", "2")
    published, unit = trained / "latest_net_G.pth", trained / "saves" / "step_000000000004"
    assert f"{published} was written over in place (copied onto, or damaged), so {unit}/net_G.pth, the same " \
           f"file, changed with it, and no complete checkpoint is left to resume" in message
    assert f"--init_from {published}" in message
    assert digest(trained) == before  # nothing loaded, relinked or set aside
    # the way on when no unit is left: a fresh run from the file, here in the same folder
    train(tmp_path, "exp", "--overwrite", "--init_from", str(published))
    assert [s for s, _ in checkpoint.list_units(str(trained))] == [4]


def test_moving_the_copied_file_away_resumes_the_unit(trained, tmp_path, capsys):
    shutil.copyfile(trained / "latest_net_G.pth", tmp_path / "G.pth")
    os.replace(tmp_path / "G.pth", trained / "latest_net_G.pth")  # the same bytes, another file: not refused
    (trained / "latest_net_D.pth").unlink()
    torch.save({"w": torch.zeros(1)}, trained / "latest_net_D.pth")  # another file with other bytes: refused
    assert "latest_net_D.pth is not the file" in fails(tmp_path, "exp", "--continue_train", "--niter", "2")
    (trained / "latest_net_D.pth").unlink()
    train(tmp_path, "exp", "--continue_train", "--niter", "2")
    assert "resuming at epoch 2, image 0 of the epoch" in capsys.readouterr().out


def init_from_options(tmp_path, name, *extra):
    from options.train_options import TrainOptions
    return TrainOptions().parse(["--name", name, "--checkpoints_dir", str(tmp_path / "checkpoints"), *TINY, *extra],
                                save=False, verbose=False)


def test_init_from_starts_a_fresh_run_from_spade_files(trained, tmp_path, capsys):
    G, D = (torch.load(trained / f"latest_net_{n}.pth", weights_only=True) for n in ("G", "D"))
    assert any(k.endswith("weight_orig") for k in G)  # NVlabs SPADE's key layout, as their files have it
    trainer = train_script.Pix2PixTrainer(init_from_options(tmp_path, "new", "--init_from",
                                                            str(trained / "latest_net_G.pth")))
    for net, state in ((trainer.model.netG, G), (trainer.model.netD, D), (trainer.netG_ema, G)):
        assert net.state_dict().keys() == state.keys()
        assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert not trainer.optimizer_G.state and not trainer.optimizer_D.state
    assert f"netG from {trained / 'latest_net_G.pth'}, netD from {trained / 'latest_net_D.pth'}; fresh optimizers, " \
           f"epoch 1" in capsys.readouterr().out
    folder = train(tmp_path, "new", "--init_from", str(trained / "latest_net_G.pth"))
    assert [s for s, _ in checkpoint.list_units(str(folder))] == [4]
    assert [epoch for epoch, _ in visualizer.read_loss_log(str(folder / "loss_log.txt"))] == [1, 1]


def test_init_from_a_lone_generator_file_starts_the_discriminator_afresh(trained, tmp_path, capsys):
    shutil.copy(trained / "latest_net_G.pth", tmp_path / "G.pth")
    trainer = train_script.Pix2PixTrainer(init_from_options(tmp_path, "new", "--init_from", str(tmp_path / "G.pth")))
    assert f"netG from {tmp_path / 'G.pth'}; netD start afresh" in capsys.readouterr().out
    D = torch.load(trained / "latest_net_D.pth", weights_only=True)
    assert not all(torch.equal(v, D[k]) for k, v in trainer.model.netD.state_dict().items())


def test_init_from_is_refused_with_continue_train_or_when_it_does_not_fit(trained, tmp_path):
    file = str(trained / "latest_net_G.pth")
    message = fails(tmp_path, "exp", "--continue_train", "--init_from", file)
    assert f"--init_from {file} starts a new run" in message and "--continue_train resumes" in message
    message = fails(tmp_path, "new", "--init_from", file, "--ngf", "16")
    assert message.startswith(f"error: {file} does not fit --netG as these options build it: the file's ")
    assert "(give the options the file was trained with" in message and "\n" not in message
    assert f"--init_from {tmp_path / 'none.pth'}: no such file" in fails(tmp_path, "new", "--init_from",
                                                                         str(tmp_path / "none.pth"))


def test_continue_train_with_other_options_changes_nothing(trained, tmp_path):
    before = digest(trained)
    message = fails(tmp_path, "exp", "--continue_train", "--ngf", "16", "--niter", "2")
    unit, _ = checkpoint.newest_complete_unit(str(trained))
    assert "\n" not in message, message  # one line, not PyTorch's list of every tensor
    assert message.startswith(f"error: {unit}/net_G.pth does not fit --netG as these options build it: --ngf 16 vs 8 "
                              f"in {trained / 'opt.json'}"), message
    assert "--load_from_opt_file" in message
    assert digest(trained) == before  # opt.json included


def test_test_py_on_an_ema_generator_of_another_network_says_which(trained, tmp_path):
    """The options test.py is given, or the file itself, differ from the network the file holds: one line naming
    the file and the first option that differs, else the first tensor that does."""
    ema = trained / "latest_net_G_ema.pth"
    results = tmp_path / "results"
    with pytest.raises(SystemExit) as e:
        run_test_py(tmp_path, "--ngf", "16")
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"error: {ema} does not fit --netG as these options build it: "
                                                      f"--ngf 16 vs 8 in {trained / 'opt.json'}"), message
    wide = train(tmp_path, "wide", "--ngf", "16")
    os.remove(ema)  # a file copied in from another experiment
    shutil.copyfile(wide / "latest_net_G_ema.pth", ema)
    with pytest.raises(SystemExit) as e:
        run_test_py(tmp_path)
    message = str(e.value)
    assert "\n" not in message, message
    assert message.startswith(f"error: {ema} does not fit --netG as these options build it: "), message
    assert re.search(r"the file's \S+ is \(\d+(, \d+)*\), the network's \(\d+(, \d+)*\)", message), message
    assert "--no_ema" in message and not results.exists()


def test_a_generator_holding_a_nan_weight_is_not_tested_unless_asked(trained, tmp_path, capsys):
    ema = trained / "latest_net_G_ema.pth"
    state = torch.load(ema, weights_only=True)
    key = next(k for k, v in state.items() if v.is_floating_point() and v.dim() == 4)
    state[key].view(-1)[3] = float("nan")
    os.remove(ema)
    torch.save(state, ema)
    results = tmp_path / "results"
    with pytest.raises(SystemExit) as e:
        run_test_py(tmp_path)
    message = str(e.value)
    assert f"{ema} holds non-finite weights (NaN/Inf in {key})" in message, message
    assert "--allow_nonfinite" in message and not results.exists()
    run_test_py(tmp_path, "--allow_nonfinite")
    assert f"warning: {ema} holds non-finite weights (NaN/Inf in {key})" in capsys.readouterr().out
    assert (results / "exp" / "test_latest" / "index.html").is_file()


def run_test_py(tmp_path, *extra):
    test_script.main(["--name", "exp", "--checkpoints_dir", str(tmp_path / "checkpoints"), "--gpu_ids", "-1",
                      "--how_many", "1", "--results_dir", str(tmp_path / "results"), *extra])


def test_an_unreadable_manifest_of_the_only_unit_is_named_with_the_ways_on(trained, tmp_path):
    (_, unit), = checkpoint.list_units(str(trained))
    manifest = os.path.join(unit, "manifest.json")
    with open(manifest, "r+b") as f:
        f.truncate(30)
    before = digest(trained)
    message = fails(tmp_path, "exp", "--continue_train", "--niter", "2")
    assert "\n" not in message and f"{manifest} cannot be read" in message, message
    assert "sha256" in message and "no earlier complete save" in message
    assert f"--init_from {trained / 'latest_net_G.pth'}" in message
    assert "written over" not in message and "net_D.pth" not in message
    assert digest(trained) == before


def stat_all(folder):
    """Every file's bytes and modification time (ns), by path."""
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(root, f)
            out[os.path.relpath(path, folder)] = (open(path, "rb").read(), os.stat(path).st_mtime_ns)
    return out


def test_a_crafted_train_state_never_runs(trained, tmp_path):
    marker = tmp_path / "pwned"

    class WritesAMarker:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)
    unit, manifest = checkpoint.newest_complete_unit(str(trained))
    payload = pickle.dumps({"optimizer_G": WritesAMarker()})
    with open(os.path.join(unit, "train_state.pth"), "wb") as f:
        f.write(payload)
    manifest["files"]["train_state.pth"] = {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    with open(os.path.join(unit, "manifest.json"), "w") as f:
        json.dump(manifest, f)  # a consistent, crafted folder
    message = fails(tmp_path, "exp", "--continue_train", "--niter", "2")
    assert "train_state.pth holds Python objects that only full unpickling can read" in message
    assert "--trust_pickle" in message and not marker.exists()


def test_a_truncated_train_state_falls_back_to_the_previous_save(tmp_path, capsys):
    folder = train(tmp_path, "exp", "--save_latest_freq", "2")
    units = checkpoint.list_units(str(folder))
    assert [s for s, _ in units] == [4, 2]
    with open(os.path.join(units[0][1], "train_state.pth"), "r+b") as f:
        f.truncate(100)
    train(tmp_path, "exp", "--continue_train", "--niter", "2")
    out = capsys.readouterr().out
    assert "step_000000000004 is incomplete (train_state.pth has 100 bytes" in out
    assert "resuming at epoch 1, image 2 of the epoch" in out
    assert os.path.isdir(folder / "saves" / "broken_step_000000000004")  # kept aside, never read again


def test_a_full_disk_at_a_save_keeps_the_previous_one(trained, tmp_path, monkeypatch):
    import errno
    before = digest(trained, options=False)

    def full(path, payload):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(checkpoint, "_write_file", full)
    message = fails(tmp_path, "exp", "--continue_train", "--niter", "2")
    assert "no space left in" in message and "a save needs about" in message
    assert digest(trained, options=False) == before


# ---------------------------------------------------------------------------------------------------------
# foreseeable mistakes: one line each

def test_fpse_crop_must_be_a_multiple_of_32(tmp_path):
    message = fails(tmp_path, "f", "--netG", "pix2pixhd", "--netD", "fpse", "--crop_size", "80", "--load_size",
                    "80", "--resnet_n_blocks", "1")
    assert "--netD fpse needs an image whose sides are multiples of 32" in message and "--crop_size 80" in message


def test_a_norm_kernel_scgan_cannot_build_is_refused(tmp_path):
    message = fails(tmp_path, "k", "--netG", "scgan", "--crop_size", "64", "--load_size", "64", "--norm_G",
                    "spectralsccsyncbatch5x5")
    assert "--norm_G spectralsccsyncbatch5x5: --netG scgan builds 3x3 kernels" in message


def test_a_finished_run_says_so_and_writes_nothing(trained, tmp_path):
    before = stat_all(trained)
    assert {"opt.json", "opt.txt", "iter.txt"} <= set(before)
    message = fails(tmp_path, "exp", "--continue_train")
    assert "the run already finished its 1 epochs" in message and "--niter" in message
    assert stat_all(trained) == before  # not even rewritten with the same bytes


def test_sigterm_while_a_resume_is_set_up_leaves_the_experiment_as_it_was(trained, tmp_path, monkeypatch, capsys):
    before = stat_all(trained)
    resume = train_script.Pix2PixTrainer.resume

    def signalled(self):
        os.kill(os.getpid(), signal.SIGTERM)  # Slurm's notice, while the checkpoint is being read
        return resume(self)
    monkeypatch.setattr(train_script.Pix2PixTrainer, "resume", signalled)
    with pytest.raises(SystemExit) as e:
        train(tmp_path, "exp", "--continue_train", "--niter", "2")
    assert e.value.code == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["SIGTERM: the run stopped before training started; nothing was saved (the checkpoint it "
                   "resumes from is as it was)"], err
    assert stat_all(trained) == before


def test_test_py_on_a_name_never_trained(trained, tmp_path):
    with pytest.raises(SystemExit, match=r"no experiment 'nope' under .*; experiments there: exp \(latest, 1\)"):
        test_script.main(["--name", "nope", "--checkpoints_dir", str(tmp_path / "checkpoints"), "--gpu_ids", "-1",
                          "--dataset_mode", "cityscapes"])


def test_test_py_without_name_tests_the_latest_experiment(trained, tmp_path, capsys):
    test_script.main(["--checkpoints_dir", str(tmp_path / "checkpoints"), "--gpu_ids", "-1", "--how_many", "1",
                      "--results_dir", str(tmp_path / "results")])
    assert "--name not given: testing 'exp'" in capsys.readouterr().out
    assert (tmp_path / "results" / "exp" / "test_latest" / "index.html").is_file()


def test_test_py_with_an_unwritable_results_folder(trained, tmp_path, monkeypatch):
    import errno

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(checkpoint.tempfile, "mkstemp", refuse)
    with pytest.raises(SystemExit, match=r"cannot write to .*results/exp/test_latest \(Permission denied\)"):
        test_script.main(["--name", "exp", "--checkpoints_dir", str(tmp_path / "checkpoints"), "--gpu_ids", "-1",
                          "--results_dir", str(tmp_path / "results")])
