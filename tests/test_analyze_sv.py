"""evaluation/semantic_vectors.py: the class statistics and cosine matrix on hand-made vectors, the written pictures,
and the tool end to end on a saved tiny SC-GAN."""
import csv
import json
import math

import pytest
import torch
from PIL import Image

from evaluation import semantic_vectors as A
from tools import analyze_sv


def hand_made():
    """Classes 0 and 1 share one vector, class 2 is orthogonal to them, class 3 never occurs."""
    vectors = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    classes = torch.tensor([0, 0, 1, 2, 2])
    acc = A.ClassAccumulator(num_classes=4, dim=2)
    acc.update(vectors, classes)
    return acc


def test_cosine_matrix_of_hand_made_class_means():
    matrix = A.cosine_matrix(hand_made().means())
    expected = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=matrix.dtype)
    assert torch.allclose(matrix[:3, :3], expected, atol=1e-12)
    assert bool(matrix[3].isnan().all())


def test_uniformity_and_discrimination_measures():
    stats = hand_made().statistics()
    assert stats["normalized_entropy"] == pytest.approx(0.0, abs=1e-9)   # one-hot: far from uniform
    assert stats["mean_within_class_rms"] == pytest.approx(0.0, abs=1e-9)
    assert stats["discrimination"] == math.inf
    uniform = A.ClassAccumulator(2, 4)
    uniform.update(torch.full((6, 4), 0.25), torch.tensor([0, 0, 0, 1, 1, 1]))
    u = uniform.statistics()
    assert u["normalized_entropy"] == pytest.approx(1.0) and u["spread"] == pytest.approx(0.0)
    assert u["mean_distance_between_class_means"] == pytest.approx(0.0)
    signed = A.ClassAccumulator(1, 2)
    signed.update(torch.tensor([[-1.0, 2.0]]), torch.tensor([0]))
    assert signed.statistics()["normalized_entropy"] is None   # not a distribution: no entropy


def spread_classes():
    """Four classes of 2-D vectors, each two points at its mean +-(0, 1) (within-class RMS 1): A and B share a
    mean, C is 0.5 away, D is 10 away."""
    means = {0: (10.0, 0.0), 1: (10.0, 0.0), 2: (10.5, 0.0), 3: (0.0, 10.0)}
    vectors, classes = [], []
    for c, (x, y) in means.items():
        vectors += [[x, y + 1.0], [x, y - 1.0]]
        classes += [c, c]
    acc = A.ClassAccumulator(num_classes=4, dim=2)
    acc.update(torch.tensor(vectors), torch.tensor(classes))
    return acc


def test_separation_is_the_distance_of_class_means_over_their_spread():
    acc = spread_classes()
    assert acc.within_rms().tolist() == pytest.approx([1.0] * 4)
    sep = acc.separation()
    assert sep[0, 1] == pytest.approx(0.0) and sep[0, 2] == pytest.approx(0.5)
    assert sep[0, 3] == pytest.approx(math.hypot(10, 10))
    # A's and C's means point the same way: their cosine is 1, as A's and B's, while the separation tells them apart
    assert A.cosine_matrix(acc.means())[0, 2] == pytest.approx(1.0)


def test_pair_report_compares_twins_with_the_closest_other_pair():
    acc = spread_classes()
    names = ["a", "b", "c", "d"]
    holds = A.pair_report(acc, names, [("a", "b")])["a/b"]
    assert holds["cosine"] == pytest.approx(1.0) and holds["separation"] == pytest.approx(0.0)
    assert holds["smallest_other_separation_pair"] == "a/c" and holds["smallest_other_separation"] == pytest.approx(0.5)
    assert holds["holds_by_separation"] and not holds["holds_by_cosine"]   # cos(a, c) = cos(a, b) = 1
    fails = A.pair_report(acc, names, [("a", "d")], exempt=[("a", "b")])["a/d"]
    assert fails["smallest_other_separation_pair"] == "a/c" and not fails["holds_by_separation"]
    assert not fails["holds_by_cosine"] and fails["largest_other_cosine_pair"] == "a/c"


def test_pixel_streams_read_each_scale_against_the_resized_label():
    label = torch.tensor([[0, 0, 1, 1]] * 2 + [[2, 2, 2, 2]] * 2).view(1, 1, 4, 4)
    coarse = torch.arange(2 * 2 * 2, dtype=torch.float).view(1, 2, 2, 2)
    fine = torch.rand(1, 3, 4, 4)
    streams = A.pixel_streams([coarse], [fine], label)
    vectors, classes = streams["conv_1"]
    assert vectors.shape == (4, 2) and classes.tolist() == [0, 1, 2, 2]
    assert vectors[1].tolist() == [1.0, 5.0]
    assert streams["all"][0].shape == (16, 5) and streams["all"][1].tolist() == label.flatten().tolist()


def test_analyze_writes_heatmaps_map_csv_and_page(tmp_path):
    acc = hand_made()
    names = ["bg", "left_eye", "right_eye", "unused"]
    samples = (torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), torch.tensor([0, 1, 2]))
    A.analyze({"conv_1": acc, "all": acc}, samples, names, str(tmp_path), "hand-made")
    for png in ("cosine.png", "cosine_conv_1.png", "map.png"):
        assert Image.open(tmp_path / png).size[0] > 100
    rows = list(csv.reader(open(tmp_path / "cosine.csv")))
    assert rows[0] == ["class", *names] and float(rows[1][2]) == pytest.approx(1.0)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["projection"] in ("PCA", "t-SNE") and "conv_1" in stats["streams"]
    assert "cosine.png" in (tmp_path / "index.html").read_text()


def test_tool_end_to_end_on_a_tiny_scgan(tiny_scgan, tmp_path):
    _, _, base = tiny_scgan
    out = tmp_path / "sv"
    analyze_sv.main([*base, "--num_images", "2", "--samples_per_class", "5", "--out", str(out)])
    stats = json.loads((out / "stats.json").read_text())
    assert stats["classes"][4:6] == ["left_eye", "right_eye"] and len(stats["cosine"]) == 9
    assert {"conv_1", "norm_1", "all"} <= set(stats["streams"])
    assert stats["streams"]["conv_1"]["normalized_entropy"] is not None   # softmax vectors
    assert (out / "cosine.png").exists() and (out / "map.png").exists()
    # the synthetic dataset's twins are reported per stream, each against the most similar other pair
    twins = stats["twins"]["all"]
    assert set(twins) == {"left_eye/right_eye", "upper_lip/lower_lip"}
    assert "skin/nose" not in {twins[p]["smallest_other_separation_pair"] for p in twins}


def test_tool_refuses_a_generator_without_semantic_vectors(parse_options, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "opt.json").write_text('{"netG": "spade"}')  # an experiment of another generator
    with pytest.raises(SystemExit, match="--netG spade has no semantic vectors"):
        analyze_sv.main(["--name", "x", "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1", "--netG", "spade",
                "--dataset_mode", "synthetic"])
