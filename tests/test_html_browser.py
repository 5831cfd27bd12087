"""The pages we write really render: every image on them loads in headless Chromium (util/html.py, util/visualizer.py)."""
import argparse
import os
from collections import OrderedDict

import torch

from tests.browser import assert_page_images_load
from util.html import HTML
from util.visualizer import Visualizer

H = W = 8
LABEL_NC = 5


def make_opt(tmp_path, is_train):
    return argparse.Namespace(isTrain=is_train, checkpoints_dir=str(tmp_path / "checkpoints"), name="exp",
                              no_html=False, tf_log=False, display_winsize=32, label_nc=LABEL_NC,
                              contain_dontcare_label=False, batchSize=1)


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
