"""The painting demo (demo.py, inference/painting.py): colours <-> class ids, the model behind the page, the page
driven through gradio's own client, and the page rendered in headless Chromium (a screenshot is kept in the
test artefacts, $SCGAN_TEST_ARTEFACTS or <repo>/test-artefacts/)."""
import argparse
import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from inference import painting
from tests.limits import HANG_GUARD_S
from util import util
from util.visualizer import Visualizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTEFACTS = os.environ.get("SCGAN_TEST_ARTEFACTS", os.path.join(ROOT, "test-artefacts"))
SYNTHETIC = ["--dataset_mode", "synthetic", "--gpu_ids", "-1"]
TINY = ["--ngf", "8", "--ndf", "8", "--crop_size", "32", "--load_size", "32"]
DEMO_SIZE = ["--crop_size", "64", "--load_size", "64"]        # the README demo's images
NAMES = ["background", "hair", "skin", "nose", "left_eye", "right_eye", "brows", "upper_lip", "lower_lip"]
HAIR, SKIN = 1, 2
NO_GRADIO = "gradio is not installed: pip install -r requirements-demo.txt"


@pytest.fixture(scope="module", autouse=True)
def gradio_files(tmp_path_factory):
    """gradio's copies of the images it serves go to a temporary folder, not /tmp/gradio."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        yield


# ---------------------------------------------------------------------------------------------------------
# colours and class ids

def test_palette_is_the_html_pages_label_colours():
    for label_nc, dontcare in ((9, False), (182, True)):
        opt = argparse.Namespace(isTrain=False, display_winsize=64, label_nc=label_nc)
        k = label_nc + int(dontcare)
        ids = torch.arange(k).view(1, 1, 1, k)
        on_the_page = util.tensor2label(ids, Visualizer(opt).n_label_colors)[0]   # (k, 3)
        assert np.array_equal(painting.class_palette(label_nc, dontcare), on_the_page)
    assert len({tuple(c) for c in painting.class_palette(182, True)}) == 183   # every class has its own colour


@pytest.mark.parametrize("label_nc,dontcare", [(9, False), (182, True)])
def test_colours_round_trip_to_ids(label_nc, dontcare):
    palette = painting.class_palette(label_nc, dontcare)
    ids = np.random.default_rng(0).integers(0, len(palette), (24, 40))
    colours = painting.ids_to_colours(ids, palette)
    assert colours.shape == (24, 40, 3) and colours.dtype == np.uint8
    assert np.array_equal(painting.colours_to_ids(colours, palette), ids)
    noisy = np.clip(colours.astype(int) + np.random.default_rng(1).integers(-4, 5, colours.shape), 0, 255)
    assert np.array_equal(painting.colours_to_ids(noisy.astype(np.uint8), palette), ids)  # compression noise


def test_a_blend_between_two_classes_takes_one_of_them_not_the_colour_it_lands_on():
    palette = painting.class_palette(9)
    half = (palette[HAIR].astype(int) + palette[SKIN]) // 2       # (64, 64, 0)
    plain_nearest = np.linalg.norm(palette.astype(int) - half, axis=1).argmin()
    assert plain_nearest not in (HAIR, SKIN)    # the blend lies nearest a third class (lower_lip)
    strip = np.array([[palette[HAIR]] * 3 + [half] + [palette[SKIN]] * 3], np.uint8)
    ids = painting.colours_to_ids(strip, palette)[0]
    assert list(ids[:3]) == [HAIR] * 3 and list(ids[4:]) == [SKIN] * 3 and ids[3] in (HAIR, SKIN)


def test_an_anti_aliased_stroke_reads_as_its_two_classes():
    """A disc of hair painted with anti-aliasing on skin, on a canvas 4x the model's size: every canvas pixel
    reads as the class covering most of it, and at 64x64 each pixel as the class covering most of it
    (up to near-ties)."""
    palette, size, zoom, sub = painting.class_palette(9), 64, 4, 4
    centre, radius = (30.3, 33.7), 17.2        # in model pixels

    def coverage(n, samples):
        """The share of each of n x n pixels inside the disc, from samples x samples points per pixel."""
        c = (np.arange(n * samples) + 0.5) / (n * samples) * size
        y, x = np.meshgrid(c, c, indexing="ij")
        inside = ((y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius ** 2).astype(float)
        return inside.reshape(n, samples, n, samples).mean(axis=(1, 3))

    cover = coverage(size * zoom, sub)
    canvas = np.round(cover[..., None] * palette[HAIR] + (1 - cover[..., None]) * palette[SKIN]).astype(np.uint8)
    assert ((cover > 0.05) & (cover < 0.95)).sum() > 300     # the test has blends to read
    fine = painting.colours_to_ids(canvas, palette)
    decided = cover != 0.5
    assert np.array_equal(fine[decided], np.where(cover > 0.5, HAIR, SKIN)[decided])

    ids = painting.resize_ids(fine, (size, size))
    area = coverage(size, 4 * sub)
    assert set(np.unique(ids)) == {HAIR, SKIN}
    differ = ids != np.where(area > 0.5, HAIR, SKIN)
    assert (np.abs(area[differ] - 0.5) < 0.1).all()


def test_resize_ids_takes_the_majority_of_each_block():
    fine = np.array([[1, 1, 2, 2],
                     [1, 3, 2, 0],
                     [0, 0, 4, 4],
                     [0, 5, 4, 5]])
    assert painting.resize_ids(fine, (2, 2)).tolist() == [[1, 2], [0, 4]]
    assert painting.resize_ids(fine, (4, 4)) is not None and np.array_equal(painting.resize_ids(fine, (4, 4)), fine)
    assert painting.resize_ids(np.arange(6).reshape(2, 3), (4, 6)).tolist() == [   # other sizes: nearest
        [0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2], [3, 3, 4, 4, 5, 5], [3, 3, 4, 4, 5, 5]]


def test_erased_and_unpainted_pixels_read_as_the_background_class():
    palette = painting.class_palette(9)
    layer = np.zeros((4, 4, 4), np.uint8)
    layer[:2] = (*palette[HAIR], 255)          # painted top half; the bottom was erased (alpha 0)
    background = np.broadcast_to(palette[0], (4, 4, 3))
    stale = np.broadcast_to(palette[SKIN], (4, 4, 3))       # an earlier layout sent as the background
    opaque_stale = np.concatenate([np.where(layer[..., 3:] > 0, layer[..., :3], stale), np.full((4, 4, 1), 255)],
                                  -1).astype(np.uint8)      # the composite the browser sent with it
    for value in ({"background": background, "layers": [layer], "composite": None},     # no composite sent
                  {"background": stale, "layers": [layer], "composite": opaque_stale},  # a stale background
                  {"background": None, "layers": [], "composite": layer},               # an API client's value
                  {"background": layer, "layers": [], "composite": None}):
        rgb = painting.editor_composite(value["background"], value["layers"], value["composite"], palette[0])
        assert painting.colours_to_ids(rgb, palette).tolist() == [[HAIR] * 4] * 2 + [[0] * 4] * 2
    with pytest.raises(ValueError, match="the canvas is empty"):
        painting.editor_composite(None, [], None, palette[0])


def test_read_label_map_takes_ids_and_colour_files(tmp_path):
    palette = painting.class_palette(9)
    ids = np.random.default_rng(0).integers(0, 9, (32, 32))
    Image.fromarray(ids.astype(np.uint8), mode="L").save(tmp_path / "ids.png")
    Image.fromarray(painting.ids_to_colours(ids, palette)).save(tmp_path / "colours.png")
    Image.fromarray(np.stack([ids.astype(np.uint8)] * 3, -1)).save(tmp_path / "grey_ids.png")
    for name in ("ids.png", "colours.png", "grey_ids.png"):
        assert np.array_equal(painting.read_label_map(tmp_path / name, palette, (32, 32)), ids), name
    small = painting.read_label_map(tmp_path / "ids.png", palette, (16, 16))
    assert np.array_equal(small, painting.resize_ids(ids, (16, 16)))

    bad = ids.copy()
    bad[3, 4] = 12
    Image.fromarray(bad.astype(np.uint8), mode="L").save(tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"bad\.png holds the label value 12, out of range for --label_nc 9"):
        painting.read_label_map(tmp_path / "bad.png", palette, (32, 32))

    with_dontcare = painting.class_palette(9, contain_dontcare_label=True)
    dontcare = ids.copy()
    dontcare[0, 0] = 255
    Image.fromarray(dontcare.astype(np.uint8), mode="L").save(tmp_path / "dontcare.png")
    read = painting.read_label_map(tmp_path / "dontcare.png", with_dontcare, (32, 32), contain_dontcare_label=True)
    assert read[0, 0] == 9 and np.array_equal(read.ravel()[1:], ids.ravel()[1:])


def test_heat_maps_show_each_component_with_the_ramp_ends():
    v = torch.zeros(3, 2, 2)
    v[0, 0, 0] = 1.0          # component 0: high at the top-left pixel only
    v[2] = 0.5
    picture = painting.vector_heatmaps(v, (0.0, 1.0), size=(8, 8))
    k = -(-painting.HEATMAP_MIN_SIDE // 8)                 # 8x8 maps enlarged to the minimum side
    side, gap = 8 * k, painting.HEATMAP_GAP
    assert picture.shape == (side, 3 * side + 2 * gap, 3)
    low, high = painting.HEAT_STOPS[0], painting.HEAT_STOPS[-1]
    assert (picture[:side // 2, :side // 2] == high).all() and (picture[side // 2:, :side] == low).all()
    assert (picture[:, side:side + gap] == 255).all()                      # white gaps between the tiles
    assert (picture[:, side + gap:2 * side + gap] == low).all()
    assert (picture[:, -side:] == painting.HEAT_STOPS[2]).all()          # 0.5: the middle stop
    scaled = painting.vector_heatmaps(v * 4 - 1, None, size=(8, 8))      # no range: the maps' min and max
    assert np.array_equal(scaled, picture)


def test_without_readable_data_the_canvas_starts_as_background(parse_options, capsys):
    opt = parse_options("--dataset_mode", "coco", "--dataroot", "/nonexistent/coco", train=False)
    ids, names = painting.initial_layout(opt, (256, 256))
    assert ids.shape == (256, 256) and not ids.any() and names is None
    assert "the coco test data cannot be read (the folder of label maps /nonexistent/coco/val_label does not " \
           "exist" in capsys.readouterr().out
    assert painting.class_names(names, opt.label_nc, opt.contain_dontcare_label)[-2:] == ["class 181", "dontcare"]


def test_class_names_come_from_the_dataset_or_are_numbered():
    assert painting.class_names(NAMES, 9) == NAMES
    assert painting.class_names(None, 3, contain_dontcare_label=True) == ["class 0", "class 1", "class 2",
                                                                            "dontcare"]
    with pytest.raises(ValueError, match="names 9 classes but the model has --label_nc 5"):
        painting.class_names(NAMES, 5)


# ---------------------------------------------------------------------------------------------------------
# models: trained for one iteration (spade, scgan), or saved untrained (the VAE one, the README demo's size)

def demo_options(checkpoints, name, *extra):
    from options.demo_options import DemoOptions
    with contextlib.redirect_stdout(io.StringIO()):
        return DemoOptions().parse(["--name", name, "--checkpoints_dir", str(checkpoints), "--gpu_ids", "-1", *extra])


def save_untrained(checkpoints, name, *argv):
    from checkpointing.storage import save_network
    from models import networks
    from options.train_options import TrainOptions
    with contextlib.redirect_stdout(io.StringIO()):
        torch.manual_seed(0)
        opt = TrainOptions().parse(["--name", name, "--checkpoints_dir", str(checkpoints), *SYNTHETIC, *argv])
        save_network(networks.define_G(opt, torch.device("cpu"), verbose=False), f"{checkpoints}/{name}",
                     "latest", "G")
        if opt.use_vae:
            save_network(networks.define_E(opt, torch.device("cpu")), f"{checkpoints}/{name}", "latest", "E")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    import train
    root = tmp_path_factory.mktemp("demo") / "checkpoints"
    common = ["--checkpoints_dir", str(root), *SYNTHETIC, *TINY, "--batchSize", "2", "--num_synthetic", "2",
              "--niter", "1", "--niter_decay", "0"]   # one iteration
    with contextlib.redirect_stdout(io.StringIO()):
        train.main(["--name", "spade", "--netG", "spade", *common])
        train.main(["--name", "scgan", "--netG", "scgan", "--nrf", "8", "--nff", "8", "--netD", "multiscale", *common])
    save_untrained(root, "vae", "--netG", "spade", "--use_vae", *TINY, "--z_dim", "16")
    save_untrained(root, "noise", "--netG", "spade", "--oasis_noise_nc", "4", *TINY)
    # for the latency at 64x64: a tiny SC-GAN and the README demo's models (synthetic defaults: ngf 16)
    save_untrained(root, "scgan8", "--netG", "scgan", "--ngf", "8", "--nrf", "8", "--nff", "8", *DEMO_SIZE)
    save_untrained(root, "spade16", "--netG", "spade", *DEMO_SIZE)
    save_untrained(root, "scgan16", "--netG", "scgan", *DEMO_SIZE)
    return root


@pytest.fixture(scope="module")
def pages(checkpoints):
    """name -> DemoPage, built once per model."""
    import demo
    built = {}

    def page(name):
        if name not in built:
            with contextlib.redirect_stdout(io.StringIO()):
                built[name] = demo.load_page(demo_options(checkpoints, name))
        return built[name]
    return page


def reference_model(checkpoints, name):
    """The experiment's Pix2PixModel, spectral norms not folded: what the page's folded generator must match."""
    from models import create_model
    with contextlib.redirect_stdout(io.StringIO()):
        return create_model(demo_options(checkpoints, name)).eval()


def first_sample(checkpoints, name):
    import data
    opt = demo_options(checkpoints, name)
    return data.DATASETS.get("synthetic")(opt)[0]


@pytest.mark.parametrize("name", ["spade", "scgan"])
def test_synthesizer_gives_the_models_inference(checkpoints, pages, name):
    page = pages(name)
    sample = first_sample(checkpoints, name)
    ids = sample["label"][0].numpy()
    assert page.names == NAMES and np.array_equal(page.initial_ids, ids)   # the page starts from sample 0
    synthesis = page.synth.run(ids)
    model = reference_model(checkpoints, name)
    expected = model({"label": sample["label"][None], "instance": 0}, mode="inference")
    assert np.array_equal(synthesis.image, util.tensor2im(expected))
    if name == "scgan":
        layout = page.synth.layout(ids)
        v_conv, v_norm, svg_image = model.netG.semantic_vectors(layout)
        assert np.array_equal(synthesis.extra_images["svg_image"], util.tensor2im(svg_image))
        assert [v.shape for v in synthesis.vectors["semantic_vectors"]] == [(3, s, s) for s in (1, 2, 4, 8, 16, 32)]
        for mine, theirs in zip(synthesis.vectors["semantic_vectors_norm"], v_norm):
            assert torch.equal(mine, theirs[0])
        picture = page.synth.vector_picture(synthesis, "semantic_vectors", 2)   # V_2: 2x2, softmax in [0, 1]
        assert np.array_equal(picture, painting.vector_heatmaps(v_conv[1][0], (0.0, 1.0), (32, 32)))
    else:
        assert synthesis.extra_images == {} and synthesis.vectors == {}
    with pytest.raises(ValueError, match="a layout of 16x16, but the model was built for 32x32"):
        page.synth.run(ids[:16, :16])


@pytest.mark.parametrize("name", ["vae", "noise"])
def test_a_style_seed_fixes_the_code_and_the_noise(checkpoints, pages, name):
    synth = pages(name).synth
    ids = pages(name).initial_ids
    assert synth.uses_style and not pages("spade").synth.uses_style
    image = synth.run(ids, 3).image
    torch.manual_seed(123)
    assert np.array_equal(synth.run(ids, 3).image, image)          # whatever the global random state
    assert not np.array_equal(synth.run(ids, 4).image, image)
    if name == "vae":
        z = synth.draw_style(3)
        assert z.shape == (1, 16) and torch.equal(z, synth.draw_style(3))
        model = reference_model(checkpoints, name)
        assert np.array_equal(image, util.tensor2im(model.generate_with_code(synth.layout(ids), z)))
    else:
        assert synth.draw_style(3) is None     # OASIS's noise is drawn by the generator, from the seed


def test_the_page_runs_the_generator_in_the_asked_precision(checkpoints):
    import demo
    from inference import Synthesizer
    with contextlib.redirect_stdout(io.StringIO()):
        page = demo.load_page(demo_options(checkpoints, "scgan", "--precision", "bf16"))
    assert next(page.synth.synthesizer.netG.parameters()).dtype == torch.bfloat16
    ids = page.initial_ids
    bf16 = Synthesizer.from_experiment(str(checkpoints / "scgan"), precision="bf16")
    assert np.array_equal(page.synth.run(ids).image, bf16(ids))
    with pytest.raises(SystemExit, match="--precision fp16 runs on CUDA only"):
        demo_options(checkpoints, "scgan", "--precision", "fp16")


def test_the_demo_says_once_what_bf16_costs_on_this_cpu(checkpoints, monkeypatch, capsys):
    pytest.importorskip("gradio", reason=NO_GRADIO)
    import demo
    from inference.synthesizer import SlowPrecisionWarning
    from tests.test_inference import AVX2_COST, AVX2_CPU, pretend_cpu
    pretend_cpu(monkeypatch, AVX2_CPU)
    served = []
    monkeypatch.setattr(demo, "launch", lambda app, host, port: served.append((host, port)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        demo.main(["--name", "scgan", "--checkpoints_dir", str(checkpoints), "--gpu_ids", "-1", "--precision", "bf16"])
    line = f"--precision bf16: {AVX2_COST}; --precision fp32 is faster here (docs/inference.md)"
    assert capsys.readouterr().out.count(f"\n{line}\n") == 1 and served == [("127.0.0.1", 7860)]
    # said once, as a line, not again as a Python warning (gradio's own event-loop warnings aside)
    assert [str(w.message) for w in caught if issubclass(w.category, SlowPrecisionWarning)] == []


def test_a_model_without_label_maps_is_refused():
    opt = argparse.Namespace(label_nc=0, model="unpaired", name="horses")
    with pytest.raises(ValueError, match=r"demo.py paints label maps, and --model unpaired of 'horses' reads none"):
        painting.check_paintable(opt)


# ---------------------------------------------------------------------------------------------------------
# the page through gradio's client

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture
def loopback_only(monkeypatch):
    """Records every socket connection to an address that is not this machine (the page must work offline);
    the test asserts the list is empty (connections from threads that swallow errors are recorded too)."""
    outside = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            outside.append(address)
            raise OSError(f"test: no connections outside this machine ({address})")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return outside


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(page):
    """Launch the page in this process on a free local port -> its URL."""
    import demo
    app = page.build()
    port = free_port()
    demo.launch(app, "127.0.0.1", port, block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def client_for(url, tmp_path):
    from gradio_client import Client
    return Client(url, verbose=False, download_files=str(tmp_path))


def painted_layout(page, ids, path):
    """The editor's value for a layout painted in palette colours at the model's size."""
    from gradio_client import handle_file
    Image.fromarray(painting.ids_to_colours(ids, page.palette)).save(path)
    return {"background": None, "layers": [], "composite": handle_file(str(path))}


def read_png(path):
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("name", ["spade", "scgan"])
def test_client_paints_a_layout_and_gets_the_models_images(pages, name, tmp_path, loopback_only):
    pytest.importorskip("gradio", reason=NO_GRADIO)
    page = pages(name)
    ids = page.initial_ids.copy()
    ids[10:20, 5:15] = HAIR
    with served(page) as url:
        client = client_for(url, tmp_path)
        stream, scale = ("SCC (V)", 2) if name == "scgan" else (None, None)
        out = client.predict(painted_layout(page, ids, tmp_path / "painted.png"), stream, scale, api_name="/paint")
    direct = page.synth.run(ids)
    assert read_png(out[0]).shape == (32, 32, 3)
    assert np.array_equal(read_png(out[0]), direct.image)
    if name == "scgan":
        assert np.array_equal(read_png(out[1]), direct.extra_images["svg_image"])
        assert np.array_equal(read_png(out[2]), page.synth.vector_picture(direct, "semantic_vectors", 2))
    else:
        assert len(out) == 2 and out[1] is None      # no semantic vectors to show
    assert loopback_only == []


def test_client_uploads_a_label_map_onto_the_canvas(pages, tmp_path, loopback_only):
    pytest.importorskip("gradio", reason=NO_GRADIO)
    from gradio_client import handle_file
    page = pages("spade")
    ids = np.random.default_rng(0).integers(0, 9, (32, 32))
    Image.fromarray(ids.astype(np.uint8), mode="L").save(tmp_path / "upload.png")
    with served(page) as url:
        value = client_for(url, tmp_path).predict(handle_file(str(tmp_path / "upload.png")), api_name="/upload")
    layer = read_png(value["layers"][0])
    assert page.zoom == 8 and layer.shape == (256, 256, 3)      # the canvas shows the model's size enlarged
    assert np.array_equal(painting.resize_ids(painting.colours_to_ids(layer, page.palette), (32, 32)), ids)
    assert (read_png(value["background"]) == page.palette[0]).all()    # what the eraser uncovers
    assert loopback_only == []


def test_client_new_style_draws_another_code(pages, tmp_path):
    pytest.importorskip("gradio", reason=NO_GRADIO)
    page = pages("vae")
    with served(page) as url:
        client = client_for(url, tmp_path)
        layout = painted_layout(page, page.initial_ids, tmp_path / "layout.png")
        first = read_png(client.predict(layout, None, None, api_name="/paint")[0])
        styled = read_png(client.predict(layout, None, None, api_name="/new_style")[0])
        again = read_png(client.predict(layout, None, None, api_name="/paint")[0])   # keeps the new style
    synth = page.synth
    assert np.array_equal(first, synth.run(page.initial_ids, 0).image)
    assert np.array_equal(styled, synth.run(page.initial_ids, 1).image)
    assert np.array_equal(again, styled) and not np.array_equal(first, styled)


@pytest.mark.parametrize("name", ["scgan8", "spade16", "scgan16"])
def test_latency_of_one_label_change(pages, name, tmp_path, capsys):
    """Prints the time of one label change through the client (not asserted: the machine is shared)."""
    pytest.importorskip("gradio", reason=NO_GRADIO)
    page = pages(name)
    ids = page.initial_ids.copy()
    with served(page) as url:
        client = client_for(url, tmp_path)
        vectors = ("SCC (V)", 6) if page.synth.opt.netG == "scgan" else (None, None)
        client.predict(painted_layout(page, ids, tmp_path / "a.png"), *vectors, api_name="/paint")  # warm up
        times = []
        for k in range(3):
            ids[10 + 5 * k:20 + 5 * k, 20:44] = SKIN + k
            layout = painted_layout(page, ids, tmp_path / f"b{k}.png")
            start = time.perf_counter()
            out = client.predict(layout, *vectors, api_name="/paint")
            times.append(time.perf_counter() - start)
    assert read_png(out[0]).shape == (64, 64, 3)
    with capsys.disabled():
        opt = page.synth.opt
        print(f"\n[demo latency] {name} (netG {opt.netG}, ngf {opt.ngf}, 64x64, CPU): one label change "
              f"{1000 * min(times):.0f} ms (best of 3; {', '.join(f'{1000 * t:.0f}' for t in times)} ms; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


# ---------------------------------------------------------------------------------------------------------
# the page in a real browser

def test_page_renders_in_chromium_and_strokes_erasing_and_uploads_reach_the_model(pages, tmp_path, monkeypatch):
    pytest.importorskip("gradio", reason=NO_GRADIO)
    from tests.browser import CHROMIUM_FLAGS, LOAD_TIMEOUT_S, _browser_or_skip
    webdriver, chromium, chromedriver = _browser_or_skip()
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = pages("scgan")
    painted = []   # the class ids of every layout the page sends
    initial_skin = (page.initial_ids == SKIN).sum()
    ids_from_editor = page.ids_from_editor

    def recording(value):
        painted.append(ids_from_editor(value))
        return painted[-1]
    monkeypatch.setattr(page, "ids_from_editor", recording)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + ("--window-size=1400,900", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    with served(page) as url:
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        try:
            wait = WebDriverWait(driver, HANG_GUARD_S)   # returns as soon as the page shows what it waits for
            driver.get(url)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#synthesized-image img"))  # the first result
            os.makedirs(ARTEFACTS, exist_ok=True)
            shot = os.path.join(ARTEFACTS, "demo_page.png")
            driver.save_screenshot(shot)
            legend = driver.find_element(By.ID, "palette").text
            picker = driver.find_element(By.ID, "class-picker").text

            # pick "skin", take the brush and paint one stroke across the canvas
            next(label for label in driver.find_elements(By.CSS_SELECTOR, "#class-picker label")
                 if label.text.strip() == "skin").click()
            wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#canvas button[aria-label='Brush']").is_enabled())
            driver.find_element(By.CSS_SELECTOR, "#canvas button[aria-label='Brush']").click()
            canvas = driver.find_element(By.CSS_SELECTOR, "#canvas canvas")

            def until_it_arrives(stroke, arrived, tries=3):
                """Draw `stroke` until a layout that `arrived` accepts reaches the model: on a loaded machine the
                editor can drop a stroke begun while it is still sending the previous layout. A stroke that has not
                arrived after LOAD_TIMEOUT_S is drawn again; the last one is waited for as long as it takes."""
                for attempt in range(tries):
                    stroke()
                    try:
                        return WebDriverWait(driver, LOAD_TIMEOUT_S if attempt < tries - 1 else HANG_GUARD_S).until(
                            lambda d: any(arrived(ids) for ids in painted))
                    except TimeoutException:
                        if attempt == tries - 1:
                            raise

            until_it_arrives(lambda: ActionChains(driver).move_to_element_with_offset(canvas, -100, -120)
                             .click_and_hold().move_by_offset(60, 0).move_by_offset(60, 0).move_by_offset(60, 0)
                             .release().perform(),
                             lambda ids: (ids == SKIN).sum() > initial_skin)
            stroked = next(ids for ids in painted if (ids == SKIN).sum() > initial_skin)
            driver.save_screenshot(os.path.join(ARTEFACTS, "demo_page_after_a_stroke.png"))

            # erase across the face: the erased pixels read as the background class
            driver.find_element(By.CSS_SELECTOR, "#canvas button[aria-label='Erase']").click()
            def erased_somewhere(ids):   # painting never makes background: only the eraser does
                return ((ids == 0) & (page.initial_ids != 0)).any()
            until_it_arrives(lambda: ActionChains(driver).move_to_element_with_offset(canvas, -80, 0)
                             .click_and_hold().move_by_offset(80, 0).move_by_offset(80, 0).release().perform(),
                             erased_somewhere)
            erased = next(ids for ids in painted if erased_somewhere(ids))

            # upload an ids PNG: it replaces the canvas and reaches the model as those ids
            uploaded = np.random.default_rng(0).integers(0, len(NAMES), page.synth.size)
            Image.fromarray(uploaded.astype(np.uint8), mode="L").save(tmp_path / "upload.png")
            upload = driver.find_element(By.CSS_SELECTOR, "#label-upload input[type=file]")
            upload.send_keys(str(tmp_path / "upload.png"))
            wait.until(lambda d: any(np.array_equal(ids, uploaded) for ids in painted))
        finally:
            driver.quit()
    assert os.path.getsize(shot) > 10_000 and Image.open(shot).size[0] >= 1000
    for k, name in enumerate(NAMES):
        assert f"{k}: {name}" in legend and name in picker
    # the stroke arrived as skin ids and the eraser as background, and nothing else changed
    assert set(np.unique(stroked[stroked != page.initial_ids])) == {SKIN}
    assert set(np.unique(erased[erased != page.initial_ids])) <= {0, SKIN}


def test_demo_command_serves_the_page_on_the_given_port(checkpoints, tmp_path):
    """python demo.py --name NAME --port P: the options are read, the page is served there (one line says where
    and who can open it, and nothing warns) and it paints; a second demo on that port stops with one line."""
    pytest.importorskip("gradio", reason=NO_GRADIO)
    port = free_port()
    command = [sys.executable, "demo.py", "--name", "spade", "--checkpoints_dir", str(checkpoints), "--gpu_ids",
               "-1", "--port", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        printed = []
        for line in proc.stdout:       # ends when the process does, so a failed start cannot hang the test
            printed.append(line)
            if "Running on local URL" in line:
                break
        url = f"http://127.0.0.1:{port}"
        assert any(url in line for line in printed), "".join(printed[-20:])
        page = DemoLayout(checkpoints, "spade")
        out = client_for(url + "/", tmp_path).predict(painted_layout(page, page.ids, tmp_path / "p.png"), None,
                                                     None, api_name="/paint")
        assert read_png(out[0]).shape == (32, 32, 3)
        second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)   # the port is taken
        assert second.returncode == 1
        assert second.stderr.strip().splitlines()[-1] == (f"error: cannot serve the page on 127.0.0.1:{port} (Cannot "
                                                          f"find empty port in range: {port}-{port}): choose another "
                                                          f"--port")
        proc.terminate()
        proc.wait(timeout=HANG_GUARD_S)
        said = "".join(printed + proc.stdout.readlines())   # all the demo printed, stderr included
        # what the demo offers instead of gradio's advice to make a public link, and no warning on the way
        assert f"* Running on local URL:  {url} (only this machine can open it; --host 0.0.0.0 serves it to your " \
               f"network; no public link is made)\n" in said
        assert "share=True" not in said and not re.search(r"\bwarn(ing)?\b", said, re.I), said
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=HANG_GUARD_S)
        except subprocess.TimeoutExpired:   # a server that ignores SIGTERM must not outlive the test
            proc.kill()
            proc.wait()
        proc.stdout.close()


class DemoLayout:
    """The palette and a layout of an experiment, without building a page (for painted_layout)."""

    def __init__(self, checkpoints, name):
        opt = demo_options(checkpoints, name)
        self.palette = painting.class_palette(opt.label_nc, opt.contain_dontcare_label)
        self.ids = first_sample(checkpoints, name)["label"][0].numpy()


# ---------------------------------------------------------------------------------------------------------
# gradio stays optional

def test_without_gradio_the_demo_says_what_to_install():
    code = "import sys; sys.modules['gradio'] = None; import demo; demo.main(['--name', 'x'])"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == "demo.py needs gradio: pip install -r requirements-demo.txt"


def test_nothing_but_the_demo_imports_gradio():
    allowed = {"demo.py", os.path.join("tests", "test_demo.py")}
    importing = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("checkpoints", "results", "datasets")]
        for file in files:
            path = os.path.relpath(os.path.join(folder, file), ROOT)
            if file.endswith(".py") and path not in allowed:
                with open(os.path.join(folder, file), encoding="utf-8") as f:
                    if re.search(r"^\s*(import|from)\s+gradio", f.read(), re.MULTILINE):
                        importing.append(path)
    assert importing == []
