"""Numerical stability at extreme values: finite, correct results (checked against formulas
evaluated stably in float64 NumPy) or a clear error, never a silent NaN.

* ``log_softmax`` / ``softmax`` / ``cross_entropy`` with logits of ±1e4 (a naive
  ``exp``-then-``log`` overflows to inf and gives NaN);
* ``sigmoid`` and ``tanh`` at ±1e4 (a naive ``1 / (1 + exp(-x))`` overflows);
* saturated and exploding RNNs;
* overflow under ``detect_anomaly()`` names the op; without it, inf propagates as in PyTorch.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.nn import functional as F

DTYPES = [np.float32, np.float64]
BIG = 1e4
LOGITS = np.array([[BIG, -BIG, 0.0, 1.0],
                   [-BIG, -BIG, -BIG, -BIG + 1.0],
                   [BIG, BIG, -BIG, BIG - 2.0]])


def log_softmax_reference(x):
    """x - logsumexp(x), with logsumexp from np.logaddexp.reduce (stable), in float64."""
    x = np.asarray(x, dtype=np.float64)
    return x - np.logaddexp.reduce(x, axis=-1, keepdims=True)


@pytest.fixture(autouse=True)
def numpy_warnings_are_errors():
    """A stable implementation never even overflows internally."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_and_softmax_at_plus_minus_1e4(dtype):
    x = Tensor(LOGITS.astype(dtype), requires_grad=True)
    out = F.log_softmax(x, axis=-1)
    expected = log_softmax_reference(LOGITS.astype(dtype))
    assert out.dtype == dtype and np.isfinite(out.numpy()).all()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-6)
    probs = F.softmax(Tensor(LOGITS.astype(dtype)), axis=-1).numpy()
    np.testing.assert_allclose(probs, np.exp(expected), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-6)
    # d/dx sum(w * log_softmax(x)) = w - softmax(x) * sum(w)
    w = np.arange(LOGITS.size, dtype=dtype).reshape(LOGITS.shape) / 10
    out.backward(Tensor(w))
    grad_expected = w - np.exp(expected) * w.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(x.grad.numpy(), grad_expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_logits_of_1e4(dtype, reduction):
    target = np.array([1, 3, 2])               # includes the worst case: class at -1e4
    x = Tensor(LOGITS.astype(dtype), requires_grad=True)
    loss = F.cross_entropy(x, Tensor(target), reduction=reduction)
    per_sample = -log_softmax_reference(LOGITS.astype(dtype))[np.arange(3), target]
    expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}
    np.testing.assert_allclose(loss.numpy(), expected[reduction], rtol=1e-6)
    assert per_sample[0] == pytest.approx(2 * BIG, rel=1e-6)  # a huge, but finite, loss
    loss.backward(Tensor(np.ones(loss.shape, dtype=dtype)))
    # d loss_i / d x_i = softmax(x_i) - onehot(target_i)   (scaled by 1/N for the mean)
    grad_expected = np.exp(log_softmax_reference(LOGITS))
    grad_expected[np.arange(3), target] -= 1
    if reduction == "mean":
        grad_expected /= 3
    assert np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(x.grad.numpy(), grad_expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_saturate_cleanly_at_1e4(dtype):
    values = np.array([-BIG, -50.0, -1.0, 0.0, 1.0, 50.0, BIG], dtype=dtype)
    for op, formula, deriv in [
        ("sigmoid", lambda v: np.exp(-np.logaddexp(0.0, -v)), lambda s: s * (1 - s)),
        ("tanh", np.tanh, lambda t: 1 - t * t),
    ]:
        x = Tensor(values, requires_grad=True)
        y = getattr(x, op)()
        ref = formula(values.astype(np.float64))
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-6, atol=1e-30)
        y.sum().backward()
        grad = x.grad.numpy()
        assert np.isfinite(grad).all() and (grad >= 0).all(), op
        np.testing.assert_allclose(grad, deriv(ref), rtol=1e-5, atol=1e-30)
    # exact limits at ±1e4
    assert Tensor(values).sigmoid().numpy()[[0, -1]].tolist() == [0.0, 1.0]
    assert Tensor(values).tanh().numpy()[[0, -1]].tolist() == [-1.0, 1.0]


@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
def test_saturated_tanh_rnn_has_finite_outputs_and_gradients(unroll):
    """Inputs of ±1e4 drive every tanh unit to ±1: outputs are exactly ±1 and gradients are
    finite (they vanish, which is what the student should see)."""
    tg.manual_seed(0)
    rnn = nn.RNN(2, 3, unroll=unroll)
    x = Tensor(np.where(np.arange(40).reshape(10, 2, 2) % 3 == 0, BIG, -BIG).astype(np.float32),
               requires_grad=True)
    out, h_n = rnn(x)
    assert np.isfinite(out.numpy()).all() and np.all(np.abs(out.numpy()) <= 1.0)
    out.sum().backward()
    for p in list(rnn.parameters()) + [x]:
        assert np.isfinite(p.grad.numpy()).all()


def exploding_relu_rnn(unroll):
    rnn = nn.RNN(1, 2, nonlinearity="relu", bias=False, unroll=unroll)
    rnn.load_state_dict({"weight_ih_l0": np.ones((2, 1), dtype=np.float32),
                         "weight_hh_l0": 10 * np.eye(2, dtype=np.float32)})
    return rnn


@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
def test_exploding_relu_rnn_overflow_is_reported_by_detect_anomaly(unroll):
    """h_t = relu(x_t + 10 h_{t-1}) with x_t = 1 is (10^t - 1)/9: at t ≈ 39 it exceeds
    float32's 3.4e38. Under detect_anomaly the op that overflowed is named (the fused node
    reports NaN when inf * 0 already happened inside it)."""
    rnn = exploding_relu_rnn(unroll)
    x = Tensor(np.ones((60, 1, 1), dtype=np.float32))
    # Without anomaly mode the infinity propagates silently, as in PyTorch...
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out, _ = rnn(x)
        h = out.numpy()[:, 0, 0]
        np.testing.assert_allclose(h[:8], (10.0 ** np.arange(1, 9) - 1) / 9, rtol=1e-6)
        first = int(np.argmax(~np.isfinite(h)))        # inf, then inf * 0 = NaN in the matmul
        assert 37 <= first <= 40 and np.isinf(h[first]) and not np.isfinite(h[first:]).any()
        # ...and detect_anomaly stops at the op that overflowed.
        with tg.detect_anomaly(), pytest.raises(RuntimeError,
                                                match=r"detect_anomaly: op '(rnn_relu|"
                                                      r"matmul|add|relu)' produced "
                                                      r"(Inf|NaN)"):
            rnn(x)


def test_exp_overflow_without_anomaly_is_inf_and_with_anomaly_an_error():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isinf(Tensor([100.0]).exp().item())          # float32: e^100 > 3.4e38
        assert Tensor([100.0], dtype="float64").exp().item() == pytest.approx(np.exp(100.0))
        with tg.detect_anomaly(), pytest.raises(RuntimeError, match="op 'exp' produced Inf"):
            Tensor([100.0]).exp()


def test_nan_input_propagates_without_anomaly_mode_and_is_named_with_it():
    """NaN in, NaN out (as PyTorch): the loss is NaN, never a made-up number."""
    tg.manual_seed(0)
    model = nn.Linear(2, 1)
    x = Tensor(np.array([[1.0, np.nan]], dtype=np.float32))
    loss = F.mse_loss(model(x), Tensor(np.zeros((1, 1), dtype=np.float32)))
    assert np.isnan(loss.item())
    with tg.detect_anomaly(), pytest.raises(RuntimeError, match="produced NaN"):
        model(x)


def test_mean_of_nothing_is_nan_not_zero():
    """The mean of an empty batch is 0/0: NaN (as NumPy and PyTorch), never a silent 0.0;
    the sum of nothing is 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(Tensor(np.ones((0, 3), dtype=np.float32)).mean().item())
        assert np.isnan(F.mse_loss(Tensor(np.ones((0, 3))), Tensor(np.ones((0, 3)))).item())
        assert np.isnan(F.cross_entropy(Tensor(np.ones((0, 3))),
                                        Tensor(np.zeros(0, dtype=np.int64))).item())
        np.testing.assert_array_equal(
            Tensor(np.ones((3, 0))).mean(axis=1).numpy(), np.full(3, np.nan))
    assert Tensor(np.ones((0, 3))).sum().item() == 0.0
    assert Tensor(np.ones((0, 3))).mean(axis=0).shape == (3,)
