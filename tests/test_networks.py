"""Every registered network at a tiny size (forward, backward, finite outputs), and parameter counts: by hand
from the architecture at a small config, and NVlabs SPADE's own counts at full size (reference A12)."""
import pytest
import torch

from models import networks
from models.networks.discriminator import MultiscaleDiscriminator
from models.networks.encoder import ConvEncoder
from models.networks.fpse_discriminator import FPSEDiscriminator
from models.networks.generator import Pix2PixHDGenerator, SPADEGenerator
from models.networks.normalization import parse_norm
from models.networks.scgan import SCGANGenerator


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def layout(b, c, h, w):
    label = torch.randint(0, c, (b, 1, h, w))
    return torch.zeros(b, c, h, w).scatter_(1, label, 1.0)


@pytest.mark.parametrize("name", networks.GENERATORS.names())
@pytest.mark.parametrize("aspect", [1.0, 2.0])
def test_every_generator_forward_backward(parse_options, name, aspect):
    opt = parse_options("--netG", name, "--dataset_mode", "synthetic", "--ngf", 8, "--crop_size", 64,
                        "--aspect_ratio", aspect, "--preprocess_mode", "fixed", "--resnet_n_blocks", 2) if name == "pix2pixhd" else \
        parse_options("--netG", name, "--dataset_mode", "synthetic", "--ngf", 8, "--crop_size", 64,
                      "--aspect_ratio", aspect, "--preprocess_mode", "fixed")
    if name.startswith("scgan"):
        opt.nrf = opt.nff = 8
    net = networks.define_G(opt, verbose=False)
    seg = layout(2, opt.semantic_nc, int(64 / aspect), 64).requires_grad_()
    if name == "scgan_unpaired":  # translates images: forward(reference, source)
        out, aux = net(torch.rand(2, 3, int(64 / aspect), 64) * 2 - 1, seg[:, :3], return_aux=True)
    else:
        out, aux = net(seg, return_aux=True)
    assert out.shape == (2, 3, int(64 / aspect), 64)
    assert torch.isfinite(out).all() and out.abs().max() <= 1
    (out.mean() + sum(v.mean() for k, v in aux.items() if k == "svg_image")).backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", networks.DISCRIMINATORS.names())
def test_every_discriminator_forward_backward(parse_options, name):
    opt = parse_options("--netD", name, "--dataset_mode", "synthetic", "--ndf", 8, "--crop_size", 64)
    net = networks.define_D(opt, verbose=False)
    seg, image = layout(2, opt.semantic_nc, 64, 64), torch.randn(2, 3, 64, 64, requires_grad=True)
    if net.segments_image:  # OASIS: D(image) -> per-pixel logits of the label_nc classes and "fake"
        logits = net(image)
        assert logits.shape == (2, opt.label_nc + 1, 64, 64) and torch.isfinite(logits).all()
        logits.mean().backward()
        assert image.grad is not None and torch.isfinite(image.grad).all()
        return
    scores, features = net(seg, image)
    assert all(s.shape[:2] == (2, 1) and torch.isfinite(s).all() for s in scores)
    assert all(f.shape[0] == 2 for group in features for f in group)
    (sum(s.mean() for s in scores) + sum(f.mean() for g in features for f in g)).backward()
    assert image.grad is not None and torch.isfinite(image.grad).all()


@pytest.mark.parametrize("crop", [64, 256])
def test_encoder(parse_options, crop):
    opt = parse_options("--dataset_mode", "synthetic", "--use_vae", "--ngf", 4, "--crop_size", crop,
                        "--load_size", crop, "--z_dim", 16)
    net = networks.define_E(opt, verbose=False)
    assert net.num_layers == (6 if crop >= 256 else 5)
    mu, logvar = net(torch.randn(2, 3, crop, crop))
    assert mu.shape == logvar.shape == (2, 16)


def test_discriminator_outputs_by_scale():
    d = MultiscaleDiscriminator(input_nc=5, ndf=8, n_layers=4, num_D=3)
    scores, features = d(torch.zeros(2, 2, 64, 64), torch.zeros(2, 3, 64, 64))
    assert len(scores) == len(features) == 3 and all(len(g) == 4 for g in features)
    # PatchGAN, kernel 4, padding 2: 64 -> 33 -> 17 -> 9 (strides 2, 2, 2) -> 10 (stride 1) -> 11 (the score)
    assert scores[0].shape == (2, 1, 11, 11)


def test_fpse_scores_add_the_layout_projection():
    torch.manual_seed(0)
    d = FPSEDiscriminator(semantic_nc=4, ndf=8)
    seg, image = layout(2, 4, 64, 64), torch.randn(2, 3, 64, 64)
    scores, features = d(seg, image)
    assert [s.shape[-1] for s in scores] == [16, 8, 4]      # heads at 1/4, 1/8, 1/16
    assert [g[0].shape[1:] for g in features] == [(16, 16, 16), (32, 8, 8), (64, 4, 4), (64, 2, 2)]
    with torch.no_grad():  # zero the embedding: the scores lose exactly the projection term
        f2 = d.enc2(d.enc1(image))
        f3 = d.enc3(f2)
        f4 = d.enc4(f3)
        p4 = d.up(d.lat5(d.enc5(f4))) + d.lat4(f4)
        p3 = d.up(p4) + d.lat3(f3)
        p2 = d.up(p3) + d.lat2(f2)
        head = d.final2(p2)
        emb = torch.nn.functional.avg_pool2d(d.embedding(seg), 4)
        expected = d.tf(head) + (emb * d.seg(head)).sum(1, keepdim=True)
    assert torch.allclose(scores[0], expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# parameter counts by hand

def spade_norm_params(c, s):
    return (s * 128 * 9 + 128) + 2 * (128 * c * 9 + c)  # shared 3x3 conv; gamma and beta 3x3 convs


def spade_block_params(fin, fout, s):
    fm = min(fin, fout)
    n = fin * fm * 9 + fm + fm * fout * 9 + fout + spade_norm_params(fin, s) + spade_norm_params(fm, s)
    if fin != fout:
        n += fin * fout + spade_norm_params(fin, s)  # 1x1 shortcut without bias, its SPADE
    return n


def test_spade_generator_parameter_count_by_hand():
    s, nf = 5, 4
    expected = s * 16 * nf * 9 + 16 * nf                                   # fc: 3x3 conv on the layout
    expected += 3 * spade_block_params(16 * nf, 16 * nf, s)                 # head_0, G_middle_0, G_middle_1
    for fin, fout in [(16, 8), (8, 4), (4, 2), (2, 1)]:                     # up_0 .. up_3
        expected += spade_block_params(fin * nf, fout * nf, s)
    expected += nf * 3 * 9 + 3                                              # conv_img
    assert n_params(SPADEGenerator(s, nf, crop_size=64)) == expected == 1_947_471


def test_pix2pixhd_generator_parameter_count_by_hand():
    s, nf = 5, 4
    expected = s * nf * 49                                                  # 7x7, no bias before instance norm
    expected += sum(nf * 2 ** i * nf * 2 ** (i + 1) * 9 for i in range(4))  # 4 stride-2 downsamplings
    expected += 9 * 2 * (16 * nf) ** 2 * 9                                  # 9 residual blocks of 2 convs
    expected += sum(nf * 2 ** (i + 1) * nf * 2 ** i * 9 for i in range(4))  # 4 transposed convs
    expected += nf * 3 * 49 + 3                                             # final 7x7 with bias
    net = Pix2PixHDGenerator(s, nf, norm=parse_norm("instance"))
    assert n_params(net) == expected == 714_083


def scgan_block_params(fin, fout, n_conv, n_norm, s):
    fm = min(fin, fout)
    n = 2 * n_norm * fin + n_conv * fin * fm * 9 + 2 * n_norm * fm + n_conv * fm * fout * 9  # SCN, SCC, SCN, SCC
    if fin != fout:
        n += spade_norm_params(fin, s) + fin * fout * 9 + fout  # SPADE + 3x3 conv with bias
    return n


def test_scgan_generator_parameter_count_by_hand():
    s, ngf, nrf, nff, n_conv, n_norm = 5, 4, 4, 2, 3, 2
    widths = [16 * nrf, 8 * nrf, 4 * nrf, 2 * nrf, nrf, nrf]
    svg = s * widths[0] * 9 + widths[0] + widths[0] ** 2 * 9 + widths[0]
    for prev, w in zip(widths, widths[1:]):
        svg += (prev + s) * w * 9 + w + w * w * 9 + w                    # up, concat the layout, 2 convs
    svg += nrf * (nrf // 2) * 9 + nrf // 2 + (nrf // 2) * 3 * 9 + 3        # image head
    srg = s * 16 * nff * 9 + 16 * nff                                      # fc from the layout
    srg += scgan_block_params(16 * nff, 16 * ngf, n_conv, n_norm, s)        # head_0 (learned shortcut here)
    srg += 2 * scgan_block_params(16 * ngf, 16 * ngf, n_conv, n_norm, s)    # G_middle_0, G_middle_1
    for fin, fout in [(16, 8), (8, 4), (4, 2), (2, 1)]:
        srg += scgan_block_params(fin * ngf, fout * ngf, n_conv, n_norm, s)
    srg += ngf * 3 * 9 + 3
    net = SCGANGenerator(s, ngf, nrf, nff, crop_size=64, n_conv=n_conv, n_norm=n_norm)
    assert n_params(net.svg) == svg
    assert n_params(net) == svg + srg == 1_142_062


# ---------------------------------------------------------------------------------------------------------
# full-size counts reported by NVlabs SPADE's code (reference A12), built on the meta device

@pytest.mark.parametrize("build,expected", [
    (lambda: SPADEGenerator(36, 64, 512, 2.0, "more"), 93.05),                 # cityscapes
    (lambda: SPADEGenerator(151, 64, 256), 96.49),                             # ade20k
    (lambda: SPADEGenerator(184, 64, 256), 97.48),                             # coco
    (lambda: SPADEGenerator(184, 64, 256, use_vae=True), 112.63),              # coco + VAE
    (lambda: MultiscaleDiscriminator(36 + 3, 64, 4, 2), 5.60),                 # cityscapes D
    (lambda: ConvEncoder(64, 256, 256), 10.46),
    (lambda: Pix2PixHDGenerator(151, 64, norm=parse_norm("spectralinstance")), 182.89),
    (lambda: FPSEDiscriminator(151, 64), 5.19),                               # CC-FPSE D, ade20k
])
def test_full_size_counts_match_the_reference(build, expected):
    with torch.device("meta"):
        net = build()
    assert round(n_params(net) / 1e6, 2) == expected
