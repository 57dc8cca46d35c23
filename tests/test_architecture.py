"""Rules about the package's source (SPEC §2, §7), checked by reading it with ``ast``:

* only ``tinygrad_rnn/backend.py`` imports NumPy or CuPy; everything else goes through the
  backend, so that CuPy runs the same code path;
* nothing in the package loads pickles (``.npz`` with ``allow_pickle=False`` only);
* importing the package never imports torch (it is needed only to re-record fixtures).
"""
from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest

#: Subprocesses and files: nothing here depends on the array backend.
pytestmark = pytest.mark.single_backend

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinygrad_rnn"
SOURCES = sorted(PACKAGE.rglob("*.py"))
ARRAY_MODULES = {"numpy", "cupy", "cupyx"}
BACKEND = PACKAGE / "backend.py"


def rel(path: pathlib.Path) -> str:
    return path.relative_to(ROOT).as_posix()


def parse(path: pathlib.Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imported_modules(tree: ast.AST):
    """(line, top-level module name) for every import statement and every
    ``importlib.import_module("x")`` / ``__import__("x")`` call with a literal name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                yield node.lineno, node.args[0].value.split(".")[0]


def pickle_uses(tree: ast.AST):
    """(line, what) for every way of loading a pickle."""
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
            if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                yield node.value.lineno, "allow_pickle not literally False"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(n.split(".")[0] in ("pickle", "cPickle", "dill", "cloudpickle", "joblib",
                                       "shelve", "marshal") for n in names):
                yield node.lineno, "imports a pickle module"
        elif isinstance(node, ast.Attribute) and node.attr in ("load", "loads", "Unpickler") \
                and isinstance(node.value, ast.Name) and node.value.id in ("pickle", "torch"):
            yield node.lineno, f"{node.value.id}.{node.attr}"


def test_the_scan_sees_the_package():
    names = {p.name for p in SOURCES}
    assert {"__init__.py", "backend.py", "tensor.py", "autograd.py"} <= names
    # and it would notice an import: backend.py itself does import numpy
    assert "numpy" in {m for _, m in imported_modules(parse(BACKEND))}


@pytest.mark.parametrize("path", [p for p in SOURCES if p != BACKEND], ids=rel)
def test_only_backend_imports_array_modules(path):
    bad = [(line, mod) for line, mod in imported_modules(parse(path)) if mod in ARRAY_MODULES]
    assert not bad, f"{rel(path)} imports {bad}: go through tinygrad_rnn.backend instead"


@pytest.mark.parametrize("path", SOURCES, ids=rel)
def test_no_pickle_loading(path):
    bad = list(pickle_uses(parse(path)))
    assert not bad, f"{rel(path)}: {bad}"


@pytest.mark.parametrize("snippet, expected", [
    ("import numpy as np", {"numpy"}), ("from numpy import ndarray", {"numpy"}),
    ("import cupy", {"cupy"}), ("import cupyx.scipy", {"cupyx"}),
    ("def f():\n    import numpy.linalg", {"numpy"}),
    ("importlib.import_module('cupy')", {"cupy"}), ("__import__('numpy')", {"numpy"}),
    ("from . import backend", set()), ("import os", {"os"}),
])
def test_import_scanner(snippet, expected):
    assert {m for _, m in imported_modules(ast.parse(snippet))} == expected


@pytest.mark.parametrize("snippet, flagged", [
    ("np.load(p, allow_pickle=True)", True), ("np.load(p, allow_pickle=flag)", True),
    ("np.load(p, allow_pickle=False)", False), ("import pickle", True),
    ("from pickle import loads", True), ("pickle.load(f)", True), ("torch.load(p)", True),
    ("json.load(f)", False),
])
def test_pickle_scanner(snippet, flagged):
    assert bool(list(pickle_uses(ast.parse(snippet)))) == flagged


def test_importing_the_package_does_not_import_torch():
    modules = sorted(
        "tinygrad_rnn." + p.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
        for p in SOURCES if p.name not in ("__init__.py", "__main__.py"))
    code = ("import sys, importlib, tinygrad_rnn\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'cupy'))\n"
            "print(bad)\n")
    env = {k: v for k, v in os.environ.items() if k != "TINYGRAD_RNN_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
