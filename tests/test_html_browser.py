"""The pages we write really render: every image on them loads in headless Chromium (util/html.py, util/visualizer.py);
the report pages (evaluation/report.py, evaluation/run.py) read as a person reads them: images first, the JSON folded
away, a compare table of every column inside a 1280-pixel window (a screenshot is taken at that width)."""
import argparse
import contextlib
import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.browser import assert_page_images_load
from util.html import HTML
from util.visualizer import Visualizer

H = W = 8
LABEL_NC = 5


def make_opt(tmp_path, is_train):
    return argparse.Namespace(isTrain=is_train, checkpoints_dir=str(tmp_path / "checkpoints"), name="exp",
                              no_html=False, tf_log=False, display_winsize=32, label_nc=LABEL_NC,
                              contain_dontcare_label=False, batchSize=1, dataset_mode="synthetic")


def visuals(batch, real=True):
    v = OrderedDict(input_label=torch.randint(0, LABEL_NC + 2, (batch, 1, H, W)),
                    synthesized_image=torch.rand(batch, 3, H, W) * 2 - 1)
    if real:
        v["real_image"] = torch.rand(batch, 3, H, W) * 2 - 1
    return v


def test_training_page_images_load(tmp_path):
    opt = make_opt(tmp_path, is_train=True)
    visualizer = Visualizer(opt)
    for step in (2, 4):
        visualizer.print_current_errors(1, step, {"GAN": 1.0 / step, "D_real": 0.5}, 0.01)
        visualizer.plot_current_errors({"GAN": 1.0 / step, "D_real": 0.5}, step)
        visualizer.display_current_results(visuals(1), 1, step)
    Visualizer(opt).display_current_results(visuals(1), 2, 6)   # a restarted run
    page = os.path.join(opt.checkpoints_dir, opt.name, "web", "index.html")
    assert assert_page_images_load(page) == 1 + 3 * 3   # loss curves + 3 steps of 3 visuals


def test_results_page_images_load(tmp_path):
    opt = make_opt(tmp_path, is_train=False)
    web_dir = tmp_path / "results" / "exp" / "test_latest"
    webpage = HTML(str(web_dir), "Experiment = exp, Phase = test, Epoch = latest")
    visualizer = Visualizer(opt)
    # awkward but legal file names: a space and a '#' must be URL-quoted in src/href
    for path in ("/data/val/frankfurt 000001.jpg", "/data/val/munich#2.png"):
        sample = {name: t[0] for name, t in visuals(1, real=False).items()}
        visualizer.save_images(webpage, sample, [path])
    webpage.save()
    assert assert_page_images_load(str(web_dir / "index.html")) == 2 * 2


# ---------------------------------------------------------------------------------------------------------
# the report pages as a person reads them: images first, the JSON folded away, the table inside 1280 pixels

WINDOW = (1280, 900)
# where the screenshots are kept for a person to look at, as tests/test_demo.py keeps the demo's
ARTEFACTS = os.environ.get("SCGAN_TEST_ARTEFACTS", os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "test-artefacts"))
PAGE_STATE_JS = """
var table = document.querySelector('table.report, table:not([style*=fixed])');
var top = function (e) { return e ? e.getBoundingClientRect().top + window.scrollY : null; };
var pre = document.querySelector('pre');
return {inner_width: window.innerWidth, client_width: document.documentElement.clientWidth,
        scroll_width: document.documentElement.scrollWidth, table_right: table.getBoundingClientRect().right,
        first_img: top(document.querySelector('img')), first_table: top(table),
        pre_shown: pre ? pre.checkVisibility() : null,
        details_open: Array.from(document.querySelectorAll('details')).some(function (d) { return d.open; }),
        images: Array.from(document.images).map(function (im) { return im.complete && im.naturalWidth > 0; })};
"""


@contextlib.contextmanager
def chromium_window(tmp_path, size=WINDOW):
    """A headless Chromium whose window is `size` (width, height) pixels, as tests/browser.py starts it."""
    from tests.browser import CHROMIUM_FLAGS, LOAD_TIMEOUT_S, _browser_or_skip
    webdriver, chromium, chromedriver = _browser_or_skip()
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + (f"--window-size={size[0]},{size[1]}", f"--user-data-dir={tmp_path / 'profile'}",
                                  "--force-device-scale-factor=1", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        driver.set_page_load_timeout(LOAD_TIMEOUT_S)
        yield driver
    finally:
        driver.quit()


def open_page(driver, html_path):
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser import LOAD_TIMEOUT_S
    driver.get(Path(html_path).resolve().as_uri())
    WebDriverWait(driver, LOAD_TIMEOUT_S).until(lambda d: d.execute_script("return document.readyState") == "complete")
    return driver.execute_script(PAGE_STATE_JS)


def widest_report(root):
    """A compare report as benchmarks.compare_generators writes it, with every column a report can have: five
    generators x 3 seeds with all metrics, their discriminators differing, and the cost columns of a cost.json."""
    from evaluation import report
    settings = {"segmenter": "TorchScript --seg_model synthetic_seg.pt", "num_images": 200, "metrics": ["fid"]}
    names, costs = [], {}
    pairs = {"scgan": ("scgan", "fpse"), "spade": ("spade", "multiscale"), "pix2pixhd": ("pix2pixhd", "multiscale"),
             "ccfpse": ("ccfpse", "fpse"), "oasis": ("spade", "oasis")}
    for k, (key, (netG, netD)) in enumerate(pairs.items()):
        for seed in range(3):
            name = f"compare_synthetic_{key}_seed{seed}"
            folder = root / "results" / name / "eval_latest"
            folder.mkdir(parents=True)
            value = 0.1 * k + 0.01 * seed
            metrics = {"fid": 250.0 + 10 * value, "kid": 0.2 + value, "kid_std": 0.01, "lpips": 0.3 + value,
                       "miou": 0.5 + value / 2, "pixel_accuracy": 0.8 + value / 10, "miou_real": 0.93,
                       "pixel_accuracy_real": 0.97}
            (folder / "metrics.json").write_text(json.dumps({
                "metrics": metrics, "protocol": {"name": "custom", "dataset_mode": "synthetic", "settings": settings},
                "experiment": {"name": name, "which_epoch": "latest", "netG": netG, "parameters": {"G": 12345678}},
                "speed": {"generator_images_per_s": 40.0 + seed, "device": "cpu", "threads": 2}}))
            (root / "checkpoints" / name).mkdir(parents=True)
            (root / "checkpoints" / name / "opt.json").write_text(json.dumps({"netG": netG, "netD": netD}))
            names.append(name)
        costs[key] = {"parameters_G": 12345678 + k, "peak_memory_mib": 1234.5,
                      "training_images_per_s": {"mean": 3.0 + k, "spread": 0.25, "n": 3},
                      "inference_images_per_s": {"mean": 40.0 - 5 * k, "spread": 1.5, "n": 3}}
    groups = {key: [n for n in names if f"_{key}_" in n] for key in pairs}
    cost_file = {"machine": {"cpu": "a CPU", "cores": 2, "threads": 2, "torch": "2"},
                 "datasets": {"synthetic": costs}}
    html, _, _ = report.compare(names, checkpoints_dir=str(root / "checkpoints"), results_dir=str(root / "results"),
                                groups=groups, out=str(root / "report"), costs=cost_file,
                                title="synthetic: the generators at one budget")
    return html


def test_the_compare_page_fits_a_1280_pixel_window_with_its_figure_first(tmp_path):
    html = widest_report(tmp_path)
    page = open(html, encoding="utf-8").read()
    assert "/tmp" not in page and str(tmp_path) not in page   # files are named relative to the page
    assert page.index("quality_vs_cost.png") < page.index("<table")   # the figure before the table
    shot = os.path.join(ARTEFACTS, "compare_page_1280.png")
    os.makedirs(ARTEFACTS, exist_ok=True)
    with chromium_window(tmp_path) as driver:
        state = open_page(driver, html)
        driver.save_screenshot(shot)
    assert state["inner_width"] == WINDOW[0]
    assert state["table_right"] <= state["client_width"], state          # the table inside the window
    assert state["scroll_width"] <= state["client_width"], state         # nothing scrolls sideways
    assert state["first_img"] < state["first_table"]
    assert state["images"] and all(state["images"])
    assert state["pre_shown"] is False and not state["details_open"]     # the protocol's JSON is folded away
    assert Image.open(shot).size[0] == WINDOW[0]


def test_the_evaluation_page_shows_its_images_before_numbers_and_folds_the_json(tmp_path):
    from evaluation.run import write
    from util.util import save_image
    web_dir = tmp_path / "results" / "exp" / "eval_latest"
    rows = []
    for sample in ("a", "b"):
        cells = []
        for caption in ("input_label", "synthesized_image", "real_image"):
            file = f"{caption}/{sample}.png"
            save_image(np.full((8, 8, 3), 128, np.uint8), str(web_dir / "images" / file))
            cells.append((caption, file))
        rows.append((sample, cells))
    summary = {"metrics": {"fid": 123.4, "miou": 0.5},
               "protocol": {"name": "custom", "dataset_mode": "synthetic", "num_images": 2, "fid_note": "",
                            "settings": {"deviations": []}, "weights_sha256": {}},
               "experiment": {"name": "exp", "generator_file": "latest_net_G.pth"}}
    html = write(str(web_dir), "Evaluation: exp", summary, rows)
    with chromium_window(tmp_path) as driver:
        state = open_page(driver, html)
    assert state["first_img"] < state["first_table"]
    assert state["images"] and all(state["images"]) and len(state["images"]) == 6
    assert state["pre_shown"] is False and not state["details_open"]
    assert "generator_file" in open(html, encoding="utf-8").read()   # folded, not gone
