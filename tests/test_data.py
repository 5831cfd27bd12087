"""data/: every dataset mode on a tiny folder in its real layout, the preprocess modes, flips, label
validation and its error messages, the loader and the file-list cache."""
import os
import random

import numpy as np
import pytest
import torch
from PIL import Image

import data
from data import DatasetError
from data.base_dataset import get_params

MODES = ("cityscapes", "ade20k", "coco", "celebamaskhq", "custom")


def build(parse_options, *argv, train=True):
    return data.create_dataset(parse_options(*argv, train=train))


def write_label(path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(ids, np.uint8)).save(path)


# ---------------------------------------------------------------------------------------------------------
# each mode in its layout

@pytest.mark.parametrize("mode", MODES)
def test_mode_loads_paired_samples(mode, tiny_dataset, parse_options):
    _, argv = tiny_dataset(mode)
    dataset = build(parse_options, *argv)
    assert len(dataset) == 3 and dataset.has_images
    h, w = (8, 16) if mode == "cityscapes" else (16, 16)  # cityscapes: fixed 2:1
    for i in range(3):
        sample = dataset[i]
        assert set(sample) == {"label", "instance", "image", "path"}
        label, image = sample["label"], sample["image"]
        assert label.dtype == torch.int64 and label.shape == (1, h, w)
        # ade20k shifts raw ids by one (0 becomes dontcare)
        assert label.unique().tolist() == [i if mode == "ade20k" else i + 1]
        assert image.dtype == torch.float32 and image.shape == (3, h, w)
        assert image.min() >= -1 and image.max() <= 1
        assert tiny_dataset.index_of(image) == i  # the image is the label's partner
        assert sample["path"] == dataset.image_paths[i] and os.path.isfile(sample["path"])
        if mode in ("cityscapes", "coco", "custom"):
            instance = sample["instance"]
            assert instance.dtype == torch.int64 and instance.shape == (1, h, w)
            # cityscapes instance maps are 16/32-bit: ids above 255 survive
            assert instance.unique().tolist() == [26000 + i if mode == "cityscapes" else 3 * (i + 1)]
        else:
            assert sample["instance"] == 0


@pytest.mark.parametrize("mode, phase_dir, phase, image_folder", [
    ("cityscapes", "val", "test", "leftImg8bit/val/aachen"), ("ade20k", "validation", "test", "images/validation"),
    ("ade20k", "validation", "val", "images/validation"), ("coco", "val", "test", "val_img"),
    ("celebamaskhq", "test", "test", "test/images"), ("celebamaskhq", "test", "val", "test/images")])
def test_test_phase_reads_the_evaluation_folders(mode, phase_dir, phase, image_folder, tiny_dataset,
                                                 parse_options):
    root, argv = tiny_dataset(mode, n=2, phase=phase_dir)
    dataset = build(parse_options, *argv, "--phase", phase, train=False)
    assert len(dataset) == 2
    assert {os.path.dirname(p) for p in dataset.image_paths} == {str(root / image_folder)}


HOOK_DEFAULTS = {
    "cityscapes": dict(preprocess_mode="fixed", load_size=512, crop_size=512, display_winsize=512, label_nc=35,
                       aspect_ratio=2.0, batchSize=16, num_upsampling_layers="more", contain_dontcare_label=False,
                       no_instance=False, semantic_nc=36),
    "ade20k": dict(preprocess_mode="resize_and_crop", load_size=286, crop_size=256, display_winsize=256,
                   label_nc=150, contain_dontcare_label=True, no_instance=True, ade20k_raw_labels=False,
                   semantic_nc=151),
    "coco": dict(preprocess_mode="resize_and_crop", load_size=286, crop_size=256, display_winsize=256,
                 label_nc=182, contain_dontcare_label=True, no_instance=False, coco_no_portraits=False,
                 semantic_nc=184),
    "celebamaskhq": dict(preprocess_mode="resize_and_crop", load_size=512, crop_size=512, display_winsize=512,
                         label_nc=19, no_instance=True, contain_dontcare_label=False),
    "custom": dict(preprocess_mode="resize_and_crop", load_size=286, crop_size=256, display_winsize=256,
                   label_nc=13, contain_dontcare_label=False, image_dir="", instance_dir=""),
    "synthetic": dict(label_nc=9, no_instance=True, preprocess_mode="resize_and_crop", load_size=64, crop_size=64,
                      display_winsize=128, ngf=16, ndf=16, batchSize=4, lambda_vgg=0.0, niter=5, niter_decay=5,
                      print_freq=40, display_freq=200, save_latest_freq=400, save_epoch_freq=5,
                      num_synthetic=200, semantic_nc=9),
}


@pytest.mark.parametrize("mode", sorted(HOOK_DEFAULTS))
def test_hook_defaults(mode, parse_options):
    extra = ["--label_dir", "x"] if mode == "custom" else []
    opt = parse_options("--dataset_mode", mode, *extra)
    assert {k: getattr(opt, k) for k in HOOK_DEFAULTS[mode]} == HOOK_DEFAULTS[mode]
    assert opt.no_pairing_check is False
    if mode in ("ade20k", "coco", "custom"):
        assert parse_options("--dataset_mode", mode, *extra, train=False).load_size == 256


def test_custom_requires_label_dir(parse_options):
    with pytest.raises(SystemExit):
        parse_options("--dataset_mode", "custom")


def test_natural_sort_and_max_dataset_size(tiny_dataset, parse_options):
    _, argv = tiny_dataset("custom", n=12, instance=False)
    dataset = build(parse_options, *argv)
    assert [os.path.basename(p) for p in dataset.label_paths] == [f"img{i}.png" for i in range(12)]
    dataset = build(parse_options, *argv, "--max_dataset_size", 5)
    assert len(dataset) == 5 and tiny_dataset.index_of(dataset[4]["image"]) == 4


def test_coco_portraits_join_training_unless_disabled(tiny_dataset, parse_options):
    root, argv = tiny_dataset("coco", n=2)
    for kind, suffix in (("label", "png"), ("img", "jpg"), ("inst", "png")):
        src = root / f"train_{kind}" / f"{0:012d}.{suffix}"
        os.makedirs(root / f"train_{kind}_portrait")
        (root / f"train_{kind}_portrait" / f"p{0:011d}.{suffix}").write_bytes(src.read_bytes())
    assert len(build(parse_options, *argv)) == 3
    assert len(build(parse_options, *argv, "--coco_no_portraits")) == 2


# ---------------------------------------------------------------------------------------------------------
# preprocess modes, flips

@pytest.mark.parametrize("mode, load, crop, size", [
    ("resize_and_crop", 40, 32, (32, 32)),
    ("crop", 0, 48, (48, 48)),
    ("scale_width", 50, 0, (50, 30)),
    ("scale_width_and_crop", 80, 40, (40, 40)),
    ("scale_shortside", 30, 0, (50, 30)),
    ("scale_shortside_and_crop", 45, 40, (40, 40)),
    ("fixed", 0, 32, (32, 16)),       # crop_size x crop_size / aspect_ratio
    ("none", 0, 0, (96, 64)),         # 100x60 to multiples of 32
])
@pytest.mark.parametrize("train", [True, False])
def test_preprocess_output_size(mode, load, crop, size, train, tiny_dataset, parse_options):
    _, argv = tiny_dataset("custom", n=1, size=(100, 60))
    sizes = [a for k, v in (("--load_size", load), ("--crop_size", crop)) if v for a in (k, v)]
    aspect = ["--aspect_ratio", 2] if mode == "fixed" else []  # the crop modes refuse a non-square aspect
    dataset = build(parse_options, *argv, "--preprocess_mode", mode, *aspect, *sizes, train=train)
    sample = dataset[0]
    w, h = size
    assert sample["label"].shape == (1, h, w) and sample["image"].shape == (3, h, w)
    assert sample["instance"].shape == (1, h, w)
    assert sample["label"].unique().tolist() == [1]  # nothing padded


def test_scale_shortside_crop_stays_inside_the_resized_image(tiny_dataset, parse_options):
    # 100x60 -> 75x45: the crop corner ranges over x 0..35, y 0..5 (SPADE took y from the original 60).
    _, argv = tiny_dataset("custom", n=1, size=(100, 60))
    opt = parse_options(*argv, "--preprocess_mode", "scale_shortside_and_crop", "--load_size", 45,
                        "--crop_size", 40)
    rng = np.random.default_rng(0)
    corners = np.array([get_params(opt, (100, 60), rng)["crop_pos"] for _ in range(300)])
    assert corners[:, 0].max() == 35 and corners[:, 1].max() == 5 and corners.min() == 0


def column_dataset(tiny_dataset, mode="custom", size=(40, 24)):
    """One sample whose label id and image red channel both encode the column band: id x // 4 + 1,
    red 20 * (x // 4) + 10, so any misalignment between label and image shows."""
    w, h = size
    bands = np.arange(w) // 4
    root, argv = tiny_dataset(mode, n=1, size=size, instance=False, label=lambda i, h, w: np.tile(bands + 1, (h, 1)))
    photo = np.zeros((h, w, 3), np.uint8)
    photo[..., 0] = 20 * bands + 10
    Image.fromarray(photo).save(root / "images" / "img0.png")
    return argv


def test_crop_and_flip_apply_to_label_and_image_together(tiny_dataset, parse_options):
    argv = column_dataset(tiny_dataset)
    dataset = build(parse_options, *argv, "--preprocess_mode", "crop", "--crop_size", 16)
    flipped, corners = 0, set()
    for epoch in range(30):  # the geometry is drawn from (seed, epoch, index)
        sample = dataset[(0, epoch)]
        label, red = sample["label"][0], (sample["image"][0] + 1) * 127.5
        assert torch.allclose(red, 20 * (label - 1).float() + 10, atol=0.01)
        flipped += int(label[0, 0] > label[0, -1])
        corners.add(int(label[0, 0]))
    assert 0 < flipped < 30 and len(corners) > 2
    no_flip = build(parse_options, *argv, "--preprocess_mode", "crop", "--crop_size", 16, "--no_flip")
    test_time = build(parse_options, *argv, "--preprocess_mode", "crop", "--crop_size", 16, train=False)
    for ds in (no_flip, test_time):
        for epoch in range(10):
            row = ds[(0, epoch)]["label"][0, 0]
            assert row[0] < row[-1]


def test_augmentation_is_a_function_of_seed_epoch_and_index(tiny_dataset, parse_options):
    """Two runs with one --seed see the same crops and flips, and a resumed epoch sees the same ones again;
    nothing depends on Python's global random state."""
    argv = column_dataset(tiny_dataset)
    dataset = build(parse_options, *argv, "--preprocess_mode", "crop", "--crop_size", 16)
    again = build(parse_options, *argv, "--preprocess_mode", "crop", "--crop_size", 16)
    other_seed = build(parse_options, *argv, "--preprocess_mode", "crop", "--crop_size", 16, "--seed", 7)
    labels = [dataset[(0, epoch)]["label"] for epoch in range(12)]
    random.seed(123)  # the global state plays no part
    assert all(torch.equal(a, again[(0, epoch)]["label"]) for epoch, a in enumerate(labels))
    assert len({tuple(a[0, 0].tolist()) for a in labels}) > 2  # the epochs differ among themselves
    assert any(not torch.equal(a, other_seed[(0, epoch)]["label"]) for epoch, a in enumerate(labels))


def test_flip_swaps_flip_label_pairs(tmp_path, parse_options):
    # celebamaskhq: l_eye (4) on the left half, r_eye (5) on the right, one column of hair (13) on the far left.
    root = tmp_path / "celeb"
    ids = np.full((8, 8), 4)
    ids[:, 4:] = 5
    ids[:, 0] = 13
    write_label(root / "train" / "labels" / "0.png", ids)
    photo = np.zeros((8, 8, 3), np.uint8)
    photo[:, 4:, 0] = 200
    os.makedirs(root / "train" / "images")
    Image.fromarray(photo).save(root / "train" / "images" / "0.png")
    dataset = build(parse_options, "--dataset_mode", "celebamaskhq", "--dataroot", root, "--load_size", 8,
                    "--crop_size", 8)
    assert dataset.flip_label_pairs == [(4, 5), (6, 7), (8, 9)] and len(dataset.class_names) == 19
    seen = set()
    for epoch in range(20):
        sample = dataset[(0, epoch)]
        label, image = sample["label"][0], sample["image"][0]
        is_flipped = bool(image[0, 0] > 0)  # the red half moved to the left
        seen.add(is_flipped)
        assert label[0, -1 if is_flipped else 0] == 13  # hair moves with the image
        # the eye on the image's left is always l_eye, the one on its right always r_eye
        assert (label[:, 1:4] == 4).all() and (label[:, 4:7] == 5).all()
    assert seen == {True, False}


# ---------------------------------------------------------------------------------------------------------
# label values

def test_dontcare_255_becomes_label_nc(tiny_dataset, parse_options):
    def label(i, h, w):
        ids = np.full((h, w), 7)
        ids[:, : w // 2] = 255
        return ids
    _, argv = tiny_dataset("coco", n=1, label=label, instance=False)
    dataset = build(parse_options, *argv, "--no_flip")
    assert dataset[0]["label"].unique().tolist() == [7, 182]


def test_ade20k_shift_and_raw_labels(tiny_dataset, parse_options):
    raw = np.array([0, 1, 57, 150])
    _, argv = tiny_dataset("ade20k", n=1, size=(4, 4), label=lambda i, h, w: np.tile(raw, (h, 1)))
    shifted = build(parse_options, *argv, "--no_flip")[0]["label"][0, 0].tolist()
    assert shifted == [150, 0, 56, 149]  # 'other' -> dontcare (label_nc), k -> k - 1
    kept = build(parse_options, *argv, "--no_flip", "--ade20k_raw_labels")[0]["label"][0, 0].tolist()
    assert kept == [0, 1, 57, 150]


def test_ade20k_value_above_label_nc(tiny_dataset, parse_options):
    _, argv = tiny_dataset("ade20k", n=1, label=lambda i, h, w: np.full((h, w), 151))
    with pytest.raises(DatasetError, match=r"ADE_train_00000001\.png holds the label value 151.*--label_nc 150"):
        build(parse_options, *argv)[0]


# ---------------------------------------------------------------------------------------------------------
# bad data: one DatasetError that names the file and says what to do

def test_label_value_out_of_range(tiny_dataset, parse_options):
    _, argv = tiny_dataset("custom", n=2, instance=False, label=lambda i, h, w: np.full((h, w), 3 + 17 * i))
    dataset = build(parse_options, *argv, "--label_nc", 13)
    dataset[0]
    with pytest.raises(DatasetError) as e:
        dataset[1]
    message = str(e.value)
    assert dataset.label_paths[1] in message and "value 20" in message and "--label_nc 13" in message


def test_255_without_dontcare_suggests_contain_dontcare_label(tiny_dataset, parse_options):
    def label(i, h, w):
        ids = np.full((h, w), 3)
        ids[0] = 255
        return ids
    _, argv = tiny_dataset("custom", n=1, instance=False, label=label)
    with pytest.raises(DatasetError, match="value 255.*--label_nc 13.*--contain_dontcare_label"):
        build(parse_options, *argv)[0]


def test_binary_mask_is_recognised(tiny_dataset, parse_options):
    def label(i, h, w):
        ids = np.zeros((h, w))
        ids[:, : w // 2] = 255
        return ids
    _, argv = tiny_dataset("custom", n=1, instance=False, label=label)
    dataset = build(parse_options, *argv)
    with pytest.raises(DatasetError) as e:
        dataset[0]
    message = str(e.value)
    assert dataset.label_paths[0] in message and "binary mask" in message
    assert "convert 255 to 1 and use --label_nc 2" in message.lower() and "--contain_dontcare_label" in message


def test_colour_label_map(tiny_dataset, parse_options):
    root, argv = tiny_dataset("custom", n=1, instance=False)
    Image.new("RGB", (16, 8), (200, 10, 10)).save(root / "labels" / "img0.png")
    with pytest.raises(DatasetError, match=r"img0\.png: the label map is a colour image"):
        build(parse_options, *argv)[0]


@pytest.mark.parametrize("which", ["labels", "images", "instances"])
def test_unreadable_file(which, tiny_dataset, parse_options):
    root, argv = tiny_dataset("custom", n=1)
    path = root / which / "img0.png"
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(DatasetError, match=f"cannot read {path}"):
        build(parse_options, *argv)[0]


def test_unpaired_names_name_both_files(tiny_dataset, parse_options):
    root, argv = tiny_dataset("custom", n=3, instance=False)
    os.rename(root / "images" / "img1.png", root / "images" / "photo1.png")
    with pytest.raises(DatasetError) as e:
        build(parse_options, *argv)
    message = str(e.value)
    assert str(root / "labels" / "img1.png") in message and str(root / "images" / "photo1.png") in message
    assert "--no_pairing_check" in message
    assert len(build(parse_options, *argv, "--no_pairing_check")) == 3


@pytest.mark.parametrize("folder, what", [("images", "image"), ("labels", "label map")])
def test_a_repeated_name_names_the_name_and_its_files(tiny_dataset, parse_options, folder, what):
    root, argv = tiny_dataset("custom", n=3, instance=False)
    (root / folder / "img1.jpg").write_bytes((root / folder / "img1.png").read_bytes())
    with pytest.raises(DatasetError) as e:
        build(parse_options, *argv)
    assert str(e.value) == (f"2 {what} files are named like 'img1': {root / folder / 'img1.jpg'} and "
                            f"{root / folder / 'img1.png'}; a name pairs one label map with one image, so keep one "
                            f"of them (or pass --no_pairing_check to pair files by sorted order)")


def test_cityscapes_pairs_on_three_tokens(tiny_dataset, parse_options):
    root, argv = tiny_dataset("cityscapes", n=2, instance=False)
    folder = root / "leftImg8bit" / "train" / "aachen"
    os.rename(folder / "aachen_000001_000019_leftImg8bit.png", folder / "aachen_000001_000020_leftImg8bit.png")
    with pytest.raises(DatasetError, match="aachen_000001_000019_gtFine_labelIds.png.*"
                                           "aachen_000001_000020_leftImg8bit.png"):
        build(parse_options, *argv)


def test_missing_partner(tiny_dataset, parse_options):
    root, argv = tiny_dataset("custom", n=3, instance=False)
    os.remove(root / "images" / "img2.png")
    with pytest.raises(DatasetError, match=r"label map \S*img2\.png has no image named like 'img2'"):
        build(parse_options, *argv)


def test_empty_folder_names_folder_and_pattern(tiny_dataset, parse_options, tmp_path):
    _, argv = tiny_dataset("coco", n=1)
    empty = tmp_path / "empty"
    os.makedirs(empty / "train_label")
    argv[argv.index("--dataroot") + 1] = str(empty)
    with pytest.raises(DatasetError, match=f"no label maps found in {empty / 'train_label'}: looked for \\*.png"):
        build(parse_options, *argv)


def test_missing_folder(tiny_dataset, parse_options, tmp_path):
    _, argv = tiny_dataset("custom", n=1, instance=False)
    missing = tmp_path / "nowhere"
    argv[argv.index("--label_dir") + 1] = str(missing)
    with pytest.raises(DatasetError, match=f"{missing} does not exist"):
        build(parse_options, *argv)
    with pytest.raises(DatasetError, match=f"{missing / 'gtFine' / 'train'} does not exist"):
        build(parse_options, "--dataset_mode", "cityscapes", "--dataroot", missing)


def test_crop_larger_than_image(tiny_dataset, parse_options):
    _, argv = tiny_dataset("custom", n=1, instance=False)
    with pytest.raises(DatasetError, match=r"img0\.png: a 16x8 image is smaller than --crop_size 32 and "
                                           r"--preprocess_mode crop does not resize: lower --crop_size") as e:
        build(parse_options, *argv, "--preprocess_mode", "crop", "--crop_size", 32)[0]
    assert "raise --load_size" not in str(e.value)  # --load_size plays no part in crop mode
    with pytest.raises(DatasetError, match=r"becomes 16x8 .*--load_size 16, smaller than --crop_size 32: raise "
                                           r"--load_size"):
        build(parse_options, *argv, "--preprocess_mode", "scale_width_and_crop", "--crop_size", 32)[0]


def test_pairing_is_checked_before_max_dataset_size(tiny_dataset, parse_options):
    """A missing partner beyond --max_dataset_size used to shift the cut lists and blame the wrong files."""
    root, argv = tiny_dataset("custom", n=4, instance=False)
    os.remove(root / "images" / "img1.png")
    with pytest.raises(DatasetError, match=r"label map \S*img1\.png has no image named like 'img1'"):
        build(parse_options, *argv, "--max_dataset_size", 3)
    os.rename(root / "labels" / "img1.png", root / "img1.png")
    dataset = build(parse_options, *argv, "--max_dataset_size", 2)
    assert [os.path.basename(p) for p in dataset.image_paths] == ["img0.png", "img2.png"]


def test_custom_without_images(tiny_dataset, parse_options):
    root, argv = tiny_dataset("custom", n=2, instance=False)
    i = argv.index("--image_dir")
    no_images = argv[:i] + argv[i + 2:]
    with pytest.raises(DatasetError, match="--image_dir is required for training"):
        build(parse_options, *no_images)
    dataset = build(parse_options, *no_images, train=False)
    sample = dataset[1]
    assert not dataset.has_images and sample["path"] == str(root / "labels" / "img1.png")
    assert sample["image"].shape == (3, 16, 16) and not sample["image"].any()
    assert sample["label"].unique().tolist() == [2]


def test_custom_without_instances_needs_no_instance(tiny_dataset, parse_options):
    _, argv = tiny_dataset("custom", n=1, instance=False)
    argv.remove("--no_instance")
    with pytest.raises(DatasetError, match="pass --no_instance, or --instance_dir"):
        build(parse_options, *argv)


# ---------------------------------------------------------------------------------------------------------
# the loader, the error type, the cache

def test_dataset_error_keeps_the_original_message_of_a_worker():
    worker_message = ("Caught DatasetError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
                      "last):\n  File \"x.py\", line 1, in f\n    raise DatasetError(m)\n"
                      "data.base_dataset.DatasetError: a.png holds the label value 20\n")
    assert str(DatasetError(worker_message)) == "a.png holds the label value 20"
    assert isinstance(DatasetError("x"), ValueError)


@pytest.mark.parametrize("workers", [0, 1])
def test_loader_surfaces_the_clean_message(workers, tiny_dataset, parse_options):
    _, argv = tiny_dataset("custom", n=2, instance=False, label=lambda i, h, w: np.full((h, w), 20))
    opt = parse_options(*argv, "--nThreads", workers, "--batchSize", 1, "--serial_batches")
    dataset = data.create_dataset(opt)
    with pytest.raises(DatasetError) as direct:
        dataset[0]
    with pytest.raises(DatasetError) as through_loader:
        next(iter(data.create_dataloader(opt, dataset)))
    assert str(through_loader.value) == str(direct.value)
    assert "\n" not in str(through_loader.value) and "Traceback" not in str(through_loader.value)


def test_loader_batches(tiny_dataset, parse_options):
    _, argv = tiny_dataset("coco", n=3)
    opt = parse_options(*argv, "--batchSize", 2)
    batches = list(data.create_dataloader(opt))
    assert len(batches) == 1  # the last partial batch is dropped in training
    batch = batches[0]
    assert batch["label"].shape == (2, 1, 16, 16) and batch["instance"].shape == (2, 1, 16, 16)
    assert batch["image"].shape == (2, 3, 16, 16) and len(batch["path"]) == 2


def test_cache_filelist_write_and_read(tiny_dataset, parse_options):
    root, argv = tiny_dataset("custom", n=2, instance=False)
    build(parse_options, *argv, "--cache_filelist_write")
    for folder in ("labels", "images"):
        assert (root / folder / "files.list").read_text().split() == ["img0.png", "img1.png"]
    # A pair added later is seen by walking the folders, not through the cache.
    (root / "labels" / "img2.png").write_bytes((root / "labels" / "img0.png").read_bytes())
    (root / "images" / "img2.png").write_bytes((root / "images" / "img0.png").read_bytes())
    assert len(build(parse_options, *argv)) == 3
    cached = build(parse_options, *argv, "--cache_filelist_read")
    assert len(cached) == 2 and cached.label_paths == [str(root / "labels" / f"img{i}.png") for i in range(2)]
    assert cached[1]["label"].unique().tolist() == [2]
