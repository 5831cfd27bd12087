"""Pix2PixModel: input preprocessing, the forward modes and the named losses (models/pix2pix_model.py)."""
import pytest
import torch

from models.networks.loss import MissingWeightsError
from models.pix2pix_model import Pix2PixModel, instance_edges, one_hot_layout


def test_one_hot_with_dontcare():
    label = torch.tensor([[[[0, 1], [2, 3]]]])  # 3 classes + the dontcare index 3
    onehot = one_hot_layout(label, 4)
    assert onehot.shape == (1, 4, 2, 2)
    assert torch.equal(onehot.argmax(1), label[:, 0]) and torch.equal(onehot.sum(1), torch.ones(1, 2, 2))
    assert onehot[0, 3, 1, 1] == 1


def test_instance_edges_mark_both_sides_of_each_boundary():
    inst = torch.tensor([[[[1, 1, 2, 2],
                           [1, 1, 2, 2],
                           [3, 3, 3, 3]]]])
    expected = torch.tensor([[[[0, 1, 1, 0],
                               [1, 1, 1, 1],
                               [1, 1, 1, 1]]]]).float()
    assert torch.equal(instance_edges(inst), expected)


def batch(opt, b=2, image=True):
    h = w = opt.crop_size
    data = {"label": torch.randint(0, opt.label_nc, (b, 1, h, w)), "instance": 0}
    if not opt.no_instance:
        data["instance"] = torch.randint(0, 3, (b, 1, h, w))
    if image:
        data["image"] = torch.rand(b, 3, h, w) * 2 - 1
    return data


def small(parse_options, *argv):
    return parse_options("--dataset_mode", "synthetic", "--crop_size", 32, "--load_size", 32, "--ngf", 4,
                         "--ndf", 4, *argv)


def test_preprocess_builds_the_layout_with_dontcare_and_edges(parse_options):
    opt = parse_options("--dataset_mode", "coco", "--crop_size", 32, "--ngf", 4, "--ndf", 4, "--label_nc", 5,
                        "--no_vgg_loss")
    model = Pix2PixModel(opt)
    data = batch(opt)
    data["label"][0, 0, 0, 0] = 5  # dontcare
    layout, image = model.preprocess_input(data)
    assert layout.shape == (2, 5 + 1 + 1, 32, 32) == (2, opt.semantic_nc, 32, 32)
    # the class ids, not a one-hot tensor; its tensor is the one-hot then the edges
    assert layout.num_classes == 6 and layout.ids[0, 0, 0] == 5
    dense = layout.tensor()
    assert dense[0, 5, 0, 0] == 1 and torch.equal(dense[:, 6:], instance_edges(data["instance"]))


def test_generator_and_discriminator_losses(parse_options):
    model = Pix2PixModel(small(parse_options, "--netG", "spade"))
    losses, fake, aux = model(batch(model.opt), mode="generator")
    assert list(losses) == ["GAN", "GAN_Feat"] and fake.shape == (2, 3, 32, 32) and aux == {}
    d_losses = model(batch(model.opt), mode="discriminator")
    assert list(d_losses) == ["D_Fake", "D_real"]
    assert all(v.requires_grad for v in d_losses.values())
    assert not any(p.grad is not None for p in model.netG.parameters())


def test_scgan_adds_the_semantic_vector_loss_and_image(parse_options):
    model = Pix2PixModel(small(parse_options, "--netG", "scgan", "--nrf", 4, "--nff", 4, "--crop_size", 64))
    losses, fake, aux = model(batch(model.opt), mode="generator")
    assert list(losses) == ["GAN", "GAN_Feat", "SV"] and aux["svg_image"].shape == fake.shape
    model = Pix2PixModel(small(parse_options, "--netG", "scgan", "--nrf", 4, "--nff", 4, "--crop_size", 64,
                               "--sv_loss", "none"))
    assert "SV" not in model(batch(model.opt), mode="generator")[0]


def test_vae_modes(parse_options):
    model = Pix2PixModel(small(parse_options, "--use_vae", "--z_dim", 8))
    losses, _, _ = model(batch(model.opt), mode="generator")
    assert list(losses)[0] == "KLD"
    mu, logvar = model(batch(model.opt), mode="encode_only")
    assert mu.shape == logvar.shape == (2, 8)
    fake = model(batch(model.opt, image=False), mode="inference")  # labels only: z ~ N(0, I)
    assert fake.shape == (2, 3, 32, 32) and not fake.requires_grad


def test_vgg_loss(parse_options, vgg_weights, tmp_path):
    model = Pix2PixModel(small(parse_options, "--lambda_vgg", 10, "--vgg_weights", vgg_weights, "--no_ganFeat_loss"))
    assert list(model(batch(model.opt), mode="generator")[0]) == ["GAN", "VGG"]
    model = Pix2PixModel(small(parse_options, "--lambda_vgg", 10, "--vgg_weights", tmp_path / "x.pth", "--no_vgg_loss"))
    assert model.criterionVGG is None
    with pytest.raises(MissingWeightsError, match="--vgg_weights"):
        Pix2PixModel(small(parse_options, "--lambda_vgg", 10, "--vgg_weights", tmp_path / "x.pth"))


def test_unknown_mode(parse_options):
    model = Pix2PixModel(small(parse_options))
    with pytest.raises(ValueError, match="unknown mode 'sample'"):
        model(batch(model.opt), mode="sample")
