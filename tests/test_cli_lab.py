"""The BPTT lab on the command line: ``bptt --compare``, ``bptt --checkpoint``, ``sample``
and ``evaluate`` (run in-process through ``cli.main``, as ``python -m tinygrad_rnn``)."""
from __future__ import annotations

import importlib.util

import pytest

from tinygrad_rnn import cli

SMALL = ["--batch-size", "3", "--seq-len", "8", "--hidden", "5", "--no-plot", "--quiet"]


def run(capsys, *args):
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A sine GRU run and a charlm run, a few steps each."""
    root = tmp_path_factory.mktemp("runs")
    assert cli.main(["train", "sine", "--steps", "3", "--cell", "gru", "--out",
                     str(root / "sine"), *SMALL]) == 0
    assert cli.main(["train", "charlm", "--steps", "2", "--out", str(root / "charlm"),
                     *SMALL]) == 0
    return root


def rows(table_text: str) -> dict:
    """``{method: [columns]}`` from a comparison table."""
    out = {}
    for line in table_text.splitlines():
        parts = line.split()
        if parts and (parts[0] in ("bptt", "rtrl", "uoro") or parts[0].startswith(("tbptt:",
                                                                                   "uoro:"))):
            out[parts[0]] = parts[1:]
    return out


def test_compare_prints_every_method_and_rtrl_is_exact(capsys):
    status, out, err = run(capsys, "bptt", "--compare", "--cell", "lstm", "--seq-len", "10",
                           "--methods", "bptt,tbptt:3,rtrl,uoro", "--no-plot")
    assert status == 0, err
    table = rows(out)
    assert list(table) == ["bptt", "tbptt:3", "rtrl", "uoro"]
    assert float(table["rtrl"][2]) < 1e-12 and float(table["rtrl"][0]) == 1.0
    assert float(table["tbptt:3"][2]) > 1e-3


def test_compare_on_a_task(capsys):
    status, out, err = run(capsys, "bptt", "--compare", "--task", "adding", "--cell", "gru",
                           "--seq-len", "6", "--methods", "bptt,rtrl", "--no-plot")
    assert status == 0, err
    assert "task 'adding'" in out and float(rows(out)["rtrl"][2]) < 1e-12


def test_checkpoint_runs_every_analysis(runs, capsys, tmp_path):
    status, out, err = run(capsys, "bptt", "--checkpoint", str(runs / "sine"),
                           "--out", str(tmp_path), "--no-plot")
    assert status == 0, err
    for words in ["sine/gru", "gradient flow through", "W_hh (per layer)",
                  "Lyapunov exponents", "gradient methods against exact BPTT"]:
        assert words in out
    assert float(rows(out)["rtrl"][2]) < 1e-12


def test_checkpoint_of_a_packed_task(capsys, tmp_path):
    """health_varlen's batches are PackedSequences: the flow and the Lyapunov spectrum are
    computed (on its first sequence), the comparison is skipped with its reason."""
    assert cli.main(["train", "health_varlen", "--steps", "2", "--out", str(tmp_path / "hv"),
                     "--batch-size", "3", "--hidden", "4", "--no-plot", "--quiet"]) == 0
    status, out, err = run(capsys, "bptt", "--checkpoint", str(tmp_path / "hv"), "--no-plot")
    assert status == 0, err
    assert "Lyapunov exponents" in out and "gradient comparison skipped" in out


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="no matplotlib")
def test_an_unwritable_out_fails_before_the_analyses(runs, capsys, tmp_path):
    (tmp_path / "file").write_text("")
    status, out, err = run(capsys, "bptt", "--checkpoint", str(runs / "sine"),
                           "--out", str(tmp_path / "file" / "figures"))
    assert status == 1 and "--out: cannot create the directory" in err
    assert "a part of that path is a file" in err   # (was OSError's "File exists: ...")
    assert "===" not in out                       # no analysis was run (and thrown away)
    status, out, err = run(capsys, "bptt", "--compare", "--methods", "bptt", "--plot",
                           str(tmp_path / "file" / "c.png"))
    assert status == 1 and "--plot: cannot create the directory" in err and out == ""


@pytest.mark.parametrize("args, words", [
    (["bptt", "--checkpoint", "X", "--task", "sine"], "--task cannot be used"),
    (["bptt", "--methods", "rtrl"], "--methods needs"),
    (["bptt", "--compare", "--methods", "adam"], "unknown method"),
    (["bptt", "--out", "d"], "--out is for --checkpoint"),
    (["bptt", "--checkpoint", "X", "--plot", "p.png"], "not --plot"),
    (["evaluate", "--checkpoint", "missing-dir"], "does not exist"),
    (["sample", "--checkpoint", "missing-dir", "--temperature", "-1"], "--temperature"),
])
def test_mistakes_are_one_line_errors(capsys, args, words):
    status, _, err = run(capsys, *args)
    assert status != 0 and words in err and len(err.strip().splitlines()) == 1


def test_evaluate_prints_the_metric_against_the_baseline(runs, capsys):
    status, out, err = run(capsys, "evaluate", "--checkpoint", str(runs / "sine"))
    assert status == 0, err
    assert "task sine: GRU" in out and "test MSE" in out and "predict the previous value" in out


def test_sample_writes_text_after_the_prime(runs, capsys):
    status, out, err = run(capsys, "sample", "--checkpoint", str(runs / "charlm"), "--prime",
                           "the ", "--length", "25", "--temperature", "0.7")
    assert status == 0, err
    text = out[:-1]                                       # print added one newline
    assert text.startswith("the ") and len(text) == 4 + 25
    again = run(capsys, "sample", "--checkpoint", str(runs / "charlm"), "--prime", "the ",
                "--length", "25", "--temperature", "0.7")[1]
    assert again == out                                   # the task's seed: reproducible


def test_sample_refuses_other_tasks_and_unknown_characters(runs, capsys):
    status, _, err = run(capsys, "sample", "--checkpoint", str(runs / "sine"))
    assert status != 0 and "only charlm" in err
    status, _, err = run(capsys, "sample", "--checkpoint", str(runs / "charlm"), "--prime",
                         "\u2603")
    assert status != 0 and "never occur" in err
