"""Smoke tests for the benchmark scripts: they run, check gradients, and print what they
promise. Timings are never asserted (they belong to the scripts, not the suite)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Subprocesses and files: nothing here depends on the array backend.
pytestmark = pytest.mark.single_backend

ROOT = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done.stdout


def test_rnn_step_runs_and_checks_gradients_against_the_floor():
    out = run_script("rnn_step.py", "--configs", "S", "--entries", "fused,unrolled,numpy",
                     "--repeats", "1", "--warmup", "1", "--min-time", "0", "--json")
    rows = json.loads(out)
    text = json.dumps(rows)
    for entry in ("fused", "unrolled", "numpy"):
        assert f'"{entry}"' in text


def test_rnn_step_table_has_ratios():
    out = run_script("rnn_step.py", "--configs", "S", "--entries", "fused,numpy",
                     "--repeats", "1", "--warmup", "1", "--min-time", "0")
    assert "x numpy" in out and "fused" in out


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_rnn_step_torch_unrolled_entry_has_the_layers_gradients(cell):
    """The yardstick for ``unrolled``: PyTorch's autograd on the same per-step graph. The
    script checks its gradients against the reference's before timing (and fails if not)."""
    pytest.importorskip("torch")
    out = run_script("rnn_step.py", "--configs", "S", "--cell", cell, "--entries",
                     "unrolled,torch_unrolled", "--repeats", "1", "--warmup", "0",
                     "--min-time", "0", "--json")
    (result,) = json.loads(out)
    assert set(result["timing"]) >= {"unrolled", "torch_unrolled"}
    assert any(key.startswith("torch_unrolled/") for key in result["grad_check"])


@pytest.mark.parametrize("script", ["op_overhead.py", "memory_step.py", "online_gradients.py",
                                    "blas_threads.py"])
def test_other_benchmarks_have_help(script):
    assert "usage" in run_script(script, "--help").lower()


def test_op_overhead_times_a_chain_per_node():
    out = run_script("op_overhead.py", "--op", "mul", "--repeats", "1", "--number", "10",
                     "--chain", "50", "--json")
    rows = {row["row"]: row for row in json.loads(out)}
    assert rows["ours"]["chain_forward_us_per_node"] > 0
    assert rows["ours"]["chain_backward_us_per_node"] > 0
    assert rows["numpy"]["chain_forward_us_per_node"] is None


def test_packed_benchmark_checks_agreement_and_reports_the_ratio():
    out = run_script("packed.py", "--configs", "S", "--cell", "lstm", "--repeats", "1",
                     "--warmup", "1", "--min-time", "0", "--json")
    (row,) = json.loads(out)
    assert row["config"] == "S" and row["cell"] == "lstm"
    assert 0.25 <= row["tokens"] <= 1.0
    assert row["ratio"] == row["packed_ms"] / row["padded_ms"]
    assert row["paired_ratio"] == pytest.approx(row["ratio"])   # one round: the same ratio


def test_unrolled_gc_reports_every_length_and_the_collectors_share():
    out = run_script("unrolled_gc.py", "--lengths", "20,40", "--heap", "5000", "--time-steps", "40",
                     "--json")
    result = json.loads(out)
    assert [row["T"] for row in result["rows"]] == [20, 40]
    for row in result["rows"]:
        assert 0.0 <= row["gc_share"] <= 1.0
        assert row["tracked_objects_per_time_step"] > 0
