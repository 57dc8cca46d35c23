"""The seed notebooks (``shared/seeds/``), redone with ``tinygrad_rnn`` alone.

Each notebook builds a PyTorch ``nn.RNN``, prints its output, and recomputes the hidden
states by hand from ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``. Here
our ``nn.RNN`` gets the weights those notebooks had (``tests/fixtures/seeds/seed00X.npz``,
recorded by ``record.py``, which replays each notebook's seed and random draws) and must
reproduce the numbers PRINTED in the notebooks, hard-coded below (PyTorch's numbers, printed
to 4 decimals, or to float32 precision in 004); and the notebooks' step-by-step
recomputation, done with our Tensor ops, must equal the layer's output. 000 and 003 drew
unseeded weights, so their lessons are checked with our own random weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend, nn

SEEDS = Path(__file__).resolve().parent / "fixtures" / "seeds"
PRINTED = 1e-4  # numbers printed with 4 decimals: rounding (5e-5) plus float32 noise

# 001: torch.manual_seed(0); nn.RNN(4, 5, batch_first=True); x = arange(24).reshape(2, 3, 4)
SEED001_OUTPUT = [[[-0.8913, 0.9556, 0.0240, -0.6370, -0.5639],
                   [-0.9969, 0.9986, 0.2649, -0.9997, -0.5647],
                   [-0.9999, 0.9999, -0.2600, -1.0000, -0.6001]],
                  [[-1.0000, 1.0000, -0.9365, -1.0000, -0.8544],
                   [-1.0000, 1.0000, -0.7537, -1.0000, -0.8052],
                   [-1.0000, 1.0000, -0.9257, -1.0000, -0.8684]]]
SEED001_HN = [[[-0.9999, 0.9999, -0.2600, -1.0000, -0.6001],
               [-1.0000, 1.0000, -0.9257, -1.0000, -0.8684]]]
# 002: nn.RNN(2, 1) on the unbatched torch.rand(30, 2) of torch.manual_seed(42)
SEED002_DATA_HEAD = [[0.8823, 0.9150], [0.3829, 0.9593], [0.3904, 0.6009]]
SEED002_STATE = {"weight_ih_l0": [[-0.6367, 0.9996]], "weight_hh_l0": [[0.1889]],
                 "bias_ih_l0": [0.3082], "bias_hh_l0": [-0.9327]}
SEED002_OUTPUT = [-0.2652, 0.0405, -0.2588, -0.0434, -0.8000, -0.6512, -0.6253, -0.6557,
                  -0.6282, -0.2782, -0.3864, -0.0552, -0.4075, -0.6235, -0.7949, -0.8631,
                  -0.6462, -0.1517, -0.1170, -0.5768, -0.6487, -0.2481, -0.7126, -0.5863,
                  -0.7699, -0.4353, 0.1283, -0.2945, -0.5428, -0.8177]
SEED002_HN = [[-0.8177]]
# 004: nn.RNN(5, 2, batch_first=True) on rows of 1s, 2s and 3s; printed with full precision
SEED004_HIDDEN = [[0.49598834, -0.336145], [0.5252439, -0.02801841], [0.5544994, 0.2801082]]
SEED004_MANUAL = [[-0.17452951, -0.58969957], [-0.27746493, -0.6635246],
                  [-0.21354881, -0.508577]]
SEED004_RNN_OUTPUT = [[-0.17452948, -0.58969957], [-0.2774648, -0.6635246],
                      [-0.21354884, -0.508577]]

IMPLEMENTATIONS = pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])


def seed_rnn(name, unroll):
    """Our ``nn.RNN`` with the notebook's configuration and weights, and the fixture."""
    with np.load(SEEDS / f"{name}.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays.pop("meta").item())
    rnn = nn.RNN(meta["input_size"], meta["hidden_size"], num_layers=meta["num_layers"],
                 batch_first=meta["batch_first"], unroll=unroll)
    rnn.load_state_dict({k[len("param."):]: v for k, v in arrays.items()
                         if k.startswith("param.")})
    return rnn, arrays


def manual_recurrence(rnn, x_steps, h):
    """The notebooks' hand computation, with Tensor ops: for each step t,
    ``h = tanh(x_t @ W_ihᵀ + b_ih + h @ W_hhᵀ + b_hh)``."""
    states = []
    for x_t in x_steps:
        h = (x_t @ rnn.weight_ih_l0.T + rnn.bias_ih_l0
             + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0).tanh()
        states.append(h)
    return states


# ---------------------------------------------------------------------------------- 001

@IMPLEMENTATIONS
def test_seed001_reproduces_the_printed_output_and_h_n(unroll):
    rnn, arrays = seed_rnn("seed001", unroll)
    x = Tensor(np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4))  # batch, seq, feature
    np.testing.assert_array_equal(x.numpy(), arrays["x"])
    output, h_n = rnn(x, Tensor.zeros(1, 2, 5))
    assert output.shape == (2, 3, 5) and h_n.shape == (1, 2, 5)
    np.testing.assert_allclose(output.numpy(), SEED001_OUTPUT, rtol=0, atol=PRINTED)
    np.testing.assert_allclose(h_n.numpy(), SEED001_HN, rtol=0, atol=PRINTED)
    # In [8]: "hn = output[:, -1, :]" for a one-layer, one-direction RNN
    np.testing.assert_array_equal(output[:, -1, :].numpy(), h_n[0].numpy())


@IMPLEMENTATIONS
def test_seed001_manual_steps_equal_the_layer(unroll):
    rnn, arrays = seed_rnn("seed001", unroll)
    x = Tensor(arrays["x"])
    output, _ = rnn(x)
    states = manual_recurrence(rnn, [x[:, t, :] for t in range(3)], Tensor.zeros(2, 5))
    for t, h in enumerate(states):
        np.testing.assert_allclose(h.numpy(), output[:, t, :].numpy(), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------- 002

@IMPLEMENTATIONS
def test_seed002_reproduces_the_printed_state_dict_and_output(unroll):
    rnn, arrays = seed_rnn("seed002", unroll)
    data = Tensor(arrays["x"])  # torch.rand(30, 2) after torch.manual_seed(42)
    np.testing.assert_allclose(data.numpy()[:3], SEED002_DATA_HEAD, rtol=0, atol=PRINTED)
    state = rnn.state_dict()
    assert list(state) == list(SEED002_STATE)
    for name, printed in SEED002_STATE.items():
        np.testing.assert_allclose(state[name].numpy(), printed, rtol=0, atol=PRINTED)
    output, h_n = rnn(data)  # unbatched: (L, H_in) -> (L, H_out), h_n (1, H_out)
    assert output.shape == (30, 1) and h_n.shape == (1, 1)
    np.testing.assert_allclose(output.numpy()[:, 0], SEED002_OUTPUT, rtol=0, atol=PRINTED)
    np.testing.assert_allclose(h_n.numpy(), SEED002_HN, rtol=0, atol=PRINTED)


@IMPLEMENTATIONS
def test_seed002_manual_steps_equal_the_layer(unroll):
    rnn, arrays = seed_rnn("seed002", unroll)
    data = Tensor(arrays["x"])
    output, _ = rnn(data)
    states = manual_recurrence(rnn, [data[t] for t in range(30)], Tensor.zeros(1))
    np.testing.assert_allclose(np.stack([h.numpy() for h in states]), output.numpy(),
                               rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------- 004

@IMPLEMENTATIONS
def test_seed004_reproduces_the_printed_steps(unroll):
    rnn, _ = seed_rnn("seed004", unroll)
    x_seq = Tensor([[1.0] * 5, [2.0] * 5, [3.0] * 5])
    output, h_n = rnn(x_seq.reshape(1, 3, 5))
    np.testing.assert_allclose(output.numpy()[0], SEED004_RNN_OUTPUT, rtol=0, atol=1e-6)
    np.testing.assert_allclose(h_n.numpy()[0, 0], SEED004_RNN_OUTPUT[-1], rtol=0, atol=1e-6)
    # The notebook's loop: "Hidden" is the input part x_t W_ihᵀ + b_ih ...
    prev_h = Tensor.zeros(1, 2)
    for t in range(3):
        xt = x_seq[t].reshape(1, 5)
        ht = xt @ rnn.weight_ih_l0.transpose(0, 1) + rnn.bias_ih_l0
        np.testing.assert_allclose(ht.numpy()[0], SEED004_HIDDEN[t], rtol=0, atol=1e-6)
        # ... then "OutPut (manual)" adds the recurrent part and squashes.
        ot = (ht + prev_h @ rnn.weight_hh_l0.transpose(0, 1) + rnn.bias_hh_l0).tanh()
        np.testing.assert_allclose(ot.numpy()[0], SEED004_MANUAL[t], rtol=0, atol=1e-6)
        np.testing.assert_allclose(ot.numpy(), output[:, t].numpy(), rtol=0, atol=1e-6)
        prev_h = ot


# ------------------------------------------------------------- 000 and 003 (unseeded)

@IMPLEMENTATIONS
def test_seed000_first_step_by_hand(unroll):
    """000: the hidden state after the first time step, computed by hand."""
    tg.manual_seed(0)
    rnn = nn.RNN(2, 3, batch_first=True, unroll=unroll)
    data = Tensor.rand(1, 24, 2)  # one person, 24 hours, 2 features
    history, final = rnn(data)
    assert history.shape == (1, 24, 3) and final.shape == (1, 1, 3)
    hidden_to_hidden = Tensor.zeros(1, 3) @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
    input_to_hidden = data[:, 0] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0
    first = (hidden_to_hidden + input_to_hidden).tanh()
    np.testing.assert_allclose(first.numpy(), history[:, 0].numpy(), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(final.numpy()[0], history.numpy()[:, -1])


class SimpleRNN(nn.Module):
    """003's model: an RNN and a Linear head applied at every time step."""

    def __init__(self, n_inputs, n_hidden, n_outputs, unroll=False):
        super().__init__()
        self.M = n_hidden
        self.rnn = nn.RNN(n_inputs, n_hidden, nonlinearity="tanh", batch_first=True,
                          unroll=unroll)
        self.fc = nn.Linear(n_hidden, n_outputs)

    def forward(self, X):
        h0 = Tensor.zeros(1, X.shape[0], self.M)
        out, _ = self.rnn(X, h0)
        return self.fc(out)


@IMPLEMENTATIONS
def test_seed003_barebones_numpy_loop_equals_the_model(unroll):
    """003: the model's output recomputed with a bare NumPy loop from its parameters."""
    tg.manual_seed(3)
    N, T, D, M, K = 1, 10, 3, 5, 2
    X = np.random.default_rng(3).standard_normal((N, T, D))
    model = SimpleRNN(D, M, K, unroll=unroll)
    out = model(Tensor(X.astype(np.float32)))
    assert out.shape == (N, T, K)
    W_xh, W_hh, b_xh, b_hh = (p.numpy() for p in model.rnn.parameters())
    Wo, bo = (p.numpy() for p in model.fc.parameters())
    h_last, Yhats = np.zeros(M), np.zeros((T, K))
    for t in range(T):
        h = np.tanh(X[0][t].dot(W_xh.T) + b_xh + h_last.dot(W_hh.T) + b_hh)
        Yhats[t] = h.dot(Wo.T) + bo
        h_last = h
    assert np.allclose(Yhats, out.numpy()[0], rtol=1e-5, atol=1e-6)


# --------------------------------------------------- 002's pitfalls, made hard to hit

def test_moving_a_model_keeps_its_parameters_leaves_that_get_gradients():
    """002 moved parameters with ``.to(device)`` and lost the leaves; ``Module.to`` moves
    them in place."""
    model = SimpleRNN(2, 3, 1).to(backend.name)
    assert all(p.is_leaf and p.requires_grad for p in model.parameters())
    model(Tensor.rand(4, 5, 2)).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_every_hidden_unit_has_its_own_bias():
    """002 shared one scalar bias between all units; nn.RNN has one per unit."""
    rnn = nn.RNN(2, 4)
    assert rnn.bias_ih_l0.shape == rnn.bias_hh_l0.shape == (4,)


@IMPLEMENTATIONS
def test_carrying_h_n_continues_the_sequence(unroll):
    """002 re-created a zero hidden state at every call; passing h_n on as the next h0
    continues the sequence exactly."""
    tg.manual_seed(2)
    rnn = nn.RNN(2, 3, num_layers=2, unroll=unroll, dtype="float64")
    x = Tensor.randn(8, 1, 2, dtype="float64")
    whole, h_whole = rnn(x)
    first, h = rnn(x[:5])
    second, h_end = rnn(x[5:], h)
    np.testing.assert_allclose(np.concatenate([first.numpy(), second.numpy()]), whole.numpy(),
                               rtol=0, atol=1e-14)
    np.testing.assert_allclose(h_end.numpy(), h_whole.numpy(), rtol=0, atol=1e-14)
