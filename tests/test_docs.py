"""README.md and docs/: the Citing section names every method the code implements with its authors, no file
credits SC-GAN to other authors, and docs/contributing.md's example generator works as written."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bibtex_entries():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("\n## Citing\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bibtex\n(.*?)```", section, re.S).group(1)
    entries = {}
    for key, body in re.findall(r"@inproceedings\{(\w+),(.*?)\n\}", block, re.S):
        fields = dict(re.findall(r"(\w+)\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}", body))
        entries[key] = {k: " ".join(v.split()) for k, v in fields.items()}
    return entries


def test_the_citing_section_has_each_method_with_its_authors():
    entries = bibtex_entries()
    titles = {e["title"]: e for e in entries.values()}
    expected = {
        "Image Synthesis via Semantic Composition":
            ("Wang, Yi and Qi, Lu and Chen, Ying-Cong and Zhang, Xiangyu and Jia, Jiaya", "2021"),
        "Semantic Image Synthesis with Spatially-Adaptive Normalization":
            ("Park, Taesung and Liu, Ming-Yu and Wang, Ting-Chun and Zhu, Jun-Yan", "2019"),
        "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs":
            ("Wang, Ting-Chun and Liu, Ming-Yu and Zhu, Jun-Yan and Tao, Andrew and Kautz, Jan and Catanzaro, Bryan",
             "2018"),
        "Learning to Predict Layout-to-image Conditional Convolutions for Semantic Image Synthesis":
            ("Liu, Xihui and Yin, Guojun and Shao, Jing and Wang, Xiaogang and Li, Hongsheng", "2019"),
        "You Only Need Adversarial Supervision for Semantic Image Synthesis":
            ('Sch{\\"o}nfeld, Edgar and Sushko, Vadim and Zhang, Dan and Gall, Juergen and Schiele, Bernt and '
             'Khoreva, Anna', "2021"),
    }
    assert set(titles) == set(expected)
    for title, (authors, year) in expected.items():
        assert titles[title]["author"] == authors and titles[title]["year"] == year, title


def test_no_file_credits_sc_gan_to_li_et_al():
    files = subprocess.run(["git", "ls-files", "*.py", "*.md"], cwd=ROOT, capture_output=True, text=True).stdout
    for path in files.split():
        if path == "tests/test_docs.py":
            continue
        text = open(os.path.join(ROOT, path), encoding="utf-8").read()
        assert "Li et al., ICCV 2021" not in text, path


ADD_A_GENERATOR = r"""
import importlib.util, sys
import torch
spec = importlib.util.spec_from_file_location("models.networks.my_generator", sys.argv[1])
import models.networks as networks
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
from options.train_options import TrainOptions
for width in ([], ["--my_width", "5"]):
    opt = TrainOptions().parse(["--netG", "mine", "--dataset_mode", "ade20k", "--crop_size", "32", *width,
                                "--checkpoints_dir", sys.argv[2], "--name", "mine"], save=False, verbose=False)
    net = networks.define_G(opt, verbose=False)
    out = net(torch.zeros(1, opt.semantic_nc, 32, 32))
    print("built", type(net).__name__, net.body[0].out_channels, tuple(out.shape))
"""


def test_the_contributing_guides_generator_registers_and_runs(tmp_path):
    """docs/contributing.md's example generator, as written there: registered by its decorator, its option
    parsed, its preset applied, its forward run (in a subprocess, so the registry of this process stays as it is)."""
    guide = open(os.path.join(ROOT, "docs", "contributing.md"), encoding="utf-8").read()
    code = re.search(r"## Adding a generator.*?```python\n(.*?)```", guide, re.S).group(1)
    (tmp_path / "my_generator.py").write_text(code)
    result = subprocess.run([sys.executable, "-c", ADD_A_GENERATOR, str(tmp_path / "my_generator.py"), str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "built MyGenerator 48 (1, 3, 32, 32)" in result.stdout    # the preset for ade20k
    assert "built MyGenerator 5 (1, 3, 32, 32)" in result.stdout     # the command line over the preset
