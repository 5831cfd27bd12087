"""The paper's twin-class claim (§3.1, Figure 3) on the bundled synthetic faces, as a test that runs on any CPU: train
the README's SC-GAN demo (`python train.py --name demo_scgan --netG scgan --dataset_mode synthetic`, 2,000 images),
at the demo's temperature τ 0.05 and at τ 20, then measure the semantic vectors of 50 test label maps with
evaluation/semantic_vectors.py. Opt-in, since it trains for minutes (single-threaded; 15 min for both settings on two
shared cores):

    python -m pytest --long -m long tests/test_twins.py -s

Measured (docs/findings.md, "The semantic vectors of the CPU demo"):
- τ 0.05: every V stays close to uniform, so the cosine of every pair of class means is >= 0.998 and cannot tell
  twins from other classes; the separation (distance of the class means over their spread) can: the two eyes
  are the closest pair of classes, the two lips are not (an expected failure below);
- τ 20: the fine vectors leave uniform and the paper's test holds for both twin pairs: cosine >= 0.99 and above
  every other pair except skin/nose (which share one appearance on purpose), and the closest by separation.
"""
import contextlib
import io

import pytest
import torch

import train as train_script
from evaluation import semantic_vectors

pytestmark = pytest.mark.long
EXEMPT = (("skin", "nose"),)   # one appearance on purpose (the nose is shaded skin)
EYES, LIPS = "left_eye/right_eye", "upper_lip/lower_lip"


def demo_vectors(checkpoints, tau):
    """The README's SC-GAN demo at --sv_tau `tau`, then its V over 50 test label maps -> (accumulators,
    {stream: pair_report})."""
    import data
    from models import create_model
    from options.test_options import TestOptions
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # the measured runs' summation order, on any number of cores
    try:
        # the demo as measured (lr 3e-4, EMA 0.99; the demo's default EMA is now 0.995)
        train_script.main(["--name", "demo_scgan", "--netG", "scgan", "--dataset_mode", "synthetic", "--gpu_ids",
                           "-1", "--checkpoints_dir", checkpoints, "--sv_tau", str(tau), "--lr", "0.0003",
                           "--ema_decay", "0.99"])
    finally:
        torch.set_num_threads(threads)
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TestOptions().parse(["--name", "demo_scgan", "--checkpoints_dir", checkpoints, "--gpu_ids", "-1"],
                                  verbose=False)
        loader = data.create_dataloader(opt)
        model = create_model(opt).eval()
    names = list(loader.dataset.class_names)
    accumulators, _, seen = semantic_vectors.collect(model, loader, len(names), num_images=50)
    assert seen == 50
    reports = {stream: semantic_vectors.pair_report(acc, names, loader.dataset.twin_classes, EXEMPT)
               for stream, acc in accumulators.items()}
    for stream in ("conv_6", "all"):
        print(f"tau {tau}, {stream}:", {pair: dict(r) for pair, r in reports[stream].items()})
    return accumulators, reports


@pytest.fixture(scope="module")
def demo_tau_005(tmp_path_factory):
    return demo_vectors(str(tmp_path_factory.mktemp("tau005")), 0.05)


@pytest.fixture(scope="module")
def demo_tau_20(tmp_path_factory):
    return demo_vectors(str(tmp_path_factory.mktemp("tau20")), 20)


def test_at_the_demo_temperature_vectors_are_near_uniform_and_the_cosine_cannot_discriminate(demo_tau_005):
    accumulators, reports = demo_tau_005
    for t in range(1, 7):
        assert accumulators[f"conv_{t}"].statistics()["normalized_entropy"] > 0.99
    eyes = reports["all"][EYES]
    assert eyes["cosine"] >= 0.99 and eyes["largest_other_cosine"] >= 0.99   # twins and non-twins alike


def test_at_the_demo_temperature_the_eyes_are_the_closest_pair_by_separation(demo_tau_005):
    _, reports = demo_tau_005
    for stream in ("all", "conv_6"):
        assert reports[stream][EYES]["holds_by_separation"], (stream, dict(reports[stream][EYES]))


@pytest.mark.xfail(reason="measured: the lips' separation (0.54 over all scales) exceeds the closest "
                                       "other pair's (0.42, brows/lower_lip) after the 2,000-image demo at tau 0.05")
def test_at_the_demo_temperature_the_lips_are_the_closest_pair_by_separation(demo_tau_005):
    _, reports = demo_tau_005
    assert reports["all"][LIPS]["holds_by_separation"], dict(reports["all"][LIPS])


def test_at_tau_20_the_papers_twin_test_holds(demo_tau_20):
    """Paper Figure 3: twin cosine >= 0.99 and above every non-twin pair except skin/nose; also by separation."""
    accumulators, reports = demo_tau_20
    assert accumulators["conv_6"].statistics()["normalized_entropy"] < 0.5   # the fine vectors left uniform
    for pair in (EYES, LIPS):
        r = reports["all"][pair]
        assert r["holds_by_cosine"] and r["holds_by_separation"], (pair, dict(r))
