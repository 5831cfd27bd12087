"""OASIS's discriminator and training (models/networks/oasis_discriminator.py, oasis_loss.py; SC-GAN appendix
B.1): class-balanced N+1 losses against hand computations, LabelMix, the U-Net's shape and widths, the options
it sets, 3-D noise, and one training step of scgan and spade with --netD oasis."""
import math

import pytest
import torch
from torch import nn

from models.networks.generator import SPADEGenerator, with_3d_noise
from models.networks.normalization import SpectralNormFP32
from models.networks.oasis_discriminator import OASISDiscriminator
from models.networks.oasis_loss import (OASISLoss, class_balance_weights, labelmix_loss, labelmix_mask,
                                        segmentation_targets, weighted_cross_entropy)
from models.networks.scgan import SCGANGenerator
from trainers.pix2pix_trainer import Pix2PixTrainer, loss_weights


def cross_entropy_by_hand(logits, b, y, x, target):
    """-log softmax(logits[b, :, y, x])[target], with math on Python floats."""
    values = [float(v) for v in logits[b, :, y, x]]
    return math.log(sum(math.exp(v) for v in values)) - values[target]


# ---------------------------------------------------------------------------------------------------------
# class balancing and the N+1 losses

def test_class_weights_from_frequencies_by_hand():
    # 2 images of 2x2, 4 classes: class 0 on 5 pixels, class 1 on 2, class 3 on 1, class 2 absent -> K = 3
    label = torch.tensor([[[0, 0], [0, 1]],
                          [[0, 3], [1, 0]]])
    w = class_balance_weights(label, 4)
    P, K = 8, 3
    expected = {0: P / (K * 5), 1: P / (K * 2), 3: P / (K * 1)}
    for b in range(2):
        for y in range(2):
            for x in range(2):
                assert float(w[b, y, x]) == pytest.approx(expected[int(label[b, y, x])])
    assert float(w.sum()) == pytest.approx(P)  # each present class carries P / K: the weights average to 1


def test_dontcare_pixels_weigh_nothing_and_are_no_class():
    # label_nc 2 + dontcare (id 2): class 0 on 2 pixels, class 1 on 1, dontcare on 1 -> K = 2, P = 4
    label = torch.tensor([[[0, 0], [1, 2]]])
    w = class_balance_weights(label, 3, dontcare=2)
    assert w.flatten().tolist() == pytest.approx([4 / (2 * 2), 4 / (2 * 2), 4 / (2 * 1), 0.0])


def test_oasis_losses_equal_a_hand_computation():
    torch.manual_seed(0)
    n = 3                                       # classes; D has n + 1 logits, channel 0 = fake
    label = torch.tensor([[[0, 0, 2], [0, 2, 2]],
                          [[1, 1, 1], [0, 0, 0]]])  # (2, 2, 3): counts 6, 3, 3; P = 12, K = 3
    counts = {0: 6, 1: 3, 2: 3}
    # float64, against sums of Python floats: measured 3.3e-16 apart (float32 logits: 1.2e-7), so rel=1e-12
    logits_real, logits_fake = (torch.randn(2, n + 1, 2, 3, dtype=torch.float64) for _ in range(2))
    pixels = [(b, y, x) for b in range(2) for y in range(2) for x in range(3)]

    def weight(c):
        return 12 / (3 * counts[c])

    d_real = sum(weight(int(label[p])) * cross_entropy_by_hand(logits_real, *p, int(label[p]) + 1)
                 for p in pixels) / 12
    d_fake = sum(cross_entropy_by_hand(logits_fake, *p, 0) for p in pixels) / 12
    g_adv = sum(weight(int(label[p])) * cross_entropy_by_hand(logits_fake, *p, int(label[p]) + 1)
                for p in pixels) / 12

    loss = OASISLoss(num_classes=n, labelmix=False)
    assert loss.real_loss(logits_real, label).dtype == torch.float64
    assert float(loss.real_loss(logits_real, label)) == pytest.approx(d_real, rel=1e-12)
    assert float(weighted_cross_entropy(logits_fake, segmentation_targets(label, real=False))) == \
        pytest.approx(d_fake, rel=1e-12)

    # through the model-facing API: a "discriminator" that returns the logits above for fake and real
    layout = torch.zeros(2, n, 2, 3).scatter_(1, label[:, None], 1.0)
    fake, real = torch.zeros(2, 3, 2, 3), torch.ones(2, 3, 2, 3)

    def netD(images):
        return torch.cat([logits_fake if float(im.mean()) == 0 else logits_real for im in images.split(2)])

    losses = loss.discriminator_losses(netD, fake, real, layout)
    assert list(losses) == ["D_Fake", "D_real"]
    assert float(losses["D_Fake"]) == pytest.approx(d_fake, rel=1e-12)
    assert float(losses["D_real"]) == pytest.approx(d_real, rel=1e-12)
    assert float(loss.generator_loss(netD, fake, layout)) == pytest.approx(g_adv, rel=1e-12)


def test_fake_is_channel_zero_and_class_c_is_channel_c_plus_one():
    label = torch.tensor([[[0, 2], [1, 1]]])
    assert segmentation_targets(label, real=True).tolist() == [[[1, 3], [2, 2]]]
    assert segmentation_targets(label, real=False).tolist() == [[[0, 0], [0, 0]]]
    # logits that put all mass on the fake channel: D_Fake ~ 0, D_real and G's loss large
    logits = torch.full((1, 4, 2, 2), -20.0)
    logits[:, 0] = 20.0
    assert float(weighted_cross_entropy(logits, segmentation_targets(label, real=False))) < 1e-6
    assert float(OASISLoss(3).real_loss(logits, label)) > 39


# ---------------------------------------------------------------------------------------------------------
# LabelMix

def test_labelmix_mask_is_one_bit_per_image_and_class():
    torch.manual_seed(0)
    label = torch.randint(0, 6, (8, 16, 16))
    mask = labelmix_mask(label, 6)
    assert mask.shape == (8, 1, 16, 16) and set(mask.unique().tolist()) <= {0.0, 1.0}
    seen = set()
    for b in range(8):
        for c in label[b].unique().tolist():
            values = mask[b, 0][label[b] == c].unique().tolist()
            assert len(values) == 1, (b, c)  # the whole class region goes one way
            seen.add(values[0])
    assert seen == {0.0, 1.0}
    # drawn per image: the same class goes to real in some images and to fake in others
    per_image = {float(mask[b, 0][label[b] == 0][0]) for b in range(8)}
    assert per_image == {0.0, 1.0}


def test_labelmix_mixes_exactly_by_the_mask():
    """With a per-pixel affine "discriminator" (a 1x1 conv), D(M*real + (1-M)*fake) = M*D(real) + (1-M)*D(fake)
    exactly, so D_LabelMix is 0: the mixed image and the mixed logits use the same mask, pixel for pixel. A D with
    spatial context (3x3) gives a positive value equal to the MSE computed by hand."""
    torch.manual_seed(0)
    n, b = 4, 2
    label = torch.randint(0, n, (b, 8, 8))
    layout = torch.zeros(b, n, 8, 8).scatter_(1, label[:, None], 1.0)
    real, fake = torch.randn(b, 3, 8, 8), torch.randn(b, 3, 8, 8)
    loss = OASISLoss(n, labelmix=True)
    pointwise = nn.Conv2d(3, n + 1, 1)
    with torch.no_grad():
        losses = loss.discriminator_losses(pointwise, fake, real, layout)
    assert list(losses) == ["D_Fake", "D_real", "D_LabelMix"] and float(losses["D_LabelMix"]) < 1e-10

    spatial = nn.Conv2d(3, n + 1, 3, padding=1)
    torch.manual_seed(1)
    with torch.no_grad():
        got = float(loss.discriminator_losses(spatial, fake, real, layout)["D_LabelMix"])
        torch.manual_seed(1)
        mask = labelmix_mask(label, n)  # the same draw
        mixed = torch.where(mask.bool(), real, fake)
        out_mixed, out_real, out_fake = spatial(mixed), spatial(real), spatial(fake)
    total = 0.0
    for i in range(b):
        for c in range(n + 1):
            for y in range(8):
                for x in range(8):
                    target = out_real[i, c, y, x] if mask[i, 0, y, x] else out_fake[i, c, y, x]
                    total += float(out_mixed[i, c, y, x] - target) ** 2
    assert got > 1e-4 and got == pytest.approx(total / (b * (n + 1) * 64), rel=1e-4)
    assert float(labelmix_loss(mask, out_mixed, out_fake, out_real)) == pytest.approx(got, rel=1e-6)


# ---------------------------------------------------------------------------------------------------------
# the U-Net

def test_discriminator_output_and_widths(parse_options):
    opt = parse_options("--netD", "oasis", "--dataset_mode", "coco", "--label_nc", 5, "--crop_size", 64,
                        "--ndf", 4, "--no_vgg_loss")
    from models import networks
    net = networks.define_D(opt, verbose=False)
    assert isinstance(net, OASISDiscriminator) and net.segments_image
    logits = net(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 5 + 1 + 1, 64, 64)  # label_nc + dontcare + fake, at full resolution
    # OASIS's encoder widths 128, 128, 256, 256, 512, 512 at ndf 64, here in units of ndf 4
    assert [blk.conv2.out_channels for blk in net.down] == [8, 8, 16, 16, 32, 32]
    assert [blk.conv2.out_channels for blk in net.up] == [32, 16, 16, 8, 8, 4]
    # --norm_D spectral (its default): spectral norm on every 3x3 and shortcut conv, no norm layer, plain head
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(any(isinstance(p, SpectralNormFP32) for p in m.parametrizations.weight) for m in convs
               if m is not net.to_logits)
    assert not hasattr(net.to_logits, "parametrizations")
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) for m in net.modules())
    with_instance = networks.define_D(parse_options("--netD", "oasis", "--dataset_mode", "synthetic", "--ndf", 4,
                                                    "--norm_D", "spectralinstance"), verbose=False)
    assert any(isinstance(m, nn.InstanceNorm2d) for m in with_instance.modules())


def test_oasis_parameter_count_by_hand():
    """OASIS's channel list for ADE20K (151 classes with dontcare): 3, 128, 128, 256, 256, 512, 512; decoder
    512 -> 512, then 2*512 -> 256, 2*256 -> 256, 2*256 -> 128, 2*128 -> 128, 2*128 -> 64; 1x1 head to 152."""
    def block(fin, fout):
        return fin * fout * 9 + fout + fout * fout * 9 + fout + (fin * fout + fout if fin != fout else 0)
    ch = [3, 128, 128, 256, 256, 512, 512]
    expected = sum(block(a, b) for a, b in zip(ch, ch[1:]))
    expected += block(512, 512) + sum(block(2 * a, b) for a, b in
                                      [(512, 256), (256, 256), (256, 128), (128, 128), (128, 64)])
    expected += 64 * 152 + 152
    with torch.device("meta"):
        net = OASISDiscriminator(151, ndf=64)
    assert net.num_parameters() == expected == 22_258_904


def test_image_sides_must_divide_by_the_depth(parse_options):
    from models import networks
    opt = parse_options("--netD", "oasis", "--dataset_mode", "synthetic", "--crop_size", 32, "--load_size", 32)
    with pytest.raises(ValueError, match=r"--oasis_D_blocks 6 needs image sides divisible by 2\^6 = 64.*32x32"):
        networks.define_D(opt, verbose=False)
    opt = parse_options("--netD", "oasis", "--dataset_mode", "synthetic", "--crop_size", 32, "--load_size", 32,
                        "--oasis_D_blocks", 5, "--ndf", 4)
    assert len(networks.define_D(opt, verbose=False).down) == 5


# ---------------------------------------------------------------------------------------------------------
# options

def test_explicit_netD_oasis_wins_over_scgans_fpse_and_sets_oasis_defaults(parse_options):
    opt = parse_options("--netG", "scgan", "--dataset_mode", "synthetic", "--netD", "oasis")
    assert (opt.netD, opt.norm_D, opt.no_ganFeat_loss, opt.lambda_labelmix) == ("oasis", "spectral", True, 10.0)
    assert opt.ema_decay == 0.995  # the synthetic demo's own EMA default (a short run) is kept
    assert parse_options("--netG", "scgan", "--dataset_mode", "ade20k", "--netD", "oasis").ema_decay == 0.9999
    assert parse_options("--netG", "scgan", "--dataset_mode", "synthetic").netD == "fpse"
    assert parse_options("--netG", "scgan", "--dataset_mode", "ade20k", "--netD", "oasis").netD == "oasis"
    for chosen in (0, 0.99):  # the user's EMA decay, even 0 (off), wins
        assert parse_options("--netD", "oasis", "--dataset_mode", "synthetic", "--ema_decay", chosen).ema_decay == chosen
    assert parse_options("--netD", "multiscale", "--dataset_mode", "ade20k").ema_decay == 0


def test_labelmix_weight_is_a_discriminator_loss_weight(parse_options):
    opt = parse_options("--netD", "oasis", "--dataset_mode", "synthetic", "--lambda_labelmix", 3)
    assert loss_weights(opt)["D_LabelMix"] == 3
    assert "D_LabelMix" not in loss_weights(parse_options("--dataset_mode", "synthetic"))


# ---------------------------------------------------------------------------------------------------------
# 3-D noise

def test_3d_noise_is_one_vector_per_image_before_the_layout():
    seg = torch.rand(2, 5, 4, 6)
    out = with_3d_noise(seg, 3)
    assert out.shape == (2, 8, 4, 6) and torch.equal(out[:, 3:], seg)
    noise = out[:, :3]
    assert torch.equal(noise, noise[:, :, :1, :1].expand_as(noise))  # constant over the pixels
    assert not torch.equal(noise[0], noise[1])                          # drawn per image
    assert with_3d_noise(seg, 0) is seg


@pytest.mark.parametrize("netG", ["spade", "scgan"])
def test_generators_read_the_noise(parse_options, netG):
    from models import networks
    argv = ["--netG", netG, "--dataset_mode", "synthetic", "--ngf", 4, "--crop_size", 32, "--load_size", 32]
    argv += ["--nrf", 4, "--nff", 4] if netG == "scgan" else []
    torch.manual_seed(0)
    plain = networks.define_G(parse_options(*argv), verbose=False)
    torch.manual_seed(0)
    noisy = networks.define_G(parse_options(*argv, "--oasis_noise_nc", 6), verbose=False)
    assert noisy.noise_nc == 6 and plain.noise_nc == 0
    s = plain.fc.in_channels
    assert noisy.fc.in_channels == s + 6 and noisy.up_0.norm_s.mlp_shared[0].in_channels == s + 6
    if netG == "scgan":
        assert noisy.svg.stages[0][0].in_channels == s + 6 and noisy.svg.stages[1][1].in_channels == 16 * 4 + s + 6
    seg = torch.zeros(2, s, 32, 32)
    seg[:, 0] = 1
    noisy.eval(), plain.eval()
    with torch.no_grad():
        torch.manual_seed(1)
        a = noisy(seg)
        torch.manual_seed(1)
        again = noisy(seg)
        b = noisy(seg)
        assert torch.equal(a, again) and not torch.allclose(a, b)  # new noise, new image
        assert torch.equal(plain(seg), plain(seg))


def test_noise_option_belongs_to_the_generators_that_read_it(parse_options, capsys):
    with pytest.raises(SystemExit):
        parse_options("--netG", "pix2pixhd", "--dataset_mode", "synthetic", "--oasis_noise_nc", 8)
    assert "unrecognized arguments: --oasis_noise_nc" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_options("--netG", "spade", "--dataset_mode", "synthetic", "--oasis_noise_nc", -1)
    assert "argument --oasis_noise_nc: must be an integer >= 0, got -1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--oasis_noise_nc 8 with --sv_position pyramid"):
        SCGANGenerator(5, ngf=4, nrf=4, nff=4, crop_size=64, position="pyramid", noise_nc=8)
    assert SPADEGenerator(5, ngf=4, crop_size=64, noise_nc=8).fc.in_channels == 13


# ---------------------------------------------------------------------------------------------------------
# one training step with --netD oasis

def oasis_trainer(parse_options, netG, *argv):
    extra = ["--nrf", 4, "--nff", 4] if netG == "scgan" else []
    opt = parse_options("--dataset_mode", "synthetic", "--netG", netG, "--netD", "oasis", "--crop_size", 32,
                        "--load_size", 32, "--ngf", 4, "--ndf", 4, "--oasis_D_blocks", 5, *extra, *argv)
    torch.manual_seed(0)
    return Pix2PixTrainer(opt)


def batch(size=32, b=2):
    gen = torch.Generator().manual_seed(3)
    return {"label": torch.randint(0, 9, (b, 1, size, size), generator=gen), "instance": 0,
            "image": torch.rand(b, 3, size, size, generator=gen) * 2 - 1}


@pytest.mark.parametrize("netG", ["scgan", "spade"])
def test_one_training_step(parse_options, netG):
    t = oasis_trainer(parse_options, netG, "--oasis_noise_nc", 4)
    model = t.model
    assert isinstance(model.netD, OASISDiscriminator) and model.criterionOASIS is not None
    assert t.netG_ema is not None and t.opt.ema_decay == 0.995  # the synthetic demo's own default
    g0 = [p.detach().clone() for p in model.netG.parameters()]
    d0 = [p.detach().clone() for p in model.netD.parameters()]
    t.run_generator_one_step(batch())
    t.run_discriminator_one_step(batch())
    losses = t.get_latest_losses()
    expected = {"GAN", "D_Fake", "D_real", "D_LabelMix"} | ({"SV"} if netG == "scgan" else set())
    assert set(losses) == expected and all(math.isfinite(v) for v in losses.values())
    # before any update D knows nothing: the N+1 = 10-way CE is ln 10 (logits start near 0)
    assert losses["D_real"] == pytest.approx(math.log(10), abs=0.05)
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.netG.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.netD.parameters()))


def test_lambda_labelmix_zero_removes_the_term_and_its_pass(parse_options):
    t = oasis_trainer(parse_options, "spade", "--lambda_labelmix", 0)
    sizes = []
    t.model.netD.register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0]))
    t.run_discriminator_one_step(batch())
    assert set(t.get_latest_losses()) == {"D_Fake", "D_real"} and sizes == [4]  # fake + real only
    t = oasis_trainer(parse_options, "spade", "--lambda_labelmix", 2)
    sizes = []
    t.model.netD.register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0]))
    t.run_discriminator_one_step(batch())
    raw = t.model.discriminator_losses(*t.model.preprocess_input(batch()))
    assert sizes[0] == 6 and t.weights["D_LabelMix"] == 2
    assert "D_LabelMix" in raw and t.get_latest_losses()["D_LabelMix"] > 0
