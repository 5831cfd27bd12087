"""benchmarks/grid.py, the machinery of benchmarks.ablation and benchmarks.compare_generators: the seconds of every
command add up over a stopped and resumed grid, a failed command is counted and stops the grid, and a finished run's
cost is its training plus its evaluation."""
import json
import sys

import pytest

from benchmarks import grid

BURN = [sys.executable, "-c", "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"]


def test_timings_add_up_over_a_resumed_run_and_count_a_failed_command(tmp_path):
    path = str(tmp_path / "timings.json")
    timings = {}
    grid.run_command(BURN, timings, "x train", path)
    first = json.loads(open(path).read())["x train"]
    assert first["cpu_s"] >= 0.3 and first["wall_s"] >= 0.3
    grid.run_command(BURN, timings, "x train", path)     # the same step again, as after a stop: its seconds are added
    second = json.loads(open(path).read())["x train"]
    assert second["cpu_s"] >= first["cpu_s"] + 0.3 and second["wall_s"] >= first["wall_s"] + 0.3
    with pytest.raises(SystemExit, match="x evaluate failed"):
        grid.run_command([sys.executable, "-c", "raise SystemExit(3)"], timings, "x evaluate", path)
    assert "x evaluate" in json.loads(open(path).read())


def test_a_runs_cost_is_its_training_and_its_evaluation_once_both_are_measured():
    timings = {"a train": {"wall_s": 50.0, "cpu_s": 90.0}, "a evaluate": {"wall_s": 10.0, "cpu_s": 15.5},
               "b train": {"wall_s": 50.0, "cpu_s": 90.0}}
    assert grid.run_cpu_seconds(timings, "a") == 105.5
    assert grid.run_cpu_seconds(timings, "b") is None   # not evaluated yet: no per-run cost
    assert grid.run_cpu_seconds(timings, "c") is None
