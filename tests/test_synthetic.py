"""data/synthetic.py and --dataset_mode synthetic: determinism, layout, the twin-class appearance rules, the
dataset's flips, and the CLI that writes the custom layout."""
import os
import random
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch

import data
from data import synthetic
from data.synthetic import BACKGROUND, BROWS, HAIR, LEFT_EYE, LOWER_LIP, NOSE, RIGHT_EYE, SKIN, UPPER_LIP, render

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_render_shapes_and_class_names():
    label, image = render(3, seed=0, size=48)
    assert label.shape == (48, 48) and label.dtype == np.uint8 and label.max() <= 8
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    assert synthetic.CLASS_NAMES == ("background", "hair", "skin", "nose", "left_eye", "right_eye", "brows",
                                     "upper_lip", "lower_lip")


def test_deterministic_by_seed_index_and_phase():
    label, image = render(5, seed=1, size=32)
    again_label, again_image = render(5, seed=1, size=32)
    assert np.array_equal(label, again_label) and np.array_equal(image, again_image)
    for other in (render(6, seed=1, size=32), render(5, seed=2, size=32), render(5, seed=1, size=32, phase="test")):
        assert not np.array_equal(image, other[1]) and not np.array_equal(label, other[0])


def test_all_nine_classes_in_most_samples():
    complete = sum(len(np.unique(render(i, size=64)[0])) == 9 for i in range(50))
    assert complete >= 45


def test_left_eye_is_on_the_image_left():
    for i in range(20):
        label = render(i, size=64)[0]
        columns = np.arange(64)[None, :].repeat(64, 0)
        assert columns[label == LEFT_EYE].mean() < columns[label == RIGHT_EYE].mean()


def class_means(label, image):
    return {c: image[label == c].mean(0) for c in range(9) if (label == c).sum() >= 4}


def test_twin_classes_share_one_appearance_model():
    twin_eyes, twin_lips, eye_hair, nose_skin, hair_skin, hair_background = [], [], [], [], [], []
    for i in range(40):
        m = class_means(*render(i, size=128))
        d = lambda a, b: float(np.linalg.norm(m[a] - m[b]))  # noqa: E731
        twin_eyes.append(d(LEFT_EYE, RIGHT_EYE))
        twin_lips.append(d(UPPER_LIP, LOWER_LIP))
        eye_hair.append(d(LEFT_EYE, HAIR))
        nose_skin.append(d(NOSE, SKIN))
        hair_skin.append(d(HAIR, SKIN))
        hair_background.append(d(HAIR, BACKGROUND))
    # Twins differ only by pixel sampling and noise; different models are far apart.
    assert np.median(twin_eyes) < 0.15 * np.median(eye_hair) and np.median(twin_lips) < 0.15 * np.median(eye_hair)
    assert np.mean(np.array(twin_eyes) < np.array(eye_hair)) >= 0.95
    assert np.mean(np.array(twin_lips) < np.array(eye_hair)) >= 0.95
    # The nose is shaded skin: close to the skin, far from the hair. Hair and background are distinct.
    assert np.median(nose_skin) < 0.5 * np.median(hair_skin)
    assert np.mean(np.array(hair_background) > 40) >= 0.9


def test_brows_are_their_own_model():
    distances = [float(np.linalg.norm(np.subtract(*[class_means(*render(i, size=128))[c] for c in (BROWS, HAIR)])))
                 for i in range(20)]
    assert np.median(distances) > 40


# ---------------------------------------------------------------------------------------------------------
# the dataset mode

def test_synthetic_dataset_samples(parse_options):
    dataset = data.create_dataset(parse_options("--dataset_mode", "synthetic", "--num_synthetic", 12))
    assert len(dataset) == 12 and dataset.has_images
    assert dataset.class_names == list(synthetic.CLASS_NAMES) and dataset.flip_label_pairs == [(4, 5)]
    sample = dataset[0]
    assert sample["label"].shape == (1, 64, 64) and sample["label"].dtype == torch.int64
    assert sample["image"].shape == (3, 64, 64) and sample["image"].dtype == torch.float32
    assert sample["instance"] == 0 and isinstance(sample["path"], str)
    assert sample["label"].max() < 9 and -1 <= sample["image"].min() and sample["image"].max() <= 1


def test_synthetic_dataset_follows_seed_and_phase(parse_options):
    def images(*argv, train=True):
        dataset = data.create_dataset(parse_options("--dataset_mode", "synthetic", "--no_flip", *argv, train=train))
        return torch.stack([dataset[i]["image"] for i in range(3)])
    base = images()
    assert torch.equal(base, images())
    assert not torch.equal(base, images("--seed", 1))
    test_phase = images(train=False)
    assert not torch.equal(base, test_phase) and torch.equal(test_phase, images(train=False))
    assert len(data.create_dataset(parse_options("--dataset_mode", "synthetic", "--max_dataset_size", 5))) == 5


def test_synthetic_flip_swaps_the_eyes(parse_options):
    flipping = data.create_dataset(parse_options("--dataset_mode", "synthetic"))
    fixed = data.create_dataset(parse_options("--dataset_mode", "synthetic", "--no_flip"))
    random.seed(0)
    flips = 0
    for i in range(12):
        sample, reference = flipping[i], fixed[i]
        flipped = torch.equal(sample["image"], reference["image"].flip(-1))
        flips += flipped
        assert flipped or torch.equal(sample["image"], reference["image"])
        label = sample["label"][0]
        columns = torch.arange(label.shape[1]).expand_as(label).float()
        # left_eye stays the eye on the image's left
        assert columns[label == LEFT_EYE].mean() < columns[label == RIGHT_EYE].mean()
    assert 0 < flips < 12


# ---------------------------------------------------------------------------------------------------------
# the CLI writes the custom layout, which the custom mode loads

def test_cli_writes_pairs_that_custom_mode_loads(tmp_path, parse_options):
    out = tmp_path / "syn"
    result = subprocess.run([sys.executable, "-m", "tools.write_synthetic", "--out", str(out), "--n", "4", "--size",
                             "32", "--seed", "3"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "RuntimeWarning" not in result.stderr
    assert sorted(os.listdir(out / "labels")) == sorted(os.listdir(out / "images")) == [
        f"{i:05d}.png" for i in range(4)]
    command = next(line for line in result.stdout.splitlines() if line.startswith("python train.py"))
    assert (f"--dataset_mode custom --label_dir {out / 'labels'} --image_dir {out / 'images'} --label_nc 9 "
            f"--no_instance") in command
    argv = shlex.split(command)[2:]
    dataset = data.create_dataset(parse_options(*argv, "--no_flip"))
    assert len(dataset) == 4 and dataset.has_images
    for i in range(4):
        label, image = render(i, seed=3, size=32)
        sample = dataset[i]
        assert np.array_equal(sample["label"][0].numpy(), label)
        assert np.allclose(((sample["image"] + 1) * 127.5).permute(1, 2, 0).numpy(), image, atol=1e-3)


@pytest.mark.parametrize("size", [16, 128])
def test_render_sizes(size):
    label, image = render(0, size=size)
    assert label.shape == (size, size) and image.shape == (size, size, 3)
