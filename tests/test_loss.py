"""Losses on known inputs (models/networks/loss.py)."""
import pytest
import torch
import torchvision
from torch.nn import functional as F

from models.networks.loss import (GANLoss, MissingWeightsError, SemanticVectorLoss, VGGLoss, VGG19,
                                  feature_matching_loss, kld_loss)

SCORES = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])


def test_hinge_loss():
    gan = GANLoss("hinge")
    assert gan(SCORES, True, for_discriminator=True).item() == pytest.approx((3 + 1.5 + 1 + 0.5 + 0) / 5)
    assert gan(SCORES, False, for_discriminator=True).item() == pytest.approx((0 + 0.5 + 1 + 1.5 + 3) / 5)
    assert gan(SCORES, True, for_discriminator=False).item() == pytest.approx(0.0)
    assert gan(torch.ones(3), True, for_discriminator=False).item() == pytest.approx(-1.0)


def test_ls_original_and_wgan_losses():
    x = torch.tensor([0.0, 1.0])
    assert GANLoss("ls")(x, True).item() == pytest.approx(0.5)
    assert GANLoss("ls")(x, False).item() == pytest.approx(0.5)
    assert GANLoss("original")(torch.zeros(4), True).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert GANLoss("w")(SCORES + 1, True).item() == pytest.approx(-1.0)
    assert GANLoss("w")(SCORES + 1, False).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="--gan_mode"):
        GANLoss("nonsense")


def test_gan_loss_averages_over_scales():
    gan = GANLoss("hinge")
    assert gan([torch.full((2, 1, 4, 4), 3.0), torch.full((2, 1, 2, 2), -1.0)], True).item() == \
        pytest.approx((0.0 + 2.0) / 2)


def test_feature_matching_sums_within_groups_and_averages_over_groups():
    fake = [[torch.zeros(2, 3), torch.zeros(2, 1)], [torch.zeros(4)]]
    real = [[torch.ones(2, 3), torch.full((2, 1), 2.0)], [torch.full((4,), 3.0)]]
    assert feature_matching_loss(fake, real).item() == pytest.approx(((1 + 2) + 3) / 2)
    real_leaf = torch.ones(2, 3, requires_grad=True)
    fake_leaf = torch.zeros(2, 3, requires_grad=True)
    feature_matching_loss([[fake_leaf]], [[real_leaf]]).backward()
    assert real_leaf.grad is None and fake_leaf.grad is not None  # the real features are targets


def test_kld():
    mu, logvar = torch.zeros(2, 4), torch.zeros(2, 4)
    assert kld_loss(mu, logvar).item() == pytest.approx(0.0)
    assert kld_loss(torch.ones(1, 2), torch.zeros(1, 2)).item() == pytest.approx(1.0)  # 0.5 * sum(mu^2)


def test_missing_vgg_weights_names_the_option_and_the_file(tmp_path):
    path = str(tmp_path / "vgg19-dcbb9e9d.pth")
    with pytest.raises(MissingWeightsError) as e:
        VGGLoss(path)
    assert f"--vgg_weights {path}: file not found" in str(e.value)
    assert "vgg19-dcbb9e9d.pth" in str(e.value) and "--no_vgg_loss" in str(e.value)


def test_wrong_vgg_file_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a torchvision VGG19 state dict"):
        VGGLoss(str(path))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read"):
        VGGLoss(str(tmp_path / "junk.pth"))


def test_vgg19_slices_are_torchvisions_relu_x_1(vgg_weights):
    ours = VGG19(vgg_weights)
    reference = torchvision.models.vgg19(weights=None).features[:30]
    state = torch.load(vgg_weights, weights_only=True)
    reference.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")})
    x = torch.randn(1, 3, 32, 32)
    outs = ours(x)
    h, expected = x, []
    for i, layer in enumerate(reference):
        h = layer(h)
        if i in (1, 6, 11, 20, 29):  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
            expected.append(h)
    assert len(outs) == 5 and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(outs, expected))
    assert not any(p.requires_grad for p in ours.parameters())
    ours.train()
    assert not ours.training


def test_vgg_loss_weights(vgg_weights):
    loss = VGGLoss(vgg_weights)
    x, y = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    expected = sum(w * F.l1_loss(a, b) for w, a, b in zip([1 / 32, 1 / 16, 1 / 8, 1 / 4, 1], loss.vgg(x), loss.vgg(y)))
    assert loss(x, y).item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss(x, x).item() == 0.0


def test_semantic_vector_loss(vgg_weights):
    a, b = torch.zeros(1, 3, 32, 32), torch.full((1, 3, 32, 32), 0.5)
    assert SemanticVectorLoss("l1")(a, b).item() == pytest.approx(0.5)
    assert SemanticVectorLoss("l2")(a, b).item() == pytest.approx(0.25)
    vgg = VGGLoss(vgg_weights)
    assert SemanticVectorLoss("vgg", vgg)(a, b).item() == pytest.approx(vgg(a, b).item())
    with pytest.raises(ValueError, match="--sv_loss vgg needs"):
        SemanticVectorLoss("vgg")
