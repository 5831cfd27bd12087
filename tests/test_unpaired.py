"""Unpaired image-to-image translation (paper §4.4, appendix B.2): the unaligned dataset modes
(data/unaligned_dataset.py, data/synthetic_unaligned_dataset.py), the two synthetic domains (data/synthetic.py),
the generator (models/networks/scgan_unpaired.py), the model's losses (models/unpaired_model.py) and the
train.py / test.py round trip."""
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
from data import DatasetError, create_dataset, synthetic
from data.base_dataset import sample_rng
from models import create_model, networks
from models.networks.scgan_unpaired import SCGANUnpairedGenerator
from tools import write_synthetic
from trainers.pix2pix_trainer import loss_weights

from .conftest import tiny_colour, tiny_index, write_photo

UNPAIRED = ["--model", "unpaired"]
TINY_NETS = ["--ngf", "4", "--nrf", "8", "--nff", "4", "--ndf", "8", "--sc_conv_candidates", "2",
             "--sc_norm_candidates", "2", "--load_size", "32", "--crop_size", "32"]


def write_domains(root, phase, n_a, n_b, size=(16, 16)):
    """Flat photos: A image i has tiny_colour(i), B image j has tiny_colour(j) (red encodes the index). Names
    are given in an order that sorts differently as text and naturally."""
    for i in range(n_a):
        write_photo(root / f"{phase}A" / f"a{[1, 2, 10, 11][i]}.png", tiny_colour(i), size)
    for j in range(n_b):
        write_photo(root / f"{phase}B" / f"b{j}.jpg" if j % 2 else root / f"{phase}B" / f"b{j}.png",
                    tiny_colour(j), size)


def to_uint8(image):
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8, exactly inverting image_to_tensor."""
    return ((image + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


# ---------------------------------------------------------------------------------------------------------
# data

def test_unaligned_lists_each_domain_and_draws_the_target_from_the_seeded_generator(tmp_path, parse_options):
    write_domains(tmp_path, "train", n_a=3, n_b=4)
    opt = parse_options(*UNPAIRED, "--dataset_mode", "unaligned", "--dataroot", tmp_path, "--load_size", "16",
                        "--crop_size", "16", "--seed", "7")
    dataset = create_dataset(opt)
    assert [os.path.basename(p) for p in dataset.source_paths] == ["a1.png", "a2.png", "a10.png"]
    assert [os.path.basename(p) for p in dataset.target_paths] == ["b0.png", "b1.jpg", "b2.png", "b3.jpg"]
    assert len(dataset) == 3  # an epoch is one pass over the source images

    sample = dataset[(2, 5)]
    j = int(np.random.default_rng([7, 5, 2, 0x5C6A]).integers(4))  # the first draw of the sample's generator
    assert j == int(sample_rng(7, 5, 2).integers(4))
    assert tiny_index(sample["image"]) == 2 and sample["path"].endswith("a10.png")
    assert tiny_index(sample["target"]) == j and sample["target_path"] == dataset.target_paths[j]
    assert sample["image"].shape == sample["target"].shape == (3, 16, 16)
    again = dataset[(2, 5)]
    assert torch.equal(again["target"], sample["target"])
    assert len({tiny_index(dataset[(0, epoch)]["target"]) for epoch in range(1, 30)}) > 1  # re-drawn per epoch


def test_unaligned_pairs_source_i_with_target_i_mod_nb_at_test_time(tmp_path, parse_options):
    write_domains(tmp_path, "test", n_a=4, n_b=3)
    opt = parse_options(*UNPAIRED, "--dataset_mode", "unaligned", "--dataroot", tmp_path, "--crop_size", "16",
                        train=False)
    assert opt.phase == "test"
    dataset = create_dataset(opt)
    for epoch in (0, 1, 9):
        pairs = [(tiny_index(dataset[(i, epoch)]["image"]), tiny_index(dataset[(i, epoch)]["target"]))
                 for i in range(4)]
        assert pairs == [(0, 0), (1, 1), (2, 2), (3, 0)]


def test_unaligned_errors_name_the_missing_folder_and_the_model(tmp_path, parse_options):
    write_domains(tmp_path, "train", n_a=2, n_b=0)
    opt = parse_options(*UNPAIRED, "--dataset_mode", "unaligned", "--dataroot", tmp_path, "--crop_size", "16")
    with pytest.raises(DatasetError, match=rf"target-domain images \(B\) {tmp_path / 'trainB'} does not exist "
                                           r"\(check --dataroot, --phase"):
        create_dataset(opt)
    write_domains(tmp_path, "train", n_a=0, n_b=2)
    opt = parse_options("--dataset_mode", "unaligned", "--dataroot", tmp_path, "--crop_size", "16")
    assert opt.model == "pix2pix" and opt.label_nc == 0
    with pytest.raises(DatasetError, match="holds unpaired images without label maps: use it with --model unpaired"):
        create_dataset(opt)


def test_synthetic_domains_follow_the_winter_rule(parse_options):
    opt = parse_options(*UNPAIRED, "--dataset_mode", "synthetic_unaligned", "--num_synthetic", "5", "--load_size",
                        "32", "--crop_size", "32", "--no_flip")
    dataset = create_dataset(opt)
    sample = dataset[(1, 2)]
    j = int(sample_rng(opt.seed, 2, 1).integers(5))
    label_a, face_a = synthetic.render(1, 0, 32, "trainA")
    label_b, face_b = synthetic.render(j, 0, 32, "trainB")
    source, target = to_uint8(sample["image"]), to_uint8(sample["target"])
    assert np.array_equal(source, face_a)
    assert np.array_equal(target, synthetic.winter(face_b))
    assert not np.array_equal(label_a, label_b)  # the domains never share a face
    # the rule: B is cold, blue > green > red at every pixel, its colour a function of luma; A's skin is warm
    r, g, b = (target[..., c].astype(int) for c in range(3))
    assert ((b > g) & (g > r)).all()
    luma = face_b.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.array_equal(target[..., 0], np.clip(np.rint(0.55 * luma + 10), 0, 255).astype(np.uint8))
    skin = source[label_a == synthetic.SKIN].astype(int)
    assert (skin[:, 0] > skin[:, 2]).mean() > 0.95


def test_written_cyclegan_folders_read_exactly_like_the_generated_mode(tmp_path, parse_options, capsys):
    write_synthetic.main(["--unaligned", "--out", str(tmp_path), "--n", "3", "--size", "16"])
    assert "--model unpaired --dataset_mode unaligned" in capsys.readouterr().out
    for folder in ("trainA", "trainB", "testA", "testB"):
        assert sorted(os.listdir(tmp_path / folder)) == ["00000.png", "00001.png", "00002.png"]
    common = [*UNPAIRED, "--load_size", "16", "--crop_size", "16"]
    for train in (True, False):
        on_disk = create_dataset(parse_options(*common, "--dataset_mode", "unaligned", "--dataroot", tmp_path,
                                               train=train))
        generated = create_dataset(parse_options(*common, "--dataset_mode", "synthetic_unaligned", "--num_synthetic",
                                                 "3", train=train))
        for key in [(0, 1), (1, 1), (2, 4)]:  # random flips and pairings in training: the same draws
            a, b = on_disk[key], generated[key]
            assert torch.equal(a["image"], b["image"]) and torch.equal(a["target"], b["target"]), (train, key)


# ---------------------------------------------------------------------------------------------------------
# generator

def tiny_generator(**kw):
    torch.manual_seed(0)
    args = dict(ngf=4, nrf=8, nff=4, crop_size=64, n_conv=2, n_norm=2)
    args.update(kw)
    return SCGANUnpairedGenerator(**args)


def images(b=2, seed=0, size=64):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_srg_entry_reads_the_source_averaged_down_to_the_first_feature_size():
    g = tiny_generator().double()  # float64: the two averages add 1024 values each, in different orders
    seen = {}
    g.fc.register_forward_hook(lambda module, args, out: seen.update(input=args[0]))
    source, reference = images(seed=1).double(), images(seed=2).double()
    out, aux = g(reference, source, return_aux=True)
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
    assert aux["svg_image"].shape == (2, 3, 64, 64)
    expected = source.reshape(2, 3, 2, 32, 2, 32).mean(dim=(3, 5))
    assert torch.allclose(seen["input"], expected, rtol=0, atol=1e-12)  # measured 5.2e-17 (in float32, 3.4e-8)
    assert g.svg.stages[0][0].in_channels == 3  # the SVG reads the 3-channel reference


@pytest.mark.parametrize("encoder", ["downsample", "conv"])
def test_result_depends_on_source_and_reference_and_gradients_reach_the_encoder(encoder):
    g = tiny_generator(source_encoder=encoder, crop_size=32).eval()  # eval: running statistics, no cross-talk
    source, reference = images(seed=1, size=32), images(seed=2, size=32)
    with torch.no_grad():
        out = g(reference, source)
        other_source, other_reference = source.clone(), reference.clone()
        other_source[0], other_reference[0] = images(1, seed=3, size=32)[0], images(1, seed=4, size=32)[0]
        by_source, by_reference = g(reference, other_source), g(other_reference, source)
    for changed in (by_source, by_reference):
        assert (changed[0] - out[0]).abs().max() > 1e-4  # sample 0 follows its inputs
        assert torch.equal(changed[1], out[1])            # sample 1 is untouched

    g.train()
    result, aux = g(reference, source, return_aux=True)
    (result.mean() + aux["svg_image"].abs().mean()).backward()
    first = g.fc.weight if encoder == "downsample" else g.source_down[0].weight
    assert first.grad is not None and torch.isfinite(first.grad).all() and first.grad.abs().sum() > 0
    assert g.svg.stages[0][0].parametrizations.weight.original.grad.abs().sum() > 0


def test_downsample_encoder_sees_only_block_means_of_the_source_and_conv_sees_inside():
    """Why --source_encoder conv exists: at crop 32 the averaged-down source is one pixel, so a pattern of
    zero mean added to it changes nothing; the learned down-sampling sees it."""
    pattern = torch.zeros(1, 3, 32, 32)
    pattern[..., :16, :] = 0.5
    pattern[..., 16:, :] = -0.5
    source, reference = images(1, seed=1, size=32) * 0.4, images(1, seed=2, size=32)
    for encoder, changes in (("downsample", False), ("conv", True)):
        g = tiny_generator(source_encoder=encoder, crop_size=32).eval()
        with torch.no_grad():
            difference = (g(reference, source + pattern) - g(reference, source)).abs().max()
        assert (difference > 1e-4) == changes, (encoder, float(difference))


@pytest.mark.parametrize("ups,halvings", [("normal", 5), ("more", 6)])
def test_conv_encoder_halves_down_to_the_srg_entry(ups, halvings):
    g = tiny_generator(source_encoder="conv", num_upsampling_layers=ups, crop_size=128)
    convs = [m for m in g.source_down if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2)] * halvings
    assert [c.out_channels for c in convs] == [4 * min(2 ** k, 8) for k in range(halvings)]
    assert g.fc.in_channels == convs[-1].out_channels and g.fc.out_channels == 16 * 4
    source = torch.zeros(1, 3, 128, 128)
    assert g.encode_source(source).shape == (1, 64, 128 // 2 ** halvings, 128 // 2 ** halvings)


def test_conv_encoder_is_initialised_to_keep_the_scale(parse_options, vgg_weights):
    """SPADE's xavier 0.02 everywhere else; Kaiming (LReLU 0.2) in the learned down-sampling."""
    opt = unpaired_options(parse_options, vgg_weights, "--source_encoder", "conv")
    torch.manual_seed(0)
    g = networks.define_G(opt, verbose=False).requires_grad_(False)
    convs = [m for m in g.source_down if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        fan_in = conv.weight[0].numel()
        assert conv.weight.std() == pytest.approx((2 / (1 + 0.2 ** 2) / fan_in) ** 0.5, rel=0.2)
        assert not conv.bias.any()
    assert g.fc.weight.std() < 0.01  # xavier 0.02
    source = images(4, seed=1, size=32)
    assert g.source_down(source).std() > 0.2 * source.std()


# ---------------------------------------------------------------------------------------------------------
# model: options, losses and their wiring

def unpaired_options(parse_options, vgg_weights, *extra):
    return parse_options(*UNPAIRED, "--dataset_mode", "synthetic_unaligned", "--num_synthetic", "4",
                         "--batchSize", "2", "--vgg_weights", vgg_weights, *TINY_NETS, *extra)


def test_options_choose_the_generator_and_an_unconditional_discriminator(parse_options, vgg_weights):
    opt = unpaired_options(parse_options, vgg_weights)
    assert (opt.netG, opt.netD, opt.label_nc, opt.no_instance, opt.semantic_nc) == (
        "scgan_unpaired", "multiscale", 0, True, 0)
    assert (opt.lambda_feat, opt.lambda_vgg, opt.lambda_sv, opt.source_encoder) == (0.0, 10.0, 2.0, "downsample")
    model = create_model(opt, verbose=False)
    assert type(model.netG) is SCGANUnpairedGenerator
    assert [d.model0[0].in_channels for d in model.netD.children()] == [3, 3]  # images only, no layout
    weights = loss_weights(opt, model.extra_criteria)
    assert (weights["VGG"], weights["SV"], weights["GAN"]) == (10.0, 2.0, 1.0)


def test_losses_compare_the_result_with_the_source_and_the_target_domain(parse_options, vgg_weights):
    opt = unpaired_options(parse_options, vgg_weights)
    model = create_model(opt, verbose=False)
    batch = next(iter(torch.utils.data.DataLoader(create_dataset(opt), batch_size=2)))
    source, target = model.preprocess_input(batch)
    assert torch.equal(source, batch["image"]) and torch.equal(target, batch["target"])

    calls = {}
    for name, module in (("VGG", model.criterionVGG), ("SV", model.criterionSV), ("D", model.netD)):
        module.register_forward_hook(lambda m, args, out, name=name: None if name in calls else calls.update({name: args}))
    losses, fake, extra = model.generator_losses(source, target)
    assert set(losses) == {"GAN", "VGG", "SV"} and set(extra) == {"svg_image"}
    assert torch.equal(calls["VGG"][0].detach(), fake) and torch.equal(calls["VGG"][1], source)  # content
    assert torch.equal(calls["SV"][0].detach(), extra["svg_image"]) and torch.equal(calls["SV"][1], target)
    layout, shown = calls["D"]
    assert layout.shape == (4, 0, 32, 32)                                   # no condition
    assert torch.equal(shown[:2].detach(), fake) and torch.equal(shown[2:], target)  # real = target domain
    assert all(torch.isfinite(v) for v in losses.values())
    assert set(model.discriminator_losses(source, target)) == {"D_Fake", "D_real"}

    opt.lambda_feat = 10.0  # as --lambda_feat 10 (read at each step): the released code's feature matching
    assert set(model.generator_losses(source, target)[0]) == {"GAN", "GAN_Feat", "VGG", "SV"}


@pytest.mark.parametrize("extra,message", [
    (["--no_vgg_loss"], "keeps the source's layout through the VGG loss against the source"),
    (["--netD", "fpse"], "--netD fpse projects a label map"),
    (["--use_vae"], "--use_vae: --netG scgan_unpaired starts its SRG from the source image"),
])
def test_settings_the_model_cannot_honour_are_refused(parse_options, vgg_weights, extra, message):
    opt = unpaired_options(parse_options, vgg_weights, *extra)
    with pytest.raises(ValueError, match=message):
        create_model(opt, verbose=False)


def test_missing_vgg_weights_name_the_option(parse_options, tmp_path):
    from models.networks.loss import MissingWeightsError
    missing = tmp_path / "vgg19.pth"
    opt = unpaired_options(parse_options, str(missing))
    with pytest.raises(MissingWeightsError, match=f"--vgg_weights {missing}: file not found"):
        create_model(opt, verbose=False)


def test_other_generators_and_paired_dataset_modes_are_refused(parse_options, vgg_weights):
    opt = parse_options(*UNPAIRED, "--dataset_mode", "synthetic_unaligned", "--netG", "spade", "--ngf", "4")
    with pytest.raises(ValueError, match="--model unpaired translates images with --netG scgan_unpaired, not --netG "
                                         "spade"):
        create_model(opt, verbose=False)
    opt = parse_options(*UNPAIRED, "--dataset_mode", "synthetic", "--vgg_weights", vgg_weights, *TINY_NETS)
    with pytest.raises(ValueError, match="reads images only, no label map .--label_nc 9.: use --dataset_mode unaligned"):
        create_model(opt, verbose=False)


# ---------------------------------------------------------------------------------------------------------
# train.py and test.py

def test_two_iterations_write_checkpoints_and_pages_of_source_reference_and_result(tmp_path, vgg_weights, capsys):
    checkpoints = tmp_path / "checkpoints"
    train_script.main(["--name", "unp", "--checkpoints_dir", str(checkpoints), "--gpu_ids", "-1", *UNPAIRED,
                       "--dataset_mode", "synthetic_unaligned", "--num_synthetic", "4", "--batchSize", "2",
                       "--niter", "1", "--niter_decay", "0", "--display_freq", "4", "--print_freq", "2",
                       "--vgg_weights", vgg_weights, *TINY_NETS])
    assert "Training was successfully finished." in capsys.readouterr().out
    folder = checkpoints / "unp"
    for name in ["latest_net_G.pth", "latest_net_D.pth", "1_net_G.pth", "opt.json", "web/index.html"]:
        assert (folder / name).is_file(), name
    log = (folder / "loss_log.txt").read_text()
    assert "GAN: " in log and "VGG: " in log and "SV: " in log and "D_real: " in log and "GAN_Feat" not in log
    page = (folder / "web" / "index.html").read_text()
    for visual in ["source_image", "reference_image", "synthesized_image", "svg_image"]:
        assert f"epoch001_iter0000004_{visual}.png" in page
    assert "input_label" not in page

    # the benchmark scores against the known translation winter(source); the identity's score by hand:
    from benchmarks import unpaired_synthetic
    unpaired_synthetic.main(["--name", "unp", "--checkpoints_dir", str(checkpoints), "--gpu_ids", "-1",
                             "--how_many", "2"])
    out = capsys.readouterr().out
    faces = [synthetic.render_domain(i, "A", 0, 32, "test").astype(float) for i in range(2)]
    identity = np.mean([np.abs(face - synthetic.winter(face.astype(np.uint8))).mean() for face in faces])
    assert f"source unchanged     {identity:7.2f}" in out and "over 2 test images" in out
    assert re.search(r"^  result +\d+\.\d\d$", out, re.M)

    # test.py on CycleGAN folders written to disk: 3 sources, 2 targets, so source 2 meets target 0
    root = tmp_path / "two_domains"
    synthetic.write_unaligned_dataset(str(root), n=3, size=32, phases=("test",))
    os.remove(root / "testB" / "00002.png")
    test_script.main(["--name", "unp", "--checkpoints_dir", str(checkpoints), "--results_dir",
                      str(tmp_path / "results"), "--gpu_ids", "-1", "--dataset_mode", "unaligned", "--dataroot",
                      str(root)])
    results = tmp_path / "results" / "unp" / "test_latest"
    page = (results / "index.html").read_text()
    visuals = ["source_image", "reference_image", "synthesized_image"]
    assert sorted(os.listdir(results / "images")) == sorted(visuals)
    for visual in visuals:
        assert sorted(os.listdir(results / "images" / visual)) == ["00000.png", "00001.png", "00002.png"]
    row = page[page.index("<h3>00002</h3>"):]
    assert row.index("images/source_image/00002.png") < row.index("images/reference_image/00002.png") < row.index(
        "images/synthesized_image/00002.png")
    shown = lambda visual: np.asarray(Image.open(results / "images" / visual / "00002.png"))  # noqa: E731
    assert np.array_equal(shown("source_image"), np.asarray(Image.open(root / "testA" / "00002.png")))
    assert np.array_equal(shown("reference_image"), np.asarray(Image.open(root / "testB" / "00000.png")))
    assert not np.array_equal(shown("synthesized_image"), shown("reference_image"))

    # evaluate.py compares results with the real image of each label map: an unpaired model is refused in one line
    import evaluate as evaluate_script
    with pytest.raises(SystemExit, match=r"evaluate.py measures label-to-image models; 'unp' is --model unpaired"):
        evaluate_script.main(["--name", "unp", "--checkpoints_dir", str(checkpoints), "--gpu_ids", "-1",
                              "--metrics", "fid"])
