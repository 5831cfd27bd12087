"""The commands of README.md and docs/*.md exist and take the options they are given, without running anything.

Every command line of a fenced code block (and every inline code span) that runs `python X.py ...`,
`python -m MODULE ...` or `torchrun ... X.py ...` is collected. The script or module must exist, and each
`--option` it names must be an option string of that command's parser, built as the command builds it: train.py,
test.py, evaluate.py and demo.py from their option classes with the command's own --model / --netG /
--dataset_mode / --netD / --use_vae (the hooks of the chosen networks and dataset add their options); the tools'
and benchmarks' own parsers are taken from their main() at its first parse call, which raises instead of parsing,
so nothing after it runs. Values are never parsed, so placeholders (NAME, DIR, FILE) are fine. Relative links
between the pages must point at files and headings that exist."""
import argparse
import contextlib
import glob
import importlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from options.base_options import BaseOptions
from options.demo_options import DemoOptions
from options.eval_options import EvalOptions
from options.test_options import TestOptions, TestPageOptions
from options.train_options import TrainOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))

SCRIPTS = {"train.py": TrainOptions, "test.py": TestPageOptions, "evaluate.py": EvalOptions, "demo.py": DemoOptions}
# Modules whose main() parses its own options with parse_known_args and hands the rest to an option class.
FORWARDS = {"tools.analyze_sv": [TestOptions], "tools.train_segmenter": [TestOptions],
            "tools.import_checkpoint": [TrainOptions, TestOptions]}
# Options that choose which hooks add options (options/base_options.py, BaseOptions._compose).
SELECTORS = ("--model", "--netG", "--dataset_mode", "--netD", "--netE")
SEPARATORS = {"|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "&"}


# ------------------------------------------------------------------------------------------------ collecting
def fenced_blocks(text):
    """(language, first line number, body) of every fenced code block."""
    for match in re.finditer(r"^```([^\n]*)\n(.*?)^```", text, re.S | re.M):
        yield match.group(1).strip(), text[:match.start()].count("\n") + 2, match.group(2)


def command_lines(body, first_line):
    """(line number, tokens) of each logical line (backslash continuations joined, comments dropped)."""
    pending, start = "", first_line
    for number, line in enumerate(body.split("\n"), first_line):
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line, pending = pending + line, ""
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:   # not shell syntax: output or prose
            continue
        if tokens:
            yield start, tokens


def parse_command(tokens):
    """tokens -> ('script', 'train.py', args) / ('module', 'tools.weights', args), or None if not a command."""
    for i, token in enumerate(tokens):
        if token in SEPARATORS:
            tokens = tokens[:i]
            break
    tokens = [t.strip("[]") for t in tokens]   # [--src_D FILE]: an optional option is still an option
    tokens = [t for t in tokens if t]
    if len(tokens) >= 2 and tokens[0] in ("python", "python3"):
        if tokens[1] == "-m" and len(tokens) >= 3:
            return "module", tokens[2], tokens[3:]
        if tokens[1].endswith(".py"):
            return "script", tokens[1], tokens[2:]
    if tokens and tokens[0] == "torchrun":
        for i, token in enumerate(tokens):
            if token.endswith(".py"):
                return "script", token, tokens[i + 1:]
    return None


def inline_commands(text):
    """(line number, tokens) of every inline code span outside fenced blocks that starts with python or torchrun
    (the benchmark pages name their commands inline)."""
    prose = re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)
    for match in re.finditer(r"(?<!`)`((?:python3?|torchrun) [^`]+)`(?!`)", prose):
        try:
            tokens = shlex.split(match.group(1).replace("\n", " "), comments=True)
        except ValueError:
            continue
        yield prose[:match.start()].count("\n") + 1, tokens


def doc_commands():
    """(page:line, kind, target, args) of every command in the fenced blocks of the README and docs/, and of
    the inline code spans that start with python or torchrun."""
    found = []
    for page in PAGES:
        text = open(os.path.join(ROOT, page), encoding="utf-8").read()
        for number, tokens in inline_commands(text):
            command = parse_command(tokens)
            if command:
                found.append((f"{page}:{number}", *command))
        for language, first_line, body in fenced_blocks(text):
            if language in ("python", "bibtex") or body.startswith("#!"):   # Python code, citations, scripts
                continue
            for number, tokens in command_lines(body, first_line):
                command = parse_command(tokens)
                if command:
                    found.append((f"{page}:{number}", *command))
    return found


# ------------------------------------------------------------------------------------------------ parsers
class _Captured(Exception):
    def __init__(self, parser=None, options_class=None):
        super().__init__()
        self.parser, self.options_class = parser, options_class


def _raise_parser(self, *args, **kwargs):
    raise _Captured(parser=self)


def _raise_options(self, *args, **kwargs):
    raise _Captured(options_class=type(self))


def _error_unless_required(self, message):
    """A required option (custom's --label_dir) is missing from the selectors alone: not an error here."""
    if not message.startswith("the following arguments are required"):
        raise AssertionError(message)


def selector_argv(args):
    """The options of `args` that choose networks and a dataset, with their values (placeholders left out)."""
    argv = []
    for i, arg in enumerate(args):
        name, _, value = arg.partition("=")
        if name in SELECTORS:
            value = value or (args[i + 1] if i + 1 < len(args) else "")
            if value and not value.startswith("-") and not value.isupper():
                argv += [name, value]
        elif arg in ("--use_vae", "--no-use_vae"):
            argv.append(arg)
    return argv


def options_parser(options_class, args, netG=None):
    """The parser `options_class` builds for the networks and dataset that `args` choose, as its gather_options
    builds it (every hook run), stopped at its final parse_args. No saved options are read."""
    argv = (["--netG", netG] if netG else []) + selector_argv(args)
    options = options_class()
    options.requires_experiment = False          # TestOptions: do not look for the experiment
    options.load_saved_options = lambda opt: None
    options.argv = argv
    with contextlib.ExitStack() as patches:
        patches.enter_context(mock.patch.object(argparse.ArgumentParser, "parse_args", _raise_parser))
        # argparse's error and that of any parser class the options define over it
        for parser_class in (argparse.ArgumentParser, *argparse.ArgumentParser.__subclasses__()):
            if "error" in vars(parser_class):
                patches.enter_context(mock.patch.object(parser_class, "error", _error_unless_required))
        patches.enter_context(contextlib.redirect_stdout(sys.stderr))
        try:
            options.gather_options(argv)
        except _Captured as captured:
            return captured.parser
    raise AssertionError(f"{options_class.__name__} built no parser")


def module_parsers(module_name, args):
    """The parsers that decide which options `python -m module_name` accepts."""
    module = importlib.import_module(module_name)
    source = open(module.__file__, encoding="utf-8").read()
    if not hasattr(module, "main") or not re.search(r"argparse|Options\(", source):
        return []
    with mock.patch.object(argparse.ArgumentParser, "parse_args", _raise_parser), \
            mock.patch.object(argparse.ArgumentParser, "parse_known_args", _raise_parser), \
            mock.patch.object(BaseOptions, "gather_options", _raise_options), \
            mock.patch.object(sys, "argv", [module_name]), contextlib.redirect_stdout(sys.stderr):
        try:
            module.main()
        except _Captured as caught:
            captured = caught
        else:
            raise AssertionError(f"{module_name}.main() returned without parsing options")
    parsers = [captured.parser] if captured.parser else [options_parser(captured.options_class, args)]
    netG = None
    if module_name == "tools.import_checkpoint":   # --from/--to FAMILY is the generator (build_options)
        netG = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--from", "--to")), None)
    return parsers + [options_parser(cls, args, netG) for cls in FORWARDS.get(module_name, [])]


def option_strings(parser, args):
    """Every option string `parser` accepts, with those of the subcommand `args` names (tools.weights)."""
    strings = set()
    for action in parser._actions:
        strings.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            chosen = next((a for a in args if a in action.choices), None)
            if chosen:
                strings |= option_strings(action.choices[chosen], args)
    return strings


def named_options(args):
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def unknown_options(kind, target, args):
    """The `--options` of a documented command that its parser does not take (raises if the command is missing)."""
    if kind == "script":
        if not os.path.isfile(os.path.join(ROOT, target)):
            raise AssertionError(f"no script {target}")
        parsers = [options_parser(SCRIPTS[target], args)] if target in SCRIPTS else []
    else:
        if importlib.util.find_spec(target) is None:
            raise AssertionError(f"no module {target}")
        if target.split(".")[0] not in ("tools", "benchmarks"):   # pytest and other installed modules
            return []
        parsers = module_parsers(target, args) if named_options(args) else []
    accepted = set().union(*(option_strings(p, args) for p in parsers)) if parsers else set()
    return [o for o in named_options(args) if o not in accepted]


# ------------------------------------------------------------------------------------------------ tests
COMMANDS = doc_commands()


def test_the_pages_hold_the_commands_this_test_checks():
    targets = {target for _, _, target, _ in COMMANDS}
    assert {"train.py", "test.py", "evaluate.py", "demo.py", "tools.import_checkpoint", "tools.weights",
            "tools.train_segmenter", "tools.check_segmenter", "tools.analyze_sv", "tools.summary",
            "tools.write_synthetic", "tools.export", "benchmarks.bench_models"} <= targets
    assert len(COMMANDS) >= 50


@pytest.mark.parametrize("where, kind, target, args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_each_documented_command_exists_and_takes_its_options(where, kind, target, args):
    assert unknown_options(kind, target, args) == [], f"{where}: {target} does not take these options"


def test_the_checker_finds_an_option_that_does_not_exist():
    text = ("```\npython train.py --name x --netG scgan --sv_tau 1 \\\n       --no_such_option 3\n"
            "python -m tools.write_synthetic --out DIR --no_such_option\n```\n")
    commands = [parse_command(tokens) for _, _, body in fenced_blocks(text) for _, tokens in command_lines(body, 1)]
    assert commands[0] == ("script", "train.py", ["--name", "x", "--netG", "scgan", "--sv_tau", "1",
                                                  "--no_such_option", "3"])
    assert unknown_options(*commands[0]) == ["--no_such_option"]
    assert unknown_options(*commands[1]) == ["--no_such_option"]
    # a model's options exist only with that model; a script or module that does not exist is reported
    assert unknown_options("script", "train.py", ["--netG", "spade", "--sv_tau", "1"]) == ["--sv_tau"]
    with pytest.raises(AssertionError, match="no module"):
        unknown_options("module", "tools.no_such_tool", [])
    with pytest.raises(AssertionError, match="no script"):
        unknown_options("script", "no_such_script.py", [])


def test_the_checker_skips_what_is_not_a_command():
    text = ("```\npip install -r requirements.txt   # python train.py --bogus\n# python test.py --bogus\n"
            "bash .ci/prepare_weights.sh\nwrote 200 label maps\n```\n```python\nimport train\n```\n")
    lines = [tokens for language, first, body in fenced_blocks(text) if language != "python"
             for _, tokens in command_lines(body, first)]
    assert [parse_command(tokens) for tokens in lines] == [None, None, None]


def test_every_module_that_forwards_options_is_known():
    """A tool that hands unparsed options to an option class (parse_known_args) must be in FORWARDS, or the
    options it forwards would be reported as unknown."""
    for path in glob.glob(os.path.join(ROOT, "tools", "*.py")) + glob.glob(os.path.join(ROOT, "benchmarks", "*.py")):
        name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        if "parse_known_args" in open(path, encoding="utf-8").read():
            assert name in FORWARDS, name


def test_ci_runs_exactly_the_readme_test_command():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("\n## Tests\n", 1)[1].split("\n## ", 1)[0]
    command = next(fenced_blocks(section))[2].strip()
    ci = [line for line in open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read().splitlines()
          if line.strip() and not line.startswith("#")]
    assert ci[-1].strip() == command


# ------------------------------------------------------------------------------------------------ links
def github_anchor(heading):
    """GitHub's anchor of a heading: lower case, punctuation other than '-' and '_' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES)
def test_links_between_pages_point_at_files_and_headings_that_exist(page):
    text = open(os.path.join(ROOT, page), encoding="utf-8").read()
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):   # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), path)) if path else os.path.join(ROOT, page)
        assert os.path.exists(full), f"{page}: link to {target}: no such file"
        if anchor:
            assert anchor in anchors(full), f"{page}: link to {target}: no such heading"


# ------------------------------------------------------------------------------------------------ running
def section(page, heading):
    text = open(os.path.join(ROOT, page), encoding="utf-8").read()
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_inference_example_runs_where_the_page_says(tiny_experiment, tmp_path):
    """docs/inference.md's five lines and the command that writes their label maps, run as a user pastes them: in
    a fresh Python with the repository on PYTHONPATH, against an experiment at the path the page names (a tiny
    SC-GAN of the demo's size in the place of the README's demo_scgan)."""
    text = section("docs/inference.md", "## The API in five lines")
    blocks = {language: body for language, _, body in fenced_blocks(text)}
    commands = [tokens for _, tokens in command_lines(blocks[""], 1)]
    code = blocks["python"]
    assert len(code.strip().splitlines()) == 5 and len(commands) == 1
    folder, _ = tiny_experiment("docs_demo_scgan", "--netG", "scgan", "--nrf", "8", "--nff", "8", "--crop_size", "64",
                                "--load_size", "64")
    experiment = tmp_path / re.search(r'from_experiment\("([^"]+)"\)', code).group(1)
    experiment.parent.mkdir(parents=True)
    experiment.symlink_to(folder)
    env = {**os.environ, "PYTHONPATH": ROOT}
    for tokens in commands + [["python", "-c", code]]:
        run = subprocess.run([sys.executable, *tokens[1:]], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert run.returncode == 0 and run.stderr == "", f"{shlex.join(tokens)[:80]}: {run.stderr[-2000:]}"
    result = np.asarray(Image.open(tmp_path / "result.png"))
    assert result.shape == (64, 64, 3) and result.std() > 0


def test_the_compare_example_names_what_the_readme_makes():
    """docs/compare.md's commands, pasted after the README's: the experiments it evaluates are those the README
    trains, its --seg_model is the file the README's segmenter command writes, and it compares what it evaluated."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    made = [parse_command(tokens) for _, _, body in fenced_blocks(readme) for _, tokens in command_lines(body, 1)]
    made = [command for command in made if command]

    def value(args, option):
        return args[args.index(option) + 1]
    trained = {value(args, "--name") for _, target, args in made if target == "train.py"}
    segmenter = {value(args, "--out") for _, target, args in made if target == "tools.train_segmenter"}
    example = [parse_command(tokens) for _, tokens in command_lines(next(fenced_blocks(section(
        "docs/compare.md", "## One report for several experiments: `python -m tools.compare`")))[2], 1)]
    evaluated = [value(args, "--name") for _, target, args in example if target == "evaluate.py"]
    assert evaluated and set(evaluated) <= trained, (evaluated, trained)
    assert {value(args, "--seg_model") for _, target, args in example if target == "evaluate.py"} == segmenter
    compared, = [args for _, target, args in example if target == "tools.compare"]
    assert compared[:compared.index("--out")] == evaluated
