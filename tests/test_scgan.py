"""The SC-GAN generator: SVG, semantic vectors, SRG wiring, gradients and the ablation switches
(models/networks/scgan.py; paper §3.1-3.2, Tables 3-6)."""
import math

import pytest
import torch
from torch.nn import functional as F

from models.networks.scgan import (SCGANGenerator, SemanticVectorGenerator, channel_pool_matrix,
                                   semantic_activation)


def layout(b, c, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, c, (b, 1, h // 8, w // 8), generator=g)
    label = F.interpolate(label.float(), size=(h, w)).long()  # blocky regions, like a real layout
    return torch.zeros(b, c, h, w).scatter_(1, label, 1.0)


def tiny(**kw):
    args = dict(semantic_nc=5, ngf=4, nrf=8, nff=4, crop_size=64, n_conv=3, n_norm=2)
    args.update(kw)
    torch.manual_seed(0)
    return SCGANGenerator(**args)


@pytest.mark.parametrize("channels,n", [(512, 3), (32, 4), (24, 2), (7, 3), (5, 5)])
def test_channel_pooling_equals_adaptive_average_pooling_over_channels(channels, n):
    x = torch.randn(2, channels, 3, 4)
    expected = F.adaptive_avg_pool3d(x.unsqueeze(1), (n, 3, 4)).squeeze(1)
    pooled = F.conv2d(x, channel_pool_matrix(channels, n)[:, :, None, None])
    assert torch.allclose(pooled, expected, atol=1e-5)


def test_layout_pyramid_is_box_filtered():
    svg = SemanticVectorGenerator(semantic_nc=3, nrf=8, num_levels=3, n_conv=2, n_norm=2)
    seg = layout(1, 3, 16, 16)
    levels = svg.layout_pyramid(seg)
    assert [lv.shape[-1] for lv in levels] == [4, 8, 16]
    assert torch.allclose(levels[1], F.avg_pool2d(seg, 2), atol=1e-6)
    assert torch.allclose(levels[0].sum(1), torch.ones(1, 4, 4), atol=1e-6)  # still a soft one-hot


@pytest.mark.parametrize("ups,sizes", [("normal", [2, 4, 8, 16, 32, 64]), ("more", [1, 2, 4, 8, 16, 32, 64])])
def test_semantic_vectors_at_every_srg_resolution(ups, sizes):
    g = tiny(num_upsampling_layers=ups)
    v_conv, v_norm, svg_image = g.semantic_vectors(layout(2, 5, 64, 64))
    assert [v.shape[-1] for v in v_conv] == sizes and [v.shape[-2] for v in v_norm] == sizes
    assert all(v.shape[:2] == (2, 3) for v in v_conv) and all(v.shape[:2] == (2, 2) for v in v_norm)
    assert svg_image.shape == (2, 3, 64, 64) and svg_image.abs().max() <= 1


def test_softmax_vectors_sum_to_one_and_tau_sets_their_sharpness():
    raw = torch.randn(2, 4, 5, 5) * 10
    entropies = []
    for tau in (0.001, 0.05, 0.5, 5.0):
        v = semantic_activation(raw, "softmax", tau)
        assert torch.allclose(v.sum(1), torch.ones(2, 5, 5), atol=1e-6) and (v >= 0).all()
        entropies.append(-(v * v.clamp_min(1e-12).log()).sum(1).mean().item())
    assert entropies[0] > entropies[1] > entropies[2] > entropies[3]  # larger tau, sharper vectors
    assert entropies[0] == pytest.approx(torch.log(torch.tensor(4.0)).item(), abs=0.05)  # tau -> 0: uniform


@pytest.mark.parametrize("kind,check", [
    ("sigmoid", lambda v, r: torch.allclose(v, torch.sigmoid(0.5 * r))),
    ("tanh", lambda v, r: torch.allclose(v, torch.tanh(0.5 * r))),
    ("relu", lambda v, r: torch.allclose(v, F.relu(0.5 * r))),
    ("none", lambda v, r: torch.allclose(v, 0.5 * r)),
])
def test_other_activations(kind, check):
    raw = torch.randn(2, 3, 4, 4)
    assert check(semantic_activation(raw, kind, 0.5), raw)
    with pytest.raises(ValueError, match="--sv_activation"):
        semantic_activation(raw, "swish", 0.5)


@pytest.mark.parametrize("crop,aspect,ups", [(64, 1.0, "normal"), (64, 2.0, "normal"), (128, 2.0, "more")])
def test_output_shape_and_range(crop, aspect, ups):
    g = tiny(crop_size=crop, aspect_ratio=aspect, num_upsampling_layers=ups)
    h = int(crop / aspect)
    image, aux = g(layout(2, 5, h, crop), return_aux=True)
    assert image.shape == (2, 3, h, crop) and image.abs().max() <= 1
    assert aux["svg_image"].shape == (2, 3, h, crop)
    assert aux["semantic_vectors"][-1].shape == (2, 3, h, crop)
    with pytest.raises(ValueError, match="built for"):
        g(layout(1, 5, h // 2, crop // 2))


def test_blocks_read_the_vectors_of_their_own_scale():
    """normal: head_0 V1, G_middle_0 and G_middle_1 V2, up_0..up_3 V3..V6 (the released code's wiring)."""
    g = tiny()
    seen = {}
    for name in ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"):
        getattr(g, name).register_forward_hook(
            lambda m, args, out, name=name: seen.__setitem__(name, (args[0].shape[-1], args[1].shape[-1])))
    g(layout(1, 5, 64, 64))
    assert seen == {"head_0": (2, 2), "G_middle_0": (4, 4), "G_middle_1": (4, 4), "up_0": (8, 8),
                    "up_1": (16, 16), "up_2": (32, 32), "up_3": (64, 64)}


def test_vae_input():
    g = tiny(use_vae=True, z_dim=8)
    assert g.fc.in_features == 8 and g.fc.out_features == 16 * 4 * 2 * 2
    seg = layout(2, 5, 64, 64)
    z = torch.randn(2, 8)
    assert torch.equal(g.eval()(seg, z=z), g(seg, z=z))
    assert g(seg).shape == (2, 3, 64, 64)  # z drawn from N(0, I) when not given


def svg_gradient(g, loss_of):
    seg = layout(2, 5, 64, 64)
    image, aux = g(seg, return_aux=True)
    g.zero_grad()
    loss_of(image, aux).backward()
    stage_grad = g.svg.stages[0][0].parametrizations.weight.original.grad
    return 0.0 if stage_grad is None else stage_grad.abs().sum().item()


def test_gradients_reach_the_svg_through_both_paths():
    g = tiny()
    assert svg_gradient(g, lambda image, aux: aux["svg_image"].abs().mean()) > 0    # through L_s
    assert svg_gradient(g, lambda image, aux: image.abs().mean()) > 0               # through the SRG


def test_sv_detach_leaves_only_the_ls_path():
    g = tiny(sv_detach=True)
    assert svg_gradient(g, lambda image, aux: image.abs().mean()) == 0.0
    assert svg_gradient(g, lambda image, aux: aux["svg_image"].abs().mean()) > 0


def test_spectral_norm_placement():
    g = tiny()
    assert hasattr(g.svg.stages[0][0], "parametrizations")        # SVG convs
    assert not hasattr(g.svg.to_image[0], "parametrizations")      # not the image head
    assert hasattr(g.up_0.conv_0, "parametrizations") and hasattr(g.up_0.conv_s, "parametrizations")
    assert not hasattr(g.fc, "parametrizations") and not hasattr(g.conv_img, "parametrizations")
    assert not hasattr(tiny(spectral_svg=False).svg.stages[0][0], "parametrizations")



@pytest.mark.parametrize("switch", [
    ["--sc_conv", "conv"], ["--sc_norm", "bn"], ["--sc_conv", "conv", "--sc_norm", "bn"],
    ["--sc_conv_candidates", "1"], ["--sc_conv_candidates", "5"], ["--sc_norm_candidates", "4"],
    ["--sv_activation", "sigmoid"], ["--sv_activation", "tanh"], ["--sv_activation", "relu"],
    ["--sv_activation", "none"], ["--sv_tau", "0.5"], ["--sv_loss", "l2"], ["--sv_loss", "vgg"],
    ["--sv_loss", "none"], ["--sv_detach"], ["--no_spectral_on_routing"], ["--num_upsampling_layers", "more"],
    ["--netD", "multiscale"], ["--use_vae"],
])
def test_every_ablation_switch_builds_and_trains_one_step(parse_options, vgg_weights, switch):
    from trainers.pix2pix_trainer import Pix2PixTrainer
    opt = parse_options("--netG", "scgan", "--dataset_mode", "synthetic", "--crop_size", 64, "--ngf", 4,
                        "--nrf", 4, "--nff", 4, "--ndf", 4, "--vgg_weights", vgg_weights, *switch)
    trainer = Pix2PixTrainer(opt)
    g = trainer.model.netG
    data = {"label": torch.randint(0, 9, (2, 1, 64, 64)), "instance": 0, "image": torch.rand(2, 3, 64, 64) * 2 - 1}
    before = [p.detach().clone() for p in g.parameters()]
    trainer.run_generator_one_step(data)
    trainer.run_discriminator_one_step(data)
    losses = trainer.get_latest_losses()
    assert all(math.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, g.parameters()))
    assert ("SV" in losses) == (opt.sv_loss != "none")
    # the wiring: the built modules carry what the switch asked for (an ignored option fails here)
    model = trainer.model
    expected_activation = switch[1] if switch[0] == "--sv_activation" else "softmax"
    assert (g.sv_activation, g.sv_tau) == (expected_activation, 0.5 if switch[0] == "--sv_tau" else 0.05)
    assert g.sv_detach == (switch == ["--sv_detach"])
    if opt.sv_loss != "none":
        assert model.criterionSV.kind == (switch[1] if switch[0] == "--sv_loss" else "l1")
    else:
        assert "SV" not in model.extra_criteria
    assert type(model.netD).__name__ == ("MultiscaleDiscriminator" if "multiscale" in switch else "FPSEDiscriminator")
    assert (model.netE is not None) == ("--use_vae" in switch) == ("KLD" in losses)
    if "--sc_conv_candidates" in switch:
        assert g.up_0.conv_0.n_candidates == int(switch[1])
    if "--sc_norm_candidates" in switch:
        assert g.up_0.norm_0.scale.shape[0] == int(switch[1])
    if "--sc_conv" in switch:
        assert type(g.up_0.conv_0).__name__ == "VConcatConv"
    if switch == ["--sc_norm", "bn"]:
        assert type(g.up_0.norm_0).__name__ == "AffineNorm"
    if switch == ["--no_spectral_on_routing"]:
        assert not hasattr(g.svg.stages[0][0], "parametrizations") and hasattr(g.up_0.conv_0, "parametrizations")
    if switch == ["--num_upsampling_layers", "more"]:
        assert len(g.svg.stages) == 7


def test_one_hot_idiom_with_permuted_layout_trains():
    """G(F.one_hot(labels, n).permute(0, 3, 1, 2).float()).mean().backward(): a permuted (channels-last) layout
    and an expanded incoming gradient give the gradients of a contiguous layout, in float64."""
    import copy
    g = tiny().double()
    twin = copy.deepcopy(g)  # the spectral norms' power iterations step at each forward: a fresh copy each
    labels = torch.randint(0, 5, (2, 64, 64), generator=torch.Generator().manual_seed(1))
    seg = F.one_hot(labels, 5).permute(0, 3, 1, 2).double()
    assert not seg.is_contiguous()
    g(seg).mean().backward()
    twin(seg.contiguous()).mean().backward()
    reached = 0
    for (name, p), q in zip(g.named_parameters(), twin.parameters()):
        assert (p.grad is None) == (q.grad is None), name  # the SVG's own image head is off this path
        if p.grad is not None:  # differences measured: 4e-15 at most
            assert torch.isfinite(p.grad).all() and torch.allclose(p.grad, q.grad, rtol=1e-9, atol=1e-13), name
            reached += 1
    assert reached == len(list(g.parameters())) - len(list(g.svg.to_image.parameters()))
