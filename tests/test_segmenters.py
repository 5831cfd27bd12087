"""Tests of evaluation/segmenters/: the papers' segmenters have the released files' layouts (tests/data/segmenters/
*_state_dict.json, listed from the released code, see each file's header), load such files strictly, preprocess
and map labels as their code does, and `python -m tools.check_segmenter` says whether a file loads.

Forwards run at tiny sizes; no weights are downloaded (random weights in the released layout stand in)."""
import json
import math
import os
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from evaluation.segmenters import (SEGMENTERS, SegmenterWeightsError, build_segmenter, deeplabv2, drn, face_parsing,
                                   upernet)
from tests.limits import HANG_GUARD_S
from tools.check_segmenter import main as check_main
from util.registry import RegistryError

DATA = os.path.join(os.path.dirname(__file__), "data", "segmenters")
# dataset -> the released files' layouts, in the order the files are given
LAYOUTS = {"coco": ["deeplabv2"], "ade20k": ["upernet_encoder", "upernet_decoder"], "cityscapes": ["drn"],
           "celebamaskhq": ["face_parsing"]}
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def released_layout(name):
    """[(key, shape)] of a released file, as listed in tests/data/segmenters/NAME_state_dict.json."""
    with open(os.path.join(DATA, f"{name}_state_dict.json"), encoding="utf-8") as f:
        return [(key, tuple(shape)) for key, shape in json.load(f)["keys"]]


def random_state(name, seed=0):
    """Random tensors in a released file's layout (made from the JSON list, not from our modules)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in released_layout(name):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.01
    return state


def save_released(tmp_path, dataset, seed=0):
    """Write random weights in the released layout(s) of `dataset`; -> ([paths], [states])."""
    paths, states = [], []
    for name in LAYOUTS[dataset]:
        state = random_state(name, seed)
        path = tmp_path / f"{name}.pth"
        torch.save(state, path)
        paths.append(str(path))
        states.append(state)
    return paths, states


def write_released_files(folder, dataset, seed=0):
    """Random weights in the released layout(s) of `dataset`'s segmenter, under the released file names (those
    evaluate.py's --protocol paper names); -> [paths]."""
    from evaluation.protocols import paper_segmenter
    paths = []
    for layout, name in zip(LAYOUTS[dataset], paper_segmenter(dataset).files):
        paths.append(str(folder / name))
        torch.save(random_state(layout, seed), paths[-1])
    return paths


# ---------------------------------------------------------------------------------------------------------
# registry and layouts

def test_registry_holds_one_segmenter_per_paper_dataset_and_refuses_others():
    assert SEGMENTERS.names() == ["ade20k", "celebamaskhq", "cityscapes", "coco"]
    with pytest.raises(RegistryError, match="ade20k, celebamaskhq, cityscapes, coco"):
        build_segmenter("synthetic")


@pytest.mark.parametrize("dataset", sorted(LAYOUTS))
def test_parameter_names_and_shapes_are_the_released_layout(dataset):
    model = build_segmenter(dataset)
    modules = model.released_modules()
    assert len(modules) == len(LAYOUTS[dataset])
    for module, name in zip(modules, LAYOUTS[dataset]):
        ours = [(key, tuple(value.shape)) for key, value in module.state_dict().items()]
        assert ours == released_layout(name)
    # the wrapper adds nothing to the files' layout (dataset_ids is not persistent)
    assert len(model.state_dict()) == sum(len(released_layout(name)) for name in LAYOUTS[dataset])


@pytest.mark.parametrize("dataset", sorted(LAYOUTS))
def test_random_weights_in_the_released_layout_load_strictly(dataset, tmp_path):
    paths, states = save_released(tmp_path, dataset, seed=3)
    model = build_segmenter(dataset, paths)
    assert not model.training
    for module, state in zip(model.released_modules(), states):
        loaded = module.state_dict()
        assert loaded.keys() == state.keys()
        for key, value in state.items():
            assert torch.equal(loaded[key], value), key


def test_a_file_of_another_layout_is_refused_with_its_first_wrong_key(tmp_path):
    state = random_state("face_parsing")
    missing = dict(state)
    del missing["final.bias"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(SegmenterWeightsError, match="missing final.bias"):
        build_segmenter("celebamaskhq", [str(tmp_path / "missing.pth")])

    renamed = {("net." + k if k.startswith("final") else k): v for k, v in state.items()}
    torch.save(renamed, tmp_path / "renamed.pth")
    with pytest.raises(SegmenterWeightsError, match="final.weight"):
        build_segmenter("celebamaskhq", [str(tmp_path / "renamed.pth")])

    misshapen = dict(state, **{"final.weight": torch.zeros(18, 16, 1, 1)})
    torch.save(misshapen, tmp_path / "misshapen.pth")
    with pytest.raises(SegmenterWeightsError, match=r"final.weight has shape \(18, 16, 1, 1\)"):
        build_segmenter("celebamaskhq", [str(tmp_path / "misshapen.pth")])

    with pytest.raises(SegmenterWeightsError, match="no such file"):
        build_segmenter("celebamaskhq", [str(tmp_path / "absent.pth")])
    torch.save({"state_dict": state}, tmp_path / "nested.pth")
    with pytest.raises(SegmenterWeightsError, match="not a state dict"):
        build_segmenter("celebamaskhq", [str(tmp_path / "nested.pth")])


def test_ade20k_takes_the_encoder_and_the_decoder_file(tmp_path):
    encoder = tmp_path / "encoder_epoch_50.pth"
    torch.save(random_state("upernet_encoder"), encoder)
    with pytest.raises(SegmenterWeightsError, match="takes 2 weights file"):
        build_segmenter("ade20k", [str(encoder)])
    # the encoder file where the decoder belongs names the decoder's first key
    with pytest.raises(SegmenterWeightsError, match="missing ppm_conv.0.0.weight"):
        build_segmenter("ade20k", [str(encoder), str(encoder)])


def test_data_parallel_prefix_and_old_files_without_step_counters_load(tmp_path):
    state = random_state("face_parsing", seed=5)
    wrapped = {"module." + k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(wrapped, tmp_path / "wrapped.pth")
    model = build_segmenter("celebamaskhq", [str(tmp_path / "wrapped.pth")])
    assert torch.equal(model.net.final.weight, state["final.weight"])
    assert int(model.net.conv1.conv1[1].num_batches_tracked) == 0


# CSAIL's synchronized batch norm (mit_semseg/lib/nn/modules/batchnorm.py) registers these three buffers, and its
# train.py saves the whole state dict: the released UPerNet files carry them for every batch norm
SYNC_BN_BUFFERS = ("_tmp_running_mean", "_tmp_running_var", "_running_iter")


def csail_state(module, seed):
    """`module`'s state dict in CSAIL's layout: after each batch norm's own entries, its three sync-BN buffers
    (random values: evaluation must never read them)."""
    g = torch.Generator().manual_seed(seed)
    batch_norms = {name: m for name, m in module.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    state = {}
    for key, value in module.state_dict().items():
        state[key] = value.clone()
        prefix, last = key.rsplit(".", 1)
        if prefix in batch_norms and last == "num_batches_tracked":
            channels = batch_norms[prefix].num_features
            state[f"{prefix}._tmp_running_mean"] = torch.randn(channels, generator=g)
            state[f"{prefix}._tmp_running_var"] = torch.rand(channels, generator=g) + 0.5
            state[f"{prefix}._running_iter"] = torch.full((1,), 37.0)
    return state


def save_legacy(state, path):
    """torch.save as CSAIL's scripts ran it (PyTorch 0.4 / 1.0: the pre-zipfile format)."""
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return str(path)


@pytest.fixture(scope="module")
def csail_upernet(tmp_path_factory):
    """A random-weights ADE20K segmenter (batch-norm statistics randomized too) and its encoder and decoder files
    as CSAIL's train.py saves them: -> (model, [encoder file, decoder file], [encoder state, decoder state])."""
    torch.manual_seed(11)
    model = build_segmenter("ade20k", short_sides=(32,))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    folder = tmp_path_factory.mktemp("csail")
    states = [csail_state(model.encoder, 1), csail_state(model.decoder, 2)]
    files = [save_legacy(state, folder / name) for state, name in zip(states, (upernet.ENCODER_FILE,
                                                                               upernet.DECODER_FILE))]
    return model, files, states


def test_ade20k_files_as_csail_saved_them_load_and_give_identical_logits(csail_upernet, capsys):
    model, files, states = csail_upernet
    # 106 batch norms in the encoder, 12 in the decoder: the 354 keys a strict load used to refuse
    assert [sum(k.endswith(SYNC_BN_BUFFERS) for k in s) for s in states] == [318, 36]
    loaded = build_segmenter("ade20k", files, short_sides=(32,))
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 1 and re.search(r"ignored 354 buffers of CSAIL's synchronized batch norm "
                                         r"\(_tmp_running_mean, _tmp_running_var, _running_iter\): 318 in "
                                         r".*encoder_epoch_50.pth, 36 in .*decoder_epoch_50.pth", lines[0]), lines
    images = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x = upernet.preprocess(images, (32, 64))
    with torch.no_grad():
        assert torch.equal(loaded.decoder(loaded.encoder(x)), model.decoder(model.encoder(x)))
    assert torch.equal(loaded(images), model(images))


def test_check_command_loads_csail_files_and_says_what_it_ignored(csail_upernet, capsys):
    _, files, _ = csail_upernet
    assert check_main(["--dataset", "ade20k", "--weights", *files]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ignored 354 buffers of CSAIL's synchronized batch norm") and len(out) == 3
    assert out[2] == f"loaded {files[0]} and {files[1]} strictly into the ade20k segmenter"


def test_ade20k_refuses_any_other_extra_key_in_csail_files(csail_upernet, tmp_path):
    _, files, states = csail_upernet
    for extra in ("conv_last.0.0._tmp_running_mean",   # a sync-BN name on a convolution, not a batch norm
                  "conv_last.0.1._tmp_running_std",     # another name on a batch norm
                  "head.weight"):
        bad = save_legacy(dict(states[1], **{extra: torch.zeros(512)}), tmp_path / "decoder.pth")
        with pytest.raises(SegmenterWeightsError, match=rf"not the layout of .*\(unexpected {re.escape(extra)} and 0 "
                                                        rf"more\)"):
            build_segmenter("ade20k", [files[0], bad])
    # a sync-BN buffer of the wrong size is not one of CSAIL's
    bad = save_legacy(dict(states[1], **{"conv_last.0.1._tmp_running_var": torch.ones(7)}), tmp_path / "decoder.pth")
    with pytest.raises(SegmenterWeightsError, match=r"conv_last.0.1._tmp_running_var has shape \(7,\)"):
        build_segmenter("ade20k", [files[0], bad])


def test_only_the_ade20k_segmenter_takes_csail_sync_bn_buffers(tmp_path):
    model = build_segmenter("celebamaskhq")
    path = save_legacy(csail_state(model.net, 0), tmp_path / "model.pth")
    with pytest.raises(SegmenterWeightsError, match=r"unexpected conv1.conv1.1._tmp_running_mean"):
        build_segmenter("celebamaskhq", [path])


def test_a_pickle_that_is_not_plain_weights_is_refused_in_one_line_and_not_unpickled(tmp_path, capsys):
    from argparse import Namespace
    path = tmp_path / "model.pth"
    torch.save({"state_dict": random_state("face_parsing"), "args": Namespace(lr=0.1)}, path)
    with pytest.raises(SegmenterWeightsError) as e:
        build_segmenter("celebamaskhq", [str(path)])
    message = str(e.value)
    assert message.startswith(f"{path}: not a plain weights file (it pickles argparse.Namespace)")
    assert "does not unpickle" in message and "\n" not in message and "weights_only" not in message, message
    assert check_main(["--dataset", "celebamaskhq", "--weights", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a plain weights file" in err and "weights_only" not in err


# ---------------------------------------------------------------------------------------------------------
# preprocessing on known images

def known_image():
    """(1, 3, 1, 2): pixel 0 has R -1, G 0, B 1; pixel 1 is mid-grey (0, 0, 0)."""
    return torch.tensor([[[[-1.0, 0.0]], [[0.0, 0.0]], [[1.0, 0.0]]]])


def test_cocostuff_preprocessing_is_bgr_0_255_minus_the_caffe_mean():
    x = deeplabv2.preprocess(known_image())
    # pixel 0: R 0, G 127.5, B 255 -> B, G, R minus (104.008, 116.669, 122.675)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([255 - 104.008, 127.5 - 116.669, 0 - 122.675]))
    assert torch.allclose(x[0, :, 0, 1], torch.tensor([127.5 - 104.008, 127.5 - 116.669, 127.5 - 122.675]))
    assert deeplabv2.preprocess(torch.zeros(1, 3, 4, 2), image_size=8).shape == (1, 3, 8, 4)


def test_ade20k_preprocessing_is_imagenet_normalized_rgb():
    x = upernet.preprocess(known_image(), (1, 2))
    # through uint8 as their pipeline reads pictures: 0 -> grey level 128 (127.5 rounded to even), 128 / 255
    expected = [(0.0 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (1.0 - 0.406) / 0.225]
    assert torch.allclose(x[0, :, 0, 0], torch.tensor(expected))
    assert upernet.preprocess(torch.zeros(1, 3, 8, 8), (16, 24)).shape == (1, 3, 16, 24)


def random_pictures(height, width, batch=1, seed=0):
    """(B, H, W, 3) uint8 pictures, as read from image files."""
    return np.random.default_rng(seed).integers(0, 256, (batch, height, width, 3), dtype=np.uint8)


def from_pictures(pictures):
    """(B, H, W, 3) uint8 -> (B, 3, H, W) in [-1, 1], as the loaders give images."""
    return torch.from_numpy(pictures).permute(0, 3, 1, 2).float() / 127.5 - 1


@pytest.mark.parametrize("size", [(320, 352), (24, 40), (37, 53)])   # up, down, the same size
def test_ade20k_resize_is_pils_bilinear_on_the_uint8_image(size):
    # the generator's floats fall between grey levels: round them as test.py's PNGs do, then resize as
    # mit_semseg/dataset.py (imresize: PIL's BILINEAR on the uint8 image; then / 255 and torchvision's Normalize)
    images = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pictures = ((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    ours = upernet.preprocess(images, size)
    mean, std = torch.tensor(upernet.MEAN)[:, None, None], torch.tensor(upernet.STD)[:, None, None]
    for b in range(2):
        resized = Image.fromarray(pictures[b]).resize((size[1], size[0]), Image.BILINEAR)
        official = torch.from_numpy(np.float32(np.array(resized)) / 255.).permute(2, 0, 1)
        assert torch.equal(ours[b], (official - mean) / std)


@pytest.mark.parametrize("source, size", [((1024, 1024), 512), ((37, 53), 512), ((32, 32), 48), ((96, 64), 80)])
def test_face_parsing_nearest_is_pils_nearest(source, size):
    # their tester.py: transforms.Resize((512, 512), interpolation=PIL.Image.NEAREST) on the picture. torch's
    # 'nearest' takes other source pixels (all of them from 1024 to 512), and 'nearest-exact' differs from PIL
    # where a source coordinate falls on a pixel border (32 -> 48; 96 and 64 -> 80)
    pictures = random_pictures(*source, seed=sum(source))
    ours = face_parsing.preprocess(from_pictures(pictures), image_size=size, resize_mode="nearest")
    official = np.array(Image.fromarray(pictures[0]).resize((size, size), Image.NEAREST))[None]
    assert torch.equal(ours, from_pictures(official))


def test_coco_at_a_fixed_size_is_scored_at_that_size_as_imaginaire():
    # imaginaire's cocostuff.py: longer side scaled to image_size (align_corners=True), the logits resized back to
    # that scaled size with align_corners=True, the prediction scored there (labels resized to it, nearest)
    torch.manual_seed(0)
    model = build_segmenter("coco", image_size=32)
    images = torch.rand(1, 3, 16, 24) * 2 - 1
    scaled = F.interpolate(images, scale_factor=32 / 24, mode="bilinear", align_corners=True)
    assert model.output_size(16, 24) == tuple(scaled.shape[2:]) == (21, 32)
    for height, width in ((256, 256), (256, 512), (375, 500), (333, 500)):
        torch_size = F.interpolate(torch.zeros(1, 1, height, width), scale_factor=512 / max(height, width)).shape[2:]
        assert build_segmenter("coco", image_size=512).output_size(height, width) == tuple(torch_size)
    with torch.no_grad():
        logits = model.net(deeplabv2.preprocess(images, 32))
        expected = F.interpolate(logits, size=(21, 32), mode="bilinear", align_corners=True)
        assert torch.equal(model.class_scores(images), expected)
        assert model(images).shape == (1, 21, 32)
        # as generated (the default): at the input size, align_corners=False as kazuto1011's demo.py
        model.image_size = None
        logits = model.net(deeplabv2.preprocess(images))
        expected = F.interpolate(logits, size=(16, 24), mode="bilinear", align_corners=False)
        assert model.output_size(16, 24) == (16, 24) and torch.equal(model.class_scores(images), expected)


def test_ade20k_multi_scale_sizes_follow_the_released_config():
    # short side to 300 ... 600, long side at most 1000, rounded up to multiples of 32
    assert upernet.scale_sizes(256, 256) == [(320, 320), (384, 384), (480, 480), (544, 544), (608, 608)]
    assert upernet.scale_sizes(256, 512) == [(320, 608), (384, 768), (480, 928), (512, 1024), (512, 1024)]


def test_ade20k_scores_are_softmax_probabilities_averaged_over_scales():
    torch.manual_seed(0)
    model = build_segmenter("ade20k", short_sides=(32, 64))
    probs = model.class_scores(torch.rand(1, 3, 12, 20) * 2 - 1)
    assert probs.shape == (1, 150, 12, 20)
    assert torch.allclose(probs.sum(1), torch.ones(1, 12, 20), atol=1e-5)
    assert probs.min() >= 0


def test_cityscapes_preprocessing_uses_the_drn_cityscapes_mean_and_std():
    x = drn.preprocess(known_image())
    expected = [(0.0 - 0.29010095242892997) / 0.1829540508368939, (0.5 - 0.32808144844279574) / 0.18656561047509476,
                (1.0 - 0.28696394422942517) / 0.18447508988480435]
    assert torch.allclose(x[0, :, 0, 0], torch.tensor(expected))
    assert drn.preprocess(torch.zeros(1, 3, 4, 8), image_size=(8, 16)).shape == (1, 3, 8, 16)


def test_face_parsing_keeps_the_range_and_resizes_to_its_input_size():
    x = torch.arange(4.0).view(1, 1, 2, 2).expand(1, 3, 2, 2) / 3 * 2 - 1
    assert torch.equal(face_parsing.preprocess(x, image_size=2), x)
    near = face_parsing.preprocess(x, image_size=4, resize_mode="nearest")
    assert torch.equal(near, x.repeat_interleave(2, 2).repeat_interleave(2, 3))
    cubic = face_parsing.preprocess(x, image_size=4)   # imaginaire's bicubic, align_corners=True: corners kept
    assert cubic.shape == (1, 3, 4, 4)
    assert torch.allclose(cubic[..., 0, 0], x[..., 0, 0]) and torch.allclose(cubic[..., -1, -1], x[..., -1, -1])
    with pytest.raises(ValueError, match="bicubic, nearest"):
        face_parsing.preprocess(x, image_size=4, resize_mode="bilinear")
    with pytest.raises(ValueError, match="multiple of 16"):
        build_segmenter("celebamaskhq", image_size=500)


# ---------------------------------------------------------------------------------------------------------
# label mappings on known maps

def test_cityscapes_label_ids_map_to_the_19_train_ids_with_255_ignored():
    label_ids = torch.tensor([[7, 8, 0, 6], [26, 33, -1, 34], [24, 9, 31, 255]])
    assert drn.label_ids_to_train_ids(label_ids).tolist() == [[0, 1, 255, 255], [13, 18, 255, 255],
                                                              [11, 255, 16, 255]]
    every = torch.tensor(drn.TRAIN_TO_LABEL_ID)
    assert drn.label_ids_to_train_ids(every).tolist() == list(range(19))
    model = build_segmenter("cityscapes")
    assert model.dataset_ids.tolist() == [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    assert model.label_map()[26] == 13 and 6 not in model.label_map()


def test_ade20k_classes_are_the_project_loader_ids():
    from data.ade20k_dataset import ADE20KDataset
    raw = torch.arange(1, 151)             # annotation values 1..150; the network's class is value - 1
    for raw_labels in (False, True):
        fake = SimpleNamespace(opt=SimpleNamespace(label_nc=150, ade20k_raw_labels=raw_labels))
        loader_ids = ADE20KDataset.label_ids(fake, raw.numpy(), "ADE_val.png")
        model = build_segmenter("ade20k", raw_labels=raw_labels)
        assert model.dataset_ids[raw - 1].tolist() == list(loader_ids)


def test_coco_stuff_and_face_classes_are_the_dataset_ids():
    from data.celebamaskhq_dataset import CLASS_NAMES
    assert build_segmenter("coco").dataset_ids.tolist() == list(range(182))
    assert build_segmenter("celebamaskhq").dataset_ids.tolist() == list(range(19))
    assert list(face_parsing.LABELS) == CLASS_NAMES


# ---------------------------------------------------------------------------------------------------------
# forward: a classifier that always says class k returns the dataset id of k at the input size

def force_class(conv, k):
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.bias[k] = 1.0


def test_coco_forward_returns_coco_stuff_ids_at_the_input_size():
    model = build_segmenter("coco")
    for conv in model.net.base.aspp.children():
        force_class(conv, 5)
    out = model(torch.rand(2, 3, 20, 28) * 2 - 1)
    assert out.dtype == torch.long and out.shape == (2, 20, 28)
    assert (out == 5).all()


def test_ade20k_forward_returns_loader_ids():
    for raw_labels, expected in ((False, 7), (True, 8)):
        model = build_segmenter("ade20k", raw_labels=raw_labels, short_sides=(32,))
        force_class(model.decoder.conv_last[1], 7)
        out = model(torch.rand(1, 3, 12, 20) * 2 - 1)
        assert out.shape == (1, 12, 20) and (out == expected).all()


def test_cityscapes_forward_returns_label_ids_at_the_input_size():
    model = build_segmenter("cityscapes")
    force_class(model.net.seg, 13)            # train id 13, car: labelId 26
    out = model(torch.rand(1, 3, 16, 24) * 2 - 1)
    assert out.shape == (1, 16, 24) and (out == 26).all()
    upsampled = build_segmenter("cityscapes", image_size=(32, 48))
    force_class(upsampled.net.seg, 0)
    out = upsampled(torch.rand(1, 3, 16, 24) * 2 - 1)
    assert out.shape == (1, 16, 24) and (out == 7).all()


def test_face_forward_returns_face_ids_at_the_input_size():
    model = build_segmenter("celebamaskhq", image_size=32)
    force_class(model.net.final, 12)
    out = model(torch.rand(1, 3, 20, 20) * 2 - 1)
    assert out.shape == (1, 20, 20) and (out == 12).all()


def test_drn_upsampler_is_the_fixed_bilinear_kernel():
    kernel = build_segmenter("cityscapes").net.up.weight
    assert kernel.shape == (19, 1, 16, 16) and not kernel.requires_grad
    # fill_up_weights: (1 - |i/8 - 15/16|) per axis
    ramp = torch.tensor([1 - abs(i / 8 - 15 / 16) for i in range(16)])
    assert torch.allclose(kernel[3, 0], ramp[:, None] * ramp[None, :])


# ---------------------------------------------------------------------------------------------------------
# the check command

def test_check_command_loads_a_file_in_the_released_layout(tmp_path, capsys):
    paths, _ = save_released(tmp_path, "celebamaskhq")
    assert check_main(["--dataset", "celebamaskhq", "--weights", *paths]) == 0
    out = capsys.readouterr().out
    parameters = sum(math.prod(shape) for key, shape in released_layout("face_parsing") if not key.endswith(BUFFERS))
    assert f"{parameters:,} parameters, 19 classes" in out
    assert f"loaded {paths[0]} strictly into the celebamaskhq segmenter" in out


def test_check_command_refuses_another_file(tmp_path, capsys):
    state = random_state("face_parsing")
    del state["center.conv2.1.running_var"]
    torch.save(state, tmp_path / "model.pth")
    assert check_main(["--dataset", "celebamaskhq", "--weights", str(tmp_path / "model.pth")]) == 1
    captured = capsys.readouterr()
    assert "not loaded" in captured.err and "center.conv2.1.running_var" in captured.err
    assert "loaded" not in captured.out


def test_check_command_runs_as_a_module(tmp_path):
    import subprocess
    import sys
    paths, _ = save_released(tmp_path, "celebamaskhq")
    result = subprocess.run([sys.executable, "-m", "tools.check_segmenter", "--dataset", "celebamaskhq",
                             "--weights", *paths], capture_output=True, text=True, timeout=HANG_GUARD_S,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr
    assert "strictly into the celebamaskhq segmenter" in result.stdout


def test_docs_check_commands_name_registered_datasets_and_their_file_counts():
    page = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "evaluation.md")
    with open(page, encoding="utf-8") as f:
        commands = [line.split() for line in f if line.startswith("python -m tools.check_segmenter")]
    assert {c[c.index("--dataset") + 1] for c in commands} <= set(SEGMENTERS.names()) and commands
    for c in commands:
        dataset, files = c[c.index("--dataset") + 1], c[c.index("--weights") + 1:]
        assert len(files) == len(LAYOUTS[dataset])
