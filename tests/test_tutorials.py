"""The tutorial notebooks in ``docs/tutorials/`` run, and their key numbers are right.

Each tutorial is a Jupytext notebook (``.py``, percent format) that ends by collecting its key
numbers in a dict ``key_numbers``. Here each one is executed in a real Jupyter kernel
(nbclient), in a scratch directory, and the numbers are checked against what they must be
(formulas, PyTorch's printed values, exact identities), never against an earlier run.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

pytestmark = pytest.mark.single_backend   # each notebook runs in its own kernel process

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"


def run_tutorial(name: str, tmp_path: Path) -> dict:
    """Execute ``docs/tutorials/<name>.py`` in a fresh kernel; return its ``key_numbers``."""
    notebook = jupytext.read(TUTORIALS / f"{name}.py")
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import json; print('KEY_NUMBERS ' + json.dumps(key_numbers, default=str))"))
    env_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"] = env_path          # the kernel imports this checkout
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    for output in notebook.cells[-1].outputs:
        for line in output.get("text", "").splitlines():
            if line.startswith("KEY_NUMBERS "):
                return json.loads(line[len("KEY_NUMBERS "):])
    raise AssertionError(f"{name}: the notebook did not report its key numbers")


def test_01_rnn_step_by_hand(tmp_path):
    numbers = run_tutorial("01_rnn_step_by_hand", tmp_path)
    assert numbers["max_difference"] < 1e-6            # the loop by hand is nn.RNN
    # The seed notebook's printed outputs, from its printed (4-decimal) weights.
    assert numbers["seed_difference"] < 5e-4
    assert numbers["n_parameters"] == 4
    assert list(tmp_path.iterdir()) == []              # no stray files


def test_02_autograd_inside(tmp_path):
    numbers = run_tutorial("02_autograd_inside", tmp_path)
    assert numbers["autograd_difference"] < 1e-12
    assert numbers["gradcheck"] is True
    assert numbers["second_backward_raises"] is True


def test_03_bptt_by_hand(tmp_path):
    numbers = run_tutorial("03_bptt_by_hand", tmp_path)
    assert numbers["hand_vs_fused"] < 1e-12
    assert numbers["fused_vs_unrolled"] < 1e-12
    assert numbers["trace_difference"] < 1e-12


def test_04_vanishing_exploding(tmp_path):
    numbers = run_tutorial("04_vanishing_exploding", tmp_path)
    assert all(numbers["bound_holds"].values())        # Pascanu's bound, every gain
    assert numbers["vanishes"] < 1e-4                  # ρ = 0.5 over 39 steps
    mse = numbers["adding_mse"]
    assert mse["lstm"] < 0.167 and mse["gru"] < 0.167  # the gated cells beat "answer 1"


def test_06_backends(tmp_path):
    numbers = run_tutorial("06_backends", tmp_path)
    assert numbers["numpy_ran"] is True
    gpu = importlib.util.find_spec("cupy") is not None
    if not gpu:
        assert numbers["cupy_ran"] is False            # a clear error, never a fallback
    if numbers["cupy_ran"]:
        assert numbers["max_difference_numpy_vs_cupy"] < 1e-5
