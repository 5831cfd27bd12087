"""One report that compares experiments: their metrics.json side by side, as an HTML page and a markdown table.

`load_experiment` reads results_dir/NAME/eval_EPOCH/metrics.json (written by evaluate.py) and what the run left
beside its checkpoints: the generator's parameter count (from metrics.json's "experiment", else counted in
checkpoints_dir/NAME/EPOCH_net_G.pth), the training speed (from loss_log.txt) and the run's settings (generator,
discriminator, epoch, images seen; from opt.json and the checkpoint unit). `check_comparable` refuses experiments
measured under different protocols; `group_rows` folds replicate runs (NAME_seed0, NAME_seed1, ...) into one row
with mean and spread; `apply_costs` puts the cost columns measured on an idle machine (a cost.json of
benchmarks.compare_generators --cost) in place of the ones measured during the runs. `write_report` writes
DIR/index.html (util/html.py), DIR/report.md, the quality-against-cost scatter (DIR/images/quality_vs_cost.png)
and a bar chart per metric (DIR/images/chart_METRIC.png), both drawn by evaluation/charts.py. `write_overview`
puts several reports (one per dataset) and one figure on one page.

The pages are written for a reader: images first, a column only for a setting that differs between the rows (the
others are said once above the table), a table that fits a 1280-pixel window, the protocol's JSON folded away and
every file named relative to the page. Published numbers (evaluation/published.py) join as reference rows
marked "published". Command: `python -m tools.compare`.
"""
import json
import os
import re
import statistics
from collections import OrderedDict
from html import escape as html_escape

from util.html import HTML
from util.util import atomic_path, mkdirs
from util.visualizer import LOG_LINE_RE

from .charts import bar_chart, has_points, scatter_figure
from .published import published_results

# columns: metrics first (in this order, then any other metric by name), then model size, speeds and memory
METRIC_ORDER = ("fid", "kid", "kid_std", "lpips", "miou", "miou_ratio", "pixel_accuracy", "miou_real",
                "pixel_accuracy_real")
LOWER_IS_BETTER = {"fid", "kid", "kid_std", "lpips"}
EXTRA_COLUMNS = OrderedDict([("parameters_G", "parameters G"), ("inference_images_per_s", "inference images/s"),
                             ("training_images_per_s", "training images/s"), ("peak_memory_mib", "peak memory MiB")])
COST_COLUMNS = tuple(EXTRA_COLUMNS)
# the settings of a run that tell rows apart: a column each where they differ
RUN_SETTINGS = OrderedDict([("generator", "generator"), ("discriminator", "discriminator"), ("epoch", "epoch"),
                            ("images_seen", "images seen")])
QUALITY = "miou_ratio"
COSTS = OrderedDict([("training_images_per_s", "training images/s"),
                     ("inference_images_per_s", "inference images/s")])
SPREADS = ("std", "minmax")
SEED_RE = re.compile(r"^(?P<base>.+)_seed\d+$")
LOG_TIME_RE = re.compile(r", time: ([0-9.eE+-]+)\)")
# saved tensors that are not parameters: batch-norm statistics, spectral norm's power-iteration vectors
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked", "weight_u", "weight_v", "._u", "._v")
# The page's table fits a 1280-pixel window: small type, narrow padding, names that may break after an underscore
# (metric names have no spaces), numbers that break at their spaces ("0.7300 ±" over "0.0234"), and images never
# wider than the page.
PAGE_STYLE = """
body { font-family: sans-serif; margin: 8px; }
table.report { border-collapse: collapse; font-size: 12px; }
table.report th, table.report td { padding: 2px 3px; border: 1px solid #999; }
table.report th { vertical-align: bottom; }
table.report td { text-align: right; }
table.report td:first-child { text-align: left; }
img { max-width: 100%; }
details pre { font-size: 12px; }
"""


class ProtocolMismatch(ValueError):
    """Two experiments measured under different protocols; the message is one line naming both and the setting."""


# ------------------------------------------------------------------------------------------------ reading
def metrics_path(results_dir, name, which_epoch="latest"):
    return os.path.join(results_dir, name, f"eval_{which_epoch}", "metrics.json")


def read_json(path, what):
    """A JSON file's content; a file that does not parse (a write cut short) raises ValueError in one line that
    names `what` (the experiment) and the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{what}: {path} is not valid JSON ({str(e).splitlines()[0]}); it is truncated or damaged")


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


def images_seen(folder, which_epoch):
    """Images the checkpoint `which_epoch` had trained on: the save id of the newest checkpoint unit published
    under that label (checkpointing/storage.py names units by images seen), or None when no unit holds it."""
    from checkpointing.storage import list_units, read_manifest
    for save_id, unit in list_units(folder):
        try:
            labels = read_manifest(unit)["labels"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if str(which_epoch) in labels:
            return save_id
    return None


def run_settings(experiment, folder, epoch):
    """The settings that tell runs apart: generator, discriminator, evaluated epoch and images seen. The
    generator from metrics.json's experiment entry, the discriminator from the run's opt.json; None if unknown."""
    options = {}
    saved = os.path.join(folder, "opt.json")
    if os.path.isfile(saved):
        try:
            options = read_json(saved, "options")
        except ValueError:
            options = {}   # the run's own loader reports a damaged opt.json; here the columns stay empty
    return OrderedDict(generator=experiment.get("netG") or options.get("netG"), discriminator=options.get("netD"),
                       epoch=epoch, images_seen=images_seen(folder, epoch) if os.path.isdir(folder) else None)


def derived_metrics(metrics):
    """The metrics plus miou_ratio = miou / miou_real (the synthesized images' mIoU over the real ones')."""
    metrics = OrderedDict(metrics)
    if metrics.get("miou") is not None and metrics.get("miou_real"):
        metrics["miou_ratio"] = metrics["miou"] / metrics["miou_real"]
    return metrics


def load_experiment(name=None, checkpoints_dir="./checkpoints", results_dir="./results", which_epoch="latest",
                    metrics_json=None):
    """One experiment's row: {'name', 'kind': 'measured', 'protocol', 'dataset', 'settings', 'run', 'metrics',
    'parameters_G', 'inference_images_per_s', 'training_images_per_s', 'peak_memory_mib', 'device', 'files'}.

    metrics_json: read this file instead of results_dir/NAME/eval_EPOCH/metrics.json; the name then comes from
    the file's "experiment" (else its folder, results_dir/NAME/eval_EPOCH). Raises FileNotFoundError for a missing
    file and ValueError (naming the experiment and the file) for one that is not JSON."""
    path = metrics_json or metrics_path(results_dir, name, which_epoch)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: run evaluate.py --name {name or 'NAME'} "
                                f"--which_epoch {which_epoch} first")
    folder_name = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))
    try:
        summary = read_json(path, f"experiment {name or folder_name}")
    except ValueError as e:
        raise ValueError(f"{e}: run evaluate.py --name {name or folder_name} --which_epoch {which_epoch} "
                         f"again") from None
    experiment = summary.get("experiment") or {}
    if name is None:
        name = experiment.get("name") or folder_name
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
        run=run_settings(experiment, folder, epoch), metrics=derived_metrics(summary.get("metrics") or {}),
        parameters_G=parameters, inference_images_per_s=speed.get("generator_images_per_s"), device=device,
        training_images_per_s=training_images_per_second(os.path.join(folder, "loss_log.txt")),
        peak_memory_mib=None, files=[path])


def published_rows(dataset):
    """The paper's rows for `dataset` in the shape of load_experiment's, marked kind 'published'."""
    return [OrderedDict(name=r["method"], kind="published", protocol="paper", dataset=dataset, settings=None,
                        run=OrderedDict((k, None) for k in RUN_SETTINGS), metrics=r["metrics"],
                        parameters_G=r["parameters"], inference_images_per_s=None, device=None,
                        training_images_per_s=None, peak_memory_mib=None, source=r["source"], files=[])
            for r in published_results(dataset)]


def load_costs(path):
    """A cost.json (benchmarks.compare_generators --cost): {'machine': {...}, 'datasets': {mode: {label: {column:
    number or summarize() dict}}}}. ValueError in one line when it is not such a file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--cost {path}: no such file (python -m benchmarks.compare_generators --cost "
                                f"writes it)")
    costs = read_json(path, "--cost")
    if not isinstance(costs, dict) or not isinstance(costs.get("datasets"), dict):
        raise ValueError(f"--cost {path}: not a cost file of benchmarks.compare_generators (no 'datasets' entry)")
    return costs


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


def _common(values):
    """One setting over a group's runs: the value they share, or the distinct values joined by ' / '."""
    distinct = list(OrderedDict((v, None) for v in values))
    return distinct[0] if len(distinct) == 1 else " / ".join(_setting_text(v) for v in distinct)


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
                          files=[f for m in members for f in m["files"]])
        row["run"] = OrderedDict((k, _common([m["run"][k] for m in members])) for k in RUN_SETTINGS)
        keys = list(OrderedDict((k, None) for m in members for k in m["metrics"]))
        row["metrics"] = OrderedDict((k, summarize([m["metrics"].get(k) for m in members], spread)) for k in keys)
        for column in EXTRA_COLUMNS:
            values = [m[column] for m in members]
            same = column == "parameters_G" and len(set(values)) == 1   # one architecture: its count, exactly
            row[column] = values[0] if same else summarize(values, spread)
        folded.append(row)
    return folded


def apply_costs(rows, costs):
    """Put the cost columns of `costs` (load_costs) in place of those measured during the runs, for every row
    whose name the file lists under the rows' dataset. -> the machine entry of the file, or None if no row
    matched."""
    matched = False
    for row in rows:
        measured = (costs["datasets"].get(row["dataset"]) or {}).get(row["name"])
        if row["kind"] != "measured" or not measured:
            continue
        for column in COST_COLUMNS:
            row[column] = measured.get(column)
        matched = True
    return costs.get("machine") if matched else None


# ------------------------------------------------------------------------------------------------ cells
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


def _setting_text(value):
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else str(value)


def header(metric):
    return metric + (" ↓" if metric in LOWER_IS_BETTER else " ↑")


def differing_settings(rows):
    """RUN_SETTINGS keys whose values differ between the measured rows (a column each), and the shared ones
    ({key: value}, said once above the table)."""
    measured = [r for r in rows if r["kind"] == "measured"]
    differ, shared = [], OrderedDict()
    for key in RUN_SETTINGS:
        values = {_setting_text(r["run"][key]) for r in measured}
        if len(values) > 1:
            differ.append(key)
        elif values and values != {"—"}:
            shared[key] = measured[0]["run"][key]
    return differ, shared


def table_rows(rows):
    """-> (column titles, [[cell text]]): the experiment; its source and protocol only where rows differ in them
    (published rows beside measured ones); the run settings that differ; n; every metric; the size, speed and
    memory columns that any row has."""
    metrics = metric_names(rows)
    settings, _ = differing_settings(rows)
    sources = len({r["kind"] for r in rows}) > 1
    protocols = len({(r["protocol"], r["dataset"]) for r in rows}) > 1
    extras = [c for c in EXTRA_COLUMNS if any(r[c] is not None for r in rows)]
    titles = ["experiment", *(["source"] if sources else []), *(["protocol"] if protocols else []),
              *(RUN_SETTINGS[k] for k in settings), "n", *map(header, metrics), *(EXTRA_COLUMNS[c] for c in extras)]
    body = []
    for r in rows:
        cells = [r["name"]]
        if sources:
            cells.append(r["kind"])
        if protocols:
            cells.append(f"{r['protocol']}: {r['dataset']}")
        cells += [_setting_text(r["run"][k]) for k in settings]
        cells.append("" if r["n"] is None else str(r["n"]))
        cells += [format_cell(r["metrics"].get(k)) for k in metrics]
        cells += [format_cell(r[c]) for c in extras]
        body.append(cells)
    return titles, body


def spread_note(spread):
    return ("Rows of replicate runs show the mean ± the sample standard deviation over their n runs."
            if spread == "std" else "Rows of replicate runs show the mean [minimum, maximum] over their n runs.")


def shared_line(rows):
    """What every measured row shares, said once: the protocol and the run settings without a column."""
    measured = [r for r in rows if r["kind"] == "measured"]
    if not measured:
        return None
    _, shared = differing_settings(rows)
    parts = [f"protocol {measured[0]['protocol']} on {measured[0]['dataset']}"]
    parts += [f"{RUN_SETTINGS[k]} {_setting_text(v)}" for k, v in shared.items()]
    return "Every measured row: " + "; ".join(parts) + "."


def notes(rows, spread, machine=None):
    lines = [spread_note(spread),
              "miou_ratio = miou / miou_real: the segmenter's mIoU on the synthesized images over its mIoU on the "
              "real images of the same label maps."]
    if machine:
        lines.append(f"parameters G, inference and training images/s, peak memory MiB: measured one generator at a "
                     f"time on an idle machine ({_machine_text(machine)}) by python -m "
                     f"benchmarks.compare_generators --cost, with the runs' options.")
    else:   # a note for each column the table shows
        shown = {c for c in EXTRA_COLUMNS if any(r[c] is not None for r in rows)}
        if "parameters_G" in shown:
            lines.append("parameters G: from metrics.json's experiment entry, else counted in the generator file "
                         "(batch-norm statistics and spectral-norm vectors left out); published rows: the counts "
                         "the paper quotes.")
        if "training_images_per_s" in shown:
            lines.append("training images/s: the median over the lines of the experiment's loss_log.txt.")
        devices = sorted({r["device"] for r in rows if r.get("device")})
        if devices and "inference_images_per_s" in shown:
            lines.append("inference images/s: measured by evaluate.py on " + "; ".join(devices) + ".")
    published = [r for r in rows if r["kind"] == "published"]
    if published:
        lines.append("published: " + "; ".join(sorted({r["source"] for r in published})) + ".")
        measured = [r for r in rows if r["kind"] == "measured"]
        if any(r["protocol"] != "paper" or r["dataset"] != published[0]["dataset"] for r in measured):
            lines.append(f"The measured rows were not measured with the paper's protocol on "
                         f"{published[0]['dataset']}: the published rows are for orientation only, not comparison.")
    return lines


def _machine_text(machine):
    return ", ".join(f"{k} {v}" for k, v in machine.items())


# ------------------------------------------------------------------------------------------------ charts
def quality_cost_panels(rows, title=""):
    """The two panels of quality against cost for `rows`: miou_ratio against training images/s and against
    inference images/s. Each panel: {'title', 'x_label', 'y_label', 'points': [(label, x, y)]}, x and y a number or
    a summarize() dict (its spread is the error bar); rows without both numbers are left out."""
    panels = []
    for column, words in COSTS.items():
        points = [(r["name"], r[column], r["metrics"].get(QUALITY)) for r in rows
                  if r["kind"] == "measured" and r[column] is not None and r["metrics"].get(QUALITY) is not None]
        panels.append({"title": f"{title}{': ' if title else ''}{QUALITY} against {words}",
                       "x_label": f"{words} (higher is cheaper)", "y_label": f"{QUALITY} (higher is better)",
                       "points": points})
    return panels


# ------------------------------------------------------------------------------------------------ writing
def _link(path, start):
    """`path` relative to the folder `start` (the page's), with '/' separators: pages name no machine paths."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(start)).replace(os.sep, "/")


def markdown_table(rows):
    """The table, after the line of what every row shares."""
    titles, body = table_rows(rows)
    shared = shared_line(rows)
    lines = [shared, ""] if shared else []
    lines += ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def markdown(rows, spread, charts=(), figure=None, machine=None):
    lines = [f"![quality against cost]({figure})", ""] if figure else []
    lines += markdown_table(rows)
    lines += [""] + [f"- {line}" for line in notes(rows, spread, machine)]
    measured = [r for r in rows if r["kind"] == "measured"]
    if measured:
        lines += ["", f"Protocol: {measured[0]['protocol']} on {measured[0]['dataset']}; settings:",
                  "", "```", json.dumps(measured[0]["settings"], indent=2, default=str), "```"]
    lines += [""] + [f"![{metric}]({file})" for metric, file in charts]
    return "\n".join(lines) + "\n"


def styled_page(out, title):
    """An HTML page (util/html.py) with the report's style sheet."""
    from dominate.tags import style
    page = HTML(out, title)
    with page.doc.head:
        style(PAGE_STYLE)
    return page


def _breakable(text):
    """HTML of `text` that a narrow column may break after each underscore."""
    from dominate.util import raw
    return raw(html_escape(text).replace("_", "_<wbr>"))


def html_table(page, rows):
    """The table, after the line of what every row shares."""
    from dominate.tags import p, table, td, th, tr
    titles, body = table_rows(rows)
    with page.doc:
        shared = shared_line(rows)
        if shared:
            p(shared)
        with table(cls="report"):
            tr([th(_breakable(t)) for t in titles])
            for r, cells in zip(rows, body):
                style = "font-style: italic; color: #666;" if r["kind"] == "published" else ""
                tr([td(_breakable(cells[0]))] + [td(c) for c in cells[1:]], cls=r["kind"], style=style)


def write_report(rows, out, spread="std", title="Comparison", machine=None):
    """out/index.html, out/report.md, out/images/quality_vs_cost.png (when rows have miou_ratio and a cost) and
    out/images/chart_METRIC.png -> (html path, markdown path). The page: the scatter, the table, its notes, the
    charts, then the protocol's settings and the metrics files, folded."""
    from dominate.tags import a, details, li, p, pre, summary, ul
    from dominate.util import text
    mkdirs([out, os.path.join(out, "images")])
    figure = None
    panels = [quality_cost_panels(rows)]
    if has_points(panels):
        figure = "images/quality_vs_cost.png"
        scatter_figure(panels, os.path.join(out, figure))
    charts = []
    for metric in metric_names(rows):
        if metric.endswith("_std"):
            continue
        file = os.path.join("images", f"chart_{metric}.png")
        bar_chart(rows, metric, os.path.join(out, file), metric in LOWER_IS_BETTER)
        charts.append((metric, file.replace(os.sep, "/")))
    with atomic_path(os.path.join(out, "report.md")) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"# {title}\n\n" + markdown(rows, spread, charts, figure, machine))

    page = styled_page(out, title)
    if figure:
        page.add_figure(figure)
    html_table(page, rows)
    with page.doc:
        for line in notes(rows, spread, machine):
            p(line)
    for metric, file in charts:
        page.add_header(header(metric))
        page.add_figure(file)
    measured = [r for r in rows if r["kind"] == "measured"]
    if measured:
        with page.doc:
            with details():
                summary(f"Protocol {measured[0]['protocol']} on {measured[0]['dataset']}: settings and the "
                        f"metrics files")
                pre(json.dumps(measured[0]["settings"], indent=2, default=str))
                with ul():
                    for r in measured:
                        runs = f" (runs {', '.join(r['members'])})" if r["n"] > 1 else ""
                        with li(f"{r['name']}{runs}: "):
                            for k, file in enumerate(r["files"]):
                                if k:
                                    text(", ")
                                a(_link(file, out), href=_link(file, out))
    return page.save(), os.path.join(out, "report.md")


def write_overview(sections, out, title, intro=(), spread="std"):
    """One page over several reports (one per dataset): one figure of quality against cost (a row of panels per
    section), the intro lines, then per section its heading, a link to its own report and its table.
    sections: [(heading, rows, link to the section's page relative to out, machine or None)].
    -> (html path, markdown path, figure path or None)."""
    from dominate.tags import a, h3, p
    mkdirs([out, os.path.join(out, "images")])
    panel_rows = [quality_cost_panels(rows, heading) for heading, rows, _, _ in sections]
    figure = None
    if has_points(panel_rows):
        figure = "images/quality_vs_cost.png"
        scatter_figure(panel_rows, os.path.join(out, figure))
    lines = [f"# {title}", ""]
    if figure:
        lines += [f"![quality against cost]({figure})", ""]
    lines += list(intro) + [""]
    page = styled_page(out, title)
    if figure:
        page.add_figure(figure)
    with page.doc:
        for line in intro:
            p(line)
    for heading, rows, link, machine in sections:
        lines += [f"## {heading}: [page]({link})", ""] + markdown_table(rows) + [""]
        lines += [f"- {line}" for line in notes(rows, spread, machine)] + [""]
        with page.doc:
            h3(heading + " ", a("(its page)", href=link))
        html_table(page, rows)
        with page.doc:
            for line in notes(rows, spread, machine):
                p(line)
    with atomic_path(os.path.join(out, "README.md")) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
    return page.save(), os.path.join(out, "README.md"), figure and os.path.join(out, figure)


def compare(names=(), metrics_json=(), checkpoints_dir="./checkpoints", results_dir="./results",
            which_epoch="latest", published=None, groups=None, spread="std", out="./results/compare",
            title="Comparison", costs=None):
    """Read, check, group and write: the whole of `python -m tools.compare`. -> (html path, markdown path, rows).
    costs: a load_costs() dict whose cost columns replace the runs' own. Raises FileNotFoundError for a missing
    metrics.json, ValueError for one that is not JSON and ProtocolMismatch for experiments measured
    differently; nothing is written then."""
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
    machine = apply_costs(folded, costs) if costs else None
    if published:
        folded += [OrderedDict(r, n=None, members=[]) for r in published_rows(published)]
    html, md = write_report(folded, out, spread, title, machine)
    return html, md, folded
