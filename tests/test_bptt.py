"""``tinygrad_rnn.bptt`` and ``python -m tinygrad_rnn bptt``.

The references are built independently of the code under test:

* gradients ``∂L/∂h_t``: an Elman RNN written out here step by step from primitive Tensor ops,
  with ``retain_grad()`` on every hidden state (autograd computes BPTT for us);
* Jacobian norms: central finite differences through the RNN itself, and an explicit product
  of dense per-step Jacobians computed with plain NumPy;
* truncated BPTT: the same hand-written unrolled graph started from a detached state.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, bptt, nn
from tinygrad_rnn.cli import bptt as bptt_cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path, monkeypatch):
    """The bptt command writes runs/bptt/bptt.png by default: keep it out of the checkout."""
    monkeypatch.chdir(tmp_path)


# --------------------------------------------------------------------- hand-written RNN

def manual_rnn(rnn: nn.RNN, x: Tensor, h0: Tensor | None = None):
    """``rnn``'s forward pass written out step by step; returns ``(output, h_n, states)``
    where ``states[row][t]`` is h_t of that layer/direction (``retain_grad`` set, so
    ``.grad`` holds ∂L/∂h_t after backward). Same layouts as ``rnn.forward``."""
    unbatched = x.ndim == 2
    seq = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if rnn.batch_first else x)
    T, N = seq.shape[0], seq.shape[1]
    rows = rnn.num_layers * rnn.num_directions
    if h0 is None:
        h0 = Tensor(np.zeros((rows, N, rnn.hidden_size)), dtype=seq.dtype)
    elif unbatched:
        h0 = h0.unsqueeze(1)
    f = Tensor.tanh if rnn.nonlinearity == "tanh" else Tensor.relu
    layer_input, states, finals = [seq[t] for t in range(T)], [], []
    for layer in range(rnn.num_layers):
        outputs = []
        for direction in range(rnn.num_directions):
            w_ih, w_hh, b_ih, b_hh = rnn.layer_weights(layer, direction)
            h, row = h0[layer * rnn.num_directions + direction], [None] * T
            for t in (range(T - 1, -1, -1) if direction else range(T)):
                a = layer_input[t] @ w_ih.T + h @ w_hh.T
                if b_ih is not None:
                    a = a + b_ih + b_hh
                h = f(a)
                if h.requires_grad:
                    h.retain_grad()
                row[t] = h
            states.append(row)
            finals.append(h)
            outputs.append(row)
        layer_input = [Tensor.cat([o[t] for o in outputs], axis=1) if len(outputs) > 1
                       else outputs[0][t] for t in range(T)]
    output, h_n = Tensor.stack(layer_input, axis=0), Tensor.stack(finals, axis=0)
    if rnn.batch_first and not unbatched:
        output = output.transpose(0, 1)
    if unbatched:
        output, h_n = output.squeeze(1), h_n.squeeze(1)
    return output, h_n, states



def some_loss(output: Tensor, h_n: Tensor) -> Tensor:
    """A loss that weighs every output and final state differently (fixed random weights)."""
    rng = np.random.default_rng(42)
    w_out = Tensor(rng.standard_normal(output.shape), dtype=output.dtype)
    w_h = Tensor(rng.standard_normal(h_n.shape), dtype=h_n.dtype)
    return (output * w_out).sum() + (h_n * w_h * h_n).sum()


def make_rnn(**kw) -> nn.RNN:
    tg.manual_seed(1)
    return nn.RNN(3, 4, dtype="float64", **kw)


def make_input(rnn: nn.RNN, T=5, N=2, unbatched=False) -> Tensor:
    rng = np.random.default_rng(7)
    shape = (T, 3) if unbatched else ((N, T, 3) if rnn.batch_first else (T, N, 3))
    return Tensor(rng.standard_normal(shape))


def reference_grads(rnn, x, h0=None):
    """∂L/∂h_t from the hand-written graph: array ``(rows, T, N, H)``."""
    output, h_n, states = manual_rnn(rnn, x, h0)
    some_loss(output, h_n).backward()
    return np.stack([np.stack([h.grad.numpy() for h in row]) for row in states])


# ------------------------------------------------------------------------------ trace

CONFIGS = [
    dict(),
    dict(nonlinearity="relu"),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=3, nonlinearity="relu", bidirectional=True, batch_first=True),
    dict(num_layers=2, bias=False, batch_first=True),
]


def config_id(config: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in config.items()) or "default"


@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_trace_grads_match_retain_grad_on_hand_unrolled_graph(config, unroll):
    rnn = make_rnn(unroll=unroll, **config)
    x = make_input(rnn)
    expected = reference_grads(rnn, x)
    rnn.zero_grad()
    with bptt.trace(rnn) as tr:
        output, h_n = rnn(x)
        loss = some_loss(output, h_n)
    loss.backward()
    rows = rnn.num_layers * rnn.num_directions
    assert tr.grads.shape == (rows, 5, 2, 4) == tr.states.shape
    np.testing.assert_allclose(tr.grads, expected, rtol=1e-10, atol=1e-12)
    norms = np.sqrt((expected ** 2).sum(axis=(2, 3)))
    np.testing.assert_allclose(tr.grad_norms(), norms, rtol=1e-10, atol=1e-12)
    assert tr.grad_norms().shape == (rows, 5)


@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
def test_trace_unbatched_input_with_h0(unroll):
    rnn = make_rnn(unroll=unroll, num_layers=2, bidirectional=True)
    x = make_input(rnn, unbatched=True)
    h0 = Tensor(np.random.default_rng(3).standard_normal((4, 4)), requires_grad=True)
    expected = reference_grads(rnn, x, h0)
    with bptt.trace(rnn) as tr:
        loss = some_loss(*rnn(x, h0))
    loss.backward()
    assert tr.grads.shape == (4, 5, 1, 4)
    np.testing.assert_allclose(tr.grads, expected, rtol=1e-10, atol=1e-12)


def test_trace_states_are_the_hidden_states_in_input_time_order():
    rnn = make_rnn(bidirectional=True, batch_first=True)
    x = make_input(rnn)
    with bptt.trace(rnn) as tr:
        output, _ = rnn(x)
    out = output.numpy()                                 # (N, T, 2H)
    np.testing.assert_allclose(tr.states[0], out[:, :, :4].transpose(1, 0, 2))
    np.testing.assert_allclose(tr.states[1], out[:, :, 4:].transpose(1, 0, 2))


def test_fused_and_unrolled_traces_agree_and_accumulate_over_backward_calls():
    results = []
    for unroll in (False, True):
        rnn = make_rnn(unroll=unroll, num_layers=2)
        with bptt.trace(rnn) as tr:
            loss = some_loss(*rnn(make_input(rnn)))
        loss.backward(retain_graph=True)
        once = tr.grads
        loss.backward()
        np.testing.assert_allclose(tr.grads, 2 * once, rtol=1e-12)
        results.append(once)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-10, atol=1e-12)


def _traced(layer, x, w_out):
    """Trace one forward + backward of ``sum(output * w_out)``."""
    with bptt.trace(layer) as tr:
        output, _ = layer(Tensor(x))
        (output * Tensor(w_out)).sum().backward()
    return tr


@pytest.mark.parametrize("make", [
    lambda u: nn.RNN(3, 4, num_layers=2, bidirectional=True, unroll=u, dtype="float64"),
    lambda u: nn.RNN(3, 4, nonlinearity="relu", batch_first=True, unroll=u, dtype="float64"),
    lambda u: nn.LSTM(3, 4, num_layers=2, bidirectional=True, unroll=u, dtype="float64"),
    lambda u: nn.LSTM(3, 4, proj_size=2, batch_first=True, unroll=u, dtype="float64"),
    lambda u: nn.GRU(3, 4, num_layers=2, bidirectional=True, unroll=u, dtype="float64"),
    lambda u: nn.GRU(3, 4, batch_first=True, unroll=u, dtype="float64"),
], ids=["rnn_bidir_2", "rnn_relu_bf", "lstm_bidir_2", "lstm_proj_bf", "gru_bidir_2", "gru_bf"])
def test_trace_sees_the_same_states_and_gradients_in_both_implementations(make):
    tg.manual_seed(0)
    fused, unrolled = make(False), make(True)
    unrolled.load_state_dict(fused.state_dict())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 3) if fused.batch_first else (6, 2, 3))
    with tg.no_grad():
        out_shape = fused(Tensor(x))[0].shape
    w_out = rng.standard_normal(out_shape)
    a, b = _traced(fused, x, w_out), _traced(unrolled, x, w_out)
    rows = fused.num_layers * fused.num_directions
    assert a.states.shape == (rows, 6, 2, fused.output_size) == a.grads.shape
    np.testing.assert_allclose(a.states, b.states, rtol=0, atol=1e-14)
    np.testing.assert_allclose(a.grads, b.grads, rtol=1e-11, atol=1e-13)
    # The top layer's forward direction: at the last step only the output's weight arrives.
    top = (fused.num_layers - 1) * fused.num_directions
    last = w_out[:, -1] if fused.batch_first else w_out[-1]
    np.testing.assert_allclose(a.grads[top, -1], last[..., :fused.output_size], rtol=1e-14)
    assert a.grad_norms().shape == (rows, 6)


def test_loss_on_last_step_reverse_direction_gets_gradient_only_at_its_end():
    # Forward direction: h_T feeds the loss and the gradient flows back through all steps.
    # Reverse direction: its output at step T is its *first* step, so no earlier step sees
    # a gradient: zeros, reported as such (not missing).
    rnn = make_rnn(bidirectional=True)
    with bptt.trace(rnn) as tr:
        output, _ = rnn(make_input(rnn))
        loss = output[-1].sum()
    loss.backward()
    norms = tr.grad_norms()
    assert np.all(norms[0] > 0)
    assert np.all(norms[1, :-1] == 0) and norms[1, -1] > 0


def test_trace_joins_several_forward_calls_along_time_and_nests():
    rnn = make_rnn()
    x = make_input(rnn, T=6)
    with bptt.trace(rnn) as outer:
        _, h = rnn(x[:4])
        with bptt.trace(rnn) as inner:                # the innermost trace records
            out, _ = rnn(x[4:], h.detach())
        out.sum().backward()
    assert outer.states.shape == (1, 4, 2, 4)
    assert inner.states.shape == (1, 2, 2, 4)
    with pytest.raises(RuntimeError, match="no gradients yet"):
        outer.grads
    with bptt.trace(rnn) as tr:
        _, h = rnn(x[:4])
        out, _ = rnn(x[4:], h)
    assert tr.states.shape == (1, 6, 2, 4)


def test_trace_errors_and_model_lookup():
    with pytest.raises(RuntimeError, match="recorded nothing"):
        bptt.trace(make_rnn()).grad_norms()
    with pytest.raises(TypeError, match="nn.RNN"):
        bptt.trace("rnn")
    with pytest.raises(ValueError, match="exactly one nn.RNN.*found 0"):
        bptt.trace(nn.Linear(2, 2))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = make_rnn()
            self.fc = nn.Linear(4, 1, dtype="float64")
    model = Model()
    assert bptt.trace(model).rnn is model.rnn


# -------------------------------------------------------------------------- Jacobians

def finite_difference_jacobian_norms(rnn, x, eps=1e-6):
    """‖∂h_T/∂h_t‖₂ (batch mean) by central differences: perturb h_t, rerun the steps after t
    from it, and watch h_T. Single-layer unidirectional, time-major x ``(T, N, H_in)``."""
    T, N, H = x.shape[0], x.shape[1], rnn.hidden_size
    with tg.no_grad():
        states = rnn(x)[0].numpy()
    norms = np.ones(T)
    for t in range(T - 1):                       # h_{t+1} in 1-based terms; the last is I
        J = np.empty((N, H, H))
        for j in range(H):
            bump = np.zeros((1, N, H))
            bump[..., j] = eps
            with tg.no_grad():
                plus = rnn(x[t + 1:], Tensor(states[t][None] + bump))[1].numpy()[0]
                minus = rnn(x[t + 1:], Tensor(states[t][None] - bump))[1].numpy()[0]
            J[:, :, j] = (plus - minus) / (2 * eps)
        norms[t] = np.linalg.norm(J, ord=2, axis=(1, 2)).mean()
    return norms


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_jacobian_norms_match_finite_differences(nonlinearity):
    rnn = make_rnn(nonlinearity=nonlinearity)
    bptt.scale_recurrent_weights_(rnn, 2.0)          # norms that change visibly with t
    x = make_input(rnn, T=6, N=3)
    got = bptt.jacobian_norms(rnn, x)
    assert got.shape == (1, 6)
    np.testing.assert_allclose(got[0], finite_difference_jacobian_norms(rnn, x), rtol=1e-6)
    assert got[0, -1] == pytest.approx(1.0)


def numpy_states_and_jacobians(rnn, x):
    """Plain NumPy: every layer's states and ‖∂h_last/∂h_t‖₂ as an explicit product of the
    dense per-step Jacobians diag(f'(a_t)) W_hh (time-major x ``(T, N, H_in)``)."""
    f = np.tanh if rnn.nonlinearity == "tanh" else (lambda a: np.maximum(a, 0))
    df = (lambda h: 1 - h ** 2) if rnn.nonlinearity == "tanh" else (lambda h: (h > 0) * 1.0)
    inp, rows = x, []
    for layer in range(rnn.num_layers):
        outs = []
        for d in range(rnn.num_directions):
            w_ih, w_hh, b_ih, b_hh = (p.numpy() for p in rnn.layer_weights(layer, d))
            T, N = inp.shape[:2]
            h, hs = np.zeros((N, rnn.hidden_size)), [None] * T
            order = list(range(T - 1, -1, -1)) if d else list(range(T))
            for t in order:
                h = f(inp[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
                hs[t] = h
            norms = np.empty(T)
            for i, t in enumerate(order):             # ∂h_last/∂h_t = J_last … J_{next}
                later = order[i + 1:]
                for_each = []
                for n in range(N):
                    J = np.eye(rnn.hidden_size)
                    for s in later:                   # J ← (diag(f'(a_s)) W_hh) J
                        J = (np.diag(df(hs[s][n])) @ w_hh) @ J
                    for_each.append(np.linalg.norm(J, 2))
                norms[t] = np.mean(for_each)
            rows.append(norms)
            outs.append(np.stack(hs))
        inp = np.concatenate(outs, axis=2)
    return np.stack(rows)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_jacobian_norms_match_explicit_numpy_products_multilayer_bidirectional(nonlinearity):
    rnn = make_rnn(num_layers=2, bidirectional=True, nonlinearity=nonlinearity)
    bptt.scale_recurrent_weights_(rnn, 1.7)
    x = make_input(rnn, T=5, N=2)
    got = bptt.jacobian_norms(rnn, x)
    np.testing.assert_allclose(got, numpy_states_and_jacobians(rnn, x.numpy()), rtol=1e-9)
    assert got[0, -1] == pytest.approx(1.0) and got[1, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_jacobian_norms_of_a_layer_in_training_mode_are_those_of_evaluation_mode(mode):
    """Dropout between layers would make every call's answer a different random draw (and
    the Elman and the gated paths disagreed on it): the recurrence is measured with dropout
    off, and the layer's mode is left as it was."""
    tg.manual_seed(5)
    rnn = getattr(nn, mode)(3, 4, num_layers=2, dropout=0.5, dtype="float64")
    x = Tensor(np.random.default_rng(5).standard_normal((6, 2, 3)))
    in_training = [bptt.jacobian_norms(rnn, x) for _ in range(2)]
    assert rnn.training
    expected = bptt.jacobian_norms(rnn.eval(), x)
    for got in in_training:
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_jacobian_norms_batch_first_and_unbatched_agree():
    rnn = make_rnn()
    x = make_input(rnn, T=4, N=1)
    bf = make_rnn(batch_first=True)
    np.testing.assert_allclose(bptt.jacobian_norms(bf, x.transpose(0, 1)),
                               bptt.jacobian_norms(rnn, x))
    np.testing.assert_allclose(bptt.jacobian_norms(rnn, x[:, 0]), bptt.jacobian_norms(rnn, x))


def test_jacobian_norms_bound_the_gradient_of_a_last_step_loss():
    # L = h_T · v with ‖v‖ = 1 and N = 1: ∂L/∂h_t = vᵀ ∂h_T/∂h_t, so ‖∂L/∂h_t‖ ≤ ‖∂h_T/∂h_t‖₂.
    rnn = make_rnn(unroll=True)
    x = make_input(rnn, T=8, N=1)
    v = Tensor(np.ones(4) / 2.0)
    with bptt.trace(rnn) as tr:
        loss = (rnn(x)[0][-1] @ v).sum()
    loss.backward()
    assert np.all(tr.grad_norms()[0] <= bptt.jacobian_norms(rnn, x)[0] * (1 + 1e-9))


@pytest.mark.parametrize("make", [lambda: nn.RNN(2, 3, dtype="float64"),
                                  lambda: nn.GRU(2, 3, dtype="float64")], ids=["rnn", "gru"])
def test_jacobian_norms_of_nan_states_are_nan_and_of_an_overflow_inf(make):
    rnn = make()
    x = np.ones((4, 1, 2))
    x[1] = np.nan                      # NaN from step 2 on: every product through it is NaN
    norms = bptt.jacobian_norms(rnn, Tensor(x))[0]
    assert np.isnan(norms[:3]).all() and norms[3] == pytest.approx(1.0)   # ‖∂h_T/∂h_T‖ = 1
    relu = nn.RNN(1, 1, nonlinearity="relu", bias=False, dtype="float64")
    relu.weight_ih_l0.data[...] = 1.0
    relu.weight_hh_l0.data[...] = 1e200            # ∂h_T/∂h_t = 1e200^(T-t): overflows …
    x = Tensor(np.full((3, 1, 1), 1e-250))         # … while the states stay finite
    norms = bptt.jacobian_norms(relu, x)[0]
    np.testing.assert_array_equal(norms, [np.inf, 1e200, 1.0])


def test_spectral_radius_and_scaling():
    assert bptt.spectral_radius(Tensor([[0.0, -2.0], [2.0, 0.0]])) == pytest.approx(2.0)
    assert bptt.spectral_radius(np.diag([0.5, -3.0])) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="square"):
        bptt.spectral_radius(Tensor(np.ones((2, 3))))
    rnn = make_rnn(num_layers=2)
    before = bptt.spectral_radius(rnn.weight_hh_l1)
    w_ih = rnn.weight_ih_l0.numpy()
    assert bptt.scale_recurrent_weights_(rnn, 3.0) is rnn
    assert bptt.spectral_radius(rnn.weight_hh_l1) == pytest.approx(3 * before)
    np.testing.assert_array_equal(rnn.weight_ih_l0.numpy(), w_ih)
    with pytest.raises(ValueError, match="positive"):
        bptt.scale_recurrent_weights_(rnn, 0)


# --------------------------------------------------------------------- truncated BPTT

def test_chunks_cover_the_sequence_along_the_time_axis():
    x = Tensor(np.arange(2 * 7 * 1.0).reshape(7, 2, 1))
    pieces = list(bptt.chunks(x, 3))
    assert [p.shape for p in pieces] == [(3, 2, 1), (3, 2, 1), (1, 2, 1)]
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in pieces]), x.numpy())
    bf = list(bptt.chunks(x.transpose(0, 1), 4, batch_first=True))
    assert [p.shape for p in bf] == [(2, 4, 1), (2, 3, 1)]
    assert [p.shape for p in bptt.chunks(Tensor(np.zeros((5, 3))), 5)] == [(5, 3)]
    with pytest.raises(ValueError, match="positive integer"):
        list(bptt.chunks(x, 0))
    with pytest.raises(ValueError, match="time axis"):
        list(bptt.chunks(Tensor(np.zeros(4)), 2, batch_first=True))


@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
def test_truncated_bptt_equals_full_bptt_restricted_to_each_chunk(unroll):
    rnn, k = make_rnn(unroll=unroll, num_layers=2), 3
    x = make_input(rnn, T=8)
    targets = Tensor(np.random.default_rng(5).standard_normal((8, 2, 4)))
    with tg.no_grad():                                   # the states the chunks start from
        full_states = [rnn(x[:s])[1] if s else None for s in range(0, 8, k)]

    h, got, expected_norms = None, [], []
    with bptt.trace(rnn) as tr:
        for i, (x_k, y_k) in enumerate(zip(bptt.chunks(x, k), bptt.chunks(targets, k))):
            rnn.zero_grad()
            out, h = rnn(x_k, h)
            ((out - y_k) ** 2).mean().backward()
            got.append({n: p.grad.numpy() for n, p in rnn.named_parameters()})
            if i + 1 < len(full_states):                  # the carried value is exact
                np.testing.assert_allclose(h.numpy(), full_states[i + 1].numpy(), rtol=1e-12)
            h = h.detach()                               # the truncation

            # Reference: the hand-written unrolled graph on this chunk, from a detached state.
            rnn.zero_grad()
            start = full_states[i]
            ref_out, _, ref_states = manual_rnn(rnn, x_k, start)
            ((ref_out - y_k) ** 2).mean().backward()
            for name, p in rnn.named_parameters():
                np.testing.assert_allclose(got[i][name], p.grad.numpy(), rtol=1e-10,
                                           atol=1e-13, err_msg=f"chunk {i}: {name}")
            expected_norms.append(np.array([[np.linalg.norm(s.grad.numpy()) for s in row]
                                            for row in ref_states]))
    # One trace over all chunks: gradients never crossed a chunk boundary.
    np.testing.assert_allclose(tr.grad_norms(), np.concatenate(expected_norms, axis=1),
                               rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
def test_without_detach_the_second_chunk_backward_hits_the_freed_graph(unroll):
    rnn = make_rnn(unroll=unroll)
    first, second = bptt.chunks(make_input(rnn, T=6), 3)
    out, h = rnn(first)
    out.sum().backward()                                 # frees the first chunk's graph
    out, _ = rnn(second, h)                              # h still points into that graph
    with pytest.raises(RuntimeError, match="retain_graph"):
        out.sum().backward()
    rnn.zero_grad()
    out, h = rnn(first)
    out.sum().backward()
    out, _ = rnn(second, h.detach())                     # detached: backward stops at h
    out.sum().backward()


# ------------------------------------------------------------------------------ CLI

def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tinygrad_rnn")
    bptt_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bptt", *argv])


def test_cli_prints_a_table_of_norms_for_tanh_and_relu(capsys):
    assert bptt_cli.run(parse("--seq-len", "12", "--hidden-size", "6", "--batch-size", "2",
                              "--every", "5")) == 0
    out = capsys.readouterr().out
    assert "BPTT through 12 steps: hidden 6, batch 2" in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("t "))
    for column in ("|dL/dh_t| tanh", "|dL/dh_t| relu", "|dh_T/dh_t| tanh", "|dh_T/dh_t| relu"):
        assert column in header
    steps = [int(line.split()[0]) for line in out.splitlines() if line.split()[0].isdigit()]
    assert steps == [1, 2, 7, 12]
    assert out.count("spectral radius of W_hh") == 2


def test_cli_init_scale_moves_from_vanishing_to_exploding(capsys):
    bptt_cli.run(parse("--seq-len", "30", "--init-scale", "0.5"))
    assert capsys.readouterr().out.count("(vanishing)") == 2
    bptt_cli.run(parse("--seq-len", "30", "--init-scale", "4"))
    relu = next(line for line in capsys.readouterr().out.splitlines() if "relu: spectral" in line)
    assert "(exploding)" in relu


def test_cli_steps_to_show():
    assert bptt_cli.steps_to_show(5, None) == [1, 2, 3, 4, 5]
    shown = bptt_cli.steps_to_show(1000, None)
    assert shown[0] == 1 and shown[-1] == 1000 and len(shown) <= bptt_cli.MAX_ROWS + 1


@pytest.mark.parametrize("argv, message", [
    (("--seq-len", "0"), "--seq-len must be a positive integer"),
    (("--hidden-size", "-3"), "--hidden-size"),
    (("--init-scale", "0"), "--init-scale must be a positive number"),
    (("--every", "0"), "--every"),
    (("--seed", "-1"), "--seed"),
    (("--task", "nope"), "unknown task 'nope'"),
])
def test_cli_bad_arguments_raise_value_error(argv, message):
    with pytest.raises(ValueError, match=message):
        bptt_cli.run(parse(*argv))


def test_cli_plot(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "norms.png"
    bptt_cli.run(parse("--seq-len", "6", "--plot", str(path)))
    assert path.stat().st_size > 0
    monkeypatch.setattr(bptt_cli, "have_matplotlib", lambda: False)
    with pytest.raises(ValueError, match="matplotlib"):
        bptt_cli.run(parse("--plot", str(path)))


def test_cli_with_a_task(capsys):
    bptt_cli.run(parse("--task", "adding", "--seq-len", "6", "--hidden-size", "5",
                       "--batch-size", "3"))
    out = capsys.readouterr().out
    assert "task 'adding'" in out and "BPTT through 6 steps: hidden 5, batch 3" in out


def test_python_dash_m_bptt_subprocess():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = lambda *a: subprocess.run([sys.executable, "-m", "tinygrad_rnn", "bptt", *a],
                                    env=env, capture_output=True, text=True, timeout=60)
    ok = run("--seq-len", "8", "--hidden-size", "4")
    assert ok.returncode == 0, ok.stderr
    assert "|dL/dh_t| tanh" in ok.stdout
    bad = run("--seq-len", "0")
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr and "--seq-len" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_state_norms_are_the_norms_of_the_recorded_states():
    rnn = nn.RNN(3, 5, num_layers=2, bidirectional=True)
    x = Tensor.randn(7, 2, 3)
    with bptt.trace(rnn) as tr:
        output, h_n = rnn(x)
    states = tr.states                                        # (layers*D, T, N, H)
    expected = np.sqrt((states.astype(np.float64) ** 2).sum(axis=(2, 3)))
    np.testing.assert_allclose(tr.state_norms(), expected, rtol=1e-12)
    # the last layer's rows are the output's two halves, in time order
    out = output.numpy().astype(np.float64)
    np.testing.assert_allclose(tr.state_norms()[2], np.sqrt((out[..., :5] ** 2).sum(axis=(1, 2))),
                               rtol=1e-6)


def test_the_plot_goes_to_runs_bptt_by_default(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    bptt_cli.run(parse("--seq-len", "5", "--hidden-size", "3"))
    assert (tmp_path / "runs" / "bptt" / "bptt.png").stat().st_size > 0
    bptt_cli.run(parse("--seq-len", "5", "--hidden-size", "3", "--no-plot", "--seed", "1"))
    assert "plot written" not in capsys.readouterr().out.split("seed 1")[-1]
