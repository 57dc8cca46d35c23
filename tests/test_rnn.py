"""``nn.RNN`` and ``nn.RNNCell``: semantics, the two implementations, errors.

Expected values come from formulas (a NumPy Elman recurrence written from PyTorch's
documentation, below) or from comparing the fused layer with the unrolled one; the numbers
recorded from PyTorch itself are checked in ``tests/test_nn_parity.py``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn

from gated_reference import graph_ops, rel_err

FIXTURES = Path(__file__).resolve().parent / "fixtures"


# ------------------------------------------------------------------------------ helpers

def reference_rnn(x, h0, params, *, num_layers, bidirectional, nonlinearity, batch_first):
    """PyTorch's documented RNN in NumPy: ``h_t = f(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)``
    per layer and direction; the next layer reads both directions concatenated.
    ``x`` (L, N, I) / (N, L, I) / unbatched (L, I); ``h0`` (D*layers, N, H) or None."""
    f = np.tanh if nonlinearity == "tanh" else (lambda a: np.maximum(a, 0))
    unbatched = x.ndim == 2
    seq = x[:, None] if unbatched else (x.transpose(1, 0, 2) if batch_first else x)
    L, N = seq.shape[:2]
    D = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[0]
    if h0 is None:
        h0 = np.zeros((D * num_layers, N, H))
    elif unbatched:
        h0 = h0[:, None]
    finals, layer_in = [], seq
    for k in range(num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            w_ih, w_hh = params["weight_ih" + sfx], params["weight_hh" + sfx]
            b = params.get("bias_ih" + sfx, 0.0) + params.get("bias_hh" + sfx, 0.0)
            h, out = h0[k * D + d], np.zeros((L, N, H))
            for t in (reversed(range(L)) if d else range(L)):
                h = f(layer_in[t] @ w_ih.T + h @ w_hh.T + b)
                out[t] = h
            outs.append(out)
            finals.append(h)
        layer_in = np.concatenate(outs, axis=2)
    output, h_n = layer_in, np.stack(finals)
    if batch_first and not unbatched:
        output = output.transpose(1, 0, 2)
    if unbatched:
        output, h_n = output[:, 0], h_n[:, 0]
    return output, h_n


@st.composite
def rnn_configs(draw):
    unbatched = draw(st.booleans())
    return dict(
        input_size=draw(st.integers(1, 4)), hidden_size=draw(st.integers(1, 5)),
        num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()),
        nonlinearity=draw(st.sampled_from(["tanh", "relu"])), bias=draw(st.booleans()),
        batch_first=draw(st.booleans()), h0_given=draw(st.booleans()), unbatched=unbatched,
        T=draw(st.integers(1, 6)), N=None if unbatched else draw(st.integers(1, 3)),
        seed=draw(st.integers(0, 2**16)))


MODULE_ARGS = ("input_size", "hidden_size", "num_layers", "nonlinearity", "bias",
               "batch_first", "bidirectional")


def make_inputs(cfg, rng, dtype="float64"):
    D = 2 if cfg["bidirectional"] else 1
    I, H, T, N = cfg["input_size"], cfg["hidden_size"], cfg["T"], cfg["N"]
    if cfg["unbatched"]:
        x_shape, h_shape = (T, I), (D * cfg["num_layers"], H)
    else:
        x_shape = (N, T, I) if cfg["batch_first"] else (T, N, I)
        h_shape = (D * cfg["num_layers"], N, H)
    x = rng.standard_normal(x_shape).astype(dtype)
    h0 = rng.standard_normal(h_shape).astype(dtype) if cfg["h0_given"] else None
    return x, h0


def run_with_grads(rnn, x, h0, w_out, w_hn):
    """Forward and backward of ``sum(output * w_out) + sum(h_n * w_hn)``; returns the
    outputs and every gradient as host arrays."""
    xt = Tensor(x, requires_grad=True)
    ht = Tensor(h0, requires_grad=True) if h0 is not None else None
    output, h_n = rnn(xt, ht)
    ((output * Tensor(w_out)).sum() + (h_n * Tensor(w_hn)).sum()).backward()
    grads = {f"param.{n}": p.grad.numpy() for n, p in rnn.named_parameters()}
    grads["x"] = xt.grad.numpy()
    if ht is not None:
        grads["h0"] = ht.grad.numpy()
    return output.numpy(), h_n.numpy(), grads


# ------------------------------------------------------------------- semantics, formulas

@given(rnn_configs())
def test_output_and_h_n_match_the_reference_recurrence(cfg):
    tg.manual_seed(cfg["seed"])
    rnn = nn.RNN(**{k: cfg[k] for k in MODULE_ARGS}, dtype="float64")
    x, h0 = make_inputs(cfg, np.random.default_rng(cfg["seed"]))
    params = {n: p.numpy() for n, p in rnn.named_parameters()}
    expected_out, expected_hn = reference_rnn(x, h0, params, **{
        k: cfg[k] for k in ("num_layers", "bidirectional", "nonlinearity", "batch_first")})
    for unroll in (False, True):
        rnn.unroll = unroll
        output, h_n = rnn(Tensor(x), Tensor(h0) if h0 is not None else None)
        assert output.shape == expected_out.shape and h_n.shape == expected_hn.shape
        assert rel_err(output.numpy(), expected_out) < 1e-12
        assert rel_err(h_n.numpy(), expected_hn) < 1e-12


@given(rnn_configs())
def test_fused_and_unrolled_agree_on_outputs_and_all_gradients(cfg):
    tg.manual_seed(cfg["seed"])
    fused = nn.RNN(**{k: cfg[k] for k in MODULE_ARGS}, dtype="float64")
    unrolled = nn.RNN(**{k: cfg[k] for k in MODULE_ARGS}, unroll=True, dtype="float64")
    unrolled.load_state_dict(fused.state_dict())
    rng = np.random.default_rng(cfg["seed"])
    x, h0 = make_inputs(cfg, rng)
    with tg.no_grad():
        out_shape, hn_shape = (t.shape for t in fused(Tensor(x), None))
    w_out, w_hn = rng.standard_normal(out_shape), rng.standard_normal(hn_shape)
    out_f, hn_f, grads_f = run_with_grads(fused, x, h0, w_out, w_hn)
    out_u, hn_u, grads_u = run_with_grads(unrolled, x, h0, w_out, w_hn)
    assert rel_err(out_f, out_u) < 1e-10 and rel_err(hn_f, hn_u) < 1e-10
    assert grads_f.keys() == grads_u.keys()
    for key in grads_f:
        assert rel_err(grads_f[key], grads_u[key]) < 1e-10, key


@pytest.mark.parametrize("unroll", [False, True])
def test_float32_stays_float32_outputs_and_gradients(unroll):
    rnn = nn.RNN(3, 4, num_layers=2, bidirectional=True, unroll=unroll)
    x = Tensor(np.ones((5, 2, 3), np.float32), requires_grad=True)
    h0 = Tensor(np.zeros((4, 2, 4), np.float32), requires_grad=True)
    output, h_n = rnn(x, h0)
    assert output.dtype == h_n.dtype == np.float32
    (output.sum() + h_n.sum()).backward()
    assert x.grad.dtype == h0.grad.dtype == np.float32
    for name, p in rnn.named_parameters():
        assert p.dtype == np.float32 and p.grad.dtype == np.float32, name


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, False), (3, True)])
def test_fused_path_records_one_node_per_layer_and_direction(layers, bidirectional):
    rnn = nn.RNN(3, 4, num_layers=layers, bidirectional=bidirectional)
    output, h_n = rnn(Tensor(np.ones((6, 2, 3), np.float32)))
    ops = graph_ops(output, h_n)
    recurrences = [op for op in ops if op.startswith("rnn_")]
    assert len(recurrences) == layers * (2 if bidirectional else 1)
    assert "tanh" not in ops  # no per-step ops
    unrolled = nn.RNN(3, 4, num_layers=layers, bidirectional=bidirectional, unroll=True)
    ops = graph_ops(*unrolled(Tensor(np.ones((6, 2, 3), np.float32))))
    assert not any(op.startswith("rnn_") for op in ops)
    assert ops.count("tanh") == 6 * layers * (2 if bidirectional else 1)


def test_fused_node_reads_the_input_the_state_and_the_four_weights():
    rnn = nn.RNN(3, 4)
    x = Tensor(np.ones((5, 2, 3), np.float32), requires_grad=True)
    output, _ = rnn(x)
    node = output.grad_fn
    assert node.op == "rnn_tanh"
    parents = node.parents
    assert len(parents) == 6 and parents[0] is x
    assert parents[1].shape == (2, 4)  # h0 of this layer
    assert [id(p) for p in parents[2:]] == [id(p) for p in rnn.parameters()]


# ------------------------------------------------------------------------------ dropout

def test_dropout_is_active_in_training_mode_only():
    tg.manual_seed(0)
    rnn = nn.RNN(3, 8, num_layers=2, dropout=0.5, dtype="float64")
    x = Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)))
    train_a, train_b = rnn(x)[0].numpy(), rnn(x)[0].numpy()
    assert not np.allclose(train_a, train_b)  # a fresh mask each call
    rnn.eval()
    eval_out = rnn(x)[0].numpy()
    no_dropout = nn.RNN(3, 8, num_layers=2, dtype="float64")
    no_dropout.load_state_dict(rnn.state_dict())
    np.testing.assert_array_equal(eval_out, no_dropout(x)[0].numpy())
    np.testing.assert_array_equal(eval_out, rnn(x)[0].numpy())


@pytest.mark.parametrize("unroll", [False, True])
def test_dropout_acts_between_layers_only(unroll):
    """p=1 drops the whole input of layer 2 and nothing else: layer 1 is untouched, and the
    output is layer 2 run on zeros, not scaled or zeroed after the last layer."""
    tg.manual_seed(1)
    rnn = nn.RNN(3, 4, num_layers=2, dropout=1.0, unroll=unroll, dtype="float64")
    x = np.random.default_rng(1).standard_normal((5, 2, 3))
    output, h_n = rnn(Tensor(x))
    p = {n: q.numpy() for n, q in rnn.named_parameters()}
    layer1 = {k: v for k, v in p.items() if k.endswith("_l0")}
    _, layer1_hn = reference_rnn(x, None, layer1, num_layers=1, bidirectional=False,
                                 nonlinearity="tanh", batch_first=False)
    layer2 = {k.replace("_l1", "_l0"): v for k, v in p.items() if k.endswith("_l1")}
    expected, expected_hn = reference_rnn(np.zeros((5, 2, 4)), None, layer2, num_layers=1,
                                          bidirectional=False, nonlinearity="tanh",
                                          batch_first=False)
    np.testing.assert_allclose(output.numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_n.numpy()[0], layer1_hn[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_n.numpy()[1], expected_hn[0], rtol=0, atol=1e-12)


def test_dropout_with_one_layer_changes_nothing():
    tg.manual_seed(2)
    rnn = nn.RNN(3, 4, dropout=0.9, dtype="float64")
    x = np.random.default_rng(2).standard_normal((5, 2, 3))
    expected, _ = reference_rnn(x, None, {n: p.numpy() for n, p in rnn.named_parameters()},
                                num_layers=1, bidirectional=False, nonlinearity="tanh",
                                batch_first=False)
    np.testing.assert_allclose(rnn(Tensor(x))[0].numpy(), expected, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ parameters and init

def test_parameter_names_and_order_are_pytorchs():
    rnn = nn.RNN(3, 4, num_layers=2, bidirectional=True)
    names = [n for n, _ in rnn.named_parameters()]
    assert names == [f"{w}_l{k}{sfx}" for k in range(2) for sfx in ("", "_reverse")
                     for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    shapes = dict((n, p.shape) for n, p in rnn.named_parameters())
    assert shapes["weight_ih_l0"] == (4, 3) and shapes["weight_ih_l1_reverse"] == (4, 8)
    assert shapes["weight_hh_l1"] == (4, 4) and shapes["bias_hh_l0_reverse"] == (4,)
    assert [n for n, _ in nn.RNN(3, 4, bias=False).named_parameters()] == \
        ["weight_ih_l0", "weight_hh_l0"]


@pytest.mark.parametrize("path", sorted((FIXTURES / "rnn").glob("*_f64.npz")),
                         ids=lambda p: p.stem)
def test_parameter_names_and_shapes_match_the_recorded_pytorch_module(path):
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(f["meta"].item())
        shapes = {k[len("param."):]: f[k].shape for k in f.files if k.startswith("param.")}
    rnn = nn.RNN(**{k: meta[k] for k in MODULE_ARGS}, dropout=meta["dropout"])
    assert [n for n, _ in rnn.named_parameters()] == meta["param_names"]
    assert {n: p.shape for n, p in rnn.named_parameters()} == shapes


@pytest.mark.parametrize("module", [lambda: nn.RNN(20, 256, bidirectional=True),
                                    lambda: nn.RNNCell(20, 256)], ids=["RNN", "RNNCell"])
def test_init_is_uniform_in_plus_minus_one_over_sqrt_hidden(module):
    tg.manual_seed(3)
    bound = 1 / math.sqrt(256)
    values = np.concatenate([p.numpy().ravel() for p in module().parameters()]).astype(float)
    n = values.size  # ~142k draws
    assert np.all(np.abs(values) <= bound)
    assert values.min() < -0.999 * bound and values.max() > 0.999 * bound
    # U(-b, b): mean 0, variance b²/3, flat histogram (each of 10 bins ~ n/10 ± 4 sigma)
    assert abs(values.mean()) < 5 * bound / math.sqrt(3 * n)
    assert values.var() == pytest.approx(bound ** 2 / 3, rel=0.02)
    counts, _ = np.histogram(values, bins=10, range=(-bound, bound))
    assert np.all(np.abs(counts - n / 10) < 4 * math.sqrt(n * 0.1 * 0.9))


def test_same_seed_same_weights():
    tg.manual_seed(7)
    a = nn.RNN(3, 4, num_layers=2)
    tg.manual_seed(7)
    b = nn.RNN(3, 4, num_layers=2)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=n)


# ----------------------------------------------------------------------------- RNNCell

@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("unbatched", [False, True])
def test_rnn_cell_is_one_step_of_rnn(nonlinearity, bias, unbatched):
    tg.manual_seed(4)
    rnn = nn.RNN(3, 5, nonlinearity=nonlinearity, bias=bias, dtype="float64")
    cell = nn.RNNCell(3, 5, bias=bias, nonlinearity=nonlinearity, dtype="float64")
    cell.load_state_dict({n.replace("_l0", ""): p for n, p in rnn.state_dict().items()})
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3) if unbatched else (4, 2, 3))
    h0 = rng.standard_normal((1, 5) if unbatched else (1, 2, 5))
    output, h_n = rnn(Tensor(x), Tensor(h0))
    h = Tensor(h0[0])
    for t in range(4):
        h = cell(Tensor(x[t]), h)
        np.testing.assert_allclose(h.numpy(), output.numpy()[t], rtol=0, atol=1e-14)
    np.testing.assert_allclose(h.numpy(), h_n.numpy()[0], rtol=0, atol=1e-14)


def test_rnn_cell_default_state_is_zeros():
    tg.manual_seed(5)
    cell = nn.RNNCell(3, 2, dtype="float64")
    x = np.random.default_rng(5).standard_normal((4, 3))
    p = {n: q.numpy() for n, q in cell.named_parameters()}
    expected = np.tanh(x @ p["weight_ih"].T + p["bias_ih"] + p["bias_hh"])
    np.testing.assert_allclose(cell(Tensor(x)).numpy(), expected, rtol=0, atol=1e-14)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh", "bias_ih",
                                                       "bias_hh"]


# ------------------------------------------------------------------------------- errors

def _f32(*shape):
    return Tensor(np.zeros(shape, np.float32))


@pytest.mark.parametrize("make, args, error, match", [
    (lambda: nn.RNN(3, 4), (_f32(3),), ValueError, r"Expected input to be 2D .* or 3D"),
    (lambda: nn.RNN(3, 4), (_f32(2, 5, 2, 3),), ValueError, r"got 4D tensor"),
    (lambda: nn.RNN(3, 4), (_f32(5, 2, 4),), ValueError,
     r"input.size\(-1\) must be equal to input_size. Expected 3, got 4"),
    (lambda: nn.RNN(3, 4), (_f32(5, 2, 3), _f32(1, 3, 4)), ValueError,
     r"Expected hidden size \(1, 2, 4\), got \(1, 3, 4\)"),
    (lambda: nn.RNN(3, 4, num_layers=2), (_f32(5, 2, 3), _f32(1, 2, 4)), ValueError,
     r"Expected hidden size \(2, 2, 4\), got \(1, 2, 4\)"),
    (lambda: nn.RNN(3, 4), (_f32(5, 2, 3), _f32(2, 4)), ValueError,
     r"batched 3-D input, h0 should be 3-D but got 2-D"),
    (lambda: nn.RNN(3, 4), (_f32(5, 3), _f32(1, 5)), ValueError,
     r"Expected hidden size \(1, 4\), got \(1, 5\)"),
    (lambda: nn.RNN(3, 4, bidirectional=True), (_f32(5, 3), _f32(1, 4)), ValueError,
     r"Expected hidden size \(2, 4\), got \(1, 4\)"),
    (lambda: nn.RNN(3, 4), (_f32(5, 3), _f32(1, 1, 4)), ValueError,
     r"unbatched 2-D input, h0 should be 2-D but got 3-D"),
    (lambda: nn.RNN(3, 4), (Tensor(np.zeros((5, 2, 3), np.int64)),), TypeError,
     r"expected a floating point input, got dtype int64"),
    (lambda: nn.RNN(3, 4), (Tensor(np.zeros((5, 2, 3))),), TypeError,
     r"input dtype float64 does not match the parameters' dtype float32"),
    (lambda: nn.RNN(3, 4), (_f32(5, 2, 3), Tensor(np.zeros((1, 2, 4)))), TypeError,
     r"h0 dtype float64 does not match input dtype float32"),
    (lambda: nn.RNN(3, 4), (np.zeros((5, 2, 3), np.float32),), TypeError,
     r"expected input to be a Tensor"),
    (lambda: nn.RNN(3, 4), (_f32(0, 2, 3),), ValueError, r"sequence of length >= 1"),
], ids=["rank1", "rank4", "features", "h0_batch", "h0_layers", "h0_rank_batched",
        "h0_unbatched", "h0_unbatched_bidir", "h0_rank_unbatched", "int_input",
        "dtype_mismatch", "h0_dtype", "not_tensor", "empty_sequence"])
def test_forward_errors_name_the_problem(make, args, error, match):
    with pytest.raises(error, match=match):
        make()(*args)


@pytest.mark.parametrize("kwargs, match", [
    ({"nonlinearity": "sigmoid"}, r"unknown nonlinearity 'sigmoid'; expected 'tanh' or 'relu'"),
    ({"num_layers": 0}, r"num_layers must be an integer >= 1, got 0"),
    ({"num_layers": -2}, r"num_layers must be an integer >= 1, got -2"),
    ({"dropout": -0.1}, r"dropout should be a number in range \[0, 1\].*got -0.1"),
    ({"dropout": 1.5}, r"dropout should be a number in range \[0, 1\].*got 1.5"),
    ({"hidden_size": 0}, r"hidden_size must be a positive integer, got 0"),
    ({"input_size": 2.5}, r"input_size must be a positive integer, got 2.5"),
])
def test_constructor_errors_name_the_problem(kwargs, match):
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        nn.RNN(**args)


@pytest.mark.parametrize("args, match", [
    ((_f32(2, 2, 3),), r"Expected input to be 1D or 2D"),
    ((_f32(2, 4),), r"inconsistent input_size: got 4 expected 3"),
    ((_f32(2, 3), _f32(3, 5)), r"Expected hidden size \(2, 5\), got \(3, 5\)"),
])
def test_rnn_cell_errors(args, match):
    with pytest.raises(ValueError, match=match):
        nn.RNNCell(3, 5)(*args)


def test_rnn_cell_invalid_nonlinearity():
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'"):
        nn.RNNCell(3, 5, nonlinearity="gelu")


# ----------------------------------------------------------------------- misc behaviour

def test_h0_defaults_to_zeros_and_is_not_modified():
    tg.manual_seed(6)
    rnn = nn.RNN(3, 4, num_layers=2, dtype="float64")
    x = Tensor(np.random.default_rng(6).standard_normal((5, 2, 3)))
    zeros = np.zeros((2, 2, 4))
    h0 = Tensor(zeros.copy())
    np.testing.assert_array_equal(rnn(x)[0].numpy(), rnn(x, h0)[0].numpy())
    np.testing.assert_array_equal(h0.numpy(), zeros)


def test_repr_lists_the_non_default_options():
    assert repr(nn.RNN(3, 4)) == "RNN(3, 4)"
    assert repr(nn.RNN(3, 4, num_layers=2, nonlinearity="relu", bias=False, batch_first=True,
                       dropout=0.5, bidirectional=True)) == \
        "RNN(3, 4, num_layers=2, nonlinearity='relu', bias=False, batch_first=True, " \
        "dropout=0.5, bidirectional=True)"
    assert repr(nn.RNNCell(3, 4)) == "RNNCell(3, 4)"
