"""evaluation/metrics.py: FID / KID through torch-fidelity on the real FID Inception, LPIPS from converted weights,
mIoU and pixel accuracy on hand-made predictions, and the uint8 rounding every metric input goes through."""
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation import metrics as M

pytestmark = pytest.mark.usefixtures("no_downloads")
# the LPIPS authors' example images (BSD 2-clause, see tests/data/lpips-examples/LICENSE)
LPIPS_EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "lpips-examples")


def synthetic_images(indices, phase="train", size=64):
    """Real synthetic-dataset images as uint8 (N, 3, size, size)."""
    from data.synthetic import render
    return torch.stack([torch.from_numpy(render(i, 0, size, phase)[1]).permute(2, 0, 1) for i in indices])


def test_to_uint8_rounds_instead_of_truncating():
    x = torch.tensor([-1.0, 1.0, 100.7 / 127.5 - 1, 0.0, 2.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    assert M.to_uint8(x)[0, 0, 0].tolist() == [0, 255, 101, 128, 255]   # 127.5 rounds to even: 128


# ---------------------------------------------------------------- FID and KID (real Inception)

@pytest.fixture(scope="module")
def inception_features(eval_weights):
    """Features of 12 synthetic images A, 12 others B, and A with Gaussian noise of std 24 levels."""
    extractor = M.load_inception(eval_weights("inception.pth"))
    a, b = synthetic_images(range(12)), synthetic_images(range(12, 24))
    g = torch.Generator().manual_seed(0)
    noisy = (a.float() + 24 * torch.randn(a.shape, generator=g)).round().clamp(0, 255).byte()
    out = {}
    for key, images in (("a", a), ("b", b), ("a_noise", noisy)):
        collector = M.InceptionFeatures(extractor)
        collector.update(images)
        out[key] = collector.features()
    return out


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise(inception_features):
    # two FIDs only: each is an eigen-decomposition of a 2048 x 2048 matrix, seconds on a CPU
    f = inception_features
    assert abs(M.fid(f["a"], f["a"])) < 1e-2
    assert M.fid(f["a"], f["a_noise"]) > 1.0


def test_kid_of_two_samples_of_one_distribution_is_consistent_with_zero(inception_features):
    f = inception_features
    mean, std, size = M.kid(f["a"], f["b"], subsets=50, subset_size=6)
    assert size == 6 and std > 0
    assert abs(mean) < 3 * std
    noisy_mean, noisy_std, _ = M.kid(f["a"], f["a_noise"], subsets=50, subset_size=6)
    assert noisy_mean > 3 * noisy_std   # and it does see a real difference


def test_kid_subsets_are_at_most_half_the_images_so_that_their_std_means_something(inception_features):
    f = inception_features
    assert [M.kid_subset_size(1000, n) for n in (3, 4, 12, 5000)] == [None, 2, 6, 1000]
    mean, std, size = M.kid(f["a"], f["b"], subsets=20)   # 1000 asked of 12 images: subsets of 6
    assert size == 6 and std > 0
    mean, std, size = M.kid(f["a"][:3], f["b"][:3])        # one possible subset: no std at all
    assert size == 3 and std is None and math.isfinite(mean)


def test_inception_weights_missing_or_wrong_are_refused_naming_option_and_file(tmp_path):
    with pytest.raises(M.MetricSetupError, match=r"--inception_weights .*nothere.pth: file not found.*tools.weights"):
        M.load_inception(str(tmp_path / "nothere.pth"))
    wrong = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, wrong)
    with pytest.raises(M.MetricSetupError, match=r"--inception_weights .*vgg.pth: not torch-fidelity's "
                                                 r"inception-v3-compat state dict \(missing"):
        M.load_inception(str(wrong))


# ---------------------------------------------------------------- LPIPS

def example(name):
    picture = np.asarray(Image.open(f"{LPIPS_EXAMPLES}/{name}.png").convert("RGB"))
    return torch.from_numpy(picture.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_lpips_reproduces_the_published_example_distances(eval_weights):
    model = M.load_lpips("alex", eval_weights("lpips_alex.pth"))
    ref, p0, p1 = example("ex_ref"), example("ex_p0"), example("ex_p1")
    assert float(M.lpips_distance(model, ref, p0)) == pytest.approx(0.722, abs=5e-4)
    assert float(M.lpips_distance(model, ref, p1)) == pytest.approx(0.138, abs=5e-4)


def test_lpips_of_identical_images_is_zero_and_it_is_symmetric(eval_weights):
    model = M.load_lpips("alex", eval_weights("lpips_alex.pth"))
    x = synthetic_images(range(2)).float() / 127.5 - 1
    y = synthetic_images(range(2, 4)).float() / 127.5 - 1
    assert torch.equal(M.lpips_distance(model, x, x), torch.zeros(2))
    d_xy, d_yx = M.lpips_distance(model, x, y), M.lpips_distance(model, y, x)
    assert torch.allclose(d_xy, d_yx, atol=1e-6) and bool((d_xy > 0.05).all())


def test_lpips_weights_of_the_other_net_are_refused(eval_weights):
    with pytest.raises(M.MetricSetupError, match=r"--lpips_weights .*lpips_vgg.pth: .*an LPIPS alex backbone"):
        M.load_lpips("alex", eval_weights("lpips_vgg.pth"))


# ---------------------------------------------------------------- mIoU and pixel accuracy

def test_miou_and_accuracy_on_hand_made_predictions_with_ignored_pixels():
    target = torch.tensor([[[0, 0, 1, 1],
                            [2, 2, M.IGNORE, M.IGNORE]]])
    predicted = torch.tensor([[[0, 1, 1, 1],
                               [2, 0, 2, 1]]])    # the last two pixels are ignored whatever they say
    scores = M.SegmentationScores(num_classes=4)
    scores.update(predicted, target)
    result = scores.compute()
    # class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 2, FP 1 -> 2/3; class 2: TP 1, FN 1 -> 1/2; class 3 absent
    assert result["per_class_iou"][:3] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert result["per_class_iou"][3] is None
    assert result["miou"] == pytest.approx(np.mean([1 / 3, 2 / 3, 1 / 2]))
    assert result["pixel_accuracy"] == pytest.approx(4 / 6)


def test_label_map_maps_dataset_ids_and_ignores_the_rest_and_dontcare():
    mapping = M.parse_label_map("0:1, 2:0", num_seg_classes=2)
    table = M.label_lookup(4, 2, mapping, dontcare_id=3)
    assert table.tolist() == [1, M.IGNORE, 0, M.IGNORE]
    assert M.label_lookup(3, 5, None, dontcare_id=2).tolist() == [0, 1, M.IGNORE]
    with pytest.raises(M.MetricSetupError, match="--seg_label_map: '0:7' maps to 7, but the segmenter has 2"):
        M.parse_label_map("0:7", 2)
    with pytest.raises(M.MetricSetupError, match="give --seg_label_map"):
        M.label_lookup(9, 4)
