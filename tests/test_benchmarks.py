"""benchmarks/bench_inference.py and bench_stroke.py run end to end at a tiny size and write the tables they
promise."""
import argparse
import importlib.util
import os
import subprocess
import sys

import pytest
import torch

from tests.limits import HANG_GUARD_S

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow   # one fresh process per mode and layout path, and two ONNX exports
def test_bench_inference_writes_a_row_of_positive_numbers_per_mode(tmp_path):
    # compile is left out: inductor takes minutes on a CPU; folded is timed by the interleaved test
    modes = ["eager", "bf16"]
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnxscript"):
        modes.append("onnx")
    out = tmp_path / "table.md"
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_inference", "--generators", "spade", "--sizes",
                           "ade20k", "--batches", "1", "--modes", *modes, "--repeats", "1", "--warmup", "0",
                           "--crop_size", "32", "--ngf", "16", "--threads", "1", "--classes", "3", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = out.read_text().splitlines()
    assert lines[0].startswith("cpu (1 threads), random weights at ngf 16, 3-class layouts, each mode in its own "
                               "process, median of 1 after 0 warm-up")
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    # without scgan in the run there is no ratio to scgan's row
    assert rows[0] == ["model", "size", "batch", "mode", "layout", "img/s", "vs eager", "vs conv", "peak MiB",
                       "setup s"]
    assert [row[3:5] for row in rows[2:]] == [[m, p] for m in modes for p in ("lookup", "conv")]
    for row in rows[2:]:
        assert row[:3] == ["spade", "ade20k 32x32", "1"]
        numbers = row[5:] if row[3] != "eager" else row[5:-1]   # eager sets nothing up
        assert all(float(cell.rstrip("x")) > 0 for cell in numbers), row
    assert rows[2][6] == "1.00x" and rows[2][-1] == "–" and rows[3][7] == "1.00x"   # eager lookup, eager conv
    assert out.read_text().strip() in done.stdout


@pytest.mark.slow   # one process, an SC-GAN at 32x32 in three modes and two paths: about 10 s on an idle 2-core CPU
def test_bench_inference_interleaved_times_every_mode_in_one_process(tmp_path):
    out = tmp_path / "table.md"
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_inference", "--generators", "scgan", "--sizes",
                           "ade20k", "--batches", "2", "--modes", "eager", "folded", "bf16",
                           "--repeats", "2", "--warmup", "1", "--crop_size", "32", "--threads", "1", "--interleave",
                           "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = out.read_text().splitlines()
    assert "modes timed in turns in one process, median of 2 after 1 warm-up" in lines[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("|")][2:]
    assert [row[:5] for row in rows] == [["scgan", "ade20k 32x32", "2", m, p]
                                         for m in ("eager", "folded", "bf16") for p in ("lookup", "conv")]
    assert all(float(row[5]) > 0 and row[-2] == "–" for row in rows)   # no peak memory when interleaved
    assert rows[0][-1] == "–" and all(float(row[-1]) > 0 for row in rows[2:])


@pytest.mark.slow   # four processes, each building an ade20k SC-GAN (61M parameters) at 64x64
def test_bench_models_times_both_layout_paths_and_gives_their_ratio(tmp_path):
    out = tmp_path / "models.md"
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_models", "--models", "scgan", "--crop_size", "64",
                           "--warmup", "0", "--repeats", "1", "--threads", "1", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = out.read_text().splitlines()
    assert lines[0].startswith("fp32, cpu (1 threads), layouts of 12 random regions, the layout paths timed in turns")
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    assert rows[0][:4] == ["model", "size", "batch", "layout"] and len(rows) == 4
    assert [row[:4] for row in rows[2:]] == [["scgan+fpse", "ade20k 64x64", "1", p] for p in ("lookup", "conv")]
    assert rows[2][4:6] == rows[3][4:6] == ["60.9", "5.2"]   # parameters, the same on both paths
    for cell in rows[3][6:]:   # every measure of the conv row: a positive number and its ratio to the lookup row
        value, ratio_ = cell.split(" (")
        assert float(value) > 0 and float(ratio_.rstrip("x)")) > 0


def test_bench_inference_builds_the_generator_at_the_asked_width(tmp_path):
    from benchmarks.bench_inference import built_generator
    args = argparse.Namespace(batch=1, crop_size=32, ngf=16, classes=3, device="cpu")
    opt, netG, ids, _ = built_generator("spade", "ade20k", args, str(tmp_path), torch.device("cpu"))
    # SPADE's ade20k generator has 96.5M parameters at its preset's ngf 64 and 14.0M at ngf 16 (the norms' shared
    # layers keep their 128 channels)
    parameters = sum(p.numel() for p in netG.parameters())
    assert opt.ngf == 16 and round(parameters / 1e6, 1) == 14.0, parameters
    assert tuple(ids.shape) == (1, 1, 32, 32)


def test_bench_inference_layouts_hold_the_asked_classes():
    from benchmarks.bench_inference import voronoi_ids
    ids = voronoi_ids((32, 48), 5, 150, seed=2)
    assert ids.shape == (32, 48) and len(set(ids.ravel().tolist())) == 5 and ids.max() < 150
    assert not (ids == voronoi_ids((32, 48), 5, 150, seed=3)).all()


@pytest.mark.slow   # two demo pages of a 64x64 SC-GAN (ade20k widths): about 20 s on an idle 2-core CPU
def test_bench_stroke_times_the_demo_callback_and_its_parts(tmp_path):
    out = tmp_path / "stroke.md"
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_stroke", "--crop_size", "64", "--strokes", "1",
                           "--warmup", "0", "--threads", "1", "--classes", "4", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = out.read_text().splitlines()
    assert lines[0] == "cpu (1 threads), one stroke on a 4-class layout, median of 1 strokes after 0; ms"
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    assert rows[0] == ["model", "size", "precision", "stroke ms", "ids ms", "generator ms", "pictures ms"]
    assert [row[:3] for row in rows[2:]] == [["scgan", "64x64", "fp32"], ["scgan", "64x64", "bf16"]]
    assert all(float(cell) >= 0 for row in rows[2:] for cell in row[3:]) and all(float(r[5]) > 0 for r in rows[2:])


def test_a_stroke_changes_the_ids_the_demo_reads():
    import numpy as np
    from benchmarks.bench_stroke import stroke
    layer = np.zeros((64, 64, 3), np.uint8)
    stroke(layer, (9, 9, 9), 0)
    painted = (layer == 9).all(-1)
    assert 0.05 < painted.mean() < 0.5   # a line across the canvas, 9 pixels wide


def test_no_test_waits_against_a_fixed_wall_clock_limit():
    """A fixed limit (a 120 s subprocess timeout) fails a test on a loaded machine although nothing is wrong:
    tests wait on what the program writes or on its exit, bounded only by tests/limits.py's HANG_GUARD_S."""
    import re
    found = []
    for name in sorted(os.listdir(os.path.join(ROOT, "tests"))):
        if name.endswith(".py"):
            text = open(os.path.join(ROOT, "tests", name), encoding="utf-8").read()
            found += [f"tests/{name}: {m.group(0)}" for m in re.finditer(r"\btimeout=\s*\d[\d_.]*", text)]
    assert not found, found
