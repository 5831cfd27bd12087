"""The report's pictures, drawn with PIL as util/visualizer.py draws the loss curves: a bar chart per metric and
the scatter of quality against cost. A value is a number or a summarize() dict of evaluation/report.py ({'mean',
'spread': std or (min, max), 'n'}), whose spread is drawn as a whisker or an error bar."""
from collections import OrderedDict

from PIL import Image, ImageDraw, ImageFont

from util.util import atomic_path
from util.visualizer import nice_ticks


def _mean(value):
    return value["mean"] if isinstance(value, dict) else value


def _error(value):
    """The half-width of a value's error bar: the std of a summarize() dict, half the range of a min-max one,
    0 for a plain number."""
    if not isinstance(value, dict):
        return 0.0
    if isinstance(value["spread"], tuple):
        low, high = value["spread"]
        return (high - low) / 2
    return value["spread"]


def chart_font():
    return ImageFont.load_default(size=12)   # Pillow's own font: no system font needed; 12 px keeps its spaces


def bar_chart(rows, metric, path, lower_is_better=False, size=(720, None)):
    """A horizontal bar per row of `metric` (the mean; a whisker for the spread), published rows grey.
    rows: the report's ({'name', 'kind', 'metrics'}), a metric a number or a summarize() dict."""
    entries = [(r["name"], r["metrics"].get(metric), r["kind"]) for r in rows if r["metrics"].get(metric) is not None]
    width, bar, left, right, top, bottom = size[0], 22, 190, 30, 30, 40
    height = top + bottom + bar * max(1, len(entries))
    font = chart_font()
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    better = "lower" if lower_is_better else "higher"
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


# A scatter panel: its size and the plot area's margins, in pixels (tests read them).
SCATTER_PANEL = OrderedDict(width=520, height=372, left=60, right=20, top=46, bottom=46)
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
LEGEND_ROW = 20


def _scatter_panel(panel, colors, font):
    """One panel as an image: the axes from 0, a dot per point at its means, error bars of its spreads."""
    w, h = SCATTER_PANEL["width"], SCATTER_PANEL["height"]
    x0, x1 = SCATTER_PANEL["left"], w - SCATTER_PANEL["right"]
    y0, y1 = h - SCATTER_PANEL["bottom"], SCATTER_PANEL["top"]   # y grows downwards in the image
    image = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(image)
    draw.text((x0, 8), panel["title"], fill="black", font=font)
    points = panel["points"]
    x_hi = max([_mean(x) + _error(x) for _, x, _ in points] + [0.0])
    y_hi = max([_mean(y) + _error(y) for _, _, y in points] + [1.0])
    x_hi, y_hi = (x_hi * 1.08 if x_hi > 0 else 1.0), y_hi * 1.05

    def px(x, y):
        return x0 + (x1 - x0) * x / x_hi, y0 + (y1 - y0) * y / y_hi
    for v, label in nice_ticks(0.0, x_hi):
        draw.line([px(v, 0)[0], y0, px(v, 0)[0], y1], fill=(230, 230, 230))
        draw.text((px(v, 0)[0] - 8, y0 + 4), label, fill="black", font=font)
    for v, label in nice_ticks(0.0, y_hi):
        draw.line([x0, px(0, v)[1], x1, px(0, v)[1]], fill=(230, 230, 230))
        draw.text((4, px(0, v)[1] - 6), label, fill="black", font=font)
    draw.line([x0, y0, x1, y0], fill="black")
    draw.line([x0, y0, x0, y1], fill="black")
    draw.text((x0, h - 18), panel["x_label"], fill="black", font=font)
    draw.text((x0 + 6, y1 - 16), panel["y_label"], fill="black", font=font)
    if not points:
        draw.text((x0 + 20, (y0 + y1) // 2), "not measured", fill="black", font=font)
    for label, x, y in points:
        color = colors[label]
        cx, cy = px(_mean(x), _mean(y))
        ex, ey = _error(x), _error(y)
        if ex > 0:
            left, right = px(_mean(x) - ex, 0)[0], px(_mean(x) + ex, 0)[0]
            draw.line([left, cy, right, cy], fill=color, width=2)
            for v in (left, right):
                draw.line([v, cy - 4, v, cy + 4], fill=color, width=2)
        if ey > 0:
            top, bottom = px(0, _mean(y) + ey)[1], px(0, _mean(y) - ey)[1]
            draw.line([cx, top, cx, bottom], fill=color, width=2)
            for v in (top, bottom):
                draw.line([cx - 4, v, cx + 4, v], fill=color, width=2)
        draw.ellipse([cx - 5, cy - 5, cx + 5, cy + 5], fill=color)
    return image


def scatter_figure(panel_rows, path):
    """Panels in one PNG, a list of rows of {'title', 'x_label', 'y_label', 'points': [(label, x, y)]} (x and y
    numbers or summarize() dicts; evaluation/report.py's quality_cost_panels makes them), with one legend below
    them: each label has the same colour in every panel. -> the labels in legend order."""
    labels = list(OrderedDict((label, None) for row in panel_rows for panel in row for label, _, _ in panel["points"]))
    colors = {label: PALETTE[k % len(PALETTE)] for k, label in enumerate(labels)}
    font = chart_font()
    columns = max(len(row) for row in panel_rows)
    w, h = SCATTER_PANEL["width"], SCATTER_PANEL["height"]
    per_line = max(1, columns * w // 160)
    legend = LEGEND_ROW * (-(-len(labels) // per_line)) + 10
    image = Image.new("RGB", (columns * w, len(panel_rows) * h + legend), "white")
    for r, row in enumerate(panel_rows):
        for c, panel in enumerate(row):
            image.paste(_scatter_panel(panel, colors, font), (c * w, r * h))
    draw = ImageDraw.Draw(image)
    for k, label in enumerate(labels):
        x, y = SCATTER_PANEL["left"] + 160 * (k % per_line), len(panel_rows) * h + 4 + LEGEND_ROW * (k // per_line)
        draw.ellipse([x, y + 3, x + 10, y + 13], fill=colors[label])
        draw.text((x + 16, y + 2), label[:22], fill="black", font=font)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return labels


def has_points(panel_rows):
    return any(panel["points"] for row in panel_rows for panel in row)
