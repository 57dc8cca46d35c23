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


def test_05_tbptt_rtrl_uoro(tmp_path):
    numbers = run_tutorial("05_tbptt_rtrl_uoro", tmp_path)
    T, K = numbers["T"], numbers["K"]
    cosine, norm, error = (numbers[k] for k in ("cosine", "relative_norm", "relative_error"))
    # RTRL evaluates BPTT's double sum in the other order: equal to rounding (float64).
    assert numbers["rtrl_vs_bptt"] < 1e-12
    assert error["rtrl"] < 1e-12 and abs(cosine["rtrl"] - 1) < 1e-12
    # One chunk of k ≥ T steps is BPTT itself; a detached state lets no future gradient into
    # a chunk's last state, so there TBPTT(K) sees δ_t alone, as TBPTT(1) does everywhere.
    assert error[f"tbptt:{T}"] < 1e-12 and abs(norm[f"tbptt:{T}"] - 1) < 1e-12
    assert numbers["chunk_end_difference"] < 1e-12
    assert numbers["tbptt_vs_manual"] < 1e-12          # the loop shown == compare's tbptt
    # Shorter chunks drop paths that carry gradient (the target recalls x 4 steps back).
    for k in (1, 2, K):
        assert error[f"tbptt:{k}"] > 1e-3 and cosine[f"tbptt:{k}"] < 1 - 1e-6
    for method in cosine:                              # Cauchy-Schwarz; the law of cosines
        assert -1 - 1e-12 <= cosine[method] <= 1 + 1e-12
        assert error[method] ** 2 == pytest.approx(
            1 + norm[method] ** 2 - 2 * norm[method] * cosine[method], rel=1e-9, abs=1e-12)
    # UORO. One draw has variance v·|g|^2 (v measured from the draws), so a mean of d draws
    # has E|mean - g|^2 / |g|^2 = v/d.
    v, draws = numbers["uoro_variance"], numbers["uoro_draws"]
    assert v > 0                                       # an estimate, not the gradient
    # The mean of all draws: P(error^2 > 25 v/D) <= 1/25 by Markov's inequality alone, and
    # about 6e-7 with the CLT (Szekely & Bakirov 2003: a Gaussian quadratic form exceeds 25
    # times its mean at most as often as one chi-square(1) does).
    assert numbers["uoro_mean_error"] ** 2 <= 25 * v / draws
    assert error["uoro:100"] ** 2 <= 25 * v / 100
    # The rms error over m = D/d disjoint groups: mean-square error is a mean of m >= 64
    # i.i.d. terms of mean v/d and (Gaussian limit) relative sd <= sqrt(2/m) <= 0.18, so a
    # factor-2 band is > 2.8 sd wide; the error then shrinks like 1/sqrt(d).
    sizes, rms = numbers["uoro_group_sizes"], numbers["uoro_rms_error"]
    assert all(draws // d >= 64 for d in sizes)
    for d, e in zip(sizes, rms):
        assert 0.5 <= e ** 2 * d / v <= 2, (d, e ** 2 * d / v)
    assert all(later < earlier for earlier, later in zip(rms, rms[1:]))
    assert numbers["uoro_mean_error"] < rms[-1]
    assert list(tmp_path.iterdir()) == []              # no stray files


def test_06_backends(tmp_path):
    numbers = run_tutorial("06_backends", tmp_path)
    assert numbers["numpy_ran"] is True
    gpu = importlib.util.find_spec("cupy") is not None
    if not gpu:
        assert numbers["cupy_ran"] is False            # a clear error, never a fallback
    if numbers["cupy_ran"]:
        assert numbers["max_difference_numpy_vs_cupy"] < 1e-5
