"""``nn/cells.py`` and ``nn/recurrence.py``: each cell's equations through the driver, and
what only one cell does (the LSTM's forget gate, the GRU's update gate and ``b_hn``).

Expected values come from finite differences and from the equations themselves.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.nn import recurrence
from tinygrad_rnn.nn.cells import ElmanEquations, GRUEquations, LSTMEquations


def _example(name: str):
    """A script of ``examples/`` as a module (its ``main()`` does not run)."""
    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The leaky-integrator cell that ``examples/custom_cell.py`` writes: a cell from outside
#: the package, driven by the same driver.
LeakyEquations = _example("custom_cell").LeakyEquations

#: (name, the cell from its extra weight w_hr, gate blocks G, whether it projects h)
CELLS = [
    ("tanh", lambda w: ElmanEquations("tanh"), 1, False),
    ("relu", lambda w: ElmanEquations("relu"), 1, False),
    ("lstm", lambda w: LSTMEquations(), 4, False),
    ("lstm_proj", lambda w: LSTMEquations(w), 4, True),
    ("gru", lambda w: GRUEquations(), 3, False),
    ("leaky_example", lambda w: LeakyEquations(0.3), 1, False),
]


@pytest.mark.parametrize("name, make, G, proj", CELLS, ids=[c[0] for c in CELLS])
@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
@pytest.mark.parametrize("reverse", [False, True])
def test_driver_gradients_match_finite_differences(name, make, G, proj, unroll, reverse):
    rng = np.random.default_rng(11)
    T, N, I, H = 4, 2, 3, 4
    P = 2 if proj else H
    shapes = [(T, N, I), (N, P)] + ([(N, H)] if name.startswith("lstm") else []) + \
        [(G * H, I), (G * H, P), (G * H,), (G * H,)] + ([(P, H)] if proj else [])
    arrays = [rng.standard_normal(s) * 0.7 for s in shapes]
    if name == "relu":            # keep pre-activations away from the kink at 0
        arrays[0] = np.abs(arrays[0]) + 0.5
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    states = 2 if name.startswith("lstm") else 1

    def fn(*xs):
        x, start, weights = xs[0], xs[1:1 + states], xs[1 + states:5 + states]
        cell = make(xs[-1] if proj else None)
        out = recurrence.run(cell, x, start, weights, reverse=reverse, unroll=unroll)
        return Tensor.cat([s.reshape(-1) for s in out])
    assert tg.gradcheck(fn, inputs, atol=1e-7, rtol=1e-5)


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


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("block_elements", [None, 1], ids=["one_block", "step_by_step"])
def test_a_cell_from_outside_runs_packed_batches_the_same_in_both_implementations(
        reverse, block_elements, monkeypatch):
    if block_elements is not None:
        monkeypatch.setattr(recurrence, "BLOCK_ELEMENTS", block_elements)
    rng = np.random.default_rng(5)
    sizes, I, H = [3, 3, 2, 1, 1], 2, 4               # lengths 5, 3, 2: a shrinking batch
    arrays = [rng.standard_normal(s) for s in [(sum(sizes), I), (3, H), (H, I), (H, H),
                                               (H,), (H,)]]
    results = []
    for unroll in (False, True):
        x, h0, *weights = (Tensor(a, requires_grad=True) for a in arrays)
        (hs,) = recurrence.run(LeakyEquations(0.3), x, (h0,), weights, reverse=reverse,
                               unroll=unroll, steps=recurrence.Steps(sizes))
        (hs * hs).sum().backward()
        results.append([hs.numpy()] + [t.grad.numpy() for t in (x, h0, *weights)])
    for fused, unrolled in zip(*results):
        assert np.allclose(fused, unrolled, rtol=1e-10, atol=1e-12)
