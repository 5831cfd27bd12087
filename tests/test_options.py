"""Option parsing, hooks, presets, saving and reloading (options/)."""
import json
import math
import os
import pickle
import re
import sys

import pytest
import torch

from models.networks.scgan import SCGANGenerator
from options import base_options
from options.test_options import TestOptions
from options.train_options import TrainOptions

# SPADE's names and defaults (reference A4), before any hook changes them.
SPADE_BASE_DEFAULTS = {
    "name": "label2coco", "checkpoints_dir": "./checkpoints", "model": "pix2pix", "norm_G": "spectralinstance",
    "norm_D": "spectralinstance", "norm_E": "spectralinstance", "phase": "train", "batchSize": 1,
    "preprocess_mode": "scale_width_and_crop", "load_size": 1024, "crop_size": 512, "aspect_ratio": 1.0,
    "label_nc": 182, "contain_dontcare_label": False, "output_nc": 3, "dataroot": "./datasets/cityscapes/",
    "dataset_mode": "coco", "serial_batches": False, "no_flip": False, "nThreads": 0,
    "max_dataset_size": sys.maxsize, "load_from_opt_file": False, "cache_filelist_write": False,
    "cache_filelist_read": False, "display_winsize": 400, "netG": "spade", "ngf": 64, "init_type": "xavier",
    "init_variance": 0.02, "z_dim": 256, "no_instance": False, "use_vae": False,
}
SPADE_TRAIN_DEFAULTS = {
    "display_freq": 100, "print_freq": 100, "save_latest_freq": 5000, "save_epoch_freq": 10, "no_html": False,
    "debug": False, "tf_log": False, "continue_train": False, "which_epoch": "latest", "niter": 50,
    "niter_decay": 0, "optimizer": "adam", "beta1": 0.0, "beta2": 0.9, "no_TTUR": False, "lr": 0.0002,
    "D_steps_per_G": 1, "ndf": 64, "lambda_feat": 10.0, "lambda_vgg": 10.0, "no_ganFeat_loss": False,
    "no_vgg_loss": False, "gan_mode": "hinge", "netD": "multiscale", "lambda_kld": 0.05,
}


def parse(tmp_path, *argv, cls=TrainOptions, save=False):
    return cls().parse(["--checkpoints_dir", str(tmp_path), *map(str, argv)], save=save, verbose=False)


def test_base_parser_has_spade_names_and_defaults():
    import argparse
    parser = argparse.ArgumentParser()
    TrainOptions().initialize(parser)
    for name, default in {**SPADE_BASE_DEFAULTS, **SPADE_TRAIN_DEFAULTS}.items():
        assert parser.get_default(name) == default, name


def test_spade_hooks_and_derived_sizes(tmp_path):
    opt = parse(tmp_path, "--dataset_mode", "coco", "--dataroot", tmp_path)
    assert opt.norm_G == "spectralspadesyncbatch3x3"  # the spade generator's hook
    assert opt.num_upsampling_layers == "normal"
    assert opt.num_D == 2 and opt.n_layers_D == 4     # the multiscale discriminator's hook
    assert opt.label_nc == 182 and opt.contain_dontcare_label  # the coco dataset's hook
    assert opt.semantic_nc == 182 + 1 + 1              # + dontcare + instance edges
    assert opt.nef == opt.ngf                           # -1 means "as ngf", like SPADE's encoder
    opt = parse(tmp_path, "--dataset_mode", "cityscapes")
    assert opt.num_upsampling_layers == "more" and opt.aspect_ratio == 2.0 and opt.semantic_nc == 36


def test_pix2pixhd_hook(tmp_path):
    opt = parse(tmp_path, "--netG", "pix2pixhd")
    assert opt.norm_G == "instance" and opt.resnet_n_blocks == 9 and opt.resnet_n_downsample == 4


def test_cpu_is_the_default_without_cuda(tmp_path):
    opt = parse(tmp_path)
    if not torch.cuda.is_available():
        assert opt.gpu_ids == []
    assert parse(tmp_path, "--gpu_ids", "-1").gpu_ids == []


def test_asking_for_a_gpu_without_cuda_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="--gpu_ids 0 asks for CUDA.*--gpu_ids -1"):
        parse(tmp_path, "--gpu_ids", "0")


def test_batch_size_must_divide_over_gpus(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: None)
    with pytest.raises(SystemExit, match=r"--batchSize 6 \(the global batch\) is not divisible by the 4 GPUs in "
                                         r"--gpu_ids 0,1,2,3: choose a multiple of 4"):
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
        parse(tmp_path, "--gpu_ids", "0,1,2,3", "--batchSize", "6")
    assert parse(tmp_path, "--gpu_ids", "0,1,2", "--batchSize", "6").gpu_ids == [0, 1, 2]
    fake_experiment(tmp_path, "exp", 1_000_000)
    assert parse(tmp_path, "--name", "exp", "--gpu_ids", "0,1,2,3", "--batchSize", "6",
                 cls=TestOptions).batchSize == 6  # testing is one process


def test_batch_size_must_divide_over_torchrun_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "8")
    with pytest.raises(SystemExit, match=r"--batchSize 12 \(the global batch\) is not divisible by the 8 processes "
                                         r"of this torchrun: choose a multiple of 8"):
        parse(tmp_path, "--gpu_ids", "-1", "--batchSize", "12")
    assert parse(tmp_path, "--gpu_ids", "-1", "--batchSize", "16").batchSize == 16


def test_unknown_registered_names_list_the_valid_ones(tmp_path, capsys):
    for flag, valid in [("--netG", "pix2pixhd, scgan, scgan_unpaired, spade"),
                        ("--netD", "fpse, multiscale, oasis"),
                        ("--dataset_mode", "ade20k, celebamaskhq, cityscapes, coco, custom, landscapes, synthetic"),
                        ("--model", "pix2pix")]:
        with pytest.raises(SystemExit):
            parse(tmp_path, flag, "nonsense")
        err = capsys.readouterr().err
        assert f"{flag} nonsense: unknown" in err and valid in err
    with pytest.raises(SystemExit):
        parse(tmp_path, "--use_vae", "--netE", "nonsense")
    assert "--netE nonsense: unknown encoder; registered: conv" in capsys.readouterr().err


def test_no_ttur_switches_beta_defaults(tmp_path):
    opt = parse(tmp_path, "--no_TTUR")
    assert (opt.beta1, opt.beta2) == (0.5, 0.999)
    opt = parse(tmp_path, "--no_TTUR", "--beta2", "0.9")
    assert (opt.beta1, opt.beta2) == (0.5, 0.9)


def test_debug_shrinks_the_run(tmp_path):
    opt = parse(tmp_path, "--debug", "--batchSize", "2")
    assert (opt.niter, opt.niter_decay, opt.max_dataset_size, opt.print_freq) == (1, 0, 8, 2)


@pytest.mark.parametrize("dataset", ["ade20k", "coco", "celebamaskhq", "cityscapes", "synthetic"])
def test_scgan_presets_apply_per_dataset(tmp_path, dataset):
    opt = parse(tmp_path, "--netG", "scgan", "--dataset_mode", dataset)
    for key, value in SCGANGenerator.dataset_presets[dataset].items():
        assert getattr(opt, key) == value, key
    assert opt.norm_G == "spectralsccsyncbatch3x3" and (opt.beta1, opt.beta2) == (0.0, 0.999)


def test_scgan_preset_values_follow_the_released_configs(tmp_path):
    coco = parse(tmp_path, "--netG", "scgan", "--dataset_mode", "coco")
    assert (coco.ngf, coco.nrf, coco.nff, coco.sc_conv_candidates, coco.sc_norm_candidates, coco.sv_tau) == \
        (32, 24, 24, 2, 3, 0.5)
    assert coco.netD == "fpse" and coco.lambda_sv == 2.0 and (coco.niter, coco.niter_decay) == (100, 100)
    celeba = parse(tmp_path, "--netG", "scgan", "--dataset_mode", "celebamaskhq")
    assert celeba.netD == "multiscale" and celeba.use_vae and celeba.no_spectral_on_routing
    assert celeba.lambda_sv == 1.0 and celeba.ngf == 48 and celeba.num_D == 2  # the multiscale hook ran
    ade = parse(tmp_path, "--netG", "scgan", "--dataset_mode", "ade20k")
    assert (ade.sc_conv_candidates, ade.sc_norm_candidates, ade.sv_tau) == (3, 4, 0.05)


def test_command_line_beats_presets(tmp_path):
    opt = parse(tmp_path, "--netG", "scgan", "--dataset_mode", "coco", "--ngf", "8", "--netD", "multiscale",
                "--sv_tau", "0.1", "--beta2", "0.99")
    assert (opt.ngf, opt.netD, opt.sv_tau, opt.beta2) == (8, "multiscale", 0.1, 0.99)
    assert opt.num_D == 2  # the hook of the discriminator chosen on the command line ran


def test_presets_reject_unknown_options(tmp_path, monkeypatch):
    monkeypatch.setitem(SCGANGenerator.dataset_presets, "synthetic", {"ngf": 8, "no_such_option": 1})
    with pytest.raises(ValueError, match="unknown options: \\['no_such_option'\\]"):
        parse(tmp_path, "--netG", "scgan", "--dataset_mode", "synthetic")


def test_training_saves_readable_and_reloadable_options(tmp_path):
    parse(tmp_path, "--name", "exp", "--netG", "scgan", "--dataset_mode", "synthetic", "--ngf", "8",
                save=True)
    text = (tmp_path / "exp" / "opt.txt").read_text()
    assert "----------------- Options ---------------" in text
    assert "ngf: 8" in text and "[default: 16]" in text  # the synthetic preset's value is the default shown
    saved = json.loads((tmp_path / "exp" / "opt.json").read_text())
    assert saved["ngf"] == 8 and saved["semantic_nc"] == 9 and saved["netG"] == "scgan"
    assert not (tmp_path / "exp" / "opt.pkl").exists()
    assert not list(tmp_path.glob("exp/.*.tmp"))


def test_test_options_read_the_saved_training_options(tmp_path):
    parse(tmp_path, "--name", "exp", "--netG", "scgan", "--dataset_mode", "synthetic", "--ngf", "8",
          "--crop_size", "32", "--load_size", "40", "--batchSize", "2", save=True)
    opt = parse(tmp_path, "--name", "exp", cls=TestOptions)
    assert (opt.netG, opt.ngf, opt.crop_size, opt.dataset_mode) == ("scgan", 8, 32, "synthetic")
    assert opt.load_size == 32            # no random crop at test time
    assert opt.batchSize == 4 and opt.phase == "test" and opt.serial_batches and opt.no_flip
    opt = parse(tmp_path, "--name", "exp", "--ngf", "4", "--load_size", "36", cls=TestOptions)
    assert opt.ngf == 4 and opt.load_size == 36  # the command line still wins


def test_load_from_opt_file_in_training(tmp_path):
    parse(tmp_path, "--name", "exp", "--netG", "pix2pixhd", "--ngf", "8", save=True)
    opt = parse(tmp_path, "--name", "exp", "--load_from_opt_file")
    assert opt.netG == "pix2pixhd" and opt.ngf == 8
    with pytest.raises(SystemExit, match="--load_from_opt_file: .*opt.json does not exist"):
        parse(tmp_path, "--name", "other", "--load_from_opt_file")


def test_parse_gpu_ids():
    assert base_options.parse_gpu_ids("-1") == []
    with pytest.raises(SystemExit, match="comma-separated integers"):
        base_options.parse_gpu_ids("a,b")


# ---------------------------------------------------------------------------------------------------------
# saved options are data: a crafted opt.pkl never runs

class WritesAMarker:
    """Unpickling this runs os.system, as a crafted opt.pkl would."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_opt_pkl_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "opt.pkl").write_bytes(pickle.dumps(WritesAMarker(marker)))
    with pytest.raises(SystemExit, match=r"exp/opt.pkl is a pickle .* --trust_pickle") as e:
        parse(tmp_path, "--name", "exp", cls=TestOptions)
    assert not marker.exists()
    # even a trusting user only gets a Namespace of values out of it
    with pytest.raises(SystemExit, match=r"exp/opt.pkl cannot be read .*os.system|posix.system") as e:
        parse(tmp_path, "--name", "exp", "--trust_pickle", cls=TestOptions)
    assert not marker.exists() and "Traceback" not in str(e.value)


def test_nvlabs_opt_pkl_is_read_with_trust_pickle(tmp_path):
    import argparse
    (tmp_path / "exp").mkdir()
    saved = argparse.Namespace(netG="spade", ngf=8, label_nc=5, dataset_mode="synthetic", crop_size=32)
    (tmp_path / "exp" / "opt.pkl").write_bytes(pickle.dumps(saved))
    opt = parse(tmp_path, "--name", "exp", "--trust_pickle", cls=TestOptions)
    assert (opt.ngf, opt.label_nc, opt.crop_size) == (8, 5, 32)


def test_a_corrupt_opt_json_names_the_file(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "opt.json").write_text("{not json")
    with pytest.raises(SystemExit, match=r"exp/opt.json cannot be read as saved options"):
        parse(tmp_path, "--name", "exp", cls=TestOptions)


@pytest.mark.parametrize("argv, message", [
    (["--niter", "0", "--niter_decay", "0"], "--niter 0 --niter_decay 0: nothing to train"),
    (["--aspect_ratio", "1.5"], r"--aspect_ratio 1.5 with --preprocess_mode resize_and_crop: that mode cuts "
                                r"square"),
])
def test_foreseeable_mistakes_get_one_line(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        parse(tmp_path, *argv)


def test_aspect_ratio_is_fine_where_the_mode_keeps_it(tmp_path):
    opt = parse(tmp_path, "--aspect_ratio", "2", "--preprocess_mode", "fixed")
    assert opt.aspect_ratio == 2


# ---------------------------------------------------------------------------------------------------------
# which experiment test.py tests

def fake_experiment(tmp_path, name, mtime, labels=("latest",)):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "opt.json").write_text(json.dumps({"netG": "spade", "ngf": 8, "dataset_mode": "synthetic"}))
    for label in labels:
        (folder / f"{label}_net_G.pth").write_bytes(b"")
        os.utime(folder / f"{label}_net_G.pth", (mtime, mtime))


def test_test_options_without_name_take_the_most_recent_experiment(tmp_path, capsys):
    fake_experiment(tmp_path, "old", 1_000_000)
    fake_experiment(tmp_path, "new", 2_000_000)
    fake_experiment(tmp_path, "epochs_only", 3_000_000, labels=("10",))
    opt = parse(tmp_path, cls=TestOptions)
    assert opt.name == "new" and opt.ngf == 8  # its saved options were read
    assert "--name not given: testing 'new'" in capsys.readouterr().out
    assert parse(tmp_path, "--which_epoch", "10", cls=TestOptions).name == "epochs_only"
    with pytest.raises(SystemExit, match=r"no --name given and no experiment .* has a 20_net_G.pth; experiments "
                                         r"there: epochs_only \(10\), new \(latest\), old \(latest\)"):
        parse(tmp_path, "--which_epoch", "20", cls=TestOptions)


def test_test_options_refuse_an_experiment_never_trained(tmp_path):
    fake_experiment(tmp_path, "trained", 1_000_000)
    with pytest.raises(SystemExit, match=r"no experiment 'typo' under .*; experiments there: trained \(latest\)"):
        parse(tmp_path, "--name", "typo", "--dataset_mode", "cityscapes", cls=TestOptions)


# ---------------------------------------------------------------------------------------------------------
# every numeric option declares its range (util/ranges.py), and a value outside it is refused at parse time

from data import DATASETS  # noqa: E402
from models.networks import DISCRIMINATORS, GENERATORS  # noqa: E402
from options.demo_options import DemoOptions  # noqa: E402
from options.eval_options import EvalOptions  # noqa: E402
from options.test_options import TestPageOptions  # noqa: E402
from util.ranges import Bounded  # noqa: E402


def without_experiment(cls):
    return type(cls.__name__, (cls,), {"requires_experiment": False})


PARSERS = [TrainOptions] + [without_experiment(c) for c in (TestPageOptions, EvalOptions, DemoOptions)]


def composed_parsers():
    """(options class, argv, composed parser) for every parser and every --netG / --netD / --dataset_mode whose
    hooks may add options (with --use_vae, for the encoder's hook)."""
    for cls in PARSERS:
        discriminators = DISCRIMINATORS.names() if cls.isTrain else [None]
        for netG in GENERATORS.names():
            for netD in discriminators:
                for mode in DATASETS.names():
                    argv = ["--gpu_ids", "-1", "--netG", netG, "--dataset_mode", mode, "--use_vae"]
                    argv += ["--netD", netD] if netD else []
                    argv += ["--label_dir", "x"] if mode == "custom" else []
                    options = cls()
                    options.argv = argv
                    options.gather_options(argv)  # also checks that the composed defaults are in range
                    yield cls, argv, options.parser


def just_outside(t: Bounded):
    """Command-line texts just outside the declared range of `t`."""
    texts = []
    if t.min is not None:
        texts.append(str(t.min - 1 if t.min_inclusive else t.min) if t.kind is int else
                     repr(math.nextafter(float(t.min), -math.inf) if t.min_inclusive else float(t.min)))
    if t.max is not None:
        texts.append(str(t.max + 1 if t.max_inclusive else t.max) if t.kind is int else
                     repr(math.nextafter(float(t.max), math.inf) if t.max_inclusive else float(t.max)))
    if t.odd:
        texts.append(str((t.min or 0) + (t.min or 0) % 2))  # the smallest even number in range
    texts.append("nan" if t.kind is float else "1.5")
    return [x for x in texts if t.kind(float(x)) not in t.special]


def test_every_numeric_option_declares_its_range():
    unbounded = sorted({(cls.__name__, a.option_strings[0]) for cls, _, parser in composed_parsers()
                        for a in parser._actions if a.type not in (None, str) and not isinstance(a.type, Bounded)})
    assert not unbounded, f"give these options a range, type=bounded(...) (util/ranges.py): {unbounded}"


def test_a_value_outside_its_range_is_refused_with_one_line(capsys):
    tried = {}
    for cls, argv, parser in composed_parsers():
        for action in parser._actions:
            if isinstance(action.type, Bounded) and (cls, action.dest) not in tried:
                tried[(cls, action.dest)] = (argv, action)
    # the walk reaches the options of every parser and of the networks' and datasets' hooks
    assert {"crop_size", "lr", "how_many", "kid_subset_size", "port", "sc_conv_candidates", "sv_tau", "lambda_sv",
            "resnet_kernel_size", "num_D", "oasis_D_blocks", "num_synthetic"} <= {dest for _, dest in tried}
    for (cls, dest), (argv, action) in tried.items():
        flag = action.option_strings[0]
        for text in just_outside(action.type):
            with pytest.raises(SystemExit) as e:
                cls().parse([*argv, f"{flag}={text}"], save=False, verbose=False)
            err = capsys.readouterr().err.strip().splitlines()[-1]
            assert e.value.code == 2 and \
                f"argument {flag}: must be {action.type.describe()}, got {text} (" in err, (cls, flag, err)


@pytest.mark.parametrize("argv, message", [
    (["--netG", "scgan", "--sc_conv_candidates", "0"], "argument --sc_conv_candidates: must be an integer >= 1, got 0"),
    (["--crop_size", "0"], "argument --crop_size: must be an integer >= 1, got 0"),
    (["--netG", "scgan", "--sv_tau", "0"], "argument --sv_tau: must be a number > 0, got 0"),
    (["--netG", "scgan", "--sv_tau", "-1"], "argument --sv_tau: must be a number > 0, got -1"),
    (["--netG", "scgan", "--lambda_sv", "-1"], "argument --lambda_sv: must be a number >= 0, got -1"),
    (["--ema_decay", "1"], r"argument --ema_decay: must be a number in \[0, 1\), got 1"),
    (["--batchSize", "0"], "argument --batchSize: must be an integer >= 1, got 0"),
    (["--nef", "0"], r"argument --nef: must be an integer >= 1, or -1 \(uses --ngf\), got 0"),
    (["--netG", "pix2pixhd", "--resnet_kernel_size", "4"], "argument --resnet_kernel_size: must be an odd integer "
                                                           ">= 1, got 4"),
    (["--crop_size", "many"], "argument --crop_size: must be an integer >= 1, got many"),
])
def test_issue_examples_are_refused_at_parse_time(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit):
        parse(tmp_path, "--gpu_ids", "-1", *argv)
    assert re.search(message, capsys.readouterr().err)


def test_special_values_keep_working(tmp_path):
    assert parse(tmp_path, "--nef", "-1", "--ngf", "8").nef == 8
    opt = parse(tmp_path, "--ema_decay", "0", "--eval_freq", "0", "--niter", "0", "--niter_decay", "3")
    assert (opt.ema_decay, opt.eval_freq, opt.niter) == (0, 0, 0)
    assert parse(tmp_path, "--name", "x", cls=without_experiment(TestOptions)).how_many == math.inf


def test_out_of_range_values_not_from_the_command_line_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(SCGANGenerator.dataset_presets, "synthetic", {"sv_tau": 0.0})
    with pytest.raises(SystemExit):
        parse(tmp_path, "--netG", "scgan", "--dataset_mode", "synthetic")
    assert "argument --sv_tau: must be a number > 0, got 0.0 (not from the command line" in capsys.readouterr().err
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "opt.json").write_text(json.dumps({"netG": "spade", "dataset_mode": "synthetic",
                                                            "lambda_feat": -1.0, "ngf": 0}))
    with pytest.raises(SystemExit):
        parse(tmp_path, "--name", "exp", cls=TestOptions)
    assert (f"{tmp_path / 'exp' / 'opt.json'}: --ngf 0 (saved there) must be an integer >= 1: fix or delete the "
            f"file, or give --ngf on the command line") in capsys.readouterr().err


def test_a_saved_value_out_of_range_names_the_file_not_an_argument(tmp_path, capsys):
    (tmp_path / "exp").mkdir()
    saved = tmp_path / "exp" / "opt.json"
    saved.write_text(json.dumps({"netG": "spade", "dataset_mode": "synthetic", "crop_size": 0}))
    for argv, cls in ([["--name", "exp"], TestOptions], [["--name", "exp", "--load_from_opt_file"], TrainOptions]):
        with pytest.raises(SystemExit):
            parse(tmp_path, *argv, cls=cls)
        err = capsys.readouterr().err
        assert f"{saved}: --crop_size 0 (saved there) must be an integer >= 1" in err and "argument" not in err, err
    assert parse(tmp_path, "--name", "exp", "--crop_size", "32", cls=TestOptions).crop_size == 32  # the way out


@pytest.mark.parametrize("argv, message", [
    (["--crop_size", "0"], "argument --crop_size: must be an integer >= 1, got 0"),
    (["--no_such_option"], "unrecognized arguments: --no_such_option"),
    (["--netG", "nonsense"], "--netG nonsense: unknown generator"),
])
def test_an_option_mistake_is_one_line_that_says_where_help_is(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        parse(tmp_path, "--gpu_ids", "-1", *argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].endswith("--help lists the options)"), err


def help_text(options, argv, capsys):
    with pytest.raises(SystemExit) as stop:
        options.parse(argv)
    assert stop.value.code == 0
    return capsys.readouterr().out


def test_help_lists_the_options_of_the_chosen_networks_and_dataset(tmp_path, capsys):
    """`--netG scgan --help` answers after the hooks ran: SC-GAN's options (with the preset's defaults for the
    dataset) are listed, and plain `--help` says how to see them. A dataset's required option (--label_dir of
    custom) is listed, not demanded, and test options need no experiment to show their help."""
    plain = help_text(TrainOptions(), ["--help"], capsys)
    assert "--sv_tau" not in plain and "--netG scgan --help" in plain
    assert re.search(r"--dataset_mode DATASET_MODE\s+dataset: .*ade20k", plain)
    scgan = help_text(TrainOptions(), ["--netG", "scgan", "--dataset_mode", "ade20k", "--help"], capsys)
    assert all(name in scgan for name in ("--sv_tau", "--nrf", "--no_spectral_on_routing"))
    assert "--netD" in scgan and "--ndf" in scgan
    custom = help_text(TrainOptions(), ["--dataset_mode", "custom", "-h"], capsys)
    assert "--label_dir LABEL_DIR" in custom
    tested = help_text(TestOptions(), ["--checkpoints_dir", str(tmp_path), "--name", "never_trained", "--help"],
                       capsys)
    assert "--which_epoch" in tested and not (tmp_path / "never_trained").exists()


def test_help_is_not_an_option_value(tmp_path):
    opt = TrainOptions().parse(["--checkpoints_dir", str(tmp_path), "--name", "h", "--dataset_mode", "synthetic"],
                               save=True, verbose=False)
    assert not hasattr(opt, "help")
    assert "help" not in json.load(open(tmp_path / "h" / "opt.json"))
