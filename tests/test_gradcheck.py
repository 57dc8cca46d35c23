"""``tinygrad_rnn.gradcheck``: passes on correct gradients, and names the worst element of a
wrong one. Wrong gradients come from custom ops built with ``Tensor._make`` and a
deliberately broken backward closure."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tg
from tinygrad_rnn import GradcheckError, Tensor, gradcheck


def square(x: Tensor, bug=None) -> Tensor:
    """x**2 with a hand-written backward; ``bug(grad)`` corrupts the gradient if given."""
    a = x.data

    def backward(g):
        grad = 2 * a * g
        return (bug(grad) if bug else grad,)
    return Tensor._make(a * a, (x,), backward, "custom_square")


def weighted_product(x: Tensor, y: Tensor, bug_y=None) -> Tensor:
    """x * y * 3 with a hand-written backward; ``bug_y`` corrupts y's gradient."""
    a, b = x.data, y.data

    def backward(g):
        gy = 3 * a * g
        return 3 * b * g, (bug_y(gy) if bug_y else gy)
    return Tensor._make(3 * a * b, (x, y), backward, "custom_product")


def rand(*shape, seed=0):
    return Tensor(np.random.default_rng(seed).uniform(0.5, 2.0, shape), requires_grad=True)


def add_at(index, amount):
    def bug(grad):
        grad = tg.backend.module_of(grad).array(grad, copy=True)  # may be a NumPy scalar
        grad[index] += amount
        return grad
    return bug


@pytest.mark.parametrize("fn, shapes", [
    (lambda x: square(x), [(3, 4)]),
    (lambda x, y: weighted_product(x, y), [(2, 3), (2, 3)]),
    (lambda x: (x * x).sum(), [(3,)]),
    (lambda x, w: (x @ w).tanh(), [(2, 3), (3, 4)]),
    (lambda x: x.log().mean(axis=0), [(3, 2)]),
    (lambda x: x.max(axis=1), [(3, 4)]),
    (lambda x, y: Tensor.cat([x, y], axis=1).sigmoid(), [(2, 1), (2, 3)]),
    (lambda x: x[[0, 0, 1]] ** 3, [(2, 2)]),
], ids=["custom_square", "custom_product", "sum_squares", "tanh_matmul", "log_mean", "max",
        "cat_sigmoid", "repeated_index_cube"])
def test_passes_on_correct_gradients(fn, shapes):
    inputs = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    assert gradcheck(fn, inputs) is True


@pytest.mark.parametrize("index", [(0, 0), (1, 2), (2, 3)])
def test_names_the_worst_element(index):
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x: square(x, bug=add_at(index, 0.5)), [rand(3, 4)])
    message = str(info.value)
    assert "input 0" in message
    assert f"index {index}" in message


def test_names_the_wrong_input():
    x, y = rand(2, 3, seed=1), rand(2, 3, seed=2)
    with pytest.raises(GradcheckError, match=r"input 1 at index \(1, 0\)"):
        gradcheck(lambda x, y: weighted_product(x, y, bug_y=add_at((1, 0), -1.0)), [x, y])


def test_reports_both_values():
    x = Tensor(np.array([[1.5]]), requires_grad=True)
    # analytic gradient of sum(v * x**2) is 2 * 1.5 * v; the bug adds 1
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x: square(x, bug=lambda g: g + 1.0), [x])
    numbers = [float(v) for v in re.findall(r"(?:analytic|numeric) (-?[\d.e+-]+)", str(info.value))]
    analytic, numeric = numbers
    assert analytic == pytest.approx(numeric + 1.0, abs=1e-6)


def test_wrong_by_a_factor_fails():
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: square(x, bug=lambda g: 1.01 * g), [rand(5)])


def test_tolerances_are_honoured():
    slightly_off = lambda x: square(x, bug=lambda g: g * (1 + 1e-4))  # noqa: E731
    assert gradcheck(slightly_off, [rand(4)], rtol=1e-3)
    with pytest.raises(GradcheckError):
        gradcheck(slightly_off, [rand(4)], rtol=1e-6, atol=0.0)


def test_only_inputs_that_require_grad_are_checked():
    x = rand(2, 3)
    y = Tensor(np.ones((2, 3)))  # the bug is in y's gradient, but y needs none
    assert gradcheck(lambda x, y: weighted_product(x, y, bug_y=lambda g: g + 5.0), [x, y])


def test_runs_in_float64_and_leaves_inputs_alone():
    seen = []

    def fn(x):
        seen.append(x.dtype)
        return x.tanh()
    x = Tensor(np.array([0.1, 0.2, 0.3], dtype=np.float32), requires_grad=True)
    before = x.numpy().copy()
    assert gradcheck(fn, [x])
    assert set(seen) == {np.dtype(np.float64)}
    assert x.grad is None and x.dtype == np.float32
    np.testing.assert_array_equal(x.numpy(), before)


def test_scalar_output():
    assert gradcheck(lambda x: (x * x).sum(), [rand(3)])
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: square(x, bug=lambda g: g * 2).sum(), [rand(3)])


def test_input_the_output_does_not_depend_on():
    """An unused input has gradient zero, which the finite differences confirm."""
    assert gradcheck(lambda x, y: x.tanh(), [rand(2), rand(2, seed=1)])


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda x: x * 2.0, [Tensor([1.0])])


def test_a_nan_gradient_fails_instead_of_passing():
    # every comparison with NaN is False, so "no element exceeds the tolerance" held before
    x = Tensor([np.nan, 1.0], requires_grad=True)
    with pytest.raises(GradcheckError, match="index \\(0,\\): analytic nan"):
        gradcheck(lambda a: (a * a).sum(), [x])


def test_a_single_tensor_input_and_a_bad_eps():
    x = Tensor([0.5, -2.0], requires_grad=True)
    assert gradcheck(lambda a: (a * a).sum(), x)          # one Tensor, as in PyTorch
    with pytest.raises(GradcheckError):
        gradcheck(lambda a: square(a, bug=lambda g: 2 * g), x)
    with pytest.raises(ValueError, match="eps"):
        gradcheck(lambda a: (a * a).sum(), [x], eps=0)


def test_fn_must_return_a_tensor():
    with pytest.raises(TypeError, match="Tensor"):
        gradcheck(lambda x: 1.0, [rand(2)])


def test_is_an_assertion_error():
    assert issubclass(GradcheckError, AssertionError)
    assert tg.GradcheckError is GradcheckError and tg.gradcheck is gradcheck


@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3),
       seed=st.integers(0, 2**32 - 1))
def test_agrees_with_a_known_gradient_hypothesis(shape, seed):
    """Correct custom ops pass on random shapes; the same op with a bug at a random element
    fails and names that element."""
    x = Tensor(np.random.default_rng(seed).uniform(-2, 2, shape), requires_grad=True)
    assert gradcheck(square, [x])
    flat = int(np.random.default_rng(seed).integers(np.prod(shape, dtype=int)))
    index = np.unravel_index(flat, shape)
    with pytest.raises(GradcheckError, match=re.escape(f"index {tuple(int(i) for i in index)}")):
        gradcheck(lambda x: square(x, bug=add_at(index, 1.0)), [x])
