"""``bptt.lyapunov_spectrum``: growth rates of perturbations along a trajectory.

Expected values from independent mechanisms: a direct two-trajectory perturbation estimate
(run the layer's public forward twice, Benettin's renormalisation), and ``log |det J_t|``
of Jacobians built by autograd through the layer's own forward pass.
"""
from __future__ import annotations

import numpy as np
import pytest

from tinygrad_rnn import Tensor, bptt, nn
from tinygrad_rnn.autograd import no_grad


def random_rnn(gain: float, H: int, seed: int = 0):
    """An autonomous tanh RNN with W_hh ~ gain · N(0, 1/H) (no biases) and a random h0:
    gain < 1 is stable, gain well above 1 chaotic (Sompolinsky, Crisanti & Sommers 1988)."""
    rng = np.random.default_rng(seed)
    rnn = nn.RNN(1, H, dtype="float64")
    state = {n: np.zeros(p.shape) for n, p in rnn.named_parameters()}
    state["weight_hh_l0"] = gain * rng.standard_normal((H, H)) / np.sqrt(H)
    rnn.load_state_dict(state)
    return rnn, Tensor(rng.standard_normal((1, H)))


def perturbation_estimate(rnn, x, h0, warmup, eps=1e-8, seed=1):
    """λ_1 from two trajectories: the distance of a perturbed copy, renormalised to ``eps``
    after every step, grows on average by ``exp(λ_1)`` per step."""
    a = h0.numpy()
    d = np.random.default_rng(seed).standard_normal(a.shape)
    b = a + d * eps / np.linalg.norm(d)
    total = 0.0
    with no_grad():
        for t in range(x.shape[0]):
            a = rnn(x[t:t + 1], Tensor(a))[1].numpy()
            b = rnn(x[t:t + 1], Tensor(b))[1].numpy()
            distance = np.linalg.norm(b - a)
            if t >= warmup:
                total += np.log(distance / eps)
            b = a + (b - a) * eps / distance
    return total / (x.shape[0] - warmup)


@pytest.mark.parametrize("gain, H, sign", [(3.0, 32, +1), (0.7, 16, -1)],
                         ids=["chaotic", "stable"])
def test_largest_exponent_matches_a_two_trajectory_estimate(gain, H, sign):
    rnn, h0 = random_rnn(gain, H)
    x = Tensor(np.zeros((1000, 1)))
    # 300 warm-up steps: both methods must first turn their start direction (the identity
    # basis; a random perturbation) onto the most expanding one.
    spectrum = bptt.lyapunov_spectrum(rnn, x, h0, warmup=300)
    assert spectrum.shape == (H,)
    assert np.all(np.diff(spectrum) <= 0)                     # largest first
    assert sign * spectrum[0] > 0.02                         # really chaotic / really stable
    assert spectrum[0] == pytest.approx(perturbation_estimate(rnn, x, h0, 300), abs=2e-3)


def autograd_jacobian(rnn, x_t, state):
    """``∂s_t/∂s_{t-1}`` of a one-layer RNN/GRU (s = h) or LSTM (s = [h, c]), by autograd
    through the layer's public forward on a one-step sequence. Returns (J, next state)."""
    H = rnn.hidden_size
    lstm = isinstance(rnn, nn.LSTM)
    leaves = [Tensor(s[None], requires_grad=True) for s in np.split(state, 2 if lstm else 1)]
    _, final = rnn(x_t, tuple(leaves) if lstm else leaves[0])
    outs = list(final) if lstm else [final]
    flat = np.concatenate([o.numpy().ravel() for o in outs])
    rows = []
    for out in outs:
        for j in range(H):
            for leaf in leaves:
                leaf.grad = None
            out[0, j].backward(retain_graph=True)
            rows.append(np.concatenate([
                (leaf.grad.numpy().ravel() if leaf.grad is not None else np.zeros(H))
                for leaf in leaves]))
    return np.array(rows), flat


@pytest.mark.parametrize("make", [
    lambda: nn.RNN(2, 4, dtype="float64"),
    lambda: nn.RNN(2, 4, nonlinearity="relu", dtype="float64"),
    lambda: nn.LSTM(2, 3, dtype="float64"),
    lambda: nn.GRU(2, 4, dtype="float64"),
], ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_the_exponents_add_up_to_the_mean_log_determinant(make):
    rnn = make()
    for p in rnn.parameters():                    # larger weights: a livelier trajectory
        p.data = p.data * 2.0
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 2))
    S = rnn.hidden_size * (2 if isinstance(rnn, nn.LSTM) else 1)
    state = np.full(S, 0.1)
    log_dets = []
    for t in range(40):
        J, state = autograd_jacobian(rnn, Tensor(x[t:t + 1]), state)
        if t >= 5:
            log_dets.append(np.linalg.slogdet(J)[1])
    h = Tensor(np.full((1, rnn.hidden_size), 0.1))
    spectrum = bptt.lyapunov_spectrum(rnn, Tensor(x), (h, h) if S > rnn.hidden_size else h,
                                      warmup=5)
    assert spectrum.sum() == pytest.approx(np.mean(log_dets), rel=1e-10, abs=1e-10)


def test_top_k_is_the_head_of_the_full_spectrum_and_batch_of_one_is_accepted():
    rnn, h0 = random_rnn(3.0, 12, seed=2)
    x = np.zeros((200, 1))
    full = bptt.lyapunov_spectrum(rnn, Tensor(x), h0, warmup=20)
    top = bptt.lyapunov_spectrum(rnn, Tensor(x[:, None]), h0[:, None], k=3, warmup=20)
    np.testing.assert_allclose(top, full[:3], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kwargs, words", [
    ({"k": 0}, "k must be"), ({"k": 5}, "k must be"), ({"warmup": 10}, "warmup"),
    ({"warmup": -1}, "warmup"),
])
def test_bad_arguments_are_refused(kwargs, words):
    rnn = nn.RNN(2, 4, dtype="float64")
    with pytest.raises(ValueError, match=words):
        bptt.lyapunov_spectrum(rnn, Tensor(np.zeros((10, 2))), **kwargs)


def test_a_batch_of_several_sequences_is_refused():
    with pytest.raises(ValueError, match="one sequence"):
        bptt.lyapunov_spectrum(nn.GRU(2, 4, dtype="float64"), Tensor(np.zeros((10, 3, 2))))
