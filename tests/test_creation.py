"""The top level a PyTorch user types first: ``tg.tensor``, factories, dtypes,
``tg.set_grad_enabled`` and ``tg.autograd.grad``.

Expected values come from formulas and PyTorch's documented rules (dtype inference:
Python floats -> the default float dtype, ints -> int64, bools -> bool); ``arange`` and
``eye`` values are also replayed from PyTorch recordings in ``tests/test_tensor_ops.py``.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend
from tinygrad_rnn.autograd import FREED_GRAPH_MESSAGE


# ------------------------------------------------------------------- tg.tensor, dtypes
@pytest.mark.parametrize("data, dtype", [
    ([1.0, 2.0], tg.float32), ([1, 2], tg.int64), ([True, False], tg.bool),
    (2.5, tg.float32), (3, tg.int64), ([1, 2.0], tg.float32),
    (np.array([1.0], dtype=np.float64), tg.float64), (np.array([1], np.int32), tg.int32),
])
def test_tensor_infers_dtype_like_torch(data, dtype):
    t = tg.tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(data))


def test_tensor_follows_the_default_dtype_and_accepts_dtype_and_requires_grad():
    tg.set_default_dtype("float64")
    try:
        assert tg.tensor([1.0]).dtype == tg.float64 and tg.zeros(2).dtype == tg.float64
    finally:
        tg.set_default_dtype("float32")
    t = tg.tensor([1, 2], dtype=tg.float64, requires_grad=True)
    assert t.dtype == tg.float64 and t.requires_grad and t.is_leaf
    source = np.array([1.0, 2.0])
    copied = tg.tensor(source)
    source[0] = 9.0
    assert copied.tolist() == [1.0, 2.0]  # a copy, as torch.tensor


def test_the_tensor_module_stays_importable():
    module = importlib.import_module("tinygrad_rnn.tensor")
    assert module is tg.tensor and module.Tensor is Tensor
    from tinygrad_rnn.tensor import Tensor as T
    assert T is Tensor


def test_dtype_objects_compare_with_tensor_dtype_and_work_as_dtype_arguments():
    x = Tensor([1.0], dtype=tg.float64)
    assert x.dtype == tg.float64 and x.dtype != tg.float32
    assert x.astype(tg.float16).dtype == tg.float16
    assert (tg.float, tg.double, tg.long, tg.int, tg.half) == (
        tg.float32, tg.float64, tg.int64, tg.int32, tg.float16)
    assert str(tg.float32) == "float32" and tg.tensor([True]).dtype == tg.bool
    assert tg.ones(2, dtype=tg.int32).dtype == tg.int32


# ------------------------------------------------------------------------ factories
def test_filled_factories():
    assert tg.zeros(2, 3).shape == (2, 3) and tg.zeros((2, 3)).tolist() == [[0.0] * 3] * 2
    assert tg.ones(3).dtype == tg.float32 and tg.ones(3).tolist() == [1.0, 1.0, 1.0]
    assert tg.empty(2, 2).shape == (2, 2)
    assert tg.full((2,), 7).dtype == tg.int64 and tg.full((2,), 7).tolist() == [7, 7]
    assert tg.full((2,), True).dtype == tg.bool and tg.full([2], 0.5).dtype == tg.float32
    assert tg.full(3, 1.5, dtype=tg.float64).tolist() == [1.5] * 3
    np.testing.assert_array_equal(tg.eye(3).numpy(), np.eye(3))
    assert tg.eye(2, 3).shape == (2, 3)
    assert tg.zeros(2, requires_grad=True).requires_grad
    with pytest.raises(ValueError):
        tg.zeros(-1)


def test_like_factories_keep_shape_and_dtype():
    x = Tensor(np.zeros((2, 3)))  # float64
    for fn in (tg.zeros_like, tg.ones_like, tg.empty_like, tg.randn_like, tg.rand_like):
        made = fn(x)
        assert made.shape == (2, 3) and made.dtype == tg.float64
    assert tg.full_like(x, 2.0).tolist() == [[2.0] * 3] * 2
    assert tg.zeros_like(x, dtype=tg.int64).dtype == tg.int64


def test_arange_dtype_and_values():
    assert tg.arange(5).dtype == tg.int64 and tg.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert tg.arange(1, 10, 3).tolist() == [1, 4, 7]
    assert tg.arange(0, 1, 0.25).dtype == tg.float32
    assert tg.arange(0.0, 3).tolist() == [0.0, 1.0, 2.0]
    assert tg.arange(5, 0, -2).tolist() == [5, 3, 1]
    with pytest.raises(ValueError, match="step must be nonzero"):
        tg.arange(0, 1, 0)
    with pytest.raises(ValueError, match="inconsistent with step sign"):
        tg.arange(0, 5, -1)


def test_random_factories_are_seeded_and_float():
    tg.manual_seed(3)
    a = tg.randn(2, 3)
    tg.manual_seed(3)
    np.testing.assert_array_equal(a.numpy(), tg.randn(2, 3).numpy())
    assert tg.rand(4).dtype == tg.float32 and ((tg.rand(100).numpy() >= 0).all())
    with pytest.raises(TypeError, match="floating point"):
        tg.randn(2, dtype=tg.int64)


def test_cat_stack_where_at_the_top_level():
    a, b = Tensor([[1.0, 2.0]]), Tensor([[3.0, 4.0]])
    assert tg.cat([a, b], dim=1).tolist() == [[1.0, 2.0, 3.0, 4.0]]
    assert tg.stack([a, b], dim=0).shape == (2, 1, 2)
    assert tg.where(Tensor(np.array([True, False])), 1.0, 0.0).tolist() == [1.0, 0.0]


# ------------------------------------------------------------------- set_grad_enabled
def test_set_grad_enabled_as_function_context_and_decorator():
    x = Tensor([1.0], requires_grad=True)
    tg.set_grad_enabled(False)
    try:
        assert not tg.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        tg.set_grad_enabled(True)
    with tg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with tg.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()

    @tg.set_grad_enabled(False)
    def evaluate():
        return tg.is_grad_enabled()
    assert tg.is_grad_enabled()  # decorating changes nothing by itself
    assert evaluate() is False and tg.is_grad_enabled()


# ------------------------------------------------------------------- autograd.grad
def test_grad_returns_a_tuple_and_leaves_dot_grad_alone():
    x = Tensor([1.0, -2.0, 3.0], requires_grad=True)
    w = Tensor([0.5, 1.0, 2.0], requires_grad=True)
    w.grad = Tensor([7.0, 7.0, 7.0])
    gx, gw = tg.autograd.grad((x * x * w).sum(), [x, w])
    np.testing.assert_array_equal(gx.numpy(), 2 * x.numpy() * w.numpy())
    np.testing.assert_array_equal(gw.numpy(), x.numpy() ** 2)
    assert x.grad is None and w.grad.tolist() == [7.0, 7.0, 7.0]
    assert not gx.requires_grad


def test_grad_of_an_intermediate_with_grad_outputs_and_several_outputs():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    y1, y2 = h * h, h.sum()
    (gh,) = tg.autograd.grad([y1, y2], h, grad_outputs=[Tensor([1.0, 10.0]), Tensor(2.0)])
    np.testing.assert_array_equal(gh.numpy(), 2 * h.numpy() * [1.0, 10.0] + 2.0)
    assert x.grad is None


def test_grad_runs_hooks_like_torch():
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g * 10)
    (g,) = tg.autograd.grad((x * x).sum(), x)
    np.testing.assert_array_equal(g.numpy(), [20.0, 40.0])


def test_grad_unused_inputs_and_errors():
    x = Tensor([1.0], requires_grad=True)
    unused = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        tg.autograd.grad((x * 2).sum(), [x, unused])
    assert tg.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)[1] is None
    zero = tg.autograd.grad((x * 2).sum(), [x, unused], materialize_grads=True)[1]
    assert zero.tolist() == [0.0]
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.autograd.grad((x * 2).sum(), Tensor([1.0]))
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        tg.autograd.grad(x * Tensor([1.0, 2.0]), x)
    with pytest.raises(NotImplementedError, match="first-order"):
        tg.autograd.grad((x * 2).sum(), x, create_graph=True)


def test_grad_frees_the_graph_unless_retained():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    first = tg.autograd.grad(y, x, retain_graph=True)[0]
    np.testing.assert_array_equal(tg.autograd.grad(y, x)[0].numpy(), first.numpy())
    with pytest.raises(RuntimeError, match="second time"):
        tg.autograd.grad(y, x)
    assert "second time" in FREED_GRAPH_MESSAGE


def test_dtype_conversions_torch_style():
    x = Tensor([1.5, -2.5], requires_grad=True)
    y = x.to(tg.float64)
    assert y.dtype == tg.float64 and y.requires_grad
    y.sum().backward()
    assert x.grad.dtype == tg.float32 and x.grad.tolist() == [1.0, 1.0]
    assert x.long().dtype == tg.int64 and x.long().tolist() == [1, -2]  # truncation, as torch
    assert x.half().dtype == tg.float16 and x.is_floating_point()
    assert not x.long().is_floating_point() and x.to(x.backend) is x


def test_grad_with_an_input_listed_twice_and_comparisons_in_where():
    x = Tensor([1.0, -2.0], requires_grad=True)
    y = tg.where(x > 0, x * x, -x).sum()
    first, second = tg.autograd.grad(y, [x, x])
    np.testing.assert_array_equal(first.numpy(), [2.0, -1.0])
    np.testing.assert_array_equal(second.numpy(), [2.0, -1.0])
    assert not backend.module_of(first.data).shares_memory(first.data, second.data)


def test_tensor_from_a_list_of_scalar_tensors():
    a = Tensor(1.5, requires_grad=True)
    made = tg.tensor([a * 2.0, Tensor(0.5)])
    assert made.tolist() == [3.0, 0.5] and made.is_leaf and not made.requires_grad
