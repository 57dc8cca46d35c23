"""``bptt.uoro``: an unbiased rank-one estimate of the gradient that RTRL computes exactly.

Unbiasedness is checked statistically: the mean of 10⁴ draws is compared with the exact
gradient (``bptt.rtrl``, itself proven equal to BPTT and PyTorch in ``test_rtrl.py``) in
units of its own standard error, measured from the draws.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, bptt, nn
from tinygrad_rnn.nn import functional as F

DRAWS = 10_000
#: Bound on every coordinate's z-score (mean − exact) / (sd / √DRAWS). Under the null each is
#: ≈ N(0, 1); P(|z| > 5) ≈ 5.7e-7, so with at most 135 coordinates (gru_layers_2) a correct
#: estimator fails with probability < 1e-4 (Bonferroni), and the seeds are fixed anyway.
#: Measured (seed 1): total variance / |g|² = 1.0 (rnn_tanh), 2.1 (rnn_relu), 3.4 (lstm),
#: 2.1 (gru_layers_2); max |z| 1.2 to 2.1.
Z_BOUND = 5.0


def problem(make, seed=0):
    """A small layer with a Linear head and a weighted loss at every step."""
    tg.manual_seed(seed)
    layer, head = make(), nn.Linear(3, 1, dtype="float64")
    rng = np.random.default_rng(seed)
    x, y = Tensor(rng.standard_normal((6, 2))), Tensor(rng.standard_normal((6, 1)))

    def step_loss(t, out):
        return F.mse_loss(head(out), y[t]) * (1 + 0.1 * t)
    return layer, head, x, step_loss


def flat_grad(layer) -> np.ndarray:
    return np.concatenate([p.grad.numpy().ravel() for p in layer.parameters()])


MAKERS = {
    "rnn_tanh": lambda: nn.RNN(2, 3, dtype="float64"),
    "rnn_relu": lambda: nn.RNN(2, 3, nonlinearity="relu", dtype="float64"),
    "lstm": lambda: nn.LSTM(2, 3, dtype="float64"),
    "gru_layers_2": lambda: nn.GRU(2, 3, num_layers=2, dtype="float64"),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_the_mean_of_many_draws_is_the_exact_gradient(name):
    layer, head, x, step_loss = problem(MAKERS[name])
    bptt.rtrl(layer, x, step_loss)
    exact = flat_grad(layer)
    draws = bptt.uoro_samples(layer, x, step_loss, draws=DRAWS, generator=1)
    assert draws.shape == (DRAWS, exact.size)
    mean, se = draws.mean(axis=0), draws.std(axis=0, ddof=1) / np.sqrt(DRAWS)
    z = (mean - exact) / np.where(se > 0, se, 1.0)
    assert np.abs(z).max() < Z_BOUND, f"max |z| = {np.abs(z).max():.2f}"
    # Coordinates with no spread must be exact (e.g. a ReLU unit that never fires).
    np.testing.assert_allclose(mean[se == 0], exact[se == 0], atol=1e-12)
    # The test has power: the same bound rejects a gradient that is 10% off.
    assert (np.abs(mean - 0.9 * exact) / np.where(se > 0, se, 1.0)).max() > Z_BOUND
    # And the estimator is noisy (it is an estimate): the total variance is positive.
    assert draws.var(axis=0, ddof=1).sum() > 0


def test_uoro_writes_one_draw_and_the_head_gets_its_exact_gradient():
    layer, head, x, step_loss = problem(MAKERS["lstm"])
    expected = bptt.uoro_samples(layer, x, step_loss, draws=1, generator=7)[0]
    head.zero_grad()
    bptt.uoro(layer, x, step_loss, generator=np.random.default_rng(7))
    np.testing.assert_allclose(flat_grad(layer), expected, rtol=1e-13, atol=1e-15)
    # The head's gradient is BPTT's (same seed: the same layer and head, built afresh).
    layer2, head2, _, step_loss2 = problem(MAKERS["lstm"])
    output, _ = layer2(x)
    total = step_loss2(0, output[0])
    for t in range(1, 6):
        total = total + step_loss2(t, output[t])
    total.backward()
    for p, q in zip(head.parameters(), head2.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=0, atol=1e-13)


def test_seeds_reproduce_and_differ():
    layer, _, x, step_loss = problem(MAKERS["rnn_tanh"])
    a = bptt.uoro_samples(layer, x, step_loss, draws=3, generator=3)
    b = bptt.uoro_samples(layer, x, step_loss, draws=3, generator=3)
    c = bptt.uoro_samples(layer, x, step_loss, draws=3, generator=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    tg.manual_seed(5)
    d = bptt.uoro_samples(layer, x, step_loss, draws=3)           # the package's generator
    tg.manual_seed(5)
    np.testing.assert_array_equal(d, bptt.uoro_samples(layer, x, step_loss, draws=3))


@pytest.mark.parametrize("generator", ["seed", -1, 1.5, True])
def test_bad_generators_are_refused(generator):
    layer, _, x, step_loss = problem(MAKERS["rnn_tanh"])
    with pytest.raises(TypeError, match="generator"):
        bptt.uoro(layer, x, step_loss, generator=generator)


@pytest.mark.parametrize("draws", [0, -3, 2.5, True])
def test_bad_draw_counts_are_refused(draws):
    layer, _, x, step_loss = problem(MAKERS["rnn_tanh"])
    with pytest.raises(ValueError, match="draws"):
        bptt.uoro_samples(layer, x, step_loss, draws=draws)
