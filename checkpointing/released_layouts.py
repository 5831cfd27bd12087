"""Tables for checkpointing/released.py: how released checkpoints name what our networks hold, and which of our
options reproduce the configurations they were trained with. Data only; the conversion code reads it.

Key layouts (facts read from NVlabs/SPADE fecacc9 and dvlab-research/SCGAN 66a8a2f, model/net/generator.py,
model/ops/layer.py, model/ops/norm.py, model/net/discriminator.py, model/net/encoder.py):
- both save `net.cpu().state_dict()` of the bare network; spectral norm is the hook-based
  torch.nn.utils.spectral_norm, saved as `weight_orig`, `weight_u` (C_out), `weight_v` (C_in*k*k);
- SC-GAN's SVG is `pyramid_spaital_routing` (sic) with Sequentials `labelDec1..7` and `toRGB`, laid out as our
  `svg.stages.0..6` and `svg.to_image` (same indices inside);
- an SCC is a ModuleList `conv_bases` of n separate bias-free convs, ours one (n, C_out, C_in, k, k) weight;
- an SCN holds one `affine_params_groups` (n, 2C): the first C columns scale, the last C shift, ours `scale` and
  `shift` (n, C) each;
- everything else (fc, SPADE shortcut norms, batch-norm running statistics, conv_img, FPSE, PatchGAN, encoder)
  has the same names in both.
"""

# Hook-based spectral norm (theirs) <- parametrization (ours), by key suffix.
SPECTRAL_SUFFIXES = {
    "parametrizations.weight.original": "weight_orig",
    "parametrizations.weight.0._u": "weight_u",
    "parametrizations.weight.0._v": "weight_v",
}

# Module prefixes of SC-GAN's generator: ours -> theirs. `{i}` is our stage index, their labelDec is i + 1.
SCGAN_PREFIXES = {
    "svg.stages.{i}.": "pyramid_spaital_routing.labelDec{j}.",
    "svg.to_image.": "pyramid_spaital_routing.toRGB.",
}
SCC_CANDIDATES = "conv_bases"         # their ModuleList of candidate convs inside an SCC
SCN_PARAMETERS = "affine_params_groups"  # their (n, 2C) scale|shift candidates of an SCN

# The released configurations, as our options (appended before the user's own, which win).
# The SC-GAN files were trained with their config/scgan_*.yml; our --netG scgan presets already hold the
# widths, candidate counts, tau, VAE and spectral-norm settings, so only what the presets lack is listed.
RELEASED_OPTIONS = {
    "scgan": {
        # config/scgan_ade20k.yml: labels shifted as their ADE20K loader does (our default)
        "ade20k": [],
        # config/scgan_coco.yml: no instance edge channel (semantic_nc 183)
        "coco": ["--no_instance"],
        # config/scgan_celeba.yml: position encoding pyramid, pyr_rng 4 (two levels below full resolution),
        # ig_sz 7, ig_sigma 1.5, ig_iter 1, ig_relative false (our encoding's fixed setting)
        "celebamaskhq": ["--sv_position", "pyramid", "--sv_position_blurred_levels", "2"],
    },
    "spade": {
        # NVlabs' ade20k_pretrained was trained on the raw ADE20K ids (their shift is a no-op)
        "ade20k": ["--ade20k_raw_labels"],
        "coco": [],
        "cityscapes": [],
    },
}

# Label channels: their one-hot channel j is our channel LABEL_ORDER[family][dataset][j] (absent: identity).
# Their CelebA loader uses label_nc 18 + dontcare and maps id k to channel k - 1 and id 0 (background) to
# channel 18; ours (label_nc 19, no dontcare) uses channel k for id k, on the same 0..18 CelebAMask-HQ ids.
LABEL_ORDER = {
    "scgan": {"celebamaskhq": [(j + 1) % 19 for j in range(19)]},
}
