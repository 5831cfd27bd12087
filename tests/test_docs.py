"""README.md: the Citing section names every method the code implements with its authors, and no file credits
SC-GAN to other authors."""
import os
import re
import subprocess

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
