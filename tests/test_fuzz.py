"""Replay recorded autograd programs against PyTorch's recorded outcomes (no torch needed).

``fixtures/fuzz/cases.npz`` holds random programs from ``tests/fuzz_graphs.py`` (in-place
ops, hooks, views, broadcasting, mixed dtypes, NaN/inf), ``fixtures/silent/programs.npz``
hand-written ones for each silent wrong result of issue 10; both were recorded by
``tests/fixtures/record.py --only fuzz --only silent``. Each is played on tinygrad_rnn and
must give PyTorch's values, dtypes, gradients and error types (see graph_programs.compare),
or one of the two documented refusals of ``fuzz_graphs.classify``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fuzz_graphs
import graph_programs as gp

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load_cases(path: Path) -> list:
    """``[(name, program, torch_outcome)]`` from a file written by record_silent.py."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    cases = []
    for k, case in enumerate(json.loads(arrays["meta"].item())["cases"]):
        n = len(case["dtypes"])
        outcome = {"values": [arrays[f"c{k}_v{i}"] for i in range(n)],
                   "dtypes": case["dtypes"],
                   "grads": [arrays[f"c{k}_g{i}"] if has else None
                             for i, has in enumerate(case["grads"])],
                   "error": case["error"] and {**case["error"], "message": ""},
                   "program": case["program"]}
        cases.append((case["name"], case["program"], outcome))
    return cases


FUZZ = load_cases(FIXTURES / "fuzz" / "cases.npz")
SILENT = load_cases(FIXTURES / "silent" / "programs.npz")


@pytest.fixture(scope="module")
def ours():
    return gp.Ours()


@pytest.mark.parametrize("name, program, theirs", SILENT, ids=[c[0] for c in SILENT])
def test_silent_wrong_result_programs_match_torch(name, program, theirs, ours):
    mine = gp.run(program, ours)
    assert gp.compare(mine, theirs) == [], name


def test_recorded_fuzz_graphs_match_torch(ours):
    verdicts = {"agree": 0, "refused": 0, "overlap": 0, "mismatch": 0}
    mismatches = []
    for name, program, theirs in FUZZ:
        verdict, diffs = fuzz_graphs.classify(gp.run(program, ours), theirs)
        verdicts[verdict] += 1
        if verdict == "mismatch":
            mismatches.append((name, program, diffs[:3]))
    assert not mismatches, mismatches[:3]
    # The recording exercises what it should: most graphs agree, some raise on both sides.
    assert verdicts["agree"] >= 0.9 * len(FUZZ)
    assert sum(1 for _, _, t in FUZZ if t["error"] is None) >= len(FUZZ) // 4


def test_fuzzer_covers_the_op_families():
    steps = [s["op"] for _, program, _ in FUZZ for s in program["steps"]]
    for family in (gp.INPLACE, {"hook"}, {"getitem", "reshape", "transpose", "detach"},
                   {"backward"}, {"eq", "lt", "ge_scalar"}):
        assert family & set(steps), family
    dtypes = {spec["dtype"] for _, program, _ in FUZZ for spec in program["inputs"]}
    assert {"float32", "float64", "float16", "int64", "bool"} <= dtypes
    assert any("nan" in json.dumps(program["inputs"]) for _, program, _ in FUZZ)


@pytest.mark.parametrize("kind", ["refused", "mismatch"])
def test_classify_can_fail(kind):
    """The replay above can only pass if ``classify`` can tell a mismatch from agreement."""
    theirs = {"values": [np.ones(2)], "dtypes": ["float32"], "grads": [None], "error": None,
              "program": {"steps": [{"op": "iadd"}]}}
    if kind == "refused":
        mine = dict(theirs, error={"step": 0, "types": ["RuntimeError"],
                                   "message": fuzz_graphs.REFUSED})
    else:
        mine = dict(theirs, values=[np.array([1.0, 2.0])])
    assert fuzz_graphs.classify(mine, theirs)[0] == kind
