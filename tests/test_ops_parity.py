"""Primitive ops against values recorded from real PyTorch (``tests/fixtures/ops/*.npz``).

Each fixture holds the inputs ``in_a`` (``in_b``, ``in_c``), PyTorch's output ``out``, an
upstream weight ``w_out`` and the gradients ``grad_a`` ... of ``loss = sum(out * w_out)``;
``meta`` (a JSON string) names the op and its arguments. The schema is documented in
``tests/fixtures/record.py``; this file needs only NumPy.

One table (the package's `parity.OPS`) maps every recorded op to our Tensor ops. A fixture whose
op has no entry fails (it is never skipped), so a newly recorded op cannot go unchecked.
"""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

from tinygrad_rnn import Tensor, parity
from tinygrad_rnn.parity import load_fixture

OPS_DIR = pathlib.Path(__file__).resolve().parent / "fixtures" / "ops"
FIXTURES = sorted(OPS_DIR.glob("*.npz"))
INPUTS = ("a", "b", "c")


# The op table is the package's own (``parity.OPS``, also behind ``python -m tinygrad_rnn
# check``): one mapping from a recorded op to our Tensor ops, checked here strictly.
OPS = parity.OPS


def assert_close(actual, expected, dtype, what):
    """float64: ~1e-10 relative; float32: ~1e-5 relative to the largest magnitude."""
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    assert actual.dtype == np.dtype(dtype), (what, actual.dtype)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    if dtype == "float64":
        rtol, atol = 1e-10, 1e-12 * max(scale, 1.0)
    else:
        rtol, atol = 1e-5, 1e-5 * scale
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def test_fixtures_are_present():
    assert OPS_DIR.is_dir(), f"{OPS_DIR} is missing: run tests/fixtures/record.py"
    assert FIXTURES, f"no .npz fixtures in {OPS_DIR}"
    dtypes = {load_fixture(p)[0]["dtype"] for p in FIXTURES}
    assert dtypes == {"float32", "float64"}


def test_every_recorded_op_has_a_mapping():
    missing = sorted({load_fixture(p)[0]["op"] for p in FIXTURES} - set(OPS))
    assert not missing, f"fixture ops with no entry in OPS: {missing}"


def test_every_mapped_op_is_recorded():
    """The table holds no dead entries (each is exercised by some fixture)."""
    recorded = {load_fixture(p)[0]["op"] for p in FIXTURES}
    assert set(OPS) <= recorded, sorted(set(OPS) - recorded)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_matches_pytorch(path):
    meta, arrays = load_fixture(path)
    dtype = meta["dtype"]
    assert meta["group"] == "ops" and meta.get("torch_version")
    op = meta["op"]
    assert op in OPS, f"{path.name}: op {op!r} has no entry in OPS"

    inputs = {n: Tensor(arrays[f"in_{n}"], requires_grad=True)
              for n in INPUTS if f"in_{n}" in arrays}
    for t in inputs.values():
        assert t.dtype == np.dtype(dtype)
    out = OPS[op](list(inputs.values()), meta)
    assert_close(out.numpy(), arrays["out"], dtype, f"{path.name}: out")

    out.backward(Tensor(arrays["w_out"]))
    for n, t in inputs.items():
        assert t.grad is not None, f"{path.name}: no gradient for in_{n}"
        assert_close(t.grad.numpy(), arrays[f"grad_{n}"], dtype, f"{path.name}: grad_{n}")
    # every recorded gradient belongs to an input we fed
    assert {k[5:] for k in arrays if k.startswith("grad_")} == set(inputs)
