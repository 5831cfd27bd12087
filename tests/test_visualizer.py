"""util/util.py, util/html.py and util/visualizer.py: palettes, conversions, atomic files, logs and pages."""
import argparse
import os
import re
import sys
from collections import OrderedDict
from html.parser import HTMLParser
from urllib.parse import unquote

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from util import util
from util.html import HTML
from util.visualizer import Visualizer

H, W = 6, 10
LABEL_NC = 5


def make_opt(tmp_path, **overrides):
    opt = dict(isTrain=True, checkpoints_dir=str(tmp_path / "checkpoints"), name="exp", no_html=False,
               tf_log=False, display_winsize=64, label_nc=LABEL_NC, contain_dontcare_label=False, batchSize=1,
               dataset_mode="synthetic")
    opt.update(overrides)
    return argparse.Namespace(**opt)


def make_visuals(batch=1, real=True):
    v = OrderedDict(input_label=torch.randint(0, LABEL_NC + 2, (batch, 1, H, W)),
                    synthesized_image=torch.rand(batch, 3, H, W) * 2 - 1)
    if real:
        v["real_image"] = torch.rand(batch, 3, H, W) * 2 - 1
    return v


class PageParser(HTMLParser):
    """Collects what a reader of our pages sees: titles, headers, captions, image sources and links."""

    def __init__(self, path):
        super().__init__()
        self.title, self.h1, self.h3, self.captions, self.srcs, self.hrefs, self.refresh = [], [], [], [], [], [], None
        self._in = None
        with open(path, encoding="utf-8") as f:
            self.feed(f.read())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._in = tag
        if tag == "img":
            self.srcs.append(attrs["src"])
        elif tag == "a":
            self.hrefs.append(attrs["href"])
        elif tag == "meta" and attrs.get("http-equiv") == "refresh":
            self.refresh = attrs["content"]

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        lists = {"title": self.title, "h1": self.h1, "h3": self.h3, "p": self.captions}
        if self._in in lists and data.strip():
            lists[self._in].append(data.strip())


def assert_no_broken_links(page_path):
    page = PageParser(page_path)
    folder = os.path.dirname(page_path)
    for ref in page.srcs + page.hrefs:
        assert os.path.isfile(os.path.join(folder, unquote(ref))), f"{ref} on {page_path} does not exist"
    return page


# ---------------------------------------------------------------- util.util

def test_cityscapes_palette_is_official():
    cmap = util.labelcolormap(35)
    assert cmap.shape == (35, 3) and cmap.dtype == np.uint8
    official = {0: (0, 0, 0), 5: (111, 74, 0), 7: (128, 64, 128), 8: (244, 35, 232), 11: (70, 70, 70),
                21: (107, 142, 35), 23: (70, 130, 180), 24: (220, 20, 60), 26: (0, 0, 142), 33: (119, 11, 32),
                34: (0, 0, 142)}
    for label_id, color in official.items():
        assert tuple(cmap[label_id]) == color, label_id


def test_bit_palette_values_and_fixed():
    cmap = util.labelcolormap(256)
    expected = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128),
                8: (64, 0, 0), 15: (192, 128, 128), 255: (224, 224, 192)}
    for i, color in expected.items():
        assert tuple(cmap[i]) == color, i
    assert np.array_equal(util.labelcolormap(37), cmap[:37])        # colours do not depend on n
    assert np.array_equal(util.labelcolormap(37), util.labelcolormap(37))
    assert len({tuple(c) for c in cmap}) == 256                     # every index distinct


def test_tensor2label_ids_and_one_hot_agree():
    ids = torch.tensor([[[0, 7], [26, 1]]])                          # (1, H, W)
    cmap = util.labelcolormap(35)
    expected = cmap[ids[0].numpy()]
    assert np.array_equal(util.tensor2label(ids, 35), expected)
    batch = torch.stack([ids, torch.zeros_like(ids)])                # (B, 1, H, W): first sample shown
    assert np.array_equal(util.tensor2label(batch, 35), expected)
    one_hot = F.one_hot(ids[0], 35).permute(2, 0, 1).float()         # (C, H, W)
    assert np.array_equal(util.tensor2label(one_hot, 35), expected)
    assert np.array_equal(util.tensor2label(one_hot[None], 35), expected)
    assert np.array_equal(util.tensor2label(ids.float(), 35), expected)   # SPADE's float label maps
    out = util.tensor2label(ids, 35)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)


def test_tensor2label_out_of_range_is_black():
    out = util.tensor2label(torch.tensor([[[255, 3]]]), 5)
    assert tuple(out[0, 0]) == (0, 0, 0) and tuple(out[0, 1]) == (128, 128, 0)


def test_tensor2im_maps_range_and_channels():
    t = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 4).expand(3, 1, 4).clone()   # (3, 1, 4)
    t[1] = -1                                                                        # green off
    out = util.tensor2im(t)
    assert out.dtype == np.uint8 and out.shape == (1, 4, 3)
    assert out[0, :, 0].tolist() == [0, 128, 255, 255]          # [-1, 1] -> [0, 255], clamped beyond
    assert out[0, :, 1].tolist() == [0, 0, 0, 0]
    assert np.array_equal(util.tensor2im(t[None].repeat(2, 1, 1, 1)), out)   # a batch shows its first


def test_tile_grid_holds_at_most_eight():
    batch = torch.rand(10, 3, H, W) * 2 - 1
    assert util.tensor2im(batch, tile=True).shape == (2 * H, 4 * W, 3)
    assert util.tensor2im(batch[:3], tile=True).shape == (H, 3 * W, 3)
    labels = torch.randint(0, 5, (10, 1, H, W))
    grid = util.tensor2label(labels, 7, tile=True)
    assert grid.shape == (2 * H, 4 * W, 3)
    assert np.array_equal(grid[H:, W:2 * W], util.tensor2label(labels[5], 7))   # sample 5: row 1, column 1


def test_save_image_is_atomic(tmp_path):
    picture = np.random.randint(0, 256, (H, W, 3), dtype=np.uint8)
    path = tmp_path / "new" / "folder" / "x.png"
    util.save_image(picture, str(path))
    assert np.array_equal(np.array(Image.open(path)), picture)
    assert os.listdir(path.parent) == ["x.png"]                      # no temp file left behind
    with pytest.raises(Exception):
        util.save_image(np.zeros((2, 2, 7), dtype=np.uint8), str(path.parent / "bad.png"))
    assert os.listdir(path.parent) == ["x.png"]                      # a failed write leaves nothing


def test_mkdirs_accepts_one_or_many(tmp_path):
    util.mkdirs(str(tmp_path / "a"))
    util.mkdirs([str(tmp_path / "b" / "c"), str(tmp_path / "a")])
    assert (tmp_path / "a").is_dir() and (tmp_path / "b" / "c").is_dir()


# ---------------------------------------------------------------- util.html

def test_html_captions_are_plain_text(tmp_path):
    page = HTML(str(tmp_path / "web"), "My Title", refresh=3)
    page.add_header("step 1")
    page.add_images(["a.png", "b.png"], ["input_label", b"synthesized_image"], ["a.png", "b.png"], width=50)
    path = page.save()
    text = open(path, encoding="utf-8").read()
    parsed = PageParser(path)
    assert parsed.captions[-2:] == ["input_label", "synthesized_image"]
    assert "b'" not in text
    assert parsed.title == ["My Title"] and parsed.h1 == ["My Title"] and parsed.h3 == ["step 1"]
    assert parsed.refresh == "3"
    assert parsed.srcs == ["images/a.png", "images/b.png"] and parsed.hrefs == ["images/a.png", "images/b.png"]
    assert 'style="width:50px"' in text
    assert sorted(os.listdir(tmp_path / "web")) == ["images", "index.html"]   # saved atomically, no temp


# ---------------------------------------------------------------- training side

def test_loss_log_header_and_spade_line_format(tmp_path, capsys):
    opt = make_opt(tmp_path)
    visualizer = Visualizer(opt)
    errors = OrderedDict(GAN=1.23456, GAN_Feat=torch.tensor([0.5, 0.7]), D_Fake=0.25)
    visualizer.print_current_errors(3, 40, errors, 0.0123, progress="| 12.5 img/s | ETA 0:03:12")
    line = "(epoch: 3, iters: 40, time: 0.012) GAN: 1.235 GAN_Feat: 0.600 D_Fake: 0.250 "
    assert capsys.readouterr().out == line + "| 12.5 img/s | ETA 0:03:12\n"
    lines = open(os.path.join(opt.checkpoints_dir, "exp", "loss_log.txt")).read().split("\n")
    assert re.fullmatch(r"================ Training Loss \(.+\) ================", lines[0])
    assert lines[1] == line and lines[2:] == [""]


def test_display_file_names_and_first_sample(tmp_path):
    opt = make_opt(tmp_path, batchSize=2)
    Visualizer(opt).display_current_results(make_visuals(batch=2), 1, 40)
    images = os.path.join(opt.checkpoints_dir, "exp", "web", "images")
    assert sorted(os.listdir(images)) == ["epoch001_iter0000040_input_label.png",
                                          "epoch001_iter0000040_real_image.png",
                                          "epoch001_iter0000040_synthesized_image.png"]
    for name in os.listdir(images):
        assert Image.open(os.path.join(images, name)).size == (W, H)


def test_display_tiles_batches_over_eight(tmp_path):
    opt = make_opt(tmp_path, batchSize=10)
    Visualizer(opt).display_current_results(make_visuals(batch=10), 1, 40)
    path = os.path.join(opt.checkpoints_dir, "exp", "web", "images", "epoch001_iter0000040_synthesized_image.png")
    assert Image.open(path).size == (4 * W, 2 * H)


def train_a_little(visualizer, epoch, steps):
    for step in steps:
        errors = {"GAN": 1.0 / step, "D_real": 0.5, "D_Fake": float(step % 3)}
        visualizer.print_current_errors(epoch, step, errors, 0.01)
        visualizer.plot_current_errors(errors, step)
        visualizer.display_current_results(make_visuals(), epoch, step)


def test_index_lists_every_step_newest_first_across_restarts(tmp_path):
    opt = make_opt(tmp_path)
    train_a_little(Visualizer(opt), 1, [40, 80])
    resumed = Visualizer(opt)                                       # e.g. --continue_train
    assert len(resumed.loss_history) == 2
    train_a_little(resumed, 2, [120])

    web = os.path.join(opt.checkpoints_dir, "exp", "web")
    page = assert_no_broken_links(os.path.join(web, "index.html"))
    assert page.h3 == ["epoch [2], iter [120]", "epoch [1], iter [80]", "epoch [1], iter [40]"]
    assert page.captions[-3:] == ["input_label", "synthesized_image", "real_image"]
    assert page.srcs[0] == "loss_curves.png"                        # curves linked at the top
    assert page.srcs[1:4] == ["images/epoch002_iter0000120_input_label.png",
                              "images/epoch002_iter0000120_synthesized_image.png",
                              "images/epoch002_iter0000120_real_image.png"]
    assert len(page.srcs) == 1 + 3 * 3
    assert page.refresh is not None and int(page.refresh) > 0
    assert 'style="width:64px"' in open(os.path.join(web, "index.html")).read()
    log = open(os.path.join(opt.checkpoints_dir, "exp", "loss_log.txt")).read()
    assert log.count("================ Training Loss") == 2


def test_loss_curves_png_is_valid(tmp_path):
    opt = make_opt(tmp_path)
    train_a_little(Visualizer(opt), 1, [10, 20, 30])
    path = os.path.join(opt.checkpoints_dir, "exp", "web", "loss_curves.png")
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100
        colors = {c for _, c in im.convert("RGB").getcolors(1 << 20)}
    assert (31, 119, 180) in colors and (255, 127, 14) in colors   # first two loss lines are drawn


def test_no_html_writes_no_page(tmp_path):
    opt = make_opt(tmp_path, no_html=True)
    train_a_little(Visualizer(opt), 1, [10])
    assert not os.path.exists(os.path.join(opt.checkpoints_dir, "exp", "web"))
    assert os.path.exists(os.path.join(opt.checkpoints_dir, "exp", "loss_log.txt"))


def test_tf_log_without_tensorboard_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # makes the import fail
    opt = make_opt(tmp_path, tf_log=True)
    with pytest.raises(SystemExit, match=r"--tf_log.*pip install tensorboard"):
        Visualizer(opt)
    assert not os.path.exists(opt.checkpoints_dir)                  # failed before writing anything


def test_tf_log_writes_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    opt = make_opt(tmp_path, tf_log=True)
    visualizer = Visualizer(opt)
    train_a_little(visualizer, 1, [10])
    visualizer.writer.close()
    logs = os.path.join(opt.checkpoints_dir, "exp", "logs")
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(logs))


# ---------------------------------------------------------------- test side

@pytest.mark.parametrize("real", [True, False])
def test_save_images_results_page(tmp_path, real):
    opt = make_opt(tmp_path, isTrain=False)
    web_dir = tmp_path / "results" / "exp" / "test_latest"
    webpage = HTML(str(web_dir), "Experiment = exp, Phase = test, Epoch = latest")
    visualizer = Visualizer(opt)
    for path in ("/data/val/frankfurt_000001.jpg", "/data/val/munich_2.png"):
        sample = OrderedDict((name, t[0]) for name, t in make_visuals(real=real).items())
        visualizer.save_images(webpage, sample, [path])
    webpage.save()

    names = ["input_label", "synthesized_image"] + (["real_image"] if real else [])
    assert sorted(os.listdir(web_dir / "images")) == sorted(names)
    for name in names:
        assert sorted(os.listdir(web_dir / "images" / name)) == ["frankfurt_000001.png", "munich_2.png"]
    page = assert_no_broken_links(str(web_dir / "index.html"))
    assert page.title == ["Experiment = exp, Phase = test, Epoch = latest"]
    assert page.h3 == ["frankfurt_000001", "munich_2"]
    assert page.captions[-len(names):] == names
    assert page.srcs[:len(names)] == [f"images/{name}/frankfurt_000001.png" for name in names]
    assert page.refresh is None
    assert Image.open(web_dir / "images" / "input_label" / "munich_2.png").size == (W, H)


def test_page_rebuilt_after_an_evaluation_keeps_the_models_order(tmp_path):
    """--eval_freq rebuilds the page when eval_curves.png appears (train.py calls write_index with no
    pictures in hand): each row keeps the order the model names its pictures, also in a resumed run that has
    not displayed anything yet, instead of turning alphabetical (label, real, svg, synthesized)."""
    opt = make_opt(tmp_path)
    visuals = make_visuals()
    visuals["svg_output"] = torch.rand(1, 3, H, W) * 2 - 1          # a generator's extra image, after the real one
    Visualizer(opt).display_current_results(visuals, 1, 10)
    web = os.path.join(opt.checkpoints_dir, "exp", "web")
    expected = ["input_label", "synthesized_image", "real_image", "svg_output"]

    def row_captions():
        return [c for c in PageParser(os.path.join(web, "index.html")).captions if c in expected]

    Image.new("RGB", (4, 4)).save(os.path.join(web, "eval_curves.png"))
    Visualizer(opt).write_index()                                   # resumed, nothing displayed yet
    assert row_captions() == expected
    same_run = Visualizer(opt)
    same_run.display_current_results(visuals, 1, 20)
    same_run.write_index()
    assert row_captions() == expected * 2
    assert "eval_curves.png" in assert_no_broken_links(os.path.join(web, "index.html")).srcs
