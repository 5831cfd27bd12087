"""One report that compares experiments: their metrics.json side by side, as an HTML page and a markdown table.

`load_experiment` reads results_dir/NAME/eval_EPOCH/metrics.json (written by evaluate.py) and what the run left
beside its checkpoints: the generator's parameter count (from metrics.json's "experiment", else counted in
checkpoints_dir/NAME/EPOCH_net_G.pth) and the training speed (from loss_log.txt). `check_comparable` refuses
experiments measured under different protocols; `group_rows` folds replicate runs (NAME_seed0, NAME_seed1, ...)
into one row with mean and spread; `write_report` writes DIR/index.html (util/html.py), DIR/report.md and one
bar chart per metric (DIR/images/chart_METRIC.png, drawn with PIL as util/visualizer.py draws the loss curves).
Published numbers (evaluation/published.py) join as reference rows marked "published". Command:
`python -m tools.compare`.
"""
import json
import os
import re
import statistics
from collections import OrderedDict

from PIL import Image, ImageDraw, ImageFont

from util.html import HTML
from util.util import atomic_path, mkdirs
from util.visualizer import LOG_LINE_RE, nice_ticks

from .published import published_results

# columns: metrics first (in this order, then any other metric by name), then model size and speeds
METRIC_ORDER = ("fid", "kid", "kid_std", "lpips", "miou", "miou_ratio", "pixel_accuracy", "miou_real",
                "pixel_accuracy_real")
LOWER_IS_BETTER = {"fid", "kid", "kid_std", "lpips"}
EXTRA_COLUMNS = OrderedDict([("parameters_G", "parameters G"), ("inference_images_per_s", "inference images/s"),
                             ("training_images_per_s", "training images/s")])
SPREADS = ("std", "minmax")
SEED_RE = re.compile(r"^(?P<base>.+)_seed\d+$")
LOG_TIME_RE = re.compile(r", time: ([0-9.eE+-]+)\)")
# saved tensors that are not parameters: batch-norm statistics, spectral norm's power-iteration vectors
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked", "weight_u", "weight_v", "._u", "._v")


class ProtocolMismatch(ValueError):
    """Two experiments measured under different protocols; the message is one line naming both and the setting."""


# ------------------------------------------------------------------------------------------------ reading
def metrics_path(results_dir, name, which_epoch="latest"):
    return os.path.join(results_dir, name, f"eval_{which_epoch}", "metrics.json")


def protocol_of(summary):
    """metrics.json -> (protocol name, dataset_mode, settings). Files written before protocols had names are
    "custom", and their settings are gathered from the protocol's details: the dataset, the image count and
    size, and each metric's network (its weights file's sha256, backbone, label mapping)."""
    protocol = summary.get("protocol") or {}
    name = protocol.get("name") or "custom"
    data = protocol.get("data") or {}
    dataset = protocol.get("dataset_mode") or data.get("dataset_mode") or "unknown"
    if "settings" in protocol:
        return name, dataset, dict(protocol["settings"])
    settings = OrderedDict(num_images=protocol.get("num_images"), image_size_hw=protocol.get("image_size_hw"))
    weights = protocol.get("weights_sha256") or {}
    for key in sorted(weights):
        if key != "generator":   # the thing being measured, not the measure
            settings[f"{key}_sha256"] = weights[key].get("sha256")
    if "segmentation" in protocol:
        settings["label_mapping"] = protocol["segmentation"].get("label_map")
    if "lpips" in protocol:
        settings["lpips_net"] = protocol["lpips"].get("net")
    return name, dataset, settings


def count_parameters(path):
    """Parameters in a saved network file: the numel of its tensors, except batch-norm statistics and spectral
    norm's power-iteration vectors (buffers, not parameters)."""
    import torch
    state = torch.load(path, map_location="cpu", weights_only=True)
    return int(sum(t.numel() for k, t in state.items()
                   if hasattr(t, "numel") and not k.endswith(BUFFER_SUFFIXES)))


def training_images_per_second(log_path):
    """The median training speed of the lines of loss_log.txt (their 'time' is seconds per image over the print
    interval), or None when nothing is logged."""
    if not os.path.isfile(log_path):
        return None
    rates = []
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LOG_LINE_RE.match(line.strip()) and LOG_TIME_RE.search(line)
            if m:
                seconds = float(m.group(1))
                if seconds > 0:
                    rates.append(1.0 / seconds)
    return statistics.median(rates) if rates else None


def derived_metrics(metrics):
    """The metrics plus miou_ratio = miou / miou_real (the synthesized images' mIoU over the real ones')."""
    metrics = OrderedDict(metrics)
    if metrics.get("miou") is not None and metrics.get("miou_real"):
        metrics["miou_ratio"] = metrics["miou"] / metrics["miou_real"]
    return metrics


def load_experiment(name=None, checkpoints_dir="./checkpoints", results_dir="./results", which_epoch="latest",
                    metrics_json=None):
    """One experiment's row: {'name', 'kind': 'measured', 'protocol', 'dataset', 'settings', 'metrics',
    'parameters_G', 'inference_images_per_s', 'training_images_per_s', 'device', 'source'}.

    metrics_json: read this file instead of results_dir/NAME/eval_EPOCH/metrics.json; the name then comes from
    the file's "experiment" (else its folder, results_dir/NAME/eval_EPOCH)."""
    path = metrics_json or metrics_path(results_dir, name, which_epoch)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: run evaluate.py --name {name or 'NAME'} "
                                f"--which_epoch {which_epoch} first")
    with open(path, encoding="utf-8") as f:
        summary = json.load(f)
    experiment = summary.get("experiment") or {}
    if name is None:
        name = experiment.get("name") or os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))
    epoch = experiment.get("which_epoch") or which_epoch
    folder = os.path.join(checkpoints_dir, name)
    protocol, dataset, settings = protocol_of(summary)

    parameters = (experiment.get("parameters") or {}).get("G")
    if parameters is None:
        generator = os.path.join(folder, f"{epoch}_net_G.pth")
        parameters = count_parameters(generator) if os.path.isfile(generator) else None
    speed = summary.get("speed") or {}
    device = speed.get("device")
    if device and speed.get("threads"):
        device = f"{device}, {speed['threads']} threads"
    return OrderedDict(
        name=name, kind="measured", protocol=protocol, dataset=dataset, settings=settings,
        metrics=derived_metrics(summary.get("metrics") or {}), parameters_G=parameters,
        inference_images_per_s=speed.get("generator_images_per_s"), device=device,
        training_images_per_s=training_images_per_second(os.path.join(folder, "loss_log.txt")),
        source=os.path.abspath(path))


def published_rows(dataset):
    """The paper's rows for `dataset` in the shape of load_experiment's, marked kind 'published'."""
    return [OrderedDict(name=r["method"], kind="published", protocol="paper", dataset=dataset, settings=None,
                        metrics=r["metrics"], parameters_G=r["parameters"], inference_images_per_s=None,
                        device=None, training_images_per_s=None, source=r["source"])
            for r in published_results(dataset)]


# ------------------------------------------------------------------------------------------------ checking
def _short(value, limit=60):
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def protocol_difference(a, b):
    """The first setting in which two rows' protocols differ, as 'setting' (a value, b value); None if equal."""
    for key in ("protocol", "dataset"):
        if a[key] != b[key]:
            return ("protocol name" if key == "protocol" else "dataset_mode"), a[key], b[key]
    for key in sorted(set(a["settings"]) | set(b["settings"])):
        if a["settings"].get(key, "(absent)") != b["settings"].get(key, "(absent)"):
            return key, a["settings"].get(key, "(absent)"), b["settings"].get(key, "(absent)")
    return None


def check_comparable(rows):
    """Raise ProtocolMismatch (one line) unless every measured row has the protocol of the first."""
    measured = [r for r in rows if r["kind"] == "measured"]
    for other in measured[1:]:
        difference = protocol_difference(measured[0], other)
        if difference:
            setting, x, y = difference
            raise ProtocolMismatch(f"cannot compare {measured[0]['name']} and {other['name']}: their metrics were "
                                   f"measured under different protocols ({setting}: {_short(x)} vs {_short(y)}); "
                                   f"evaluate them with the same protocol, or compare them in separate reports")


# ------------------------------------------------------------------------------------------------ grouping
def replicate_groups(names, explicit=None):
    """-> OrderedDict group label -> [names], in the order of `names`. explicit: {label: [names]} from --group;
    otherwise NAME_seed0, NAME_seed1, ... form the group NAME, and any other name is a group of its own."""
    explicit = explicit or {}
    member_of = {n: label for label, members in explicit.items() for n in members}
    groups = OrderedDict()
    for name in names:
        m = SEED_RE.match(name)
        label = member_of.get(name) or (m.group("base") if m else name)
        groups.setdefault(label, []).append(name)
    return groups


def summarize(values, spread="std"):
    """values -> {'mean', 'spread' (sample std, or (min, max)), 'n'}; None values are left out."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    mean = statistics.fmean(values)
    if spread == "std":
        width = statistics.stdev(values) if len(values) > 1 else 0.0
    elif spread == "minmax":
        width = (min(values), max(values))
    else:
        raise ValueError(f"spread {spread}: expected one of {', '.join(SPREADS)}")
    return {"mean": mean, "spread": width, "n": len(values)}


def group_rows(rows, groups, spread="std"):
    """Fold each group of measured rows into one row whose numbers are summarize() dicts; a group of one keeps
    its plain numbers (n = 1)."""
    by_name = {r["name"]: r for r in rows if r["kind"] == "measured"}
    folded = []
    for label, names in groups.items():
        members = [by_name[n] for n in names]
        if len(members) == 1:   # named by its group: a lone NAME_seed0 is the row NAME, a --group its label
            row = OrderedDict(members[0], name=label, n=1, members=names)
            folded.append(row)
            continue
        row = OrderedDict(members[0], name=label, n=len(members), members=names,
                          source=", ".join(m["source"] for m in members))
        keys = list(OrderedDict((k, None) for m in members for k in m["metrics"]))
        row["metrics"] = OrderedDict((k, summarize([m["metrics"].get(k) for m in members], spread)) for k in keys)
        for column in EXTRA_COLUMNS:
            values = [m[column] for m in members]
            same = column == "parameters_G" and len(set(values)) == 1   # one architecture: its count, exactly
            row[column] = values[0] if same else summarize(values, spread)
        folded.append(row)
    return folded


# ------------------------------------------------------------------------------------------------ writing
def metric_names(rows):
    present = OrderedDict((k, None) for r in rows for k in r["metrics"])
    ordered = [k for k in METRIC_ORDER if k in present]
    return ordered + sorted(k for k in present if k not in METRIC_ORDER)


def _number(value, digits=4):
    if value is None:
        return "—"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    if abs(value) >= 10:
        return f"{value:.2f}"
    return f"{value:.{digits}f}"


def format_cell(value):
    """A number, or a summarize() dict as 'mean ± std' / 'mean [min, max]'; '—' when absent."""
    if not isinstance(value, dict):
        return _number(value)
    if isinstance(value["spread"], tuple):
        low, high = value["spread"]
        return f"{_number(value['mean'])} [{_number(low)}, {_number(high)}]"
    return f"{_number(value['mean'])} ± {_number(value['spread'])}"


def _mean(value):
    return value["mean"] if isinstance(value, dict) else value


def header(metric):
    return metric + (" ↓" if metric in LOWER_IS_BETTER else " ↑")


def table_rows(rows):
    """-> (column titles, [[cell text]]): experiment, source, protocol, n, every metric, size and speeds."""
    metrics = metric_names(rows)
    titles = ["experiment", "source", "protocol", "n", *map(header, metrics), *EXTRA_COLUMNS.values()]
    body = []
    for r in rows:
        source = "published" if r["kind"] == "published" else "measured"
        cells = [r["name"], source, f"{r['protocol']}: {r['dataset']}", "" if r["n"] is None else str(r["n"])]
        cells += [format_cell(r["metrics"].get(k)) for k in metrics]
        cells += [format_cell(r[c]) for c in EXTRA_COLUMNS]
        body.append(cells)
    return titles, body


def spread_note(spread):
    return ("Rows of replicate runs show the mean ± the sample standard deviation over their n runs."
            if spread == "std" else "Rows of replicate runs show the mean [minimum, maximum] over their n runs.")


def notes(rows, spread):
    lines = [spread_note(spread),
             "miou_ratio = miou / miou_real: the segmenter's mIoU on the synthesized images over its mIoU on the "
             "real images of the same label maps.",
             "parameters G: from metrics.json's experiment entry, else counted in the generator file (batch-norm "
             "statistics and spectral-norm vectors left out); published rows: the counts the paper quotes.",
             "training images/s: the median over the lines of the experiment's loss_log.txt."]
    devices = sorted({r["device"] for r in rows if r.get("device")})
    if devices:
        lines.append("inference images/s measured on: " + "; ".join(devices) + ".")
    published = [r for r in rows if r["kind"] == "published"]
    if published:
        lines.append("published: " + "; ".join(sorted({r["source"] for r in published})) + ".")
        measured = [r for r in rows if r["kind"] == "measured"]
        if any(r["protocol"] != "paper" or r["dataset"] != published[0]["dataset"] for r in measured):
            lines.append(f"The measured rows were not measured with the paper's protocol on "
                         f"{published[0]['dataset']}: the published rows are for orientation only, not comparison.")
    return lines


def bar_chart(rows, metric, path, size=(720, None)):
    """A horizontal bar per row of `metric` (the mean; a whisker for the spread), published rows grey."""
    entries = [(r["name"], r["metrics"].get(metric), r["kind"]) for r in rows if r["metrics"].get(metric) is not None]
    width, bar, left, right, top, bottom = size[0], 22, 190, 30, 30, 40
    height = top + bottom + bar * max(1, len(entries))
    font = ImageFont.load_default()
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    draw.text((10, 8), f"{metric} ({better} is better)", fill="black", font=font)   # the default font has no arrows

    def extent(value):
        if not isinstance(value, dict):
            return value, value
        if isinstance(value["spread"], tuple):
            return value["spread"]
        return value["mean"] - value["spread"], value["mean"] + value["spread"]
    values = [v for _, value, _ in entries for v in (_mean(value), *extent(value))]
    lo, hi = min(0.0, *values), max(0.0, *values)
    hi = hi + 0.05 * (hi - lo) if hi > lo else lo + 1.0
    x0, x1 = left, width - right

    def px(v):
        return x0 + (x1 - x0) * (v - lo) / (hi - lo)
    for v, label in nice_ticks(lo, hi):
        draw.line([px(v), top, px(v), height - bottom], fill=(230, 230, 230))
        draw.text((px(v) - 8, height - bottom + 6), label, fill="black", font=font)
    for k, (name, value, kind) in enumerate(entries):
        y = top + bar * k
        color = (160, 160, 160) if kind == "published" else (31, 119, 180)
        draw.rectangle([px(0), y + 4, px(_mean(value)), y + bar - 4], fill=color)
        low, high = extent(value)
        if high > low:
            draw.line([px(low), y + bar // 2, px(high), y + bar // 2], fill="black", width=2)
            for v in (low, high):
                draw.line([px(v), y + 6, px(v), y + bar - 6], fill="black", width=2)
        label = name + (" (published)" if kind == "published" else "")
        draw.text((5, y + 6), label[:30], fill="black", font=font)
    draw.line([x0, top, x0, height - bottom], fill="black")
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def markdown(rows, spread, charts=()):
    titles, body = table_rows(rows)
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    lines += [""] + [f"- {line}" for line in notes(rows, spread)]
    measured = [r for r in rows if r["kind"] == "measured"]
    if measured:
        lines += ["", f"Protocol: {measured[0]['protocol']} on {measured[0]['dataset']}; settings:",
                  "", "```", json.dumps(measured[0]["settings"], indent=2, default=str), "```"]
    lines += [""] + [f"![{metric}]({file})" for metric, file in charts]
    return "\n".join(lines) + "\n"


def write_report(rows, out, spread="std", title="Comparison"):
    """out/index.html, out/report.md and out/images/chart_METRIC.png -> (html path, markdown path)."""
    from dominate.tags import p, pre, table, td, th, tr
    mkdirs([out, os.path.join(out, "images")])
    charts = []
    for metric in metric_names(rows):
        if metric.endswith("_std"):
            continue
        file = os.path.join("images", f"chart_{metric}.png")
        bar_chart(rows, metric, os.path.join(out, file))
        charts.append((metric, file.replace(os.sep, "/")))
    with atomic_path(os.path.join(out, "report.md")) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"# {title}\n\n" + markdown(rows, spread, charts))

    page = HTML(out, title)
    titles, body = table_rows(rows)
    with page.doc:
        with table(border=1, style="border-collapse: collapse;"):
            tr([th(t) for t in titles])
            for r, cells in zip(rows, body):
                style = "font-style: italic; color: #666;" if r["kind"] == "published" else ""
                tr([td(c) for c in cells], cls=r["kind"], style=style)
        for line in notes(rows, spread):
            p(line)
    measured = [r for r in rows if r["kind"] == "measured"]
    if measured:
        page.add_header(f"Protocol: {measured[0]['protocol']} on {measured[0]['dataset']}")
        with page.doc:
            pre(json.dumps(measured[0]["settings"], indent=2, default=str))
            for r in measured:
                p(f"{r['name']}: {r['source']}" + (f" (runs: {', '.join(r['members'])})" if r["n"] > 1 else ""))
    for metric, file in charts:
        page.add_header(header(metric))
        page.add_figure(file)
    return page.save(), os.path.join(out, "report.md")


def compare(names=(), metrics_json=(), checkpoints_dir="./checkpoints", results_dir="./results",
            which_epoch="latest", published=None, groups=None, spread="std", out="./results/compare",
            title="Comparison"):
    """Read, check, group and write: the whole of `python -m tools.compare`. -> (html path, markdown path, rows).
    Raises FileNotFoundError for a missing metrics.json and ProtocolMismatch for experiments measured
    differently."""
    rows = [load_experiment(n, checkpoints_dir, results_dir, which_epoch) for n in names]
    rows += [load_experiment(None, checkpoints_dir, results_dir, which_epoch, metrics_json=f) for f in metrics_json]
    if not rows:
        raise ValueError("nothing to compare: name experiments or give --metrics_json files")
    seen = set()
    for r in rows:
        if r["name"] in seen:
            raise ValueError(f"{r['name']} is given twice")
        seen.add(r["name"])
    check_comparable(rows)
    explicit = groups or {}
    unknown = [n for members in explicit.values() for n in members if n not in seen]
    if unknown:
        raise ValueError(f"--group names {', '.join(unknown)}, which is not among the experiments compared")
    folded = group_rows(rows, replicate_groups([r["name"] for r in rows], explicit), spread)
    if published:
        folded += [OrderedDict(r, n=None, members=[]) for r in published_rows(published)]
    html, md = write_report(folded, out, spread, title)
    return html, md, folded
