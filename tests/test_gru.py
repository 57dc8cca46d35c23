"""``nn.GRU`` and ``nn.GRUCell``: semantics, the two implementations, errors.

Expected values come from formulas (PyTorch's documented GRU equations in NumPy, in
``gated_reference.py``), finite differences, or the fused layer against the unrolled one;
the numbers recorded from PyTorch itself (``tests/fixtures/gru``) are checked in
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
from tinygrad_rnn.nn.cells import GRUEquations


def gru_fused(x, h0, *weights, reverse=False):
    return recurrence.run_fused(GRUEquations(), x, (h0,), weights, reverse=reverse)[0]


def gru_unrolled(x, h0, *weights, reverse=False):
    return recurrence.run_unrolled(GRUEquations(), x, (h0,), weights, reverse=reverse)[0]

from gated_reference import (configs, finals_of, graph_ops, gru_cell_reference, make_inputs,
                             module_kwargs, reference, rel_err, run_with_grads)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


# ------------------------------------------------------------------- semantics, formulas

@given(configs("GRU"))
def test_output_and_h_n_match_the_reference_equations(cfg):
    tg.manual_seed(cfg["seed"])
    gru = nn.GRU(cfg["input_size"], cfg["hidden_size"], **module_kwargs(cfg, "GRU"),
                 dtype="float64")
    x, h0 = make_inputs("GRU", cfg, np.random.default_rng(cfg["seed"]))
    params = {n: p.numpy() for n, p in gru.named_parameters()}
    expected_out, expected_hn = reference(
        "GRU", x, h0, params, num_layers=cfg["num_layers"],
        bidirectional=cfg["bidirectional"], batch_first=cfg["batch_first"])
    for unroll in (False, True):
        gru.unroll = unroll
        output, h_n = gru(Tensor(x), Tensor(h0) if h0 is not None else None)
        assert output.shape == expected_out.shape and h_n.shape == expected_hn.shape
        assert rel_err(output.numpy(), expected_out) < 1e-12
        assert rel_err(h_n.numpy(), expected_hn) < 1e-12


@given(configs("GRU"))
def test_fused_and_unrolled_agree_on_outputs_and_all_gradients(cfg):
    tg.manual_seed(cfg["seed"])
    kwargs = module_kwargs(cfg, "GRU")
    fused = nn.GRU(cfg["input_size"], cfg["hidden_size"], **kwargs, dtype="float64")
    unrolled = nn.GRU(cfg["input_size"], cfg["hidden_size"], **kwargs, unroll=True,
                      dtype="float64")
    unrolled.load_state_dict(fused.state_dict())
    rng = np.random.default_rng(cfg["seed"])
    x, h0 = make_inputs("GRU", cfg, rng)
    with tg.no_grad():
        output, h_n = fused(Tensor(x))
    weights = [rng.standard_normal(t.shape) for t in [output] + finals_of(h_n)]
    results_f, grads_f = run_with_grads(fused, x, h0, weights)
    results_u, grads_u = run_with_grads(unrolled, x, h0, weights)
    for a, b in zip(results_f, results_u):
        assert rel_err(a, b) < 1e-10
    assert grads_f.keys() == grads_u.keys()
    for key in grads_f:
        assert rel_err(grads_f[key], grads_u[key]) < 1e-10, key


@pytest.mark.parametrize("recurrence", [gru_fused, gru_unrolled], ids=["fused", "unrolled"])
@pytest.mark.parametrize("reverse", [False, True])
def test_recurrence_gradients_match_finite_differences(recurrence, reverse):
    rng = np.random.default_rng(12)
    T, N, I, H = 4, 2, 3, 4
    arrays = [rng.standard_normal(s) * 0.7 for s in
              [(T, N, I), (N, H), (3 * H, I), (3 * H, H), (3 * H,), (3 * H,)]]
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    assert tg.gradcheck(lambda *xs: recurrence(*xs, reverse=reverse), inputs,
                        atol=1e-7, rtol=1e-5)


def test_b_hn_sits_inside_the_reset_product():
    """With the reset gate shut (r = 0), n_t = tanh(x W_inᵀ + b_in): b_hn and W_hn have no
    effect at all. (Were b_hn added next to b_in, as some write the GRU, it would.)"""
    tg.manual_seed(6)
    H = 3
    gru = nn.GRU(2, H, dtype="float64")
    state = gru.state_dict()
    b_ih = state["bias_ih_l0"].numpy().copy()
    b_ih[:H] = -1e3                                    # r ≈ 0 at every step
    gru.load_state_dict({**state, "bias_ih_l0": b_ih})
    x = Tensor(np.random.default_rng(6).standard_normal((5, 2, 2)))
    h0 = Tensor(np.random.default_rng(7).standard_normal((1, 2, H)))
    before = {}
    for unroll in (False, True):
        gru.unroll = unroll
        before[unroll] = gru(x, h0)[0].numpy()
    b_hh = gru.bias_hh_l0.numpy().copy()
    b_hh[2 * H:] += 5.0                                # move b_hn a lot
    w_hh = gru.weight_hh_l0.numpy().copy()
    w_hh[2 * H:] *= -3.0                               # and W_hn
    gru.load_state_dict({**gru.state_dict(), "bias_hh_l0": b_hh, "weight_hh_l0": w_hh})
    for unroll in (False, True):
        gru.unroll = unroll
        np.testing.assert_array_equal(gru(x, h0)[0].numpy(), before[unroll])


@pytest.mark.parametrize("unroll", [False, True])
def test_a_closed_update_gate_carries_the_state_and_its_gradient_unchanged(unroll):
    """Update gate saturated (z = 1): h_t = h_{t-1} at every step, so h_n = h0 and
    ∂h_n/∂h0 = I over any length: the gradient does not vanish."""
    H, T = 3, 50
    gru = nn.GRU(2, H, unroll=unroll, dtype="float64")
    bias = np.zeros(3 * H)
    bias[H:2 * H] = 1e3                                # z ≈ 1
    gru.load_state_dict({**gru.state_dict(), "bias_ih_l0": bias})
    rng = np.random.default_rng(3)
    h0 = Tensor(rng.standard_normal((1, 2, H)), requires_grad=True)
    _, h_n = gru(Tensor(rng.standard_normal((T, 2, 2))), h0)
    # h_t = n_t + z_t (h_{t-1} - n_t) is h_{t-1} up to the rounding of that sum.
    np.testing.assert_allclose(h_n.numpy(), h0.numpy(), rtol=0, atol=1e-13)
    w = rng.standard_normal(h_n.shape)
    (h_n * Tensor(w)).sum().backward()
    np.testing.assert_allclose(h0.grad.numpy(), w, rtol=1e-13, atol=0)


@pytest.mark.parametrize("unroll", [False, True])
def test_float32_stays_float32_outputs_and_gradients(unroll):
    gru = nn.GRU(3, 4, num_layers=2, bidirectional=True, unroll=unroll)
    x = Tensor(np.ones((5, 2, 3), np.float32), requires_grad=True)
    h0 = Tensor(np.zeros((4, 2, 4), np.float32), requires_grad=True)
    output, h_n = gru(x, h0)
    assert output.dtype == h_n.dtype == np.float32
    (output.sum() + h_n.sum()).backward()
    assert x.grad.dtype == h0.grad.dtype == np.float32
    for name, p in gru.named_parameters():
        assert p.dtype == np.float32 and p.grad.dtype == np.float32, name


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, False), (3, True)])
def test_fused_path_records_one_node_per_layer_and_direction(layers, bidirectional):
    D = 2 if bidirectional else 1
    gru = nn.GRU(3, 4, num_layers=layers, bidirectional=bidirectional)
    ops = graph_ops(*gru(Tensor(np.ones((6, 2, 3), np.float32))))
    assert sorted(op for op in ops if op.startswith("gru")) == \
        sorted(["gru", "gru_reverse"][:D] * layers)
    assert "sigmoid" not in ops and "tanh" not in ops  # no per-step ops
    unrolled = nn.GRU(3, 4, num_layers=layers, bidirectional=bidirectional, unroll=True)
    ops = graph_ops(*unrolled(Tensor(np.ones((6, 2, 3), np.float32))))
    assert not any(op.startswith("gru") for op in ops)
    assert ops.count("sigmoid") == 2 * 6 * layers * D  # r, z at every step
    assert ops.count("tanh") == 6 * layers * D         # n


def test_retain_graph_backward_twice_doubles_the_gradients():
    tg.manual_seed(2)
    gru = nn.GRU(2, 3, bidirectional=True, dtype="float64")
    x = Tensor(np.random.default_rng(2).standard_normal((4, 2, 2)), requires_grad=True)
    output, h_n = gru(x)
    loss = (output * output).sum() + (h_n * h_n).sum()
    loss.backward(retain_graph=True)
    first = {n: p.grad.numpy().copy() for n, p in gru.named_parameters()}
    loss.backward()
    for n, p in gru.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), 2 * first[n], rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------------------ dropout

@pytest.mark.parametrize("unroll", [False, True])
def test_dropout_acts_between_layers_in_training_mode_only(unroll):
    tg.manual_seed(1)
    gru = nn.GRU(3, 4, num_layers=2, dropout=1.0, unroll=unroll, dtype="float64")
    x = np.random.default_rng(1).standard_normal((5, 2, 3))
    output, h_n = gru(Tensor(x))
    p = {n: q.numpy() for n, q in gru.named_parameters()}
    layer = lambda k: {n.replace(f"_l{k}", "_l0"): v for n, v in p.items() if n.endswith(f"_l{k}")}
    one = dict(num_layers=1, bidirectional=False, batch_first=False)
    _, h1 = reference("GRU", x, None, layer(0), **one)
    expected, h2 = reference("GRU", np.zeros((5, 2, 4)), None, layer(1), **one)
    np.testing.assert_allclose(output.numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_n.numpy(), np.concatenate([h1, h2]), rtol=0, atol=1e-12)
    gru.eval()
    no_dropout, _ = reference("GRU", x, None, p, num_layers=2, bidirectional=False,
                              batch_first=False)
    np.testing.assert_allclose(gru(Tensor(x))[0].numpy(), no_dropout, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ parameters and init

def test_parameter_names_order_and_shapes_are_pytorchs():
    gru = nn.GRU(3, 5, num_layers=2, bidirectional=True)
    names = [n for n, _ in gru.named_parameters()]
    assert names == [f"{w}_l{k}{sfx}" for k in range(2) for sfx in ("", "_reverse")
                     for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    shapes = {n: p.shape for n, p in gru.named_parameters()}
    assert shapes["weight_ih_l0"] == (15, 3) and shapes["weight_ih_l1_reverse"] == (15, 10)
    assert shapes["weight_hh_l1"] == (15, 5) and shapes["bias_hh_l0_reverse"] == (15,)
    assert [n for n, _ in nn.GRU(3, 4, bias=False).named_parameters()] == \
        ["weight_ih_l0", "weight_hh_l0"]
    assert [n for n, _ in nn.GRUCell(3, 4).named_parameters()] == \
        ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert nn.GRUCell(3, 4).weight_ih.shape == (12, 3)
    with pytest.raises(TypeError):
        nn.GRU(3, 4, proj_size=2)  # projections are LSTM only, as in PyTorch


@pytest.mark.parametrize("path", sorted((FIXTURES / "gru").glob("*_f64.npz")),
                         ids=lambda p: p.stem)
def test_parameter_names_and_shapes_match_the_recorded_pytorch_module(path):
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(f["meta"].item())
        shapes = {k[len("param."):]: f[k].shape for k in f.files if k.startswith("param.")}
    gru = nn.GRU(meta["input_size"], meta["hidden_size"], num_layers=meta["num_layers"],
                 bias=meta["bias"], batch_first=meta["batch_first"], dropout=meta["dropout"],
                 bidirectional=meta["bidirectional"])
    assert [n for n, _ in gru.named_parameters()] == meta["param_names"]
    assert {n: p.shape for n, p in gru.named_parameters()} == shapes


@pytest.mark.parametrize("module", [lambda: nn.GRU(20, 64, bidirectional=True),
                                    lambda: nn.GRUCell(20, 64)], ids=["GRU", "GRUCell"])
def test_init_is_uniform_in_plus_minus_one_over_sqrt_hidden(module):
    tg.manual_seed(3)
    bound = 1 / math.sqrt(64)
    values = np.concatenate([p.numpy().ravel() for p in module().parameters()]).astype(float)
    n = values.size
    assert np.all(np.abs(values) <= bound)
    assert values.min() < -0.99 * bound and values.max() > 0.99 * bound
    assert abs(values.mean()) < 5 * bound / math.sqrt(3 * n)
    assert values.var() == pytest.approx(bound ** 2 / 3, rel=0.05)


# ----------------------------------------------------------------------------- GRUCell

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("unbatched", [False, True])
def test_gru_cell_is_one_step_of_gru(bias, unbatched):
    tg.manual_seed(4)
    gru = nn.GRU(3, 5, bias=bias, dtype="float64")
    cell = nn.GRUCell(3, 5, bias=bias, dtype="float64")
    cell.load_state_dict({n.replace("_l0", ""): p for n, p in gru.state_dict().items()})
    rng = np.random.default_rng(4)
    batch = () if unbatched else (2,)
    x = rng.standard_normal((4, *batch, 3))
    h0 = rng.standard_normal((1, *batch, 5))
    output, h_n = gru(Tensor(x), Tensor(h0))
    h = Tensor(h0[0])
    for t in range(4):
        h = cell(Tensor(x[t]), h)
        assert h.shape == (*batch, 5)
        np.testing.assert_allclose(h.numpy(), output.numpy()[t], rtol=0, atol=1e-14)
    np.testing.assert_allclose(h.numpy(), h_n.numpy()[0], rtol=0, atol=1e-14)


def test_gru_cell_default_state_is_zeros_and_matches_the_equations():
    tg.manual_seed(5)
    cell = nn.GRUCell(3, 2, dtype="float64")
    x = np.random.default_rng(5).standard_normal((4, 3))
    p = {n: q.numpy() for n, q in cell.named_parameters()}
    expected = gru_cell_reference(x, np.zeros((4, 2)), p["weight_ih"], p["weight_hh"],
                                  p["bias_ih"], p["bias_hh"])
    np.testing.assert_allclose(cell(Tensor(x)).numpy(), expected, rtol=0, atol=1e-14)


# ------------------------------------------------------------------------------- errors

def _f32(*shape):
    return Tensor(np.zeros(shape, np.float32))


@pytest.mark.parametrize("make, args, error, match", [
    (lambda: nn.GRU(3, 4), (_f32(2, 5, 2, 3),), ValueError, r"GRU: .*got 4D tensor"),
    (lambda: nn.GRU(3, 4, batch_first=True), (_f32(2, 5, 4),), ValueError,
     r"GRU: input.size\(-1\) must be equal to input_size. Expected 3, got 4"),
    (lambda: nn.GRU(3, 4), (_f32(5, 2, 3), _f32(1, 3, 4)), ValueError,
     r"GRU: Expected hidden size \(1, 2, 4\), got \(1, 3, 4\)"),
    (lambda: nn.GRU(3, 4, num_layers=2, bidirectional=True), (_f32(5, 2, 3), _f32(2, 2, 4)),
     ValueError, r"Expected hidden size \(4, 2, 4\), got \(2, 2, 4\)"),
    (lambda: nn.GRU(3, 4), (_f32(5, 2, 3), _f32(2, 4)), ValueError,
     r"GRU: for batched 3-D input, h0 should be 3-D but got 2-D"),
    (lambda: nn.GRU(3, 4), (_f32(5, 3), _f32(1, 5)), ValueError,
     r"Expected hidden size \(1, 4\), got \(1, 5\)"),
    (lambda: nn.GRU(3, 4), (_f32(5, 2, 3), (_f32(1, 2, 4),)), TypeError,
     r"GRU: expected h0 to be a Tensor, got tuple"),
    (lambda: nn.GRU(3, 4), (Tensor(np.zeros((5, 2, 3), np.int64)),), TypeError,
     r"GRU: expected a floating point input, got dtype int64"),
    (lambda: nn.GRU(3, 4), (_f32(5, 2, 3), Tensor(np.zeros((1, 2, 4)))), TypeError,
     r"GRU: h0 dtype float64 does not match input dtype float32"),
], ids=["rank4", "features", "h0_batch", "h0_layers_bidir", "h0_rank", "h0_unbatched",
        "h0_tuple", "int_input", "h0_dtype"])
def test_forward_errors_name_the_problem(make, args, error, match):
    with pytest.raises(error, match=match):
        make()(*args)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_layers": 0}, r"GRU: num_layers must be an integer >= 1, got 0"),
    ({"dropout": -0.1}, r"dropout should be a number in range \[0, 1\].*got -0.1"),
    ({"input_size": 2.5}, r"GRU: input_size must be a positive integer, got 2.5"),
])
def test_constructor_errors_name_the_problem(kwargs, match):
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        nn.GRU(**args)


@pytest.mark.parametrize("args, error, match", [
    ((_f32(2, 2, 3),), ValueError, r"GRUCell: Expected input to be 1D or 2D"),
    ((_f32(2, 4),), ValueError, r"GRUCell: input has inconsistent input_size: got 4 "
                                r"expected 3"),
    ((_f32(2, 3), _f32(3, 5)), ValueError, r"GRUCell: Expected hidden size \(2, 5\), got "
                                           r"\(3, 5\)"),
    ((_f32(2, 3), Tensor(np.zeros((2, 5)))), TypeError,
     r"GRUCell: hx dtype float64 does not match input dtype float32"),
])
def test_gru_cell_errors(args, error, match):
    with pytest.raises(error, match=match):
        nn.GRUCell(3, 5)(*args)


def test_repr_lists_the_non_default_options():
    assert repr(nn.GRU(3, 4)) == "GRU(3, 4)"
    assert repr(nn.GRU(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5,
                       bidirectional=True)) == \
        "GRU(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True)"
    assert repr(nn.GRUCell(3, 4)) == "GRUCell(3, 4)"
