"""``nn.LSTM`` and ``nn.LSTMCell``: semantics, the two implementations, errors.

Expected values come from formulas (PyTorch's documented LSTM equations in NumPy, in
``gated_reference.py``), finite differences, or the fused layer against the unrolled one;
the numbers recorded from PyTorch itself (``tests/fixtures/lstm``) are checked in
``tests/test_nn_parity.py``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.nn import recurrence
from tinygrad_rnn.nn.cells import LSTMEquations


def lstm_fused(x, h0, c0, *weights, w_hr=None, reverse=False):
    return recurrence.run_fused(LSTMEquations(w_hr), x, (h0, c0), weights, reverse=reverse)


def lstm_unrolled(x, h0, c0, *weights, w_hr=None, reverse=False):
    return recurrence.run_unrolled(LSTMEquations(w_hr), x, (h0, c0), weights, reverse=reverse)

from gated_reference import (configs, finals_of, graph_ops, lstm_cell_reference, make_inputs,
                             module_kwargs, reference, rel_err, run_with_grads)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


# ------------------------------------------------------------------- semantics, formulas

@given(configs("LSTM"))
def test_output_and_final_states_match_the_reference_equations(cfg):
    tg.manual_seed(cfg["seed"])
    lstm = nn.LSTM(cfg["input_size"], cfg["hidden_size"], **module_kwargs(cfg, "LSTM"),
                   dtype="float64")
    x, state = make_inputs("LSTM", cfg, np.random.default_rng(cfg["seed"]))
    params = {n: p.numpy() for n, p in lstm.named_parameters()}
    expected_out, (expected_h, expected_c) = reference(
        "LSTM", x, state, params, num_layers=cfg["num_layers"],
        bidirectional=cfg["bidirectional"], batch_first=cfg["batch_first"],
        proj_size=cfg["proj_size"])
    for unroll in (False, True):
        lstm.unroll = unroll
        hx = tuple(Tensor(s) for s in state) if state is not None else None
        output, (h_n, c_n) = lstm(Tensor(x), hx)
        assert output.shape == expected_out.shape
        assert h_n.shape == expected_h.shape and c_n.shape == expected_c.shape
        assert rel_err(output.numpy(), expected_out) < 1e-12
        assert rel_err(h_n.numpy(), expected_h) < 1e-12
        assert rel_err(c_n.numpy(), expected_c) < 1e-12


@given(configs("LSTM"))
def test_fused_and_unrolled_agree_on_outputs_and_all_gradients(cfg):
    tg.manual_seed(cfg["seed"])
    kwargs = module_kwargs(cfg, "LSTM")
    fused = nn.LSTM(cfg["input_size"], cfg["hidden_size"], **kwargs, dtype="float64")
    unrolled = nn.LSTM(cfg["input_size"], cfg["hidden_size"], **kwargs, unroll=True,
                       dtype="float64")
    unrolled.load_state_dict(fused.state_dict())
    rng = np.random.default_rng(cfg["seed"])
    x, state = make_inputs("LSTM", cfg, rng)
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


@pytest.mark.parametrize("recurrence", [lstm_fused, lstm_unrolled], ids=["fused", "unrolled"])
@pytest.mark.parametrize("proj, reverse", [(False, False), (True, True)])
def test_recurrence_gradients_match_finite_differences(recurrence, proj, reverse):
    rng = np.random.default_rng(11)
    T, N, I, H, P = 4, 2, 3, 4, (2 if proj else 4)
    arrays = [rng.standard_normal(s) * 0.7 for s in
              [(T, N, I), (N, P), (N, H), (4 * H, I), (4 * H, P), (4 * H,), (4 * H,)]
              + ([(P, H)] if proj else [])]
    inputs = [Tensor(a, requires_grad=True) for a in arrays]

    def fn(*xs):
        w_hr = xs[7] if proj else None
        hs, cs = recurrence(*xs[:7], w_hr=w_hr, reverse=reverse)
        return Tensor.cat([hs.reshape(-1), cs.reshape(-1)])
    assert tg.gradcheck(fn, inputs, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("unroll", [False, True])
def test_float32_stays_float32_outputs_and_gradients(unroll):
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2, unroll=unroll)
    x = Tensor(np.ones((5, 2, 3), np.float32), requires_grad=True)
    h0 = Tensor(np.zeros((4, 2, 2), np.float32), requires_grad=True)
    c0 = Tensor(np.zeros((4, 2, 4), np.float32), requires_grad=True)
    output, (h_n, c_n) = lstm(x, (h0, c0))
    assert output.dtype == h_n.dtype == c_n.dtype == np.float32
    (output.sum() + h_n.sum() + c_n.sum()).backward()
    assert x.grad.dtype == h0.grad.dtype == c0.grad.dtype == np.float32
    for name, p in lstm.named_parameters():
        assert p.dtype == np.float32 and p.grad.dtype == np.float32, name


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, False), (3, True)])
def test_fused_path_records_one_node_per_layer_and_direction(layers, bidirectional):
    D = 2 if bidirectional else 1
    lstm = nn.LSTM(3, 4, num_layers=layers, bidirectional=bidirectional)
    output, (h_n, c_n) = lstm(Tensor(np.ones((6, 2, 3), np.float32)))
    ops = graph_ops(output, h_n, c_n)
    assert sorted(op for op in ops if op.startswith("lstm")) == \
        sorted(["lstm", "lstm_reverse"][:D] * layers)
    assert "sigmoid" not in ops and "tanh" not in ops  # no per-step ops
    unrolled = nn.LSTM(3, 4, num_layers=layers, bidirectional=bidirectional, unroll=True)
    output, (h_n, c_n) = unrolled(Tensor(np.ones((6, 2, 3), np.float32)))
    ops = graph_ops(output, h_n, c_n)
    assert not any(op.startswith("lstm") for op in ops)
    assert ops.count("sigmoid") == 3 * 6 * layers * D  # i, f, o at every step
    assert ops.count("tanh") == 2 * 6 * layers * D     # g and tanh(c)


def test_retain_graph_backward_twice_doubles_the_gradients():
    """The fused backward must not overwrite what it saved in the forward pass."""
    tg.manual_seed(2)
    lstm = nn.LSTM(2, 3, proj_size=2, bidirectional=True, dtype="float64")
    x = Tensor(np.random.default_rng(2).standard_normal((4, 2, 2)), requires_grad=True)
    output, (h_n, c_n) = lstm(x)
    loss = (output * output).sum() + (c_n * c_n).sum()
    loss.backward(retain_graph=True)
    first = {n: p.grad.numpy().copy() for n, p in lstm.named_parameters()}
    loss.backward()
    for n, p in lstm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), 2 * first[n], rtol=1e-13, atol=1e-15)


# -------------------------------------------------------------------- what gating does

@pytest.mark.parametrize("unroll", [False, True])
def test_an_open_forget_gate_carries_the_cell_state_and_its_gradient_unchanged(unroll):
    """Forget gate saturated open (f = 1) and input gate shut (i = 0): c_t = c_{t-1} for every
    step, so c_n = c0 and ∂c_n/∂c0 = I over any length: the gradient does not vanish."""
    H, T = 3, 50
    lstm = nn.LSTM(2, H, unroll=unroll, dtype="float64")
    bias = np.zeros(4 * H)
    bias[0:H], bias[H:2 * H] = -1e3, 1e3   # i ≈ 0, f ≈ 1
    lstm.load_state_dict({**lstm.state_dict(), "bias_ih_l0": bias})
    rng = np.random.default_rng(3)
    c0 = Tensor(rng.standard_normal((1, 2, H)), requires_grad=True)
    h0 = Tensor(np.zeros((1, 2, H)))
    _, (h_n, c_n) = lstm(Tensor(rng.standard_normal((T, 2, 2))), (h0, c0))
    np.testing.assert_array_equal(c_n.numpy(), c0.numpy())
    w = rng.standard_normal(c_n.shape)
    (c_n * Tensor(w)).sum().backward()
    np.testing.assert_array_equal(c0.grad.numpy(), w)


# ------------------------------------------------------------------------------ dropout

@pytest.mark.parametrize("unroll", [False, True])
def test_dropout_acts_between_layers_in_training_mode_only(unroll):
    """p=1 drops the whole input of layer 2 and nothing else; eval mode drops nothing."""
    tg.manual_seed(1)
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=1.0, unroll=unroll, dtype="float64")
    x = np.random.default_rng(1).standard_normal((5, 2, 3))
    output, (h_n, c_n) = lstm(Tensor(x))
    p = {n: q.numpy() for n, q in lstm.named_parameters()}
    layer = lambda k: {n.replace(f"_l{k}", "_l0"): v for n, v in p.items() if n.endswith(f"_l{k}")}
    one = dict(num_layers=1, bidirectional=False, batch_first=False)
    out1, (h1, c1) = reference("LSTM", x, None, layer(0), **one)
    expected, (h2, c2) = reference("LSTM", np.zeros((5, 2, 4)), None, layer(1), **one)
    np.testing.assert_allclose(output.numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_n.numpy(), np.concatenate([h1, h2]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(c_n.numpy(), np.concatenate([c1, c2]), rtol=0, atol=1e-12)
    lstm.eval()
    no_dropout, _ = reference("LSTM", x, None, p, num_layers=2, bidirectional=False,
                              batch_first=False)
    np.testing.assert_allclose(lstm(Tensor(x))[0].numpy(), no_dropout, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ parameters and init

def test_parameter_names_order_and_shapes_are_pytorchs():
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    names = [n for n, _ in lstm.named_parameters()]
    assert names == [f"{w}_l{k}{sfx}" for k in range(2) for sfx in ("", "_reverse")
                     for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")]
    shapes = {n: p.shape for n, p in lstm.named_parameters()}
    assert shapes["weight_ih_l0"] == (20, 3) and shapes["weight_ih_l1_reverse"] == (20, 4)
    assert shapes["weight_hh_l1"] == (20, 2) and shapes["bias_hh_l0_reverse"] == (20,)
    assert shapes["weight_hr_l0"] == (2, 5)
    assert [n for n, _ in nn.LSTM(3, 4, bias=False).named_parameters()] == \
        ["weight_ih_l0", "weight_hh_l0"]
    assert [n for n, _ in nn.LSTM(3, 4, bias=False, proj_size=1).named_parameters()] == \
        ["weight_ih_l0", "weight_hh_l0", "weight_hr_l0"]
    assert [n for n, _ in nn.LSTMCell(3, 4).named_parameters()] == \
        ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert nn.LSTMCell(3, 4).weight_hh.shape == (16, 4)


@pytest.mark.parametrize("path", sorted((FIXTURES / "lstm").glob("*_f64.npz")),
                         ids=lambda p: p.stem)
def test_parameter_names_and_shapes_match_the_recorded_pytorch_module(path):
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(f["meta"].item())
        shapes = {k[len("param."):]: f[k].shape for k in f.files if k.startswith("param.")}
    lstm = nn.LSTM(meta["input_size"], meta["hidden_size"], num_layers=meta["num_layers"],
                   bias=meta["bias"], batch_first=meta["batch_first"],
                   dropout=meta["dropout"], bidirectional=meta["bidirectional"],
                   proj_size=meta["proj_size"])
    assert [n for n, _ in lstm.named_parameters()] == meta["param_names"]
    assert {n: p.shape for n, p in lstm.named_parameters()} == shapes


@pytest.mark.parametrize("module", [lambda: nn.LSTM(20, 64, bidirectional=True, proj_size=8),
                                    lambda: nn.LSTMCell(20, 64)], ids=["LSTM", "LSTMCell"])
def test_init_is_uniform_in_plus_minus_one_over_sqrt_hidden(module):
    tg.manual_seed(3)
    bound = 1 / math.sqrt(64)
    values = np.concatenate([p.numpy().ravel() for p in module().parameters()]).astype(float)
    n = values.size
    assert np.all(np.abs(values) <= bound)
    assert values.min() < -0.99 * bound and values.max() > 0.99 * bound
    assert abs(values.mean()) < 5 * bound / math.sqrt(3 * n)
    assert values.var() == pytest.approx(bound ** 2 / 3, rel=0.05)


# ---------------------------------------------------------------------------- LSTMCell

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("unbatched", [False, True])
def test_lstm_cell_is_one_step_of_lstm(bias, unbatched):
    tg.manual_seed(4)
    lstm = nn.LSTM(3, 5, bias=bias, dtype="float64")
    cell = nn.LSTMCell(3, 5, bias=bias, dtype="float64")
    cell.load_state_dict({n.replace("_l0", ""): p for n, p in lstm.state_dict().items()})
    rng = np.random.default_rng(4)
    batch = () if unbatched else (2,)
    x = rng.standard_normal((4, *batch, 3))
    h0, c0 = rng.standard_normal((1, *batch, 5)), rng.standard_normal((1, *batch, 5))
    output, (h_n, c_n) = lstm(Tensor(x), (Tensor(h0), Tensor(c0)))
    h, c = Tensor(h0[0]), Tensor(c0[0])
    for t in range(4):
        h, c = cell(Tensor(x[t]), (h, c))
        assert h.shape == c.shape == (*batch, 5)
        np.testing.assert_allclose(h.numpy(), output.numpy()[t], rtol=0, atol=1e-14)
    np.testing.assert_allclose(h.numpy(), h_n.numpy()[0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(c.numpy(), c_n.numpy()[0], rtol=0, atol=1e-14)


def test_lstm_cell_default_state_is_zeros_and_matches_the_equations():
    tg.manual_seed(5)
    cell = nn.LSTMCell(3, 2, dtype="float64")
    x = np.random.default_rng(5).standard_normal((4, 3))
    p = {n: q.numpy() for n, q in cell.named_parameters()}
    zeros = np.zeros((4, 2))
    exp_h, exp_c = lstm_cell_reference(x, zeros, zeros, p["weight_ih"], p["weight_hh"],
                                       p["bias_ih"], p["bias_hh"])
    h, c = cell(Tensor(x))
    np.testing.assert_allclose(h.numpy(), exp_h, rtol=0, atol=1e-14)
    np.testing.assert_allclose(c.numpy(), exp_c, rtol=0, atol=1e-14)


# ------------------------------------------------------------------------------- errors

def _f32(*shape):
    return Tensor(np.zeros(shape, np.float32))


@pytest.mark.parametrize("make, args, error, match", [
    (lambda: nn.LSTM(3, 4), (_f32(3),), ValueError,
     r"LSTM: Expected input to be 2D .* or 3D"),
    (lambda: nn.LSTM(3, 4), (_f32(5, 2, 4),), ValueError,
     r"LSTM: input.size\(-1\) must be equal to input_size. Expected 3, got 4"),
    (lambda: nn.LSTM(3, 4), (_f32(5, 2, 3), _f32(1, 2, 4)), TypeError,
     r"LSTM: expected hx to be a tuple \(h0, c0\) of two Tensors, got a Tensor"),
    (lambda: nn.LSTM(3, 4), (_f32(5, 2, 3), (_f32(1, 2, 4),)), TypeError,
     r"expected hx to be a tuple \(h0, c0\) of two Tensors, got a tuple of length 1"),
    (lambda: nn.LSTM(3, 4), (_f32(5, 2, 3), (_f32(1, 3, 4), _f32(1, 2, 4))), ValueError,
     r"LSTM: Expected hidden\[0\] size \(1, 2, 4\), got \(1, 3, 4\)"),
    (lambda: nn.LSTM(3, 4), (_f32(5, 2, 3), (_f32(1, 2, 4), _f32(1, 2, 3))), ValueError,
     r"LSTM: Expected hidden\[1\] size \(1, 2, 4\), got \(1, 2, 3\)"),
    (lambda: nn.LSTM(3, 4, proj_size=2), (_f32(5, 2, 3), (_f32(1, 2, 4), _f32(1, 2, 4))),
     ValueError, r"Expected hidden\[0\] size \(1, 2, 2\), got \(1, 2, 4\)"),
    (lambda: nn.LSTM(3, 4, proj_size=2), (_f32(5, 2, 3), (_f32(1, 2, 2), _f32(1, 2, 2))),
     ValueError, r"Expected hidden\[1\] size \(1, 2, 4\), got \(1, 2, 2\)"),
    (lambda: nn.LSTM(3, 4, num_layers=2), (_f32(5, 2, 3), (_f32(1, 2, 4), _f32(1, 2, 4))),
     ValueError, r"Expected hidden\[0\] size \(2, 2, 4\), got \(1, 2, 4\)"),
    (lambda: nn.LSTM(3, 4), (_f32(5, 3), (_f32(1, 1, 4), _f32(1, 1, 4))), ValueError,
     r"LSTM: for unbatched 2-D input, h0 should be 2-D but got 3-D"),
    (lambda: nn.LSTM(3, 4, bidirectional=True), (_f32(5, 3), (_f32(2, 4), _f32(1, 4))),
     ValueError, r"Expected hidden\[1\] size \(2, 4\), got \(1, 4\)"),
    (lambda: nn.LSTM(3, 4), (_f32(5, 2, 3), (_f32(1, 2, 4), Tensor(np.zeros((1, 2, 4))))),
     TypeError, r"LSTM: c0 dtype float64 does not match input dtype float32"),
    (lambda: nn.LSTM(3, 4), (Tensor(np.zeros((5, 2, 3))),), TypeError,
     r"LSTM: input dtype float64 does not match the parameters' dtype float32"),
    (lambda: nn.LSTM(3, 4), (_f32(0, 2, 3),), ValueError, r"sequence of length >= 1"),
], ids=["rank1", "features", "hx_tensor", "hx_length", "h0_batch", "c0_size", "h0_proj",
        "c0_proj", "h0_layers", "h0_rank_unbatched", "c0_unbatched_bidir", "c0_dtype",
        "dtype_mismatch", "empty_sequence"])
def test_forward_errors_name_the_problem(make, args, error, match):
    with pytest.raises(error, match=match):
        make()(*args)


@pytest.mark.parametrize("kwargs, match", [
    ({"proj_size": 4}, r"proj_size has to be smaller than hidden_size, got proj_size=4 and "
                       r"hidden_size=4"),
    ({"proj_size": -1}, r"proj_size should be a positive integer or zero to disable "
                        r"projections, got -1"),
    ({"proj_size": 1.5}, r"proj_size should be a positive integer or zero"),
    ({"num_layers": 0}, r"LSTM: num_layers must be an integer >= 1, got 0"),
    ({"dropout": 1.5}, r"dropout should be a number in range \[0, 1\].*got 1.5"),
    ({"hidden_size": 0}, r"LSTM: hidden_size must be a positive integer, got 0"),
])
def test_constructor_errors_name_the_problem(kwargs, match):
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        nn.LSTM(**args)


@pytest.mark.parametrize("args, error, match", [
    ((_f32(2, 2, 3),), ValueError, r"LSTMCell: Expected input to be 1D or 2D"),
    ((_f32(2, 4),), ValueError, r"LSTMCell: input has inconsistent input_size: got 4 "
                                r"expected 3"),
    ((_f32(2, 3), (_f32(3, 5), _f32(2, 5))), ValueError,
     r"LSTMCell: Expected hidden size \(2, 5\), got \(3, 5\)"),
    ((_f32(2, 3), _f32(2, 5)), TypeError,
     r"LSTMCell: expected hx to be a tuple \(h, c\) of two Tensors, got Tensor"),
])
def test_lstm_cell_errors(args, error, match):
    with pytest.raises(error, match=match):
        nn.LSTMCell(3, 5)(*args)


def test_repr_lists_the_non_default_options():
    assert repr(nn.LSTM(3, 4)) == "LSTM(3, 4)"
    assert repr(nn.LSTM(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5,
                        bidirectional=True, proj_size=2, unroll=True)) == \
        "LSTM(3, 4, proj_size=2, num_layers=2, bias=False, batch_first=True, dropout=0.5, " \
        "bidirectional=True, unroll=True)"
    assert repr(nn.LSTMCell(3, 4, bias=False)) == "LSTMCell(3, 4, bias=False)"
