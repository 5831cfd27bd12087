"""The house rules of the code layout (docs/architecture.md, "Packages and who imports whom"):
- library packages take arguments and never parse command lines: they do not import options/, tools/,
  benchmarks/ or an entry point (train.py, test.py, evaluate.py, demo.py);
- util/ holds the small helpers everything uses, so it imports nothing else of the project;
- every command is an entry point at the top level or in tools/ (a `python -m` target inside a library package
  would be an entry point in disguise)."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARIES = ("util", "data", "models", "checkpointing", "trainers", "evaluation", "inference")
COMMANDS = ("options", "tools", "benchmarks", "train", "test", "evaluate", "demo")


def python_files(package):
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def imported_modules(path):
    """(line, module) of every absolute import in the file, function-level ones included."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def project_imports(package):
    for path in python_files(package):
        for line, module in imported_modules(path):
            yield f"{os.path.relpath(path, ROOT)}:{line}", module.split(".")[0]


@pytest.mark.parametrize("package", LIBRARIES)
def test_library_packages_import_downward(package):
    upward = [f"{where} imports {top}" for where, top in project_imports(package) if top in COMMANDS]
    if package == "util":
        upward += [f"{where} imports {top}" for where, top in project_imports(package)
                   if top in LIBRARIES and top != "util"]
    assert upward == []


@pytest.mark.parametrize("package", LIBRARIES)
def test_no_command_hides_in_a_library_package(package):
    hidden = []
    for path in python_files(package):
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in tree.body:
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                hidden.append(os.path.relpath(path, ROOT))
    assert hidden == []


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The walk above finds imports inside functions too (a lazy `from options...` is still upward)."""
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from options.test_options import TestOptions\n    return TestOptions\n")
    assert list(imported_modules(str(module))) == [(2, "options.test_options")]


PROJECT = LIBRARIES + COMMANDS + ("tests",)


def test_every_project_import_resolves_even_inside_functions():
    """A module moved or renamed leaves no import behind, also where it is imported lazily (inside a
    function, which importing the file would not run)."""
    import importlib
    broken = []
    for package in (*LIBRARIES, "options", "tools", "benchmarks", "tests"):
        for path in python_files(package):
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                        and node.module.split(".")[0] in PROJECT):
                    continue
                where = f"{os.path.relpath(path, ROOT)}:{node.lineno}"
                try:
                    module = importlib.import_module(node.module)
                except ImportError as e:
                    broken.append(f"{where}: {e}")
                    continue
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            broken.append(f"{where}: {node.module} has no {alias.name}")
    assert broken == []
