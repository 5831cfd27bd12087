"""CC-FPSE's generator (models/networks/ccfpse.py): the per-pixel depthwise convolution against a slow loop and
against torch's grouped convolution, the conditional block's locality, the pyramid's sizes, parameter counts
by hand, and the options that it refuses."""
import pytest
import torch
from torch.nn import functional as F

from models.networks.ccfpse import CCFPSEGenerator, CondConvBlock, LabelPyramid, spatial_depthwise_conv
from models.networks.normalization import parse_norm


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def per_pixel_reference(x, weights, k):
    """The definition, one output value at a time, with explicit bounds instead of padding."""
    b, c, h, w = x.shape
    out = torch.zeros_like(x)
    for n in range(b):
        for ch in range(c):
            for i in range(h):
                for j in range(w):
                    total = 0.0
                    for u in range(k):
                        for v in range(k):
                            y, xx = i + u - k // 2, j + v - k // 2
                            if 0 <= y < h and 0 <= xx < w:
                                total += weights[n, ch * k * k + u * k + v, i, j] * x[n, ch, y, xx]
                    out[n, ch, i, j] = total
    return out


@pytest.mark.parametrize("k", [3, 5])
def test_spatial_depthwise_conv_equals_a_per_pixel_loop(k):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 6, generator=gen, dtype=torch.float64)
    weights = torch.randn(2, 3 * k * k, 5, 6, generator=gen, dtype=torch.float64)
    assert torch.allclose(spatial_depthwise_conv(x, weights, k), per_pixel_reference(x, weights, k), atol=1e-12)


def test_kernels_equal_at_every_pixel_give_torchs_grouped_conv():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 7, 5, generator=gen)
    kernel = torch.randn(4, 1, 3, 3, generator=gen)
    weights = kernel.reshape(1, 36, 1, 1).expand(2, 36, 7, 5).contiguous()
    expected = F.conv2d(x, kernel, padding=1, groups=4)
    assert torch.allclose(spatial_depthwise_conv(x, weights), expected, atol=1e-5)


def test_spatial_depthwise_conv_gradients():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(1, 18, 4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(spatial_depthwise_conv, (x, weights))


def test_kernels_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"weights of shape \(1, 9, 4, 4\) for an input of shape \(1, 2, 4, 4\): "
                                         r"expected \(1, 18, 4, 4\)"):
        spatial_depthwise_conv(torch.zeros(1, 2, 4, 4), torch.zeros(1, 9, 4, 4))


def one_hot(ids, c):
    return torch.zeros(ids.shape[0], c, *ids.shape[1:]).scatter_(1, ids[:, None], 1.0)


def test_a_layout_change_reaches_exactly_the_blocks_receptive_field():
    """The kernels and attention are predicted per pixel from the layout near it (two 3x3 convs), and the block
    applies two 3x3 depthwise convs: a label changed at one pixel changes the output within 3 pixels of it
    and nowhere else (batch norm in eval mode, so no batch statistic carries it further)."""
    torch.manual_seed(0)
    block = CondConvBlock(8, 4, cond_nc=5, norm="batch").eval()
    x = torch.randn(1, 8, 16, 16)
    ids = torch.zeros(1, 16, 16, dtype=torch.long)
    changed = ids.clone()
    changed[0, 8, 5] = 3
    with torch.no_grad():
        diff = (block(x, one_hot(changed, 5)) - block(x, one_hot(ids, 5))).abs().amax(dim=(0, 1))
    rows, cols = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    near = torch.maximum((rows - 8).abs(), (cols - 5).abs()) <= 3
    assert (diff[~near] == 0).all()
    assert (diff[near] > 0).float().mean() > 0.9 and diff[8, 5] > 0


def test_the_block_uses_the_predicted_kernels():
    """With the kernel and attention heads forced to constants (an identity kernel, attention 1), the block is
    the plain network shortcut + LReLU(conv_3(norm_2(LReLU(conv_1(norm_1(x)))))) computed by hand."""
    torch.manual_seed(0)
    block = CondConvBlock(4, 4, cond_nc=3, norm="none")
    identity = torch.zeros(9)
    identity[4] = 1.0
    with torch.no_grad():
        for head, channels in ((block.gen_weights1, 4), (block.gen_weights2, 4)):
            head[2].weight.zero_()
            head[2].bias.copy_(identity.repeat(channels))
        for head in (block.gen_se_weights1, block.gen_se_weights2):
            head[2].weight.zero_()
            head[2].bias.fill_(50.0)   # sigmoid(50) = 1 in float32
        x, cond = torch.randn(2, 4, 6, 6), torch.rand(2, 3, 6, 6)
        by_hand = x + F.leaky_relu(block.conv_3(F.leaky_relu(block.conv_1(x), 0.2)), 0.2)
        assert torch.allclose(block(x, cond), by_hand, atol=1e-6)
        block.gen_weights1[2].bias.zero_()   # all-zero kernels: the branch is LReLU(conv_3(LReLU(conv_1's bias)))
        flat = F.leaky_relu(block.conv_3(F.leaky_relu(block.conv_1.bias.view(1, 4, 1, 1).expand(2, 4, 6, 6), 0.2)),
                            0.2)
        assert torch.allclose(block(x, cond), x + flat, atol=1e-6)


@pytest.mark.parametrize("levels", [6, 7])
def test_label_pyramid_gives_every_resolution_coarse_to_fine(levels):
    size = 2 ** levels
    pyramid = LabelPyramid(5, 4, levels, parse_norm("spectralbatch"))
    out = pyramid(torch.rand(2, 5, size, size))
    assert [tuple(f.shape) for f in out] == [(2, 4, 2 ** i, 2 ** i) for i in range(1, levels + 1)]


def conv_count(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


def hand_count(semantic_nc, nf, use_vae, z_dim, sh, sw, levels, norm_affine=True):
    """The architecture's parameters, added up layer by layer (batch norms affine: 2 per channel)."""
    bn = 2 if norm_affine else 0
    total = z_dim * 16 * nf * sh * sw + 16 * nf * sh * sw if use_vae else conv_count(semantic_nc, 16 * nf, 3)
    total += conv_count(semantic_nc, nf, 3, bias=False) + bn * nf                         # labelenc1
    total += (levels - 1) * (conv_count(nf, nf, 3, bias=False) + bn * nf)                 # labelenc2..
    total += (levels - 1) * (conv_count(nf, nf, 1, bias=False) + bn * nf)                 # labellat*
    total += (levels - 1) * (conv_count(nf, nf, 3, bias=False) + bn * nf)                 # labeldec*
    cond = semantic_nc + nf
    widths = (16, 16, 16, 16, 8, 4, 2, 1)
    for fin, fout in zip(widths, widths[1:]):
        fin, fout = fin * nf, fout * nf
        mid = min(fin, fout)
        for out_nc in (9 * fin, 9 * mid, mid, fout):                                     # the four heads
            total += conv_count(cond, 128, 3) + conv_count(128, out_nc, 3)
        total += bn * fin + conv_count(fin, mid, 1) + bn * mid + conv_count(mid, fout, 1)
        if fin != fout:                                                                  # SPADE + conv_s
            total += conv_count(cond, 128, 3) + 2 * conv_count(128, fin, 3) + conv_count(fin, fout, 1, bias=False)
    return total + conv_count(nf, 3, 3)


def test_parameter_count_by_hand_at_a_small_size():
    g = CCFPSEGenerator(semantic_nc=5, ngf=4, crop_size=64)
    assert n_params(g) == hand_count(5, 4, False, 0, 2, 2, 6)
    g = CCFPSEGenerator(semantic_nc=5, ngf=4, crop_size=128, aspect_ratio=2.0, num_upsampling_layers="more",
                        use_vae=True, z_dim=16, norm=parse_norm("spectralinstance"))
    assert n_params(g) == hand_count(5, 4, True, 16, 1, 2, 7, norm_affine=False) + 2 * sum(   # affine IN
        fin * 4 + min(fin, fout) * 4 for fin, fout in zip((16, 16, 16, 16, 8, 4, 2), (16, 16, 16, 8, 4, 2, 1)))


@pytest.mark.parametrize("dataset, semantic_nc, crop, aspect, mode, millions", [
    ("coco", 184, 256, 1.0, "normal", 141.914),
    ("ade20k", 151, 256, 1.0, "normal", 140.678),
    ("cityscapes", 36, 512, 2.0, "more", 128.029)])
def test_full_size_parameter_counts_with_the_vae(dataset, semantic_nc, crop, aspect, mode, millions):
    """The authors' released configurations (ngf 64, --use_vae, z_dim 256); docs/models.md quotes these."""
    with torch.device("meta"):
        g = CCFPSEGenerator(semantic_nc=semantic_nc, ngf=64, crop_size=crop, aspect_ratio=aspect,
                            num_upsampling_layers=mode, use_vae=True)
    sw = crop // (64 if mode == "more" else 32)
    assert n_params(g) == hand_count(semantic_nc, 64, True, 256, round(sw / aspect), sw, 7 if mode == "more" else 6)
    assert round(n_params(g) / 1e6, 3) == millions


def test_generator_output_depends_on_the_code_with_the_vae():
    torch.manual_seed(0)
    g = CCFPSEGenerator(semantic_nc=5, ngf=4, crop_size=32, use_vae=True, z_dim=8).eval()
    seg = one_hot(torch.randint(0, 5, (2, 32, 32)), 5)
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(g(seg, z), g(seg, z)) and not torch.allclose(g(seg, z), g(seg, -z))


def test_options_it_cannot_take_are_refused(parse_options):
    with pytest.raises(ValueError, match="--norm_G spectralspadesyncbatch3x3: --netG ccfpse takes a plain norm"):
        from models import networks
        networks.define_G(parse_options("--netG", "ccfpse", "--dataset_mode", "synthetic", "--norm_G",
                                        "spectralspadesyncbatch3x3"), verbose=False)
    with pytest.raises(ValueError, match="--num_upsampling_layers most: --netG ccfpse supports normal and more"):
        CCFPSEGenerator(semantic_nc=5, ngf=4, crop_size=128, num_upsampling_layers="most")
    opt = parse_options("--netG", "ccfpse", "--dataset_mode", "synthetic")
    assert opt.norm_G == "spectralsyncbatch"


def test_released_settings_are_the_dataset_presets(parse_options):
    opt = parse_options("--netG", "ccfpse", "--dataset_mode", "ade20k", "--dataroot", "unused")
    assert (opt.netD, opt.lambda_feat, opt.use_vae, opt.niter, opt.niter_decay) == ("fpse", 20.0, True, 100, 100)
    assert opt.num_upsampling_layers == "normal"
    opt = parse_options("--netG", "ccfpse", "--dataset_mode", "cityscapes", "--dataroot", "unused")
    assert opt.num_upsampling_layers == "more" and opt.use_vae
    opt = parse_options("--netG", "ccfpse", "--dataset_mode", "ade20k", "--dataroot", "unused", "--netD",
                        "multiscale", "--lambda_feat", 10)
    assert (opt.netD, opt.lambda_feat) == ("multiscale", 10.0)   # the command line wins
    opt = parse_options("--netG", "ccfpse", "--dataset_mode", "synthetic")
    assert not opt.use_vae and opt.lambda_feat == 10.0            # no preset: SPADE's defaults
    opt = parse_options("--netG", "ccfpse", "--dataset_mode", "ade20k", "--dataroot", "unused", "--no-use_vae")
    assert not opt.use_vae                                        # a preset's VAE can be turned off
