"""``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` and their ``*Cell`` modules: one test body per
behaviour, run for every cell.

Expected values come from formulas (PyTorch's documented equations in NumPy, in
``recurrent_reference.py``), or from comparing the fused layer with the unrolled one; the
numbers recorded from PyTorch itself are checked in ``tests/test_nn_parity.py``. What only one
cell has (the LSTM's forget gate, the GRU's ``b_hn``) is in ``test_cells.py``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.errors import ShapeError

from recurrent_reference import (
    GATES,
    configs,
    elman_cell_reference,
    finals_of,
    graph_ops,
    gru_cell_reference,
    lstm_cell_reference,
    make_inputs,
    module_kwargs,
    reference,
    reference_kwargs,
    rel_err,
    run_with_grads,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CELLS = ("RNN", "LSTM", "GRU")


def layer(mode, *args, **kwargs):
    """``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``."""
    return getattr(nn, mode)(*args, **kwargs)


def cell_module(mode, *args, **kwargs):
    """``nn.RNNCell``, ``nn.LSTMCell`` or ``nn.GRUCell``."""
    return getattr(nn, mode + "Cell")(*args, **kwargs)


def zero_state(mode, layers, batch, size, proj=None):
    """Initial state(s) of zeros, float32: ``h0`` or ``(h0, c0)``."""
    h0 = Tensor(np.zeros((layers, batch, proj or size), np.float32), requires_grad=True)
    if mode != "LSTM":
        return h0
    return h0, Tensor(np.zeros((layers, batch, size), np.float32), requires_grad=True)


# ------------------------------------------------------------------- semantics, formulas

@pytest.mark.parametrize("mode", CELLS)
@given(data=st.data())
def test_output_and_final_states_match_the_reference_equations(mode, data):
    cfg = data.draw(configs(mode))
    tg.manual_seed(cfg["seed"])
    rnn = layer(mode, cfg["input_size"], cfg["hidden_size"], **module_kwargs(cfg, mode),
                dtype="float64")
    x, state = make_inputs(mode, cfg, np.random.default_rng(cfg["seed"]))
    params = {n: p.numpy() for n, p in rnn.named_parameters()}
    expected_out, expected_final = reference(mode, x, state, params,
                                             **reference_kwargs(cfg, mode))
    for unroll in (False, True):
        rnn.unroll = unroll
        hx = None if state is None else \
            (tuple(Tensor(s) for s in state) if mode == "LSTM" else Tensor(state))
        output, final = rnn(Tensor(x), hx)
        assert output.shape == expected_out.shape
        assert rel_err(output.numpy(), expected_out) < 1e-12
        for got, expected in zip(finals_of(final), finals_of(expected_final)):
            assert got.shape == expected.shape
            assert rel_err(got.numpy(), expected) < 1e-12


@pytest.mark.parametrize("mode", CELLS)
@given(data=st.data())
def test_fused_and_unrolled_agree_on_outputs_and_all_gradients(mode, data):
    cfg = data.draw(configs(mode))
    tg.manual_seed(cfg["seed"])
    kwargs = module_kwargs(cfg, mode)
    fused = layer(mode, cfg["input_size"], cfg["hidden_size"], **kwargs, dtype="float64")
    unrolled = layer(mode, cfg["input_size"], cfg["hidden_size"], **kwargs, unroll=True,
                     dtype="float64")
    unrolled.load_state_dict(fused.state_dict())
    rng = np.random.default_rng(cfg["seed"])
    x, state = make_inputs(mode, cfg, rng)
    with tg.no_grad():
        output, final = fused(Tensor(x))
    weights = [rng.standard_normal(t.shape) for t in [output] + finals_of(final)]
    results_f, grads_f = run_with_grads(fused, x, state, weights)
    results_u, grads_u = run_with_grads(unrolled, x, state, weights)
    for a, b in zip(results_f, results_u):
        assert rel_err(a, b) < 1e-10
    assert grads_f.keys() == grads_u.keys()
    for key in grads_f:
        assert rel_err(grads_f[key], grads_u[key]) < 1e-10, key


@pytest.mark.parametrize("mode", CELLS)
@pytest.mark.parametrize("unroll", [False, True])
def test_float32_stays_float32_outputs_and_gradients(mode, unroll):
    proj = {"proj_size": 2} if mode == "LSTM" else {}
    rnn = layer(mode, 3, 4, num_layers=2, bidirectional=True, unroll=unroll, **proj)
    x = Tensor(np.ones((5, 2, 3), np.float32), requires_grad=True)
    state = zero_state(mode, 4, 2, 4, proj.get("proj_size"))
    output, final = rnn(x, state)
    assert output.dtype == np.float32
    assert all(s.dtype == np.float32 for s in finals_of(final))
    (output.sum() + sum(s.sum() for s in finals_of(final))).backward()
    assert x.grad.dtype == np.float32
    assert all(s.grad.dtype == np.float32 for s in finals_of(state))
    for name, p in rnn.named_parameters():
        assert p.dtype == np.float32 and p.grad.dtype == np.float32, name


#: The fused node's name, and the per-step ops one step of the unrolled graph makes.
FUSED_OP = {"RNN": "rnn_tanh", "LSTM": "lstm", "GRU": "gru"}
STEP_OPS = {"RNN": {"tanh": 1, "sigmoid": 0},
            "LSTM": {"sigmoid": 3, "tanh": 2},      # i, f, o; g and tanh(c)
            "GRU": {"sigmoid": 2, "tanh": 1}}        # r, z; n


@pytest.mark.parametrize("mode", CELLS)
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, False), (3, True)])
def test_fused_path_records_one_node_per_layer_and_direction(mode, layers, bidirectional):
    D = 2 if bidirectional else 1
    x = Tensor(np.ones((6, 2, 3), np.float32))
    output, final = layer(mode, 3, 4, num_layers=layers, bidirectional=bidirectional)(x)
    ops = graph_ops(output, *finals_of(final))
    name = FUSED_OP[mode]
    assert sorted(op for op in ops if op.startswith(name)) == \
        sorted([name, name + "_reverse"][:D] * layers)
    assert "sigmoid" not in ops and "tanh" not in ops  # no per-step ops
    unrolled = layer(mode, 3, 4, num_layers=layers, bidirectional=bidirectional, unroll=True)
    output, final = unrolled(x)
    ops = graph_ops(output, *finals_of(final))
    assert not any(op.startswith(name) for op in ops)
    for op, per_step in STEP_OPS[mode].items():
        assert ops.count(op) == per_step * 6 * layers * D, op


@pytest.mark.parametrize("mode", CELLS)
def test_fused_node_reads_the_input_the_states_and_the_weights(mode):
    rnn = layer(mode, 3, 4)
    x = Tensor(np.ones((5, 2, 3), np.float32), requires_grad=True)
    output, _ = rnn(x)
    node = output.grad_fn
    while node.op != FUSED_OP[mode]:          # LSTM: h is a slice of the [h | c] node
        node = node.parents[0].grad_fn
    states = 2 if mode == "LSTM" else 1
    parents = node.parents
    assert len(parents) == 1 + states + 4 and parents[0] is x
    assert all(p.shape == (2, 4) for p in parents[1:1 + states])  # this layer's h0 (, c0)
    assert [id(p) for p in parents[1 + states:]] == [id(p) for p in rnn.parameters()]


@pytest.mark.parametrize("mode", CELLS)
def test_unrolled_forward_reads_the_weights_as_they_are_now(mode):
    """The unrolled loop multiplies by one contiguous copy of W_hhᵀ per run: a raw in-place
    change of the weights between two runs (an optimizer writing ``.data``) must be seen by
    the next run, forward and backward, exactly as the fused layer sees it."""
    tg.manual_seed(3)
    unrolled, fused = layer(mode, 2, 3, dtype="float64", unroll=True), \
        layer(mode, 2, 3, dtype="float64")
    x = Tensor(np.random.default_rng(3).standard_normal((5, 2, 2)))
    for scale in (1.0, -1.7):
        unrolled.weight_hh_l0.data *= scale                       # raw, as an optimizer
        fused.load_state_dict(unrolled.state_dict())
        outputs = []
        for rnn in (unrolled, fused):
            rnn.zero_grad()
            out = rnn(x)[0]
            (out * out).sum().backward()
            outputs.append((out.numpy(), rnn.weight_hh_l0.grad.numpy()))
        np.testing.assert_allclose(outputs[0][0], outputs[1][0], rtol=1e-12)
        np.testing.assert_allclose(outputs[0][1], outputs[1][1], rtol=1e-10)


@pytest.mark.parametrize("mode", CELLS)
def test_retain_graph_backward_twice_doubles_the_gradients(mode):
    """The fused backward must not overwrite what it saved in the forward pass."""
    tg.manual_seed(2)
    proj = {"proj_size": 2} if mode == "LSTM" else {}
    rnn = layer(mode, 2, 3, bidirectional=True, dtype="float64", **proj)
    x = Tensor(np.random.default_rng(2).standard_normal((4, 2, 2)), requires_grad=True)
    output, final = rnn(x)
    loss = (output * output).sum() + (finals_of(final)[-1] ** 2).sum()
    loss.backward(retain_graph=True)
    first = {n: p.grad.numpy().copy() for n, p in rnn.named_parameters()}
    loss.backward()
    for n, p in rnn.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), 2 * first[n], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("mode", CELLS)
def test_initial_states_default_to_zeros_and_are_not_modified(mode):
    tg.manual_seed(6)
    rnn = layer(mode, 3, 4, num_layers=2, dtype="float64")
    x = Tensor(np.random.default_rng(6).standard_normal((5, 2, 3)))
    zeros = np.zeros((2, 2, 4))
    state = tuple(Tensor(zeros.copy()) for _ in range(2)) if mode == "LSTM" \
        else Tensor(zeros.copy())
    np.testing.assert_array_equal(rnn(x)[0].numpy(), rnn(x, state)[0].numpy())
    for s in finals_of(state):
        np.testing.assert_array_equal(s.numpy(), zeros)


# ----------------------------------------------------------------------------- dropout

@pytest.mark.parametrize("mode", CELLS)
def test_dropout_is_active_in_training_mode_only(mode):
    tg.manual_seed(0)
    rnn = layer(mode, 3, 8, num_layers=2, dropout=0.5, dtype="float64")
    x = Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)))
    train_a, train_b = rnn(x)[0].numpy(), rnn(x)[0].numpy()
    assert not np.allclose(train_a, train_b)  # a fresh mask each call
    rnn.eval()
    eval_out = rnn(x)[0].numpy()
    no_dropout = layer(mode, 3, 8, num_layers=2, dtype="float64")
    no_dropout.load_state_dict(rnn.state_dict())
    np.testing.assert_array_equal(eval_out, no_dropout(x)[0].numpy())
    np.testing.assert_array_equal(eval_out, rnn(x)[0].numpy())


@pytest.mark.parametrize("mode", CELLS)
@pytest.mark.parametrize("unroll", [False, True])
def test_dropout_acts_between_layers_only(mode, unroll):
    """p=1 drops the whole input of layer 2 and nothing else: layer 1 is untouched, and the
    output is layer 2 run on zeros, not scaled or zeroed after the last layer; eval mode
    drops nothing."""
    tg.manual_seed(1)
    rnn = layer(mode, 3, 4, num_layers=2, dropout=1.0, unroll=unroll, dtype="float64")
    x = np.random.default_rng(1).standard_normal((5, 2, 3))
    output, final = rnn(Tensor(x))
    p = {n: q.numpy() for n, q in rnn.named_parameters()}

    def of_layer(k):
        return {n.replace(f"_l{k}", "_l0"): v for n, v in p.items() if n.endswith(f"_l{k}")}
    one = dict(num_layers=1, bidirectional=False, batch_first=False)
    _, final1 = reference(mode, x, None, of_layer(0), **one)
    expected, final2 = reference(mode, np.zeros((5, 2, 4)), None, of_layer(1), **one)
    np.testing.assert_allclose(output.numpy(), expected, rtol=0, atol=1e-12)
    for got, f1, f2 in zip(finals_of(final), finals_of(final1), finals_of(final2)):
        np.testing.assert_allclose(got.numpy(), np.concatenate([f1, f2]), rtol=0, atol=1e-12)
    rnn.eval()
    no_dropout, _ = reference(mode, x, None, p, num_layers=2, bidirectional=False,
                              batch_first=False)
    np.testing.assert_allclose(rnn(Tensor(x))[0].numpy(), no_dropout, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", CELLS)
def test_dropout_with_one_layer_changes_nothing(mode):
    tg.manual_seed(2)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        rnn = layer(mode, 3, 4, dropout=0.9, dtype="float64")
    x = np.random.default_rng(2).standard_normal((5, 2, 3))
    expected, _ = reference(mode, x, None, {n: p.numpy() for n, p in rnn.named_parameters()},
                            num_layers=1, bidirectional=False, batch_first=False)
    np.testing.assert_allclose(rnn(Tensor(x))[0].numpy(), expected, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ parameters and init

@pytest.mark.parametrize("mode", CELLS)
def test_parameter_names_order_and_shapes_are_pytorchs(mode):
    G = GATES[mode]
    proj = {"proj_size": 2} if mode == "LSTM" else {}
    rnn = layer(mode, 3, 5, num_layers=2, bidirectional=True, **proj)
    weights = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") + \
        (("weight_hr",) if mode == "LSTM" else ())
    assert [n for n, _ in rnn.named_parameters()] == \
        [f"{w}_l{k}{sfx}" for k in range(2) for sfx in ("", "_reverse") for w in weights]
    P = 2 if mode == "LSTM" else 5                  # H_out
    shapes = {n: p.shape for n, p in rnn.named_parameters()}
    assert shapes["weight_ih_l0"] == (G * 5, 3) and shapes["weight_ih_l1_reverse"] == (G * 5,
                                                                                        2 * P)
    assert shapes["weight_hh_l1"] == (G * 5, P) and shapes["bias_hh_l0_reverse"] == (G * 5,)
    if mode == "LSTM":
        assert shapes["weight_hr_l0"] == (2, 5)
        assert [n for n, _ in nn.LSTM(3, 4, bias=False, proj_size=1).named_parameters()] == \
            ["weight_ih_l0", "weight_hh_l0", "weight_hr_l0"]
    else:
        with pytest.raises(TypeError):
            layer(mode, 3, 4, proj_size=2)          # projections are LSTM only, as in PyTorch
    assert [n for n, _ in layer(mode, 3, 4, bias=False).named_parameters()] == \
        ["weight_ih_l0", "weight_hh_l0"]
    cell = cell_module(mode, 3, 4)
    assert [n for n, _ in cell.named_parameters()] == \
        ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert cell.weight_ih.shape == (G * 4, 3) and cell.weight_hh.shape == (G * 4, 4)


FIXTURE_FILES = [(mode, path) for mode in CELLS
                 for path in sorted((FIXTURES / mode.lower()).glob("*_f64.npz"))]


@pytest.mark.parametrize("mode, path", FIXTURE_FILES,
                         ids=[f"{m}-{p.stem}" for m, p in FIXTURE_FILES])
def test_parameter_names_and_shapes_match_the_recorded_pytorch_module(mode, path):
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(f["meta"].item())
        shapes = {k[len("param."):]: f[k].shape for k in f.files if k.startswith("param.")}
    options = ("num_layers", "bias", "batch_first", "dropout", "bidirectional") + \
        {"RNN": ("nonlinearity",), "LSTM": ("proj_size",), "GRU": ()}[mode]
    rnn = layer(mode, meta["input_size"], meta["hidden_size"], **{k: meta[k] for k in options})
    assert [n for n, _ in rnn.named_parameters()] == meta["param_names"]
    assert {n: p.shape for n, p in rnn.named_parameters()} == shapes


@pytest.mark.parametrize("mode", CELLS)
@pytest.mark.parametrize("kind", ["layer", "cell"])
def test_init_is_uniform_in_plus_minus_one_over_sqrt_hidden(mode, kind):
    tg.manual_seed(3)
    H = 256 if mode == "RNN" else 64   # ~142k draws for each module
    proj = {"proj_size": 8} if mode == "LSTM" else {}
    module = layer(mode, 20, H, bidirectional=True, **proj) if kind == "layer" \
        else cell_module(mode, 20, H)
    bound = 1 / math.sqrt(H)
    values = np.concatenate([p.numpy().ravel() for p in module.parameters()]).astype(float)
    n = values.size
    assert np.all(np.abs(values) <= bound)
    edge, rel = (0.999, 0.02) if mode == "RNN" else (0.99, 0.05)   # RNN: more draws
    assert values.min() < -edge * bound and values.max() > edge * bound
    # U(-b, b): mean 0, variance b²/3, flat histogram (each of 10 bins ~ n/10 ± 4 sigma)
    assert abs(values.mean()) < 5 * bound / math.sqrt(3 * n)
    assert values.var() == pytest.approx(bound ** 2 / 3, rel=rel)
    counts, _ = np.histogram(values, bins=10, range=(-bound, bound))
    assert np.all(np.abs(counts - n / 10) < 4 * math.sqrt(n * 0.1 * 0.9))


@pytest.mark.parametrize("mode", CELLS)
def test_same_seed_same_weights(mode):
    tg.manual_seed(7)
    a = layer(mode, 3, 4, num_layers=2)
    tg.manual_seed(7)
    b = layer(mode, 3, 4, num_layers=2)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=n)


# ---------------------------------------------------------------------- the *Cell modules

CELL_CASES = [("RNN", "tanh"), ("RNN", "relu"), ("LSTM", None), ("GRU", None)]


@pytest.mark.parametrize("mode, nonlinearity", CELL_CASES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("unbatched", [False, True])
def test_cell_is_one_step_of_the_layer(mode, nonlinearity, bias, unbatched):
    tg.manual_seed(4)
    extra = {"nonlinearity": nonlinearity} if nonlinearity else {}
    rnn = layer(mode, 3, 5, bias=bias, dtype="float64", **extra)
    cell = cell_module(mode, 3, 5, bias=bias, dtype="float64", **extra)
    cell.load_state_dict({n.replace("_l0", ""): p for n, p in rnn.state_dict().items()})
    rng = np.random.default_rng(4)
    batch = () if unbatched else (2,)
    x = rng.standard_normal((4, *batch, 3))
    starts = [rng.standard_normal((1, *batch, 5)) for _ in range(2 if mode == "LSTM" else 1)]
    hx = tuple(Tensor(s) for s in starts) if mode == "LSTM" else Tensor(starts[0])
    output, final = rnn(Tensor(x), hx)
    state = tuple(Tensor(s[0]) for s in starts)
    for t in range(4):
        state = cell(Tensor(x[t]), state if mode == "LSTM" else state[0])
        state = state if mode == "LSTM" else (state,)
        assert all(s.shape == (*batch, 5) for s in state)
        np.testing.assert_allclose(state[0].numpy(), output.numpy()[t], rtol=0, atol=1e-14)
    for got, expected in zip(state, finals_of(final)):
        np.testing.assert_allclose(got.numpy(), expected.numpy()[0], rtol=0, atol=1e-14)


@pytest.mark.parametrize("mode", CELLS)
def test_cell_default_state_is_zeros_and_matches_the_equations(mode):
    tg.manual_seed(5)
    cell = cell_module(mode, 3, 2, dtype="float64")
    x = np.random.default_rng(5).standard_normal((4, 3))
    p = {n: q.numpy() for n, q in cell.named_parameters()}
    w = (p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
    zeros = np.zeros((4, 2))
    if mode == "LSTM":
        expected = lstm_cell_reference(x, zeros, zeros, *w)
    elif mode == "GRU":
        expected = (gru_cell_reference(x, zeros, *w),)
    else:
        expected = (elman_cell_reference(x, zeros, *w),)
    got = cell(Tensor(x))
    for g, e in zip(finals_of(got), expected):
        np.testing.assert_allclose(g.numpy(), e, rtol=0, atol=1e-14)


# ------------------------------------------------------------------------------- errors

def _f32(*shape):
    return Tensor(np.zeros(shape, np.float32))


FORWARD_ERRORS = [
    # id, layer, args, error, match
    ("rnn-rank1", lambda: nn.RNN(3, 4), (_f32(3),), ShapeError,
     r"Expected input to be 2D .* or 3D"),
    ("rnn-rank4", lambda: nn.RNN(3, 4), (_f32(2, 5, 2, 3),), ShapeError, r"got 4D tensor"),
    ("rnn-features", lambda: nn.RNN(3, 4), (_f32(5, 2, 4),), ShapeError,
     r"input.size\(-1\) must be equal to input_size. Expected 3, got 4"),
    ("rnn-h0_batch", lambda: nn.RNN(3, 4), (_f32(5, 2, 3), _f32(1, 3, 4)), ShapeError,
     r"Expected hidden size \(1, 2, 4\), got \(1, 3, 4\)"),
    ("rnn-h0_layers", lambda: nn.RNN(3, 4, num_layers=2), (_f32(5, 2, 3), _f32(1, 2, 4)),
     ShapeError, r"Expected hidden size \(2, 2, 4\), got \(1, 2, 4\)"),
    ("rnn-h0_rank_batched", lambda: nn.RNN(3, 4), (_f32(5, 2, 3), _f32(2, 4)), ShapeError,
     r"batched 3-D input, h0 should be 3-D but got 2-D"),
    ("rnn-h0_unbatched", lambda: nn.RNN(3, 4), (_f32(5, 3), _f32(1, 5)), ShapeError,
     r"Expected hidden size \(1, 4\), got \(1, 5\)"),
    ("rnn-h0_unbatched_bidir", lambda: nn.RNN(3, 4, bidirectional=True),
     (_f32(5, 3), _f32(1, 4)), ShapeError, r"Expected hidden size \(2, 4\), got \(1, 4\)"),
    ("rnn-h0_rank_unbatched", lambda: nn.RNN(3, 4), (_f32(5, 3), _f32(1, 1, 4)), ShapeError,
     r"unbatched 2-D input, h0 should be 2-D but got 3-D"),
    ("rnn-int_input", lambda: nn.RNN(3, 4), (Tensor(np.zeros((5, 2, 3), np.int64)),),
     TypeError, r"expected a floating point input, got dtype int64"),
    ("rnn-dtype_mismatch", lambda: nn.RNN(3, 4), (Tensor(np.zeros((5, 2, 3))),), TypeError,
     r"input dtype float64 does not match the parameters' dtype float32"),
    ("rnn-h0_dtype", lambda: nn.RNN(3, 4), (_f32(5, 2, 3), Tensor(np.zeros((1, 2, 4)))),
     TypeError, r"h0 dtype float64 does not match input dtype float32"),
    ("rnn-not_tensor", lambda: nn.RNN(3, 4), (np.zeros((5, 2, 3), np.float32),), TypeError,
     r"expected input to be a Tensor"),
    ("rnn-empty_sequence", lambda: nn.RNN(3, 4), (_f32(0, 2, 3),), ShapeError,
     r"sequence of length >= 1"),
    ("lstm-rank1", lambda: nn.LSTM(3, 4), (_f32(3),), ShapeError,
     r"LSTM: Expected input to be 2D .* or 3D"),
    ("lstm-features", lambda: nn.LSTM(3, 4), (_f32(5, 2, 4),), ShapeError,
     r"LSTM: input.size\(-1\) must be equal to input_size. Expected 3, got 4"),
    ("lstm-hx_tensor", lambda: nn.LSTM(3, 4), (_f32(5, 2, 3), _f32(1, 2, 4)), TypeError,
     r"LSTM: expected hx to be a tuple \(h0, c0\) of two Tensors, got a Tensor"),
    ("lstm-hx_length", lambda: nn.LSTM(3, 4), (_f32(5, 2, 3), (_f32(1, 2, 4),)), TypeError,
     r"expected hx to be a tuple \(h0, c0\) of two Tensors, got a tuple of length 1"),
    ("lstm-h0_batch", lambda: nn.LSTM(3, 4), (_f32(5, 2, 3), (_f32(1, 3, 4), _f32(1, 2, 4))),
     ShapeError, r"LSTM: Expected hidden\[0\] size \(1, 2, 4\), got \(1, 3, 4\)"),
    ("lstm-c0_size", lambda: nn.LSTM(3, 4), (_f32(5, 2, 3), (_f32(1, 2, 4), _f32(1, 2, 3))),
     ShapeError, r"LSTM: Expected hidden\[1\] size \(1, 2, 4\), got \(1, 2, 3\)"),
    ("lstm-h0_proj", lambda: nn.LSTM(3, 4, proj_size=2),
     (_f32(5, 2, 3), (_f32(1, 2, 4), _f32(1, 2, 4))), ShapeError,
     r"Expected hidden\[0\] size \(1, 2, 2\), got \(1, 2, 4\)"),
    ("lstm-c0_proj", lambda: nn.LSTM(3, 4, proj_size=2),
     (_f32(5, 2, 3), (_f32(1, 2, 2), _f32(1, 2, 2))), ShapeError,
     r"Expected hidden\[1\] size \(1, 2, 4\), got \(1, 2, 2\)"),
    ("lstm-h0_layers", lambda: nn.LSTM(3, 4, num_layers=2),
     (_f32(5, 2, 3), (_f32(1, 2, 4), _f32(1, 2, 4))), ShapeError,
     r"Expected hidden\[0\] size \(2, 2, 4\), got \(1, 2, 4\)"),
    ("lstm-h0_rank_unbatched", lambda: nn.LSTM(3, 4),
     (_f32(5, 3), (_f32(1, 1, 4), _f32(1, 1, 4))), ShapeError,
     r"LSTM: for unbatched 2-D input, h0 should be 2-D but got 3-D"),
    ("lstm-c0_unbatched_bidir", lambda: nn.LSTM(3, 4, bidirectional=True),
     (_f32(5, 3), (_f32(2, 4), _f32(1, 4))), ShapeError,
     r"Expected hidden\[1\] size \(2, 4\), got \(1, 4\)"),
    ("lstm-c0_dtype", lambda: nn.LSTM(3, 4),
     (_f32(5, 2, 3), (_f32(1, 2, 4), Tensor(np.zeros((1, 2, 4))))), TypeError,
     r"LSTM: c0 dtype float64 does not match input dtype float32"),
    ("lstm-dtype_mismatch", lambda: nn.LSTM(3, 4), (Tensor(np.zeros((5, 2, 3))),), TypeError,
     r"LSTM: input dtype float64 does not match the parameters' dtype float32"),
    ("lstm-empty_sequence", lambda: nn.LSTM(3, 4), (_f32(0, 2, 3),), ShapeError,
     r"sequence of length >= 1"),
    ("gru-rank4", lambda: nn.GRU(3, 4), (_f32(2, 5, 2, 3),), ShapeError,
     r"GRU: .*got 4D tensor"),
    ("gru-features", lambda: nn.GRU(3, 4, batch_first=True), (_f32(2, 5, 4),), ShapeError,
     r"GRU: input.size\(-1\) must be equal to input_size. Expected 3, got 4"),
    ("gru-h0_batch", lambda: nn.GRU(3, 4), (_f32(5, 2, 3), _f32(1, 3, 4)), ShapeError,
     r"GRU: Expected hidden size \(1, 2, 4\), got \(1, 3, 4\)"),
    ("gru-h0_layers_bidir", lambda: nn.GRU(3, 4, num_layers=2, bidirectional=True),
     (_f32(5, 2, 3), _f32(2, 2, 4)), ShapeError,
     r"Expected hidden size \(4, 2, 4\), got \(2, 2, 4\)"),
    ("gru-h0_rank", lambda: nn.GRU(3, 4), (_f32(5, 2, 3), _f32(2, 4)), ShapeError,
     r"GRU: for batched 3-D input, h0 should be 3-D but got 2-D"),
    ("gru-h0_unbatched", lambda: nn.GRU(3, 4), (_f32(5, 3), _f32(1, 5)), ShapeError,
     r"Expected hidden size \(1, 4\), got \(1, 5\)"),
    ("gru-h0_tuple", lambda: nn.GRU(3, 4), (_f32(5, 2, 3), (_f32(1, 2, 4),)), TypeError,
     r"GRU: expected h0 to be a Tensor, got tuple"),
    ("gru-int_input", lambda: nn.GRU(3, 4), (Tensor(np.zeros((5, 2, 3), np.int64)),),
     TypeError, r"GRU: expected a floating point input, got dtype int64"),
    ("gru-h0_dtype", lambda: nn.GRU(3, 4), (_f32(5, 2, 3), Tensor(np.zeros((1, 2, 4)))),
     TypeError, r"GRU: h0 dtype float64 does not match input dtype float32"),
]


@pytest.mark.parametrize("make, args, error, match", [c[1:] for c in FORWARD_ERRORS],
                         ids=[c[0] for c in FORWARD_ERRORS])
def test_forward_errors_name_the_problem(make, args, error, match):
    with pytest.raises(error, match=match):
        make()(*args)


def test_shape_errors_are_value_errors_and_runtime_errors():
    """PyTorch raises RuntimeError for these, Python code habitually catches ValueError."""
    for catch in (ValueError, RuntimeError):
        with pytest.raises(catch, match="input_size"):
            nn.GRU(3, 4)(_f32(5, 2, 4))


CONSTRUCTOR_ERRORS = [
    ("RNN", {"nonlinearity": "sigmoid"},
     r"Unknown nonlinearity 'sigmoid'. Select from 'tanh' or 'relu'"),
    ("RNN", {"num_layers": 0}, r"num_layers must be an integer >= 1, got 0"),
    ("RNN", {"num_layers": -2}, r"num_layers must be an integer >= 1, got -2"),
    ("RNN", {"dropout": -0.1}, r"dropout should be a number in range \[0, 1\].*got -0.1"),
    ("RNN", {"dropout": 1.5}, r"dropout should be a number in range \[0, 1\].*got 1.5"),
    ("RNN", {"hidden_size": 0}, r"hidden_size must be a positive integer, got 0"),
    ("RNN", {"input_size": 2.5}, r"input_size must be a positive integer, got 2.5"),
    ("RNN", {"input_size": True}, r"RNN: input_size must be a positive integer, got True"),
    ("LSTM", {"proj_size": 4},
     r"proj_size has to be smaller than hidden_size, got proj_size=4 and hidden_size=4"),
    ("LSTM", {"proj_size": -1},
     r"proj_size should be a positive integer or zero to disable projections, got -1"),
    ("LSTM", {"proj_size": 1.5}, r"proj_size should be a positive integer or zero"),
    ("LSTM", {"num_layers": 0}, r"LSTM: num_layers must be an integer >= 1, got 0"),
    ("LSTM", {"dropout": 1.5}, r"dropout should be a number in range \[0, 1\].*got 1.5"),
    ("LSTM", {"hidden_size": 0}, r"LSTM: hidden_size must be a positive integer, got 0"),
    ("GRU", {"num_layers": 0}, r"GRU: num_layers must be an integer >= 1, got 0"),
    ("GRU", {"dropout": -0.1}, r"dropout should be a number in range \[0, 1\].*got -0.1"),
    ("GRU", {"input_size": 2.5}, r"GRU: input_size must be a positive integer, got 2.5"),
    ("GRU", {"hidden_size": False}, r"GRU: hidden_size must be a positive integer, got False"),
]


@pytest.mark.parametrize("mode, kwargs, match", CONSTRUCTOR_ERRORS)
def test_constructor_errors_name_the_problem(mode, kwargs, match):
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        layer(mode, **args)


CELL_ERRORS = [
    ("RNN", (_f32(2, 2, 3),), ShapeError, r"RNNCell: Expected input to be 1D or 2D"),
    ("RNN", (_f32(2, 4),), ShapeError, r"inconsistent input_size: got 4 expected 3"),
    ("RNN", (_f32(2, 3), _f32(3, 5)), ShapeError,
     r"Expected hidden size \(2, 5\), got \(3, 5\)"),
    ("LSTM", (_f32(2, 2, 3),), ShapeError, r"LSTMCell: Expected input to be 1D or 2D"),
    ("LSTM", (_f32(2, 4),), ShapeError,
     r"LSTMCell: input has inconsistent input_size: got 4 expected 3"),
    ("LSTM", (_f32(2, 3), (_f32(3, 5), _f32(2, 5))), ShapeError,
     r"LSTMCell: Expected hidden size \(2, 5\), got \(3, 5\)"),
    ("LSTM", (_f32(2, 3), _f32(2, 5)), TypeError,
     r"LSTMCell: expected hx to be a tuple \(h, c\) of two Tensors, got Tensor"),
    ("GRU", (_f32(2, 2, 3),), ShapeError, r"GRUCell: Expected input to be 1D or 2D"),
    ("GRU", (_f32(2, 4),), ShapeError,
     r"GRUCell: input has inconsistent input_size: got 4 expected 3"),
    ("GRU", (_f32(2, 3), _f32(3, 5)), ShapeError,
     r"GRUCell: Expected hidden size \(2, 5\), got \(3, 5\)"),
    ("GRU", (_f32(2, 3), Tensor(np.zeros((2, 5)))), TypeError,
     r"GRUCell: hx dtype float64 does not match input dtype float32"),
    # unbatched input: the shapes as given (it said "got (1, 1, 5)" for an h of (1, 5))
    ("RNN", (_f32(3), _f32(1, 5)), ShapeError, r"Expected hidden size \(5,\), got \(1, 5\)$"),
    ("LSTM", (_f32(3), (_f32(5), _f32(2, 5))), ShapeError,
     r"LSTMCell: Expected hidden size \(5,\), got \(2, 5\)$"),
    ("GRU", (_f32(2, 3), _f32(5)), ShapeError, r"Expected hidden size \(2, 5\), got \(5,\)$"),
]


@pytest.mark.parametrize("mode, args, error, match", CELL_ERRORS)
def test_cell_errors(mode, args, error, match):
    with pytest.raises(error, match=match):
        cell_module(mode, 3, 5)(*args)


def test_rnn_cell_invalid_nonlinearity():
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'"):
        nn.RNNCell(3, 5, nonlinearity="gelu")


# --------------------------------------------------------------------------------- repr

@pytest.mark.parametrize("module, expected", [
    (lambda: nn.RNN(3, 4), "RNN(3, 4)"),
    (lambda: nn.RNN(3, 4, num_layers=2, nonlinearity="relu", bias=False, batch_first=True,
                    dropout=0.5, bidirectional=True),
     "RNN(3, 4, num_layers=2, nonlinearity='relu', bias=False, batch_first=True, "
     "dropout=0.5, bidirectional=True)"),
    (lambda: nn.RNNCell(3, 4), "RNNCell(3, 4)"),
    (lambda: nn.LSTM(3, 4), "LSTM(3, 4)"),
    (lambda: nn.LSTM(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5,
                     bidirectional=True, proj_size=2, unroll=True),
     "LSTM(3, 4, proj_size=2, num_layers=2, bias=False, batch_first=True, dropout=0.5, "
     "bidirectional=True, unroll=True)"),
    (lambda: nn.LSTMCell(3, 4, bias=False), "LSTMCell(3, 4, bias=False)"),
    (lambda: nn.GRU(3, 4), "GRU(3, 4)"),
    (lambda: nn.GRU(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5,
                    bidirectional=True),
     "GRU(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True)"),
    (lambda: nn.GRUCell(3, 4), "GRUCell(3, 4)"),
])
def test_repr_lists_the_non_default_options(module, expected):
    assert repr(module()) == expected


# ---------------------------------------------------------------------- the state hook

@pytest.mark.parametrize("mode", CELLS)
@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
@pytest.mark.parametrize("kwargs", [{}, {"num_layers": 2}, {"batch_first": True},
                                    {"bidirectional": True}], ids=["1", "2layers", "bf", "bi"])
def test_output_and_h_n_are_siblings_for_hooks_and_retain_grad(mode, unroll, kwargs):
    # As in PyTorch, h_n is not computed *from* the output: the output's gradient is its own
    # (d out.sum() = ones, whatever h_n's term adds), and a hook on the output can change
    # only that. Here the hook zeroes it, so the parameters get exactly the gradient of the
    # h_n term alone.
    x = np.random.default_rng(2).standard_normal((5, 3, 2))
    grads = {}
    for run in ("retained", "hooked", "h_n only"):
        tg.manual_seed(0)
        rnn = layer(mode, 2, 4, unroll=unroll, dtype="float64", **kwargs)
        out, final = rnn(Tensor(x))
        h_n = final[0] if mode == "LSTM" else final
        if run == "retained":
            out.retain_grad()
        if run == "hooked":
            out.register_hook(lambda g: g * 0)
        ((h_n * 3).sum() if run == "h_n only" else out.sum() + (h_n * 3).sum()).backward()
        if run == "retained":
            np.testing.assert_array_equal(out.grad.numpy(), np.ones(out.shape))
        grads[run] = [p.grad.numpy() for p in rnn.parameters()]
    for with_hook, h_n_only in zip(grads["hooked"], grads["h_n only"]):
        np.testing.assert_allclose(with_hook, h_n_only, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", CELLS)
def test_state_hook_reports_every_state_and_gradient_the_same_in_both_implementations(mode):
    """One callback shape for both passes and both implementations; the gradients it
    reports are the total ∂L/∂h_t (checked against autograd's own hook on the unrolled
    graph's h_t in ``test_bptt.py``); here: fused == unrolled, event by event."""
    tg.manual_seed(8)
    events = {}
    x = np.random.default_rng(8).standard_normal((4, 2, 3))
    fused = layer(mode, 3, 5, num_layers=2, bidirectional=True, dtype="float64")
    for unroll in (False, True):
        rnn = layer(mode, 3, 5, num_layers=2, bidirectional=True, unroll=unroll,
                    dtype="float64")
        rnn.load_state_dict(fused.state_dict())
        seen = []
        handle = rnn.register_state_hook(
            lambda e: seen.append((e.call, e.row, e.kind, e.t, e.value.numpy().copy())))
        output, _ = rnn(Tensor(x))
        (output * output).sum().backward()
        handle.remove()
        rnn(Tensor(x))                              # removed: sees nothing more
        events[unroll] = seen
    fused, unrolled = events[False], events[True]
    key = lambda e: e[:4]
    assert sorted(map(key, fused)) == sorted(map(key, unrolled))
    assert {e[2] for e in fused} == {"state", "grad"}
    assert len(fused) == 2 * 4 * 4                 # 4 rows × 4 steps, states and gradients
    unrolled_by_key = {key(e): e[4] for e in unrolled}
    for e in fused:
        np.testing.assert_allclose(e[4], unrolled_by_key[key(e)], rtol=1e-10, atol=1e-12)


def test_state_hook_must_be_callable_and_numbers_the_forward_calls():
    rnn = nn.GRU(2, 3)
    with pytest.raises(TypeError, match="callable"):
        rnn.register_state_hook(None)
    calls = set()
    rnn.register_state_hook(lambda e: calls.add(e.call))
    rnn(_f32(3, 1, 2))
    rnn(_f32(3, 1, 2))
    assert len(calls) == 2


@pytest.mark.parametrize("make", [
    lambda m: m.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2),
    lambda m: m.GRU(3, 4, num_layers=2, bias=False),
    lambda m: m.RNN(3, 4, bidirectional=True),
])
def test_all_weights_lists_each_layer_and_direction_as_torch(make):
    torch = pytest.importorskip("torch")
    ours, theirs = make(nn), make(torch.nn)
    ours.flatten_parameters()  # a PyTorch habit: runs, does nothing
    assert ([[tuple(w.shape) for w in ws] for ws in ours.all_weights]
            == [[tuple(w.shape) for w in ws] for ws in theirs.all_weights])
    named = dict(ours.named_parameters())
    assert [w for ws in ours.all_weights for w in ws] == list(named.values())
