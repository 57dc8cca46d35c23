"""Parity with PyTorch: every recorded fixture of the nn groups, replayed by
``tinygrad_rnn.parity`` (the runner behind ``python -m tinygrad_rnn check``) on the active
backend, with both RNN implementations.

The expected numbers all come from PyTorch (``tests/fixtures/record.py``); the error measure
and tolerances are documented in ``tinygrad_rnn/parity.py``. The ``ops`` group belongs to
``tests/test_ops_parity.py``; here it only appears as part of the ``check`` command.
The ``optim`` group is replayed here through ``parity`` (both implementations, as ``check``
does); ``tests/test_optim_parity.py`` checks the optimizers on their own.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinygrad_rnn import parity
from tinygrad_rnn.cli import check

ROOT = Path(__file__).resolve().parent / "fixtures"
GROUPS = ("linear", "loss", "rnn", "lstm", "gru", "optim", "state_dict", "seeds", "nn_extra",
          "optim_extra", "lr_scheduler", "init", "lab")   # packed: tests/test_packed.py


def _cases(group):
    return [pytest.param(path, impl, id=f"{group}-{path.stem}-{impl}")
            for path in parity.fixture_files(group, ROOT)
            for impl in parity.implementations(group, parity.load_fixture(path)[0])]


def _failures(rows):
    return "\n".join(f"{r.quantity}: error {r.error:.3g} > {r.tolerance:g} {r.note}"
                     for r in rows if not r.passed)


# Every fixture key holding a result of the replayed computation, per group: the runner must
# compare all of them (so that a key it forgot cannot pass silently).
def _expected_keys(group, meta, arrays):
    if group in ("linear", "loss"):
        return {k for k in arrays if k == "out" or k.startswith("grad_")}
    if group in ("rnn", "lstm", "gru"):
        return {k for k in arrays if k in ("output", "h_n", "c_n") or k.startswith("grad.")}
    if group in ("optim", "optim_extra"):
        return {k for k in arrays if k in ("loss", "clip_norm") or k.startswith(("step", "grad"))}
    if group == "state_dict":
        return {"rnn_output", "rnn_h_n", "fc_output"}
    if group == "nn_extra":
        return {k for k in arrays if k == "out" or k.startswith("grad_")}
    if group == "lr_scheduler":
        return {"lr", "momentum"} & set(arrays)
    if group == "init":
        return {"gain"}
    if group == "lab":
        return {k for k in arrays if k in ("step_loss", "total_loss") or k.startswith("grad.")}
    return {"output", "h_n"}  # seeds


@pytest.mark.parametrize("group", GROUPS)
def test_fixture_group_is_not_empty(group):
    assert (ROOT / group).is_dir(), f"missing fixtures directory tests/fixtures/{group}"
    assert parity.fixture_files(group, ROOT), f"no fixtures in tests/fixtures/{group}"


@pytest.mark.parametrize("path, implementation",
                         [c for g in GROUPS for c in _cases(g)])
def test_matches_pytorch(path, implementation):
    rows = parity.run_file(path, implementation)
    assert rows and all(r.passed for r in rows), _failures(rows)
    meta, arrays = parity.load_fixture(path)
    missing = _expected_keys(path.parent.name, meta, arrays) - {r.quantity for r in rows}
    assert not missing, f"not compared: {sorted(missing)}"


@pytest.mark.parametrize("block_elements", [1, 40], ids=["step_by_step", "few_steps"])
@pytest.mark.parametrize("path", [p for g in ("rnn", "lstm", "gru")
                                  for p in parity.fixture_files(g, ROOT)][::4],
                         ids=lambda p: p.stem)
def test_fused_backward_cut_into_blocks_of_steps_matches_pytorch(path, block_elements,
                                                                 monkeypatch):
    # The fused backward prepares its factors per block of steps (cache-sized on the CPU);
    # the fixtures' batches fit in one block, so cut them finer: block edges must not show.
    from tinygrad_rnn.nn import recurrence
    monkeypatch.setattr(recurrence, "BLOCK_ELEMENTS", block_elements)
    rows = parity.run_file(path, "fused")
    assert rows and all(r.passed for r in rows), _failures(rows)


def test_both_rnn_implementations_are_replayed():
    for group in ("rnn", "lstm", "gru", "packed", "optim_extra", "lab"):
        assert parity.implementations(group) == ("fused", "unrolled")
    assert parity.implementations("linear") == ("-",)
    # The packed group mixes layers (both implementations) and packing utilities (no RNN).
    assert parity.implementations("packed", {"kind": "layer"}) == ("fused", "unrolled")
    assert parity.implementations("packed", {"kind": "pad_sequence"}) == ("-",)


def test_every_fixture_folder_is_checked_and_installed():
    """A parity fixture folder that ``check`` does not replay, or that a wheel does not
    ship, is a verification silently lost."""
    import configparser
    not_parity = {"safetensors", "silent", "fuzz"}   # read by their own tests only
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and any(p.glob("*.npz"))}
    assert folders - not_parity == set(parity.GROUPS)
    cfg = configparser.ConfigParser()
    cfg.read(ROOT.parent.parent / "setup.cfg")
    installed = {k.rsplit("/", 1)[-1] for k in cfg["options.data_files"]}
    assert installed == set(parity.GROUPS)


# --------------------------------------------------------------------------- the runner

def _copy_group(tmp_path, group, names):
    for name in names:
        (tmp_path / group).mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / group / name, tmp_path / group / name)
    return tmp_path


def _rewrite(path, **changes):
    """Rewrite an .npz fixture with some arrays replaced."""
    meta, arrays = parity.load_fixture(path)
    arrays.update(changes)
    arrays["meta"] = np.array(json.dumps(meta))
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in arrays.items():
            with zf.open(key + ".npy", "w") as f:
                np.lib.format.write_array(f, np.asarray(value), allow_pickle=False)


@pytest.mark.parametrize("name, key, dtype, rel", [
    ("base_f64.npz", "output", np.float64, 1e-9),     # 10x the float64 tolerance
    ("base_f64.npz", "grad.weight_hh_l0", np.float64, 1e-9),
    ("base_f32.npz", "h_n", np.float32, 1e-4),         # 10x the float32 tolerance
])
def test_a_perturbed_fixture_fails(tmp_path, name, key, dtype, rel):
    root = _copy_group(tmp_path, "rnn", [name])
    path = root / "rnn" / name
    _, arrays = parity.load_fixture(path)
    value = arrays[key]
    scale = max(1.0, float(np.abs(value).max())) if dtype == np.float64 \
        else float(np.abs(value).max())
    bumped = value.copy()
    bumped.flat[0] += rel * scale
    _rewrite(path, **{key: bumped.astype(dtype)})
    rows = {r.quantity: r for r in parity.run_file(path, "fused")}
    assert not rows[key].passed
    assert rows[key].error == pytest.approx(rel, rel=1e-2)
    assert all(r.passed for q, r in rows.items() if q != key)


@pytest.mark.parametrize("group, name, key", [
    ("lstm", "h0_given_f64.npz", "c_n"),
    ("lstm", "h0_given_f64.npz", "grad.c0"),
    ("lstm", "proj_f64.npz", "grad.weight_hr_l0"),
    ("gru", "bidirectional_f64.npz", "grad.bias_hh_l0_reverse"),
])
def test_a_perturbed_gated_fixture_fails(tmp_path, group, name, key):
    root = _copy_group(tmp_path, group, [name])
    path = root / group / name
    _, arrays = parity.load_fixture(path)
    bumped = arrays[key].copy()
    bumped.flat[-1] += 1e-9 * max(1.0, float(np.abs(bumped).max()))
    _rewrite(path, **{key: bumped})
    for implementation in ("fused", "unrolled"):
        rows = {r.quantity: r for r in parity.run_file(path, implementation)}
        assert not rows[key].passed
        assert all(r.passed for q, r in rows.items() if q != key)


def test_run_file_reports_an_exception_as_a_failing_row(tmp_path):
    root = _copy_group(tmp_path, "rnn", ["base_f64.npz"])
    path = root / "rnn" / "base_f64.npz"
    _, arrays = parity.load_fixture(path)
    _rewrite(path, x=arrays["x"][..., :2])  # input_size 3 expected: the RNN raises
    with pytest.raises(ValueError, match="input_size"):
        parity.run_file(path, "fused")
    (row,) = parity.run_file(path, "fused", catch=True)
    assert not row.passed and row.quantity == "(raised)" and "input_size" in row.note


@pytest.mark.parametrize("actual, expected, error", [
    (np.array([0.1, 0.2]), np.array([0.1, 0.2 + 1e-12]), 1e-12),      # |e| < 1: absolute
    (np.array([0.0, 100.0]), np.array([1e-9, 100.0]), 1e-11),         # relative to 100
    (np.array([0.5], np.float32), np.array([0.25], np.float32), 1.0),  # float32: relative
    (np.zeros(3, np.float32), np.zeros(3, np.float32), 0.0),
])
def test_max_error_measure(actual, expected, error):
    err, note = parity.max_error(actual, expected)
    assert err == pytest.approx(error, rel=1e-3, abs=1e-15) and note == ""


@pytest.mark.parametrize("actual, expected, note", [
    (np.zeros((2, 3)), np.zeros((3, 2)), "shape"),
    (np.zeros(3, np.float64), np.zeros(3, np.float32), "dtype"),
    (np.array([np.nan, 0.0]), np.zeros(2), "NaN"),
    (None, np.zeros(2), "missing"),
])
def test_max_error_is_infinite_for_wrong_results(actual, expected, note):
    err, why = parity.max_error(actual, expected)
    assert err == math.inf and note in why


def test_tolerances():
    assert parity.tolerance("rnn", "base_f64", "float64") == 1e-10
    assert parity.tolerance("rnn", "base_f32", "float32") == 1e-5
    assert 1e-5 < parity.tolerance("rnn", "long_f32", "float32") <= 1e-4
    for group in ("lstm", "gru"):
        assert parity.tolerance(group, "base_f32", "float32") == 1e-5
        assert 1e-5 < parity.tolerance(group, "long_f32", "float32") <= 1e-4


# ---------------------------------------------------------------------- finding fixtures

def test_find_fixtures_prefers_the_argument(tmp_path, monkeypatch):
    monkeypatch.setenv(parity.ENV_VAR, str(tmp_path / "nowhere"))
    assert parity.find_fixtures(ROOT) == ROOT


def test_find_fixtures_uses_the_environment_variable(tmp_path, monkeypatch):
    root = _copy_group(tmp_path, "seeds", ["seed001.npz"])
    monkeypatch.setenv(parity.ENV_VAR, str(root))
    assert parity.find_fixtures() == root
    assert [p.name for p in parity.fixture_files("seeds")] == ["seed001.npz"]


def test_find_fixtures_falls_back_to_the_source_checkout(monkeypatch):
    monkeypatch.delenv(parity.ENV_VAR, raising=False)
    assert parity.find_fixtures() == parity.source_fixtures_dir() == ROOT


def test_find_fixtures_falls_back_to_the_installed_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(parity.ENV_VAR, raising=False)
    monkeypatch.setattr(parity, "source_fixtures_dir", lambda: tmp_path / "no_checkout")
    monkeypatch.setattr(parity.sys, "prefix", str(tmp_path))
    installed = tmp_path / "share" / "tinygrad_rnn" / "fixtures"
    _copy_group(installed, "loss", ["mse_sum_f64.npz"])
    assert parity.find_fixtures() == installed


@pytest.mark.parametrize("how", ["argument", "environment", "nothing"])
def test_find_fixtures_error_names_where_it_looked(tmp_path, monkeypatch, how):
    monkeypatch.delenv(parity.ENV_VAR, raising=False)
    monkeypatch.setattr(parity, "source_fixtures_dir", lambda: tmp_path / "a")
    monkeypatch.setattr(parity.sys, "prefix", str(tmp_path / "b"))
    if how == "environment":
        monkeypatch.setenv(parity.ENV_VAR, str(tmp_path / "c"))
    with pytest.raises(parity.FixturesNotFoundError) as info:
        parity.find_fixtures(tmp_path / "c" if how == "argument" else None)
    message = str(info.value)
    if how == "nothing":
        assert str(tmp_path / "a") in message and str(tmp_path / "b") in message
        assert parity.ENV_VAR in message
    else:
        assert str(tmp_path / "c") in message


def test_the_exported_state_dict_is_not_a_case():
    names = [p.name for p in parity.fixture_files("state_dict", ROOT)]
    assert names == ["rnn_fc_io.npz"]


# -------------------------------------------------------------------- the check command

def _check(*argv):
    parser = argparse.ArgumentParser(prog="check")
    check.add_parser(parser.add_subparsers(dest="command"))
    return check.run(parser.parse_args(["check", *argv]))


def test_check_passes_and_prints_a_table(capsys):
    assert _check("--fixtures", str(ROOT), "--group", "seeds", "--group", "state_dict") == 0
    out = capsys.readouterr().out
    for piece in ("seed001", "seed002", "seed004", "rnn_fc_io", "fused", "unrolled", "PASS",
                  "8/8 cases passed"):
        assert piece in out, piece
    assert "FAIL" not in out


def test_check_fails_with_status_1_on_a_wrong_fixture(tmp_path, capsys):
    root = _copy_group(tmp_path, "seeds", ["seed001.npz"])
    _, arrays = parity.load_fixture(root / "seeds" / "seed001.npz")
    _rewrite(root / "seeds" / "seed001.npz", output=-arrays["output"])
    assert _check("--fixtures", str(root)) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "0/2 cases passed" in out


def test_check_with_a_damaged_fixture_is_a_one_line_error(tmp_path, capsys):
    root = _copy_group(tmp_path, "seeds", ["seed001.npz", "seed002.npz"])
    damaged = root / "seeds" / "seed002.npz"
    damaged.write_bytes(damaged.read_bytes()[:200])            # a truncated download
    assert _check("--fixtures", str(root)) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "seed002.npz' cannot be read" in captured.err


def test_check_without_fixtures_is_a_one_line_error(tmp_path, capsys):
    assert _check("--fixtures", str(tmp_path)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "no PyTorch fixtures" in captured.err


def test_check_rejects_an_unknown_group():
    with pytest.raises(SystemExit) as info:
        _check("--group", "nope")
    assert info.value.code == 2


def test_check_through_the_command_line_entry_point(capsys):
    from tinygrad_rnn.cli import main

    assert main(["check", "--fixtures", str(ROOT), "--group", "linear"]) == 0
    out = capsys.readouterr().out
    assert "8/8 cases passed" in out and "basic_f64" in out


@pytest.mark.single_backend
def test_check_with_an_unavailable_backend_is_a_one_line_error(capsys, monkeypatch):
    import sys

    from tinygrad_rnn import backend
    monkeypatch.setitem(sys.modules, "cupy", None)  # neither the real CuPy nor the stand-in
    monkeypatch.setattr(backend, "_cupy", None)
    assert _check("--fixtures", str(ROOT), "--backend", "cupy") == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "tinygrad-rnn[cuda]" in captured.err
