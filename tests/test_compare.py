"""python -m tools.compare (evaluation/report.py, evaluation/charts.py): two experiments side by side in HTML and
markdown, the paper's published rows, the one-line refusal of mixed protocols, replicate runs folded into mean and
spread, a column per setting that differs, the cost columns of a cost.json, the scatter of quality against cost and
the one line naming a damaged metrics.json."""
import json
import os
import re
import statistics

import pytest
import torch
from PIL import Image

from evaluation import charts, report
from tools import compare

SETTINGS = {"segmenter": "synthetic_unet sha256 abc", "image_size_hw": [64, 64], "num_images": 50,
            "label_mapping": "identity", "metrics": ["fid", "lpips", "miou"]}


def write_metrics(root, name, metrics, protocol=None, experiment=None, speed=None):
    """results/NAME/eval_latest/metrics.json in the layout evaluate.py writes."""
    folder = root / "results" / name / "eval_latest"
    folder.mkdir(parents=True)
    summary = {"metrics": metrics,
               "protocol": protocol if protocol is not None else
               {"name": "custom", "dataset_mode": "synthetic", "settings": SETTINGS, "num_images": 50,
                "image_size_hw": [64, 64]}}
    if experiment is not None:
        summary["experiment"] = experiment
    if speed is not None:
        summary["speed"] = speed
    (folder / "metrics.json").write_text(json.dumps(summary))
    return folder / "metrics.json"


def write_run(root, name, state, seconds_per_image=()):
    """checkpoints/NAME/latest_net_G.pth holding `state`, and a loss_log.txt with one line per print interval."""
    folder = root / "checkpoints" / name
    folder.mkdir(parents=True)
    torch.save(state, folder / "latest_net_G.pth")
    lines = ["================ Training Loss (Sun Dec  6 10:00:00 2026) ================"]
    lines += [f"(epoch: 1, iters: {40 * (k + 1)}, time: {t:.3f}) G_GAN: 1.234 D_Fake: 0.500 "
              for k, t in enumerate(seconds_per_image)]
    (folder / "loss_log.txt").write_text("\n".join(lines) + "\n")


def run(root, *argv):
    out = root / "report"
    compare.main([*map(str, argv), "--checkpoints_dir", str(root / "checkpoints"), "--results_dir",
                  str(root / "results"), "--out", str(out)])
    return (out / "index.html").read_text(), (out / "report.md").read_text(), out


def md_row(markdown, name):
    """The cells of the markdown table row of experiment `name`."""
    line, = [line for line in markdown.splitlines() if line.startswith(f"| {name} |")]
    return [c.strip() for c in line.strip("|").split("|")]


def md_column(markdown, title):
    header, = [line for line in markdown.splitlines() if line.startswith("| experiment |")]
    return [c.strip() for c in header.strip("|").split("|")].index(title)


def test_two_experiments_side_by_side_with_sizes_and_speeds(tmp_path):
    write_metrics(tmp_path, "spade_demo", {"fid": 301.25, "lpips": 0.4123, "miou": 0.5, "miou_real": 0.8},
                  experiment={"name": "spade_demo", "which_epoch": "latest", "netG": "spade",
                              "parameters": {"G": 1234567}},
                  speed={"generator_images_per_s": 41.5, "device": "cpu", "threads": 1})
    write_metrics(tmp_path, "scgan_demo", {"fid": 250.5, "lpips": 0.3876, "miou": 0.6, "miou_real": 0.8})
    # no "experiment" entry: the generator's parameters are counted in its file, buffers left out
    write_run(tmp_path, "scgan_demo", {"conv.weight": torch.zeros(8, 3, 3, 3), "conv.bias": torch.zeros(8),
                                       "norm.running_mean": torch.zeros(8), "norm.running_var": torch.ones(8),
                                       "norm.num_batches_tracked": torch.tensor(3),
                                       "conv.parametrizations.weight.0._u": torch.zeros(8),
                                       "conv.parametrizations.weight.0._v": torch.zeros(27)},
              seconds_per_image=(0.1, 0.08, 0.05))
    html, md, out = run(tmp_path, "spade_demo", "scgan_demo")

    spade, scgan = md_row(md, "spade_demo"), md_row(md, "scgan_demo")
    assert spade[md_column(md, "fid ↓")] == "301.2" and scgan[md_column(md, "fid ↓")] == "250.5"
    assert spade[md_column(md, "lpips ↓")] == "0.4123" and scgan[md_column(md, "lpips ↓")] == "0.3876"
    assert spade[md_column(md, "miou_ratio ↑")] == "0.6250" and scgan[md_column(md, "miou_ratio ↑")] == "0.7500"
    assert "Every measured row: protocol custom on synthetic" in md   # one protocol: said once, not a column
    assert "protocol" not in md_row(md, "experiment") and "source" not in md_row(md, "experiment")
    assert spade[md_column(md, "parameters G")] == "1,234,567"
    assert scgan[md_column(md, "parameters G")] == str(8 * 27 + 8)
    assert spade[md_column(md, "inference images/s")] == "41.50" and scgan[md_column(md, "inference images/s")] == "—"
    assert scgan[md_column(md, "training images/s")] == "12.50"   # the median of 10, 12.5 and 20 images/s
    assert spade[md_column(md, "training images/s")] == "—"       # nothing logged
    assert "cpu, 1 threads" in md

    for text in ("spade_demo", "scgan_demo", "301.2", "250.5", "0.4123", "0.3876", "1,234,567",
                 "protocol custom on synthetic"):
        assert text in html
    assert html.count("synthetic_unet sha256 abc") == 1   # the protocol's settings, once
    for metric in ("fid", "lpips", "miou", "miou_ratio", "miou_real"):
        chart = out / "images" / f"chart_{metric}.png"
        assert f'src="images/chart_{metric}.png"' in html and f"(images/chart_{metric}.png)" in md
        assert Image.open(chart).size[0] == 720


def test_files_without_a_protocol_name_are_custom_and_compared_by_their_details(tmp_path):
    old = {"num_images": 50, "image_size_hw": [64, 64], "data": {"dataset_mode": "synthetic"},
           "weights_sha256": {"seg_model": {"path": "/s.pt", "sha256": "abc"},
                              "generator": {"path": "/g.pth", "sha256": "differs per experiment"}}}
    a = write_metrics(tmp_path, "a", {"miou": 0.5}, protocol=old)
    b = write_metrics(tmp_path, "b", {"miou": 0.6}, protocol=dict(old, weights_sha256={
        "seg_model": {"sha256": "abc"}, "generator": {"sha256": "another generator"}}))
    _, md, _ = run(tmp_path, "--metrics_json", a, b)   # named by their folder
    assert "protocol custom on synthetic" in md and md_row(md, "b")[md_column(md, "n")] == "1"

    write_metrics(tmp_path, "c", {"miou": 0.6}, protocol=dict(old, num_images=200))
    with pytest.raises(SystemExit) as stop:
        run(tmp_path, "a", "c")
    assert str(stop.value) == "error: cannot compare a and c: their metrics were measured under different " \
                              "protocols (num_images: 50 vs 200); evaluate them with the same protocol, or " \
                              "compare them in separate reports"


@pytest.mark.parametrize("change, setting", [
    ({"name": "paper"}, "protocol name"),
    ({"dataset_mode": "cityscapes"}, "dataset_mode"),
    ({"settings": dict(SETTINGS, segmenter="drn-d-105 sha256 def")}, "segmenter"),
])
def test_mixed_protocols_are_refused_in_one_line_naming_both_and_the_setting(tmp_path, change, setting):
    write_metrics(tmp_path, "ours", {"fid": 1.0})
    protocol = dict({"name": "custom", "dataset_mode": "synthetic", "settings": SETTINGS}, **change)
    write_metrics(tmp_path, "theirs", {"fid": 2.0}, protocol=protocol)
    with pytest.raises(SystemExit) as stop:
        run(tmp_path, "ours", "theirs")
    message = str(stop.value)
    assert "\n" not in message
    assert message.startswith("error: cannot compare ours and theirs:") and f"({setting}: " in message
    assert not (tmp_path / "report").exists()   # nothing half-written


def test_published_rows_are_marked_and_in_the_units_of_evaluate(tmp_path):
    write_metrics(tmp_path, "city", {"fid": 60.0, "miou": 0.6}, protocol={
        "name": "paper", "dataset_mode": "cityscapes", "settings": {"segmenter": "drn-d-105"}})
    html, md, _ = run(tmp_path, "city", "--published", "cityscapes")
    scgan, oasis = md_row(md, "SC-GAN"), md_row(md, "OASIS")
    assert scgan[1] == "published" and md_row(md, "city")[1] == "measured"
    assert scgan[md_column(md, "miou ↑")] == "0.6690" and scgan[md_column(md, "fid ↓")] == "49.50"   # Table 1
    assert scgan[md_column(md, "pixel_accuracy ↑")] == "0.8250"
    assert oasis[md_column(md, "miou ↑")] == "0.6930" and oasis[md_column(md, "parameters G")] == "94,000,000"
    assert "Table 8" in md and "ICCV 2021" in md
    assert "orientation only" not in md   # the measured row is the paper's protocol on the same dataset
    assert len(re.findall(r'<tr class="published"', html)) == len(report.published_rows("cityscapes")) == 8
    assert len(re.findall(r'<tr class="measured"', html)) == 1

    _, md, _ = run_other(tmp_path)
    assert "orientation only" in md and md_row(md, "SC-GAN")[md_column(md, "fid ↓")] == "18.10"


def run_other(tmp_path):
    """A synthetic-data experiment against the COCO rows."""
    write_metrics(tmp_path, "synthetic_run", {"fid": 60.0})
    out = tmp_path / "report_coco"
    compare.main(["synthetic_run", "--published", "coco", "--results_dir", str(tmp_path / "results"),
                  "--checkpoints_dir", str(tmp_path / "checkpoints"), "--out", str(out)])
    return None, (out / "report.md").read_text(), out


def test_replicate_runs_fold_into_mean_spread_and_n(tmp_path):
    fids, mious = [100.0, 110.0, 126.0], [0.70, 0.74, 0.75]
    for seed, (fid, miou) in enumerate(zip(fids, mious)):
        write_metrics(tmp_path, f"scgan_seed{seed}", {"fid": fid, "miou": miou, "miou_real": 1.0},
                      experiment={"name": f"scgan_seed{seed}", "parameters": {"G": 5000}})
        write_run(tmp_path, f"scgan_seed{seed}", {}, seconds_per_image=((0.1, 0.05, 0.025)[seed],))
    write_metrics(tmp_path, "spade", {"fid": 90.0, "miou": 0.6, "miou_real": 1.0})
    html, md, _ = run(tmp_path, "scgan_seed0", "scgan_seed1", "scgan_seed2", "spade")
    row = md_row(md, "scgan")
    assert not any(line.startswith("| scgan_seed") for line in md.splitlines())
    assert row[md_column(md, "n")] == "3" and md_row(md, "spade")[md_column(md, "n")] == "1"
    assert row[md_column(md, "fid ↓")] == f"112.0 ± {statistics.stdev(fids):.2f}"   # 112 ± 13.11
    assert row[md_column(md, "miou ↑")] == f"0.7300 ± {statistics.stdev(mious):.4f}"
    assert row[md_column(md, "parameters G")] == "5,000"   # one architecture: its count
    rates = [10, 20, 40]
    assert row[md_column(md, "training images/s")] == f"{statistics.mean(rates):.2f} ± {statistics.stdev(rates):.2f}"
    assert "sample standard deviation" in md and "scgan_seed0, scgan_seed1, scgan_seed2" in html

    _, md, _ = run(tmp_path, "scgan_seed0", "scgan_seed1", "scgan_seed2", "spade", "--spread", "minmax",
                   "--group", "all=scgan_seed0,spade")
    assert md_row(md, "all")[md_column(md, "fid ↓")] == "95.00 [90.00, 100.0]"
    assert md_row(md, "scgan")[md_column(md, "fid ↓")] == "118.0 [110.0, 126.0]"   # seeds 1 and 2 remain
    assert "[minimum, maximum]" in md


def test_a_missing_metrics_file_says_what_to_run(tmp_path):
    with pytest.raises(SystemExit) as stop:
        run(tmp_path, "never_evaluated")
    assert "metrics.json not found: run evaluate.py --name never_evaluated" in str(stop.value)
    assert os.sep + os.path.join("never_evaluated", "eval_latest", "metrics.json") in str(stop.value)


def test_the_chart_draws_each_mean_as_a_bar_of_its_length_and_the_spread_as_a_whisker(tmp_path):
    rows = [{"name": "half", "kind": "measured", "metrics": {"fid": 50.0}},
            {"name": "full", "kind": "measured", "metrics": {"fid": {"mean": 100.0, "spread": 10.0, "n": 3}}},
            {"name": "paper", "kind": "published", "metrics": {"fid": 100.0}}]
    charts.bar_chart(rows, "fid", str(tmp_path / "fid.png"), lower_is_better=True)
    image = Image.open(tmp_path / "fid.png").convert("RGB")
    top, bar = 30, 22   # the chart's layout: bars of 22 pixels from y = 30

    def run_of(y, colour):
        return sum(image.getpixel((x, y)) == colour for x in range(image.size[0]))
    blue, grey = (31, 119, 180), (160, 160, 160)
    half, full = run_of(top + 4, blue), run_of(top + bar + 4, blue)   # the bars' top edge, above the whiskers
    assert full > 0 and abs(half / full - 0.5) < 0.02
    assert run_of(top + 2 * bar + 4, grey) == full   # the published bar: grey, the same length
    axis = 190   # the bars start at the black axis line
    whisker = [x for x in range(axis + 2, image.size[0]) if image.getpixel((x, top + bar + bar // 2)) == (0, 0, 0)]
    assert abs((max(whisker) - min(whisker)) / full - 20 / 100) < 0.03   # mean ± 10 spans 20% of the bar


def test_a_truncated_metrics_file_is_named_with_its_experiment_in_one_line(tmp_path):
    path = write_metrics(tmp_path, "cut_short", {"fid": 1.0})
    path.write_text(path.read_text()[:50])   # cut off inside a string, as a write stopped by a full disk leaves it
    with pytest.raises(SystemExit) as stop:
        run(tmp_path, "cut_short")
    message = str(stop.value)
    assert "\n" not in message
    assert message.startswith(f"error: experiment cut_short: {path} is not valid JSON (")
    assert "truncated" in message and "evaluate.py --name cut_short" in message
    assert not (tmp_path / "report").exists()


def write_options(root, name, **options):
    folder = root / "checkpoints" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "opt.json").write_text(json.dumps(options))
    return folder


def test_a_column_for_each_setting_that_differs_and_the_rest_said_once(tmp_path):
    from checkpointing.storage import save_unit
    for name, netG in (("scgan_run", "scgan"), ("spade_run", "spade")):
        write_metrics(tmp_path, name, {"fid": 100.0}, experiment={"name": name, "which_epoch": "latest", "netG": netG})
        folder = write_options(tmp_path, name, netG=netG, netD="multiscale")
        # train.py's units are named by images seen; the latest is the one evaluated
        save_unit(str(folder), 1000, {"G": {"w": torch.zeros(1)}}, {}, ["5"], {"epoch": 6, "epoch_iter": 0})
        save_unit(str(folder), 2000, {"G": {"w": torch.zeros(1)}}, {}, ["latest", "10"], {"epoch": 11, "epoch_iter": 0})
    html, md, _ = run(tmp_path, "scgan_run", "spade_run")
    assert md_row(md, "experiment")[:3] == ["experiment", "generator", "n"]   # only the generator differs
    assert md_row(md, "scgan_run")[1] == "scgan" and md_row(md, "spade_run")[1] == "spade"
    assert "Every measured row: protocol custom on synthetic; discriminator multiscale; epoch latest; images seen " \
           "2,000." in md
    assert report.images_seen(str(tmp_path / "checkpoints" / "scgan_run"), "5") == 1000
    assert report.images_seen(str(tmp_path / "checkpoints" / "scgan_run"), "7") is None
    # columns nobody has are left out, and so are their notes
    assert "training images/s" not in md and "inference images/s" not in md and "loss_log" not in md
    # every file is named relative to the page, never by the machine's folders
    assert 'href="../results/scgan_run/eval_latest/metrics.json"' in html and str(tmp_path) not in html


def test_the_cost_file_replaces_the_runs_costs_and_says_where_they_come_from(tmp_path):
    for seed, rate in enumerate((10.0, 12.0)):
        write_metrics(tmp_path, f"scgan_seed{seed}", {"miou": 0.5, "miou_real": 1.0},
                      speed={"generator_images_per_s": rate, "device": "cpu", "threads": 8})
    write_metrics(tmp_path, "spade", {"miou": 0.4, "miou_real": 1.0})
    cost = tmp_path / "cost.json"
    cost.write_text(json.dumps({"machine": {"cpu": "Xeon", "cores": 2}, "datasets": {"synthetic": {"scgan": {
        "parameters_G": 7, "training_images_per_s": {"mean": 3.0, "spread": 0.5, "n": 3},
        "inference_images_per_s": {"mean": 30.0, "spread": 1.0, "n": 3}, "peak_memory_mib": 512.0}},
        "landscapes": {"spade": {"parameters_G": 99}}}}))
    html, md, out = run(tmp_path, "scgan_seed0", "scgan_seed1", "spade", "--cost", cost)
    row, spade = md_row(md, "scgan"), md_row(md, "spade")
    assert row[md_column(md, "parameters G")] == "7" and row[md_column(md, "peak memory MiB")] == "512.0"
    assert row[md_column(md, "training images/s")] == "3.0000 ± 0.5000"
    assert row[md_column(md, "inference images/s")] == "30.00 ± 1.0000"   # not the runs' 11 ± 1.4
    assert spade[md_column(md, "parameters G")] == "—"   # the file's spade is another dataset's
    assert "measured one generator at a time on an idle machine (cpu Xeon, cores 2)" in md
    assert (out / "images" / "quality_vs_cost.png").is_file() and 'src="images/quality_vs_cost.png"' in html

    cost.write_text(json.dumps({"scgan": {}}))
    with pytest.raises(SystemExit, match=r"^error: --cost .*cost.json: not a cost file of "
                                         r"benchmarks.compare_generators \(no 'datasets' entry\)$"):
        run(tmp_path, "spade", "--cost", cost)
    with pytest.raises(SystemExit, match=r"^error: --cost .*absent.json: no such file"):
        run(tmp_path, "spade", "--cost", tmp_path / "absent.json")


def test_the_scatter_puts_each_row_at_its_cost_and_quality_with_its_error_bars(tmp_path):
    panel = {"title": "t", "x_label": "x", "y_label": "y",
             "points": [("a", 10.0, 0.5), ("b", {"mean": 20.0, "spread": 2.0, "n": 3},
                                             {"mean": 1.0, "spread": 0.1, "n": 3})]}
    labels = charts.scatter_figure([[panel]], str(tmp_path / "s.png"))
    assert labels == ["a", "b"]
    image = Image.open(tmp_path / "s.png").convert("RGB")
    layout = charts.SCATTER_PANEL
    x0, y0 = layout["left"], layout["height"] - layout["bottom"]   # the axes' origin: cost 0, quality 0

    def pixels(colour):
        return [(x, y) for x in range(layout["width"]) for y in range(layout["height"])
                if image.getpixel((x, y)) == colour]
    a, b = pixels(charts.PALETTE[0]), pixels(charts.PALETTE[1])
    ax, ay = statistics.fmean(x for x, _ in a), statistics.fmean(y for _, y in a)   # a dot, no error bars
    by = statistics.mode(y for _, y in b)   # the row of b's horizontal error bar, through its mean
    bx = statistics.mode(x for x, _ in b)   # the column of its vertical one
    assert abs((ax - x0) / (bx - x0) - 10 / 20) < 0.02 and abs((y0 - ay) / (y0 - by) - 0.5 / 1.0) < 0.02
    # b's error bars: +-2 images/s and +-0.1 of quality, in the axes' units
    across = [x for x, y in b if y == by]
    down = [y for x, y in b if x == bx]
    assert abs((max(across) - min(across)) / (bx - x0) - 4 / 20) < 0.02
    assert abs((max(down) - min(down)) / (y0 - by) - 0.2 / 1.0) < 0.02
