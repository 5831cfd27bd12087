"""evaluation/synthetic_segmenter.py: a few training steps on real synthetic images already segment them better than
noise, and the saved TorchScript is what evaluate.py's --seg_model takes."""
import pytest
import torch

from evaluation import synthetic_segmenter as S
from tools.train_segmenter import dataset_options


@pytest.mark.usefixtures("eval_extras")  # the mIoU is torchmetrics'
def test_a_few_steps_segment_real_images_better_than_noise(tmp_path):
    argv = ["--dataset_mode", "synthetic", "--max_dataset_size", "16", "--checkpoints_dir", str(tmp_path)]
    model = S.train(dataset_options(argv, "train"), iterations=40, batch_size=4, lr=5e-3, width=8, progress=False)
    test_opt = dataset_options([*argv, "--max_dataset_size", "8"], "test")
    real = S.score(model, test_opt)
    g = torch.Generator().manual_seed(0)
    noise = S.score(model, test_opt, images_from=lambda b: torch.rand(b["image"].shape, generator=g) * 2 - 1)
    assert real["miou"] > noise["miou"] + 0.05
    path = tmp_path / "seg.pt"
    S.save_torchscript(model, str(path))
    logits = torch.jit.load(str(path))(torch.zeros(2, 3, 64, 64))
    assert logits.shape == (2, 9, 64, 64)
