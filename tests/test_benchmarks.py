"""benchmarks/bench_inference.py runs end to end at a tiny size and writes the table it promises."""
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow   # one fresh process per mode, and an ONNX export: 33 to 40 s on an idle 2-core CPU
def test_bench_inference_writes_a_row_of_positive_numbers_per_mode(tmp_path):
    # compile is left out: inductor takes minutes on a CPU
    modes = ["eager", "folded", "bf16"]
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnxscript"):
        modes.insert(2, "onnx")
    out = tmp_path / "table.md"
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_inference", "--models", "spade", "--sizes",
                           "ade20k", "--batches", "1", "--modes", *modes, "--repeats", "1", "--warmup", "0",
                           "--crop_size", "32", "--threads", "1", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = out.read_text().splitlines()
    assert lines[0].startswith("cpu (1 threads), random weights and layouts, median of 1 after 0 warm-up")
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    # without scgan in the run there is no ratio to scgan's row
    assert rows[0] == ["model", "size", "batch", "mode", "img/s", "vs eager", "peak MiB", "setup s"]
    assert [row[3] for row in rows[2:]] == modes
    for row in rows[2:]:
        assert row[:3] == ["spade", "ade20k 32x32", "1"]
        numbers = row[4:] if row[3] != "eager" else row[4:-1]   # eager sets nothing up
        assert all(float(cell.rstrip("x")) > 0 for cell in numbers), row
    assert rows[2][5] == "1.00x" and rows[2][-1] == "–"
    assert out.read_text().strip() in done.stdout
