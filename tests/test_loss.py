"""Losses and softmax: ``MSELoss``/``mse_loss``, ``CrossEntropyLoss``/``cross_entropy``,
``softmax``/``log_softmax``; shapes, formulas, errors and numerical stability.
PyTorch's own numbers: ``tests/test_nn_parity.py`` (loss group)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.nn import functional as F


def logsumexp(a, axis=-1):
    m = a.max(axis=axis, keepdims=True)
    return m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))


def finite_arrays(min_dims=1, max_side=5, bound=1e4):
    shapes = hnp.array_shapes(min_dims=min_dims, max_dims=3, max_side=max_side)
    return hnp.arrays(np.float64, shapes,
                      elements=st.floats(-bound, bound, allow_nan=False, allow_infinity=False))


# ------------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("reduction, shape", [("mean", ()), ("sum", ()), ("none", (4, 3))])
def test_mse_output_shape(reduction, shape):
    x = Tensor(np.ones((4, 3), np.float32))
    assert F.mse_loss(x, Tensor(np.zeros((4, 3), np.float32)), reduction).shape == shape
    assert nn.MSELoss(reduction=reduction)(x, Tensor(np.zeros((4, 3), np.float32))).shape == shape


@pytest.mark.parametrize("logits, target, reduction, shape", [
    ((5, 4), (5,), "mean", ()), ((5, 4), (5,), "sum", ()), ((5, 4), (5,), "none", (5,)),
    ((4,), (), "mean", ()), ((4,), (), "none", ()),
    ((2, 4, 3), (2, 3), "none", (2, 3)), ((2, 4, 3, 2), (2, 3, 2), "mean", ()),
])
def test_cross_entropy_output_shape(logits, target, reduction, shape):
    x = Tensor(np.zeros(logits, np.float32))
    t = Tensor(np.zeros(target, np.int64))
    assert F.cross_entropy(x, t, reduction=reduction).shape == shape
    assert nn.CrossEntropyLoss(reduction=reduction)(x, t).shape == shape


# ----------------------------------------------------------------------------- formulas

@given(shape=hnp.array_shapes(max_dims=3, max_side=4), seed=st.integers(0, 2**16),
       reduction=st.sampled_from(["mean", "sum", "none"]))
def test_mse_loss_and_gradient_match_the_formula(shape, seed, reduction):
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    xt = Tensor(x, requires_grad=True)
    loss = F.mse_loss(xt, Tensor(t), reduction)
    sq = (x - t) ** 2
    expected = {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-13, atol=1e-15)
    loss.sum().backward()
    grad = 2 * (x - t) / (x.size if reduction == "mean" else 1)
    np.testing.assert_allclose(xt.grad.numpy(), grad, rtol=1e-13, atol=1e-15)


@given(n=st.integers(1, 5), c=st.integers(1, 5), seed=st.integers(0, 2**16),
       reduction=st.sampled_from(["mean", "sum", "none"]))
def test_cross_entropy_and_gradient_match_the_formula(n, c, seed, reduction):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c)) * 3
    t = rng.integers(0, c, size=n)
    xt = Tensor(x, requires_grad=True)
    loss = F.cross_entropy(xt, Tensor(t), reduction=reduction)
    per_row = (logsumexp(x) - np.take_along_axis(x, t[:, None], axis=1))[:, 0]
    expected = {"mean": per_row.mean(), "sum": per_row.sum(), "none": per_row}[reduction]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-13, atol=1e-14)
    loss.sum().backward()
    grad = np.exp(x - logsumexp(x)) - np.eye(c)[t]  # softmax - one_hot
    grad /= n if reduction == "mean" else 1
    np.testing.assert_allclose(xt.grad.numpy(), grad, rtol=1e-12, atol=1e-14)


def test_cross_entropy_with_class_axis_second_like_pytorch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 3))  # (N, C, d1)
    t = rng.integers(0, 4, size=(2, 3))
    loss = F.cross_entropy(Tensor(x), Tensor(t), reduction="none")
    rows = x.transpose(0, 2, 1)  # (N, d1, C)
    expected = (logsumexp(rows) - np.take_along_axis(rows, t[..., None], axis=-1))[..., 0]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-13)


def test_cross_entropy_unbatched():
    x = np.array([0.5, -1.0, 2.0, 0.0])
    loss = F.cross_entropy(Tensor(x), Tensor(np.array(2)))
    np.testing.assert_allclose(loss.item(), logsumexp(x)[0] - 2.0, rtol=1e-14)


@given(finite_arrays(bound=50.0))
def test_log_softmax_is_x_minus_logsumexp(a):
    np.testing.assert_allclose(F.log_softmax(Tensor(a), axis=-1).numpy(), a - logsumexp(a),
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------- stability

@given(finite_arrays(), st.sampled_from([np.float64, np.float32]))
def test_softmax_is_a_distribution_even_for_huge_logits(a, dtype):
    p = F.softmax(Tensor(a.astype(dtype)), axis=-1).numpy()
    assert p.dtype == dtype
    assert np.all(np.isfinite(p)) and np.all(p >= 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=0,
                               atol=10 * np.finfo(dtype).eps * a.shape[-1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_softmax_of_plus_minus_1e4_is_finite_and_exact(dtype):
    x = np.array([[1e4, -1e4, 0.0, 5.0], [-1e4, -1e4, 1e4, 1e4]], dtype)
    expected = np.array([[0.0, -2e4, -1e4, -9995.0], [-2e4 - np.log(2), -2e4 - np.log(2),
                                                      -np.log(2), -np.log(2)]])
    xt = Tensor(x, requires_grad=True)
    out = F.log_softmax(xt, axis=-1)
    np.testing.assert_allclose(out.numpy(), expected, rtol=np.finfo(dtype).eps, atol=1e-7)
    out.sum().backward()
    # d/dx sum(log_softmax) = 1 - C * softmax
    softmax = np.exp(expected)
    np.testing.assert_allclose(xt.grad.numpy(), 1 - 4 * softmax, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_of_plus_minus_1e4_logits_is_finite_and_exact(dtype):
    x = np.array([[1e4, -1e4, -1e4, 0.0], [-1e4, 1e4, 0.0, -1e4], [1e4, 1e4, -1e4, -1e4]],
                 dtype)
    t = np.array([1, 2, 0])
    xt = Tensor(x, requires_grad=True)
    loss = F.cross_entropy(xt, Tensor(t), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [2e4, 1e4, np.log(2)], rtol=np.finfo(dtype).eps)
    loss.sum().backward()
    expected_grad = np.array([[1, -1, 0, 0], [0, 1, -1, 0], [-0.5, 0.5, 0, 0]])
    assert np.all(np.isfinite(xt.grad.numpy()))
    np.testing.assert_allclose(xt.grad.numpy(), expected_grad, rtol=0, atol=1e-7)


# ------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("make", [
    lambda: nn.MSELoss(reduction="avg"), lambda: nn.CrossEntropyLoss(reduction="avg"),
    lambda: F.mse_loss(Tensor([1.0]), Tensor([1.0]), "avg"),
    lambda: F.cross_entropy(Tensor([[1.0]]), Tensor([0]), reduction="avg")])
def test_invalid_reduction(make):
    with pytest.raises(ValueError, match="avg is not a valid value for reduction; expected one "
                                         "of mean, sum, none"):
        make()


def test_reduction_is_not_taken_positionally():
    """PyTorch's third argument of cross_entropy is ``weight`` and a loss module's first is
    ``weight`` or the legacy ``size_average``: a positional string is refused, not misread."""
    with pytest.raises(TypeError, match="pass the reduction by keyword: reduction='sum'"):
        F.cross_entropy(Tensor([[1.0, 2.0]]), Tensor([0]), "sum")
    with pytest.raises(TypeError):
        nn.MSELoss("sum")


@pytest.mark.parametrize("target, error, match", [
    (np.array([0.0, 1.0, 2.0]), TypeError, "expected target of integer dtype .*got float64"),
    (np.array([0, 4, 1]), IndexError, r"Target 4 is out of bounds for 4 classes"),
    (np.array([0, -1, 1]), IndexError, r"Target -1 is out of bounds"),
    (np.array([0, 1]), ValueError, r"expected target of shape \(3,\) for input of shape "
                                   r"\(3, 4\) \(N, C, ...\), got \(2,\)"),
    (np.array([[0, 1, 1]]), ValueError, r"expected target of shape \(3,\)"),
])
def test_cross_entropy_target_errors(target, error, match):
    with pytest.raises(error, match=match):
        F.cross_entropy(Tensor(np.zeros((3, 4))), Tensor(target))


def test_cross_entropy_unbatched_needs_a_0d_target():
    with pytest.raises(ValueError, match="must be a 0-d class index, got shape \\(1,\\)"):
        F.cross_entropy(Tensor(np.zeros(4)), Tensor(np.array([1])))


def test_losses_need_floating_input():
    with pytest.raises(TypeError, match="expected a floating point tensor, got dtype int64"):
        F.cross_entropy(Tensor(np.zeros((3, 4), np.int64)), Tensor(np.zeros(3, np.int64)))
    with pytest.raises(TypeError, match="expected a floating point tensor"):
        F.mse_loss(Tensor(np.zeros(3, np.int64)), Tensor(np.zeros(3, np.int64)))


def test_mse_shapes_must_match():
    with pytest.raises(ValueError, match=r"input shape \(4, 1\) and target shape \(4,\) must "
                                         r"be the same"):
        F.mse_loss(Tensor(np.zeros((4, 1))), Tensor(np.zeros(4)))


def test_loss_repr():
    assert repr(nn.MSELoss()) == "MSELoss()"
    assert repr(nn.CrossEntropyLoss(reduction="sum")) == "CrossEntropyLoss()"   # as torch


# ------------------------------------------------------------- issue 11: the other losses

@pytest.mark.parametrize("call, error, match", [
    (lambda: F.binary_cross_entropy(Tensor([1.5]), Tensor([1.0])), RuntimeError,
     "all elements of input should be between 0 and 1"),
    (lambda: F.binary_cross_entropy(Tensor([0.5]), Tensor([2.0])), RuntimeError,
     "all elements of target should be between 0 and 1"),
    (lambda: F.binary_cross_entropy(Tensor([0.5, 0.5]), Tensor([1.0])), ValueError,
     "different to the input size"),
    (lambda: F.binary_cross_entropy_with_logits(Tensor([0.5, 0.5]), Tensor([1.0])),
     RuntimeError, r"Target size \(\(1,\)\) must be the same as input size"),
    (lambda: F.l1_loss(Tensor(np.zeros((2, 1))), Tensor(np.zeros(2))), ValueError,
     "different to the input size"),
    (lambda: F.huber_loss(Tensor([1.0]), Tensor([1.0]), delta=0.0), ValueError,
     "non-positive values for delta"),
    (lambda: F.one_hot(Tensor(np.array([1, -1]))), RuntimeError,
     "Class values must be non-negative."),
    (lambda: F.one_hot(Tensor(np.array([1, 3])), 3), RuntimeError,
     "Class values must be smaller than num_classes."),
    (lambda: F.one_hot(Tensor([1.0])), TypeError, "only applicable to index tensor"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), Tensor(np.array([0, 1])),
                             weight=Tensor(np.ones(2))), ValueError,
     r"weight tensor should be defined either for all 3 classes or no classes but got "
     r"weight tensor of shape: \[2\]"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), Tensor(np.array([0, 1])),
                             label_smoothing=1.5), ValueError,
     "label_smoothing must be between 0.0 and 1.0. Got: 1.5"),
    (lambda: F.nll_loss(Tensor(np.zeros((2, 3))), Tensor(np.array([0, 3]))), IndexError,
     "Target 3 is out of bounds for 3 classes"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), Tensor(np.full((2, 3), 1 / 3)),
                             ignore_index=0), RuntimeError,   # it was silently not applied
     "ignore_index is not supported for floating point target"),
])
def test_new_loss_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_bce_is_finite_at_the_edges_as_pytorch():
    """Logs clamp at -100 and the gradient's denominator at 1e-12 (PyTorch's constants)."""
    x = Tensor(np.array([0.0, 1.0, 0.0]), requires_grad=True)
    loss = F.binary_cross_entropy(x, Tensor(np.array([1.0, 0.0, 0.0])), reduction="none")
    np.testing.assert_array_equal(loss.numpy(), [100.0, 100.0, 0.0])
    loss.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [-1e12, 1e12, 0.0])


@pytest.mark.parametrize("loss_fn", [
    lambda x, t: F.nll_loss(x, t, ignore_index=1),
    lambda x, t: F.cross_entropy(x, t, ignore_index=1),
    lambda x, t: F.cross_entropy(x, t, ignore_index=1, label_smoothing=0.2,
                                 weight=Tensor(np.array([1.0, 2.0, 3.0]))),
], ids=["nll", "cross_entropy", "smoothed_weighted"])
def test_mean_with_everything_ignored_is_nan_with_zero_gradient_as_pytorch(loss_fn):
    """0/0 = NaN for the value, but PyTorch skips ignored targets: their gradient is 0, so an
    all-padding batch leaves the weights finite (it was NaN here: 0 * (1/0))."""
    x = Tensor(np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -2.5]]), requires_grad=True)
    loss = loss_fn(x, Tensor(np.array([1, 1])))
    assert np.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_ignored_rows_with_minus_inf_logits_count_for_nothing(reduction, label_smoothing):
    """The padding class masked to -inf and ignored (``ignore_index=0``): PyTorch skips those
    rows, so the loss is finite; 0 * -inf made it NaN here. Expected: the formula over the
    one counted row (target 2), ``-(1-ε) log p_2 - ε/C Σ_c log p_c``."""
    logits = np.array([[-np.inf, 0.5, -0.3, 0.2], [-np.inf, 1.0, 2.0, 0.1],
                       [-np.inf, 0.3, 0.3, 0.3]])
    x = Tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, Tensor(np.array([0, 2, 0])), ignore_index=0,
                           reduction=reduction, label_smoothing=label_smoothing)
    logp = logits[1, 1:] - logsumexp(logits[1, 1:])     # the counted row, finite classes
    eps = label_smoothing
    log_p_all = np.append(logp, -np.inf)                # with the masked class's -inf
    counted = -(1 - eps) * logp[1] - (eps / 4 * log_p_all.sum() if eps else 0.0)
    expected = {"none": [0.0, counted, 0.0]}.get(reduction, counted)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-13)
    if eps == 0:  # (with smoothing the -inf class makes the value inf, as in PyTorch)
        loss.sum().backward()
        grad = np.zeros((3, 4))
        grad[1, 1:] = np.exp(logp) - np.eye(3)[1]
        np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-13, atol=1e-15)


def test_loss_modules_keep_weight_as_a_buffer():
    loss = nn.CrossEntropyLoss(weight=Tensor(np.array([1.0, 2.0])), label_smoothing=0.1)
    assert list(loss.state_dict()) == ["weight"] and list(loss.parameters()) == []
    assert repr(loss) == "CrossEntropyLoss()"
    assert list(nn.BCEWithLogitsLoss(pos_weight=Tensor([2.0])).state_dict()) == ["pos_weight"]
