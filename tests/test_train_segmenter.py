"""evaluation/synthetic_segmenter.py: a few training steps on real synthetic images already segment them better than
noise, and the saved file is what evaluate.py's --seg_model reads (evaluation/metrics.py, `load_segmenter`)."""
import warnings

import pytest
import torch

from evaluation import synthetic_segmenter as S
from tools.train_segmenter import dataset_options


@pytest.mark.usefixtures("eval_extras")  # the mIoU is torchmetrics'
def test_a_few_steps_segment_real_images_better_than_noise(tmp_path):
    from evaluation.metrics import load_segmenter
    argv = ["--dataset_mode", "synthetic", "--max_dataset_size", "16", "--checkpoints_dir", str(tmp_path)]
    model = S.train(dataset_options(argv, "train"), iterations=40, batch_size=4, lr=5e-3, width=8, progress=False)
    test_opt = dataset_options([*argv, "--max_dataset_size", "8"], "test")
    real = S.score(model, test_opt)
    g = torch.Generator().manual_seed(0)
    noise = S.score(model, test_opt, images_from=lambda b: torch.rand(b["image"].shape, generator=g) * 2 - 1)
    assert real["miou"] > noise["miou"] + 0.05
    path = tmp_path / "seg.pt"
    S.save_segmenter(model, str(path))
    loaded = load_segmenter(str(path))
    for shape in ((2, 3, 64, 64), (1, 3, 40, 24)):   # any batch and size, as evaluate.py's datasets need
        x = torch.rand(shape, generator=g) * 2 - 1
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))


@pytest.mark.usefixtures("eval_extras")
def test_the_segmenter_is_saved_and_read_without_a_warning_and_torchscript_files_still_read(tmp_path, capfd):
    from evaluation.metrics import is_exported_program, load_segmenter
    model = S.UNet(9, width=4).eval()
    x = torch.rand(1, 3, 32, 32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        S.save_segmenter(model, str(tmp_path / "seg.pt"))
        loaded = load_segmenter(str(tmp_path / "seg.pt"))
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr().err == ""   # nor a logged one (torch.export logs about a file not named .pt2)
    assert is_exported_program(str(tmp_path / "seg.pt"))
    # a TorchScript file, as this project wrote before and as segmenters are often shared, reads silently too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(model), str(tmp_path / "old.pt"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = load_segmenter(str(tmp_path / "old.pt"))
    assert [str(w.message) for w in caught] == [] and not is_exported_program(str(tmp_path / "old.pt"))
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x)) and torch.equal(old(x), model(x))
    assert not any(p.requires_grad for p in loaded.parameters())
