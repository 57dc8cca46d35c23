"""``bptt.trace`` and ``bptt.jacobian_norms`` on ``nn.LSTM`` and ``nn.GRU``.

Expected values come from an independent mechanism (the fused layer's hand-written BPTT
against autograd hooks on the unrolled graph), from formulas, or from finite differences.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, bptt, nn
from tinygrad_rnn.nn import recurrence
from tinygrad_rnn.nn.cells import GRUEquations, LSTMEquations


def lstm_unrolled(x, h0, c0, *weights, w_hr=None):
    return recurrence.run_unrolled(LSTMEquations(w_hr), x, (h0, c0), weights)


def gru_unrolled(x, h0, *weights):
    return recurrence.run_unrolled(GRUEquations(), x, (h0,), weights)[0]


def test_trace_finds_the_gated_layer_inside_a_model():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(2, 3)
            self.fc = nn.Linear(3, 1)
    model = Model()
    assert bptt.trace(model).rnn is model.rnn

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.LSTM(2, 3), nn.RNN(2, 3)
    with pytest.raises(ValueError, match="exactly one nn.RNN, nn.LSTM or nn.GRU.*found 2"):
        bptt.trace(Two())


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
def test_the_autograd_jacobian_method_equals_the_written_out_chain_on_an_elman_rnn(
        layers, bidirectional):
    """The method used for LSTM/GRU, run on an Elman RNN, gives the analytic chain's norms."""
    tg.manual_seed(1)
    rnn = nn.RNN(3, 5, num_layers=layers, bidirectional=bidirectional, dtype="float64")
    x = Tensor(np.random.default_rng(1).standard_normal((7, 2, 3)))
    generic = bptt._gated_jacobian_norms(rnn, x, None)
    np.testing.assert_allclose(generic, bptt.jacobian_norms(rnn, x), rtol=1e-12)


def _finite_difference_norms(step, h_states, x, t_range, eps=1e-6):
    """‖∂h_T/∂h_t‖₂ (batch mean) by central differences: ``step(x_rest, h)`` runs the rest
    of the sequence from a perturbed ``h_t`` and returns ``h_T``."""
    norms = []
    for t in t_range:
        h = h_states[t]
        N, P = h.shape
        columns = []
        for k in range(P):
            e = np.zeros((N, P))
            e[:, k] = eps
            columns.append((step(x[t + 1:], h + e) - step(x[t + 1:], h - e)) / (2 * eps))
        jac = np.stack(columns, axis=-1)                      # (N, P_out, P_in)
        norms.append(np.linalg.norm(jac, ord=2, axis=(1, 2)).mean())
    return np.array(norms)


@pytest.mark.parametrize("proj_size", [0, 2])
def test_lstm_jacobian_norms_match_finite_differences(proj_size):
    tg.manual_seed(2)
    T = 6
    lstm = nn.LSTM(3, 4, proj_size=proj_size, dtype="float64")
    x = np.random.default_rng(2).standard_normal((T, 2, 3))
    w = [p.detach() for p in lstm.layer_weights(0, 0)]
    w_hr = w[4] if proj_size else None
    P = proj_size or 4
    hs, cs = lstm_unrolled(Tensor(x), Tensor(np.zeros((2, P))), Tensor(np.zeros((2, 4))),
                           *w[:4], w_hr=w_hr)
    hs, cs = hs.numpy(), cs.numpy()

    def rest(t):
        def step(x_rest, h):   # from (h_t perturbed, c_t): the last hidden state
            out, _ = lstm_unrolled(Tensor(x_rest), Tensor(h), Tensor(cs[t]), *w[:4], w_hr=w_hr)
            return out.numpy()[-1]
        return step
    expected = np.concatenate([
        [_finite_difference_norms(rest(t), hs, x, [t])[0] for t in range(T - 1)], [1.0]])
    np.testing.assert_allclose(bptt.jacobian_norms(lstm, Tensor(x))[0], expected, rtol=1e-6)


def test_gru_jacobian_norms_match_finite_differences_in_both_directions():
    tg.manual_seed(3)
    T = 6
    gru = nn.GRU(3, 4, bidirectional=True, dtype="float64")
    x = np.random.default_rng(3).standard_normal((T, 2, 3))
    norms = bptt.jacobian_norms(gru, Tensor(x))
    for direction in (0, 1):
        w = [p.detach() for p in gru.layer_weights(0, direction)]
        reverse = direction == 1
        xs = x[::-1] if reverse else x       # the reverse direction reads time backwards
        hs = gru_unrolled(Tensor(xs.copy()), Tensor(np.zeros((2, 4))), *w).numpy()

        def step(x_rest, h):
            return gru_unrolled(Tensor(x_rest.copy()), Tensor(h), *w).numpy()[-1] \
                if len(x_rest) else h
        expected = np.append(_finite_difference_norms(step, hs, xs, range(T - 1)), 1.0)
        np.testing.assert_allclose(norms[direction], expected[::-1] if reverse else expected,
                                   rtol=1e-6)


def test_a_saturated_update_gate_keeps_every_gru_jacobian_at_norm_one():
    """z = 1: h_t = h_{t-1}, so ∂h_T/∂h_t = I at every distance: nothing vanishes."""
    gru = nn.GRU(2, 3, dtype="float64")
    bias = np.zeros(9)
    bias[3:6] = 1e3
    gru.load_state_dict({**gru.state_dict(), "bias_ih_l0": bias})
    norms = bptt.jacobian_norms(gru, Tensor(np.random.default_rng(4).standard_normal((40, 2, 2))))
    np.testing.assert_allclose(norms, np.ones((1, 40)), rtol=1e-12)


def test_jacobian_norms_accepts_lstm_states_and_float32():
    lstm = nn.LSTM(2, 3, num_layers=2)
    x = Tensor(np.ones((5, 2, 2), np.float32))
    state = (Tensor(np.zeros((2, 2, 3), np.float32)), Tensor(np.ones((2, 2, 3), np.float32)))
    norms = bptt.jacobian_norms(lstm, x, state)
    assert norms.shape == (2, 5) and norms.dtype == np.float64
    np.testing.assert_allclose(norms[:, -1], 1.0, rtol=1e-12)
    assert all(p.grad is None for p in lstm.parameters())   # nothing leaked into the model


def test_opened_gates_keep_the_gradient_over_100_steps_where_an_rnn_loses_it():
    """The example's claim, on a small problem: the gradient from a loss on step 100 that
    reaches step 1, relative to where it entered."""
    x = Tensor(np.random.default_rng(5).uniform(0, 1, (100, 4, 2)))

    def reaching_step_1(layer, gate=None):
        if gate is not None:          # open the forget (LSTM) / update (GRU) gate: block 1
            layer.bias_ih_l0.data[8:16] += 3.0
        with bptt.trace(layer) as tr:
            output, _ = layer(x)
            output[-1].sum().backward()
        norms = tr.grad_norms()[0]
        return norms[0] / norms[-1]
    tg.manual_seed(6)
    rnn = reaching_step_1(nn.RNN(2, 8, dtype="float64"))
    tg.manual_seed(6)
    lstm = reaching_step_1(nn.LSTM(2, 8, dtype="float64"), gate="forget")
    tg.manual_seed(6)
    gru = reaching_step_1(nn.GRU(2, 8, dtype="float64"), gate="update")
    # measured: RNN 1e-43, LSTM 6e-6, GRU 2e-2
    assert rnn < 1e-30
    assert lstm > 1e-7 and gru > 1e-3


def test_the_gating_example_runs(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "gating_vs_vanishing.py"
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ("RNN (tanh)", "LSTM, forget gate", "GRU, update gate"):
        assert name in proc.stdout
