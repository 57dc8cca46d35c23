"""``nn.utils.rnn`` (packing and padding) and packed input through RNN, LSTM and GRU.

Expected numbers come from PyTorch (``tests/fixtures/packed``, recorded by
``tests/fixtures/record_packed.py``) or from formulas (a packed batch is its padded batch
with the padding cut out). Errors are PyTorch's where PyTorch has one.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinygrad_rnn import Tensor, backend, nn, parity
from tinygrad_rnn.errors import ShapeError
from tinygrad_rnn.nn.utils import rnn as rnn_utils
from tinygrad_rnn.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "packed"
load = parity.load_fixture   # (meta, arrays) of one fixture file


UTILITIES = ("pack_padded_sequence", "pad_packed_sequence", "pad_sequence", "pack_sequence",
             "unpack_sequence", "unpad_sequence")


def leaf(array):
    return Tensor(array, requires_grad=True)


# ----------------------------------------------- utilities and packed layers against PyTorch
# The replay is the package's (``parity``, behind ``python -m tinygrad_rnn check``): float64
# to 1e-12, float32 to 1e-5 of the largest entry, integer results exactly.
def _cases():
    return [pytest.param(path, impl, id=f"{path.stem}-{impl}")
            for path in sorted(FIXTURES.glob("*.npz"))
            for impl in parity.implementations("packed", load(path)[0])]


def _results(meta, arrays):
    """Every fixture key that holds a result of the replayed computation."""
    if meta["kind"] == "layer":
        results = {"output", "h_n", "c_n", "output_padded", "batch_sizes", "sorted_indices",
                   "unsorted_indices"}
    else:
        results = {"data", "padded", "padded_lengths", "batch_sizes", "sorted_indices",
                   "unsorted_indices"} | {f"out{i}" for i in range(len(arrays))}
    return {k for k in arrays if k in results or k.startswith("grad.")}


@pytest.mark.parametrize("path, implementation", _cases())
def test_matches_pytorch(path, implementation):
    rows = parity.run_file(path, implementation)
    failed = [f"{r.quantity}: error {r.error:.3g} > {r.tolerance:g} {r.note}"
              for r in rows if not r.passed]
    assert rows and not failed, "\n".join(failed)
    assert {r.tolerance for r in rows} == {1e-12 if path.stem.endswith("f64") else 1e-5}
    meta, arrays = load(path)
    missing = _results(meta, arrays) - {r.quantity for r in rows}
    assert not missing, f"not compared: {sorted(missing)}"


def test_every_utility_and_both_implementations_are_replayed():
    cases = [p.values for p in _cases()]
    assert {load(path)[0]["kind"] for path, _ in cases} == set(UTILITIES) | {"layer"}
    layers = [(path, impl) for path, impl in cases if load(path)[0]["kind"] == "layer"]
    assert {impl for _, impl in layers} == {"fused", "unrolled"}
    assert len(layers) == 2 * len({path for path, _ in layers})


@pytest.mark.parametrize("key, index", [
    ("h_n", (0, 2, 1)), ("c_n", (0, 0, 0)), ("grad.weight_hh_l0", (1, 1)),
    ("sorted_indices", (0,)), ("output", (-1, 0))])
def test_a_perturbed_packed_fixture_fails(tmp_path, key, index):
    """The replay compares what it claims to: one entry of one result off by a little more
    than the tolerance (integers: by one) fails that quantity only, in both
    implementations."""
    path = tmp_path / "packed" / "lstm_unsorted_f64.npz"
    path.parent.mkdir()
    meta, arrays = load(FIXTURES / path.name)
    changed = arrays[key].copy()
    changed[index] += 1 if changed.dtype.kind == "i" else 5e-12 * max(1, abs(changed).max())
    arrays[key] = changed
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    for implementation in ("fused", "unrolled"):
        rows = {r.quantity: r for r in parity.run_file(path, implementation)}
        assert not rows[key].passed
        assert all(r.passed for q, r in rows.items() if q != key)


@pytest.mark.parametrize("block_elements", [1, 40], ids=["step_by_step", "few_steps"])
@pytest.mark.parametrize("path", [p for p in sorted(FIXTURES.glob("*.npz"))
                                  if load(p)[0]["kind"] == "layer"][::3],
                         ids=lambda p: p.stem)
def test_backward_cut_into_blocks_of_steps_still_matches_pytorch(path, block_elements,
                                                                monkeypatch):
    # The fused backward prepares its factors per block of steps (cache-sized on the CPU);
    # the fixtures' batches fit in one block, so cut them finer: block edges must not show.
    from tinygrad_rnn.nn import recurrence
    monkeypatch.setattr(recurrence, "BLOCK_ELEMENTS", block_elements)
    rows = parity.run_file(path, "fused")
    failed = [f"{r.quantity}: error {r.error:.3g} > {r.tolerance:g}" for r in rows
              if not r.passed]
    assert rows and not failed, "\n".join(failed)
    assert any(r.quantity.startswith("grad.") for r in rows)


# ----------------------------------------------------------------------- layout, formulas
def test_layout_of_the_docstring_example():
    x = Tensor(np.arange(12.0).reshape(4, 3))     # x[t, n] = 3t + n: sequences a, b, c
    p = pack_padded_sequence(x, [4, 2, 3], enforce_sorted=False)
    assert p.data.numpy().tolist() == [0, 2, 1, 3, 5, 4, 6, 8, 9]
    assert p.batch_sizes.numpy().tolist() == [3, 3, 2, 1]
    assert p.sorted_indices.numpy().tolist() == [0, 2, 1]
    assert p.unsorted_indices.numpy().tolist() == [0, 2, 1]


def test_batch_sizes_and_lengths_are_int64_on_the_host():
    x = Tensor(np.zeros((3, 2, 1)))
    p = pack_padded_sequence(x, Tensor(np.array([3, 1], dtype=np.int32)))
    assert p.batch_sizes.backend == "numpy" and p.batch_sizes.dtype == np.int64
    _, lengths = pad_packed_sequence(p)
    assert lengths.backend == "numpy" and lengths.dtype == np.int64
    assert p.sorted_indices is None and p.unsorted_indices is None
    assert isinstance(p, tuple) and p._fields == ("data", "batch_sizes", "sorted_indices",
                                                  "unsorted_indices")


@st.composite
def padded_batches(draw):
    lengths = draw(st.lists(st.integers(1, 6), min_size=1, max_size=7))
    T = max(lengths) + draw(st.integers(0, 2))
    batch_first = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return lengths, T, batch_first, seed


@given(padded_batches())
def test_pack_then_pad_is_the_input_with_the_padding_replaced(case):
    lengths, T, batch_first, seed = case
    x = np.random.default_rng(seed).standard_normal((T, len(lengths), 2))
    if batch_first:
        x = x.transpose(1, 0, 2).copy()
    p = pack_padded_sequence(Tensor(x), lengths, batch_first, enforce_sorted=False)
    assert p.data.shape == (sum(lengths), 2)
    padded, out_lengths = pad_packed_sequence(p, batch_first, padding_value=-7.0,
                                              total_length=T)
    expected = x.copy()
    for n, length in enumerate(lengths):
        expected[(n, slice(length, None)) if batch_first else (slice(length, None), n)] = -7.0
    assert np.array_equal(padded.numpy(), expected)
    assert out_lengths.numpy().tolist() == lengths


@given(st.lists(st.integers(0, 5), min_size=1, max_size=6), st.booleans())
def test_unpad_inverts_pad_and_unpack_inverts_pack(lengths, batch_first):
    rng = np.random.default_rng(len(lengths))
    seqs = [rng.standard_normal((n, 3)) for n in lengths]
    padded = pad_sequence([Tensor(s) for s in seqs], batch_first)
    for got, want in zip(unpad_sequence(padded, lengths, batch_first), seqs):
        assert np.array_equal(got.numpy(), want)
    if min(lengths) > 0:
        packed = pack_sequence([Tensor(s) for s in seqs], enforce_sorted=False)
        for got, want in zip(unpack_sequence(packed), seqs):
            assert np.array_equal(got.numpy(), want)


def test_padding_gets_no_gradient_and_real_steps_get_theirs():
    x = Tensor(np.ones((3, 2, 1)), requires_grad=True)
    p = pack_padded_sequence(x, [3, 1])
    (p.data * Tensor(np.arange(1.0, 5.0).reshape(4, 1))).sum().backward()
    # packed rows: (t0,a) (t0,b) (t1,a) (t2,a) carry weights 1, 2, 3, 4
    assert x.grad.numpy()[..., 0].tolist() == [[1, 2], [3, 0], [4, 0]]


def test_packed_sequence_moves_and_casts_with_its_indices():
    p = pack_padded_sequence(Tensor(np.ones((2, 2, 1))), [1, 2], enforce_sorted=False)
    assert p.double().data.dtype == np.float64 and p.float().data.dtype == np.float32
    q = p.to("numpy")
    assert q.sorted_indices.numpy().tolist() == [1, 0]
    assert q.batch_sizes.numpy().tolist() == [2, 1]


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_converting_a_packed_sequence_to_a_dtype_leaves_its_indices_int64(dtype):
    p = pack_padded_sequence(Tensor(np.ones((2, 2, 1), np.float32)), [1, 2],
                             enforce_sorted=False)
    q = p.to(dtype)
    assert q.data.dtype == np.dtype(dtype)
    for field in ("batch_sizes", "sorted_indices", "unsorted_indices"):
        assert getattr(q, field).dtype == np.int64, field
        assert getattr(q, field).numpy().tolist() == getattr(p, field).numpy().tolist()


# ---------------------------------------------------------------------------------- errors
X = Tensor(np.zeros((4, 3, 2)))
SORTED_MESSAGE = "`lengths` array must be sorted in decreasing order when `enforce_sorted`"


@pytest.mark.parametrize("call, error, words", [
    (lambda: pack_padded_sequence(X, [2, 3, 4]), RuntimeError, SORTED_MESSAGE),
    (lambda: pack_padded_sequence(X, [4, 3, 0]), RuntimeError,
     "Length of all samples has to be greater than 0"),
    (lambda: pack_padded_sequence(X, [4, -1, 2], enforce_sorted=False), RuntimeError,
     "Length of all samples has to be greater than 0"),
    (lambda: pack_padded_sequence(X, Tensor(np.array([4.0, 3.0, 1.0]))), RuntimeError,
     "'lengths' argument should be a 1D CPU int64 tensor"),
    (lambda: pack_padded_sequence(X, [4.0, 3.0, 1.0]), RuntimeError,
     "'lengths' argument should be a 1D CPU int64 tensor"),
    (lambda: pack_padded_sequence(X, Tensor(np.array([[4, 3, 1]]))), RuntimeError,
     "'lengths' argument should be a 1D CPU int64 tensor, but got 2D"),
    (lambda: pack_padded_sequence(X, [4, 3]), ShapeError,
     "Expected `len(lengths)` to be equal to batch_size, but got 2 (batch_size=3)"),
    (lambda: pack_padded_sequence(X, [3, 2], batch_first=True), ShapeError,
     "Expected `len(lengths)` to be equal to batch_size, but got 2 (batch_size=4)"),
    (lambda: pack_padded_sequence(X, [5, 3, 1]), ShapeError,
     "found a length of 5 in 'lengths', but the input has only 4 time steps"),
    (lambda: pack_padded_sequence(X[0, 0], [1]), ShapeError, "at least 2 dimensions"),
    (lambda: pack_padded_sequence(X.numpy(), [4, 3, 1]), TypeError, "expected input to be"),
    (lambda: pad_packed_sequence(pack_padded_sequence(X, [4, 3, 1]), total_length=3),
     ValueError, "Expected total_length to be at least the length of the longest sequence"),
    (lambda: pad_packed_sequence(pack_padded_sequence(X, [4, 3, 1]), total_length=5.5),
     TypeError, "pad_packed_sequence: total_length must be an int, got 5.5 (float)"),
    (lambda: pad_packed_sequence(X), TypeError, "expected a PackedSequence"),
    (lambda: pad_sequence([]), RuntimeError, "received an empty list of sequences"),
    (lambda: pad_sequence([X[0], X[0]], padding_side="middle"), RuntimeError,
     "Expected padding_side to be one of left or right, but got middle."),
    (lambda: pad_sequence([X[0], X[0, :, :1]]), ShapeError, "same size after the time"),
    (lambda: pack_sequence([X[0], X[0, :0]]), RuntimeError,
     "Length of all samples has to be greater than 0"),
    (lambda: pack_sequence([X[0, :1], X[0]]), RuntimeError, SORTED_MESSAGE),
    (lambda: unpad_sequence(X, [5, 1, 1]), ShapeError, "every length must be in [0, 4]"),
    (lambda: PackedSequence(X[0], Tensor(np.array([2, 2]))), ShapeError, "sum(batch_sizes)"),
    (lambda: PackedSequence(X[0], Tensor(np.array([1, 2]))), ValueError, "non-increasing"),
])
def test_bad_input_raises_a_clear_error(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)


def test_shape_errors_are_runtime_errors_as_in_pytorch():
    with pytest.raises(RuntimeError):
        pack_padded_sequence(X, [4, 3])


def test_float_lengths_are_refused_where_pytorch_would_truncate_them():
    # PyTorch turns lengths [3.7, 1.2] into [3, 1] without a word; a float is a mistake here.
    with pytest.raises(RuntimeError, match="1D CPU int64 tensor"):
        pack_padded_sequence(X, Tensor(np.array([3.7, 2.0, 1.2])))
    assert rnn_utils.PackedSequence is PackedSequence
    assert backend.name in ("numpy", "cupy")


# -------------------------------------------------- packed layers: formulas and structure
LAYERS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


@st.composite
def packed_layer_cases(draw):
    lengths = draw(st.lists(st.integers(1, 5), min_size=1, max_size=20))
    return dict(mode=draw(st.sampled_from(sorted(LAYERS))), lengths=lengths,
                num_layers=draw(st.integers(1, 2)), bidirectional=draw(st.booleans()),
                batch_first=draw(st.booleans()), unroll=draw(st.booleans()),
                seed=draw(st.integers(0, 2**16)))


@given(packed_layer_cases())
def test_a_packed_batch_is_its_sequences_run_one_by_one(case):
    """Each sequence on its own (unbatched, its own length) gives the packed layer's output
    rows, h_n column and input gradient: no state leaks between sequences, and the padding
    plays no part. Also for more than 16 sequences with ties (where only the order of the
    packed rows may differ from PyTorch's)."""
    rng = np.random.default_rng(case["seed"])
    layer = LAYERS[case["mode"]](3, 4, num_layers=case["num_layers"],
                                 bidirectional=case["bidirectional"],
                                 batch_first=case["batch_first"], unroll=case["unroll"],
                                 dtype="float64")
    lengths, T = case["lengths"], max(case["lengths"])
    x = rng.standard_normal((len(lengths), T, 3) if case["batch_first"] else
                            (T, len(lengths), 3))
    x_leaf = leaf(x)
    out, state = layer(pack_padded_sequence(x_leaf, lengths, case["batch_first"],
                                            enforce_sorted=False))
    h_n = state[0] if case["mode"] == "LSTM" else state
    padded, _ = pad_packed_sequence(out, batch_first=True)
    (padded * padded).sum().backward()
    for n, length in enumerate(lengths):
        seq = x[n, :length] if case["batch_first"] else x[:length, n]
        seq_leaf = leaf(seq)
        own_out, own_state = layer(seq_leaf)
        own_h = own_state[0] if case["mode"] == "LSTM" else own_state
        (own_out * own_out).sum().backward()
        assert np.allclose(padded.numpy()[n, :length], own_out.numpy(), atol=1e-12)
        assert np.allclose(h_n.numpy()[:, n], own_h.numpy(), atol=1e-12)
        grad = x_leaf.grad.numpy()[n, :length] if case["batch_first"] else \
            x_leaf.grad.numpy()[:length, n]
        assert np.allclose(grad, seq_leaf.grad.numpy(), atol=1e-12)


class RowCounter:
    """Wraps a cell: records how many rows every step hands it."""

    def __init__(self, cell):
        self.cell, self.forward_rows, self.backward_rows = cell, [], []

    def __getattr__(self, name):
        return getattr(self.cell, name)

    def forward_step(self, xp, rows, a, rec, prev, new):
        self.forward_rows.append(a.shape[0])
        assert rec.shape[0] == prev[0].shape[0] == new[0].shape[0] == a.shape[0]
        return self.cell.forward_step(xp, rows, a, rec, prev, new)

    def backward_step(self, xp, rows, d_states, d_a, d_rec):
        self.backward_rows.append(d_a.shape[0])
        return self.cell.backward_step(xp, rows, d_states, d_a, d_rec)


@given(st.lists(st.integers(1, 6), min_size=1, max_size=6))
def test_the_step_layout_follows_its_definitions(lengths):
    """``Steps``' vectorised indices against their definitions, row by row: a row of step t
    starts from the same sequence's row at the step run just before (t - 1, or t + 1 in
    reverse) when that sequence ran there, else from ``start`` (row ``total + slot``)."""
    from tinygrad_rnn.nn import recurrence
    lengths = sorted(lengths, reverse=True)
    sizes = [sum(length > t for length in lengths) for t in range(lengths[0])]
    first = [sum(sizes[:t]) for t in range(len(sizes))]
    total = sum(sizes)
    steps = recurrence.Steps(sizes)
    for reverse in (False, True):
        expected, kept = [], {}
        for t, n in enumerate(sizes):
            source = t + 1 if reverse else t - 1
            ran = [0 <= source < len(sizes) and j < sizes[source] for j in range(n)]
            expected += [first[source] + j if r else total + j for j, r in enumerate(ran)]
            kept[t] = sum(ran)
        assert steps.previous_rows(reverse).tolist() == expected
        order = range(len(sizes) - 1, -1, -1) if reverse else range(len(sizes))
        plan = [(t, slice(first[t], first[t] + sizes[t]), sizes[t], kept[t]) for t in order]
        assert [p[:4] for p in steps.plan(reverse)] == plan
        assert [p[4] for p in steps.plan(reverse)] == [p[3] for p in plan[1:]] + [0]
    assert steps.last_rows(False).tolist() == [first[length - 1] + j
                                              for j, length in enumerate(lengths)]
    assert steps.last_rows(True).tolist() == list(range(len(lengths)))


@pytest.mark.parametrize("reverse", [False, True])
def test_the_fused_loop_computes_only_the_running_rows(reverse):
    from tinygrad_rnn.nn import recurrence
    from tinygrad_rnn.nn.cells import GRUEquations
    lengths = [5, 3, 3, 1]
    p = pack_padded_sequence(Tensor(np.ones((5, 4, 2))), lengths)
    steps = recurrence.Steps(p.batch_sizes.numpy())
    cell = RowCounter(GRUEquations())
    weights = [leaf(np.full(s, 0.1)) for s in [(9, 2), (9, 3), (9,), (9,)]]
    (h,) = recurrence.run_fused(cell, p.data, (leaf(np.zeros((4, 3))),), weights,
                                reverse=reverse, steps=steps)
    h.sum().backward()
    sizes = [4, 3, 3, 1, 1]                  # batch_sizes: sequences running at each step
    order = sizes[::-1] if reverse else sizes
    assert cell.forward_rows == order and cell.backward_rows == order[::-1]
    assert h.shape == (sum(lengths), 3)


def test_packed_output_keeps_the_input_layout_and_h0_is_in_caller_order():
    lstm = nn.LSTM(2, 3, dtype="float64")
    p = pack_padded_sequence(Tensor(np.ones((4, 3, 2))), [2, 4, 1], enforce_sorted=False)
    h0 = Tensor(np.arange(9.0).reshape(1, 3, 3))
    out, (h_n, c_n) = lstm(p, (h0, Tensor(np.zeros((1, 3, 3)))))
    assert out.batch_sizes is p.batch_sizes and out.sorted_indices is p.sorted_indices
    assert out.unsorted_indices is p.unsorted_indices
    # Sequence 2 (length 1): its h_n is one step from its own h0 row; run it alone to check.
    alone, (h_alone, _) = lstm(Tensor(np.ones((1, 2))),
                               (h0[:, 2], Tensor(np.zeros((1, 3)))))
    assert np.allclose(h_n.numpy()[0, 2], h_alone.numpy()[0], atol=1e-14)


@pytest.mark.parametrize("call, error, words", [
    (lambda layer, p: layer(p._replace(data=p.data[:, :1])), ShapeError,
     "input.size(-1) must be equal to input_size. Expected 2, got 1"),
    (lambda layer, p: layer(p.float()), TypeError, "dtype"),
    (lambda layer, p: layer(p, Tensor(np.zeros((1, 2, 3)))), ValueError,
     "Expected hidden size (1, 3, 3), got (1, 2, 3)"),
])
def test_bad_packed_input_to_a_layer(call, error, words):
    layer = nn.RNN(2, 3, dtype="float64")
    p = pack_padded_sequence(Tensor(np.ones((4, 3, 2))), [4, 2, 1])
    with pytest.raises(error) as info:
        call(layer, p)
    assert words in str(info.value)


# ---------------------------------------------------------------------------- bptt tools
@pytest.mark.parametrize("unroll", [False, True])
def test_trace_of_a_packed_batch_is_each_sequence_traced_alone(unroll):
    from tinygrad_rnn import bptt
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, unroll=unroll,
                   dtype="float64")
    lengths = [2, 5, 1, 4]
    x = np.random.default_rng(0).standard_normal((4, 5, 3))
    with bptt.trace(lstm) as tr:
        out, _ = lstm(pack_padded_sequence(Tensor(x), lengths, True, enforce_sorted=False))
        (out.data ** 2).sum().backward()
    states, grads = tr.states, tr.grads                   # (rows, T, N, H)
    assert states.shape == (4, 5, 4, 4)
    for n, length in enumerate(lengths):
        with bptt.trace(lstm) as alone:
            own, _ = lstm(Tensor(x[n, :length]))
            (own ** 2).sum().backward()
        assert np.allclose(states[:, :length, n], alone.states[:, :, 0], atol=1e-13)
        assert np.allclose(grads[:, :length, n], alone.grads[:, :, 0], atol=1e-13)
        assert not states[:, length:, n].any() and not grads[:, length:, n].any()


@pytest.mark.parametrize("mode", ["RNN", "GRU"])
def test_jacobian_norms_of_a_packed_batch_stop_at_each_sequence_end(mode):
    from tinygrad_rnn import bptt
    layer = LAYERS[mode](3, 4, bidirectional=True, batch_first=True, dtype="float64")
    x = np.random.default_rng(1).standard_normal((3, 6, 3))
    same = bptt.jacobian_norms(layer, pack_padded_sequence(Tensor(x), [6, 6, 6], True))
    assert np.allclose(same, bptt.jacobian_norms(layer, Tensor(x)), atol=1e-12)
    norms = bptt.jacobian_norms(layer, pack_padded_sequence(Tensor(x), [6, 3, 2], True))
    longest = bptt.jacobian_norms(layer, Tensor(x[0]))    # the only one running at t >= 3
    assert np.allclose(norms[:, 3:], longest[:, 3:], atol=1e-12)
    assert norms[0, 5] == pytest.approx(1.0) and norms[1, 0] == pytest.approx(1.0)
    # step 2: the longest and the length-3 sequence (at its own end: ‖I‖ = 1) are running
    assert norms[0, 2] == pytest.approx((longest[0, 2] + 1.0) / 2, rel=1e-12)
