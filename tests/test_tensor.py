"""Tensor: construction, dtypes, properties, factories, error messages, and forward values
of every op compared with NumPy directly (hypothesis over shapes and values)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor

SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, max_side=4)
FLOATS = st.sampled_from([np.float32, np.float64])


def values(dtype, shape, low=-10.0, high=10.0, nonzero=False):
    """Hypothesis arrays of ``dtype`` with finite values in [low, high]."""
    low, high = float(np.dtype(dtype).type(low)), float(np.dtype(dtype).type(high))
    elements = st.floats(low, high, width=np.dtype(dtype).itemsize * 8, allow_nan=False,
                         allow_infinity=False, allow_subnormal=False)
    if nonzero:
        elements = elements.filter(lambda v: abs(v) > 0.1)
    return hnp.arrays(dtype, shape, elements=elements)


def assert_matches(out, expected, dtype=None):
    """``out`` (a Tensor) has ``expected``'s shape, the given dtype and its values."""
    expected = np.asarray(expected)
    assert isinstance(out, Tensor)
    assert out.shape == expected.shape
    assert out.dtype == (expected.dtype if dtype is None else np.dtype(dtype))
    tol = 1e-6 if out.dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out.numpy(), expected, rtol=tol, atol=tol)


# ------------------------------------------------------------------------- construction

@pytest.mark.parametrize("data, dtype", [
    (1.5, "float32"), ([1.0, 2.0], "float32"), ([[1, 2], [3, 4]], "int64"), (3, "int64"),
    ([1, 2.5], "float32"), ([True, False], "bool"),
    (np.array([1.0, 2.0]), "float64"), (np.array([1.0], dtype=np.float32), "float32"),
    (np.array([1, 2], dtype=np.int32), "int32"), (np.float64(2.5), "float64"),
    (np.int32(3), "int32"),
])
def test_constructor_dtype(data, dtype):
    """Python floats get the default dtype, Python ints int64 (as torch.tensor); NumPy
    data keeps its dtype."""
    t = Tensor(data)
    assert t.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(t.numpy(), np.asarray(data))


def test_constructor_follows_default_dtype(float64_default):
    assert Tensor(1.5).dtype == np.float64
    assert Tensor([[1.0]]).dtype == np.float64
    assert Tensor([1, 2]).dtype == np.int64
    assert Tensor(np.ones(2, dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float64, "int64"])
def test_constructor_explicit_dtype(dtype):
    t = Tensor([1.0, 2.0], dtype=dtype)
    assert t.dtype == np.dtype(dtype)
    assert Tensor(np.array([1.0, 2.0]), dtype=dtype).dtype == np.dtype(dtype)


def test_constructor_copies():
    a = np.array([1.0, 2.0])
    t = Tensor(a)
    a[0] = 99.0
    assert t.numpy()[0] == 1.0
    u = Tensor(t)
    t.data[1] = 99.0
    assert u.numpy()[1] == 2.0


@pytest.mark.parametrize("bad", ["abc", [1.0, "x"], None, {"a": 1}])
def test_constructor_rejects_non_numbers(bad):
    with pytest.raises(TypeError):
        Tensor(bad)


def test_unknown_dtype_is_a_type_error():
    with pytest.raises(TypeError, match="dtype"):
        Tensor([1.0], dtype="floaty")


def test_properties():
    t = Tensor(np.zeros((2, 3, 4)), requires_grad=True)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tuple)
    assert t.ndim == 3 and t.numel() == 24 and len(t) == 2
    assert t.requires_grad and t.is_leaf and t.grad is None
    assert t.data.shape == (2, 3, 4)


def test_item_and_tolist():
    assert Tensor(2.5).item() == 2.5 and isinstance(Tensor(2.5).item(), float)
    assert Tensor([[7]]).item() == 7 and isinstance(Tensor([[7]]).item(), int)
    assert Tensor([[1.0, 2.0]]).tolist() == [[1.0, 2.0]]
    with pytest.raises(ValueError, match="2 elements"):
        Tensor([1.0, 2.0]).item()


def test_len_of_scalar_raises():
    with pytest.raises(TypeError):
        len(Tensor(1.0))


def test_numpy_returns_a_host_array():
    t = Tensor([[1.0, 2.0]], requires_grad=True)
    a = (t * 2.0).numpy()
    assert type(a) is np.ndarray
    np.testing.assert_array_equal(a, [[2.0, 4.0]])


def test_numpy_functions_see_the_values_as_with_pytorch():
    """``np.asarray(t)`` was an object array of 0-d Tensors (no ``__array__``), so NumPy
    functions and ``np.testing`` worked element by element on Tensors, or failed."""
    t = Tensor(np.array([[1.0, 2.0], [3.0, 5.0]], np.float32))
    a = np.asarray(t)
    assert type(a) is np.ndarray and a.dtype == np.float32 and a.shape == (2, 2)
    np.testing.assert_array_equal(a, [[1.0, 2.0], [3.0, 5.0]])
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.median(t) == 2.5 and np.allclose(t, [[1, 2], [3, 5]])
    assert isinstance(np.float64(2.0) * t, Tensor)   # operators still give Tensors


def test_repr_shows_values_and_graph():
    r = repr(Tensor([1.0, 2.0], requires_grad=True) * 3.0)
    assert r.startswith("Tensor(") and "3." in r and "6." in r and "grad_fn=<mul>" in r
    assert "requires_grad=True" in repr(Tensor([1.0], requires_grad=True))
    assert "float64" in repr(Tensor(np.array([1.0])))


@pytest.mark.parametrize("convert", [
    lambda x: x.to(tg.float64), lambda x: x.to(dtype="float64"),
    lambda x: x.to(tg.backend.name, tg.float64), lambda x: x.to(tg.backend.name, dtype="float64")],
    ids=["dtype", "dtype_keyword", "backend_and_dtype", "backend_and_dtype_keyword"])
def test_to_takes_a_dtype_as_pytorch_and_the_gradient_comes_back_in_the_leafs(convert):
    x = Tensor([1.5, -2.0], requires_grad=True)
    y = convert(x)
    assert y.dtype == np.float64 and y.backend == x.backend
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, -4.0])


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x.to(), TypeError, r"needs a backend name \('numpy' or 'cupy'\) or a dtype"),
    (lambda x: x.to("half"), ValueError, r"'half' is a dtype.*pass it as dtype='half'")])
def test_to_without_a_target_or_with_a_dtype_string_says_what_it_takes(call, error, message):
    with pytest.raises(error, match=message):
        call(Tensor([1.0]))


# ----------------------------------------------------------------------------- factories

@pytest.mark.parametrize("factory, fill", [(Tensor.zeros, 0.0), (Tensor.ones, 1.0)])
def test_zeros_ones(factory, fill):
    for t in (factory(2, 3), factory((2, 3)), factory([2, 3])):
        assert t.shape == (2, 3) and t.dtype == tg.get_default_dtype()
        np.testing.assert_array_equal(t.numpy(), np.full((2, 3), fill))
    assert factory(4, dtype="float64").dtype == np.float64
    assert factory().shape == ()
    t = factory(3, requires_grad=True)
    assert t.requires_grad and t.is_leaf


@pytest.mark.parametrize("name", ["zeros", "ones", "randn", "rand", "uniform"])
def test_factories_follow_default_dtype(name, float64_default):
    assert getattr(Tensor, name)(2, 3).dtype == np.float64
    assert getattr(Tensor, name)(2, 3, dtype="float32").dtype == np.float32


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "randn_like", "rand_like"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_like_factories(name, dtype):
    src = Tensor(np.full((3, 2), 5.0), dtype=dtype)
    t = getattr(Tensor, name)(src)
    assert t.shape == (3, 2) and t.dtype == np.dtype(dtype) and not t.requires_grad
    if name == "zeros_like":
        np.testing.assert_array_equal(t.numpy(), 0.0)
    if name == "ones_like":
        np.testing.assert_array_equal(t.numpy(), 1.0)
    assert getattr(Tensor, name)(src, dtype="float64").dtype == np.float64
    assert getattr(Tensor, name)(src, requires_grad=True).requires_grad


def test_random_factories_distributions():
    n = (200, 100)
    z = Tensor.randn(*n).numpy()
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1.0) < 0.05
    u = Tensor.rand(*n).numpy()
    assert u.min() >= 0.0 and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.02
    v = Tensor.uniform(*n, low=-3.0, high=-1.0).numpy()
    assert v.min() >= -3.0 and v.max() < -1.0 and abs(v.mean() + 2.0) < 0.02


@pytest.mark.parametrize("shape", [(-1,), (2, -3), (2.5,)])
def test_factories_reject_bad_shapes(shape):
    with pytest.raises(ValueError, match="shape"):
        Tensor.zeros(*shape)


# ------------------------------------------------------------- forward values vs NumPy

UNARY = {
    "neg": (lambda x: -x, np.negative, {}),
    "exp": (lambda x: x.exp(), np.exp, {}),
    "log": (lambda x: x.log(), np.log, {"low": 0.01}),
    "tanh": (lambda x: x.tanh(), np.tanh, {}),
    "sigmoid": (lambda x: x.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), {}),
    "relu": (lambda x: x.relu(), lambda a: np.maximum(a, 0), {}),
    "clip": (lambda x: x.clip(-1.5, 2.0), lambda a: np.clip(a, -1.5, 2.0), {}),
    "clip_min": (lambda x: x.clip(min=0.5), lambda a: np.maximum(a, 0.5), {}),
    "clip_max": (lambda x: x.clip(max=0.5), lambda a: np.minimum(a, 0.5), {}),
    "square": (lambda x: x ** 2, np.square, {}),
    "sqrt": (lambda x: x ** 0.5, np.sqrt, {"low": 0.0}),
    "reciprocal": (lambda x: x ** -1, np.reciprocal, {"nonzero": True}),
}


@given(op=st.sampled_from(sorted(UNARY)), dtype=FLOATS, data=st.data())
def test_unary_forward(op, dtype, data):
    tg_fn, np_fn, kw = UNARY[op]
    a = data.draw(values(dtype, data.draw(SHAPES), **kw))
    with np.errstate(over="ignore"):
        expected = np_fn(a).astype(dtype)
    assert_matches(tg_fn(Tensor(a)), expected, dtype)


def test_sigmoid_saturates_without_overflow():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = Tensor(np.array([-1000.0, 0.0, 1000.0])).sigmoid().numpy()
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("dtype, x", [("float64", -40.0), ("float64", -700.0),
                                      ("float32", -20.0), ("float32", -80.0)])
def test_sigmoid_keeps_relative_precision_for_negative_inputs(dtype, x):
    """sigmoid(x) ~ e^x for very negative x; PyTorch keeps it, so log(sigmoid(x)) ~ x."""
    out = Tensor(np.array([x]), dtype=dtype).sigmoid()
    assert out.dtype == np.dtype(dtype)
    expected = np.exp(x) / (1 + np.exp(x))   # float64 reference
    np.testing.assert_allclose(out.numpy(), [expected], rtol=1e-6 if dtype == "float32" else 1e-14)


BINARY = {
    "add": (lambda a, b: a + b, {}), "sub": (lambda a, b: a - b, {}),
    "mul": (lambda a, b: a * b, {}), "div": (lambda a, b: a / b, {"nonzero": True}),
    "pow": (lambda a, b: a ** b, {}),
}


@given(op=st.sampled_from(sorted(BINARY)), dtype=FLOATS, data=st.data(),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                max_side=3))
def test_binary_broadcast_forward(op, dtype, data, shapes):
    fn, kw = BINARY[op]
    sa, sb = shapes.input_shapes
    if op == "pow":
        a = data.draw(values(dtype, sa, low=0.1, high=3.0))
        b = data.draw(values(dtype, sb, low=-2.0, high=2.0))
    else:
        a = data.draw(values(dtype, sa))
        b = data.draw(values(dtype, sb, **kw))
    assert_matches(fn(Tensor(a), Tensor(b)), fn(a, b), dtype)
    assert fn(Tensor(a), Tensor(b)).shape == shapes.result_shape


SCALAR_OPS = [lambda x, s: x + s, lambda x, s: s + x, lambda x, s: x - s,
              lambda x, s: s - x, lambda x, s: x * s, lambda x, s: s * x,
              lambda x, s: x / s, lambda x, s: s / x]


@given(op=st.sampled_from(range(len(SCALAR_OPS))), dtype=FLOATS, data=st.data(),
       scalar=st.one_of(st.floats(-5, 5).filter(lambda v: abs(v) > 0.1),
                        st.integers(-5, 5).filter(bool)))
def test_python_scalar_both_sides_forward(op, dtype, data, scalar):
    """A Python number takes the tensor's dtype (float32 stays float32, as in PyTorch)."""
    a = data.draw(values(dtype, data.draw(SHAPES), nonzero=True))
    fn = SCALAR_OPS[op]
    expected = fn(a, dtype(scalar)).astype(dtype)
    assert_matches(fn(Tensor(a), scalar), expected, dtype)


@given(dtype=FLOATS, data=st.data(), p=st.sampled_from([2, 3, 0.5, 1.5, -1, -0.5, 0]))
def test_pow_scalar_forward(dtype, data, p):
    a = data.draw(values(dtype, data.draw(SHAPES), low=0.1, high=3.0))
    assert_matches(Tensor(a) ** p, (a ** dtype(p)).astype(dtype), dtype)


@given(dtype=FLOATS, data=st.data(), base=st.sampled_from([2, 0.5, 2.5, np.e]))
def test_rpow_forward(dtype, data, base):
    a = data.draw(values(dtype, data.draw(SHAPES), low=-3.0, high=3.0))
    assert_matches(base ** Tensor(a), (dtype(base) ** a).astype(dtype), dtype)


def test_int_tensor_arithmetic_stays_integer():
    t = Tensor([1, 2, 3])
    for out, expected in [(t + 1, [2, 3, 4]), (2 * t, [2, 4, 6]), (t - t, [0, 0, 0]),
                          (t * t, [1, 4, 9]), (-t, [-1, -2, -3])]:
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out.numpy(), expected)


@given(dtype=FLOATS, data=st.data(),
       shapes=hnp.mutually_broadcastable_shapes(signature="(n?,k),(k,m?)->(n?,m?)",
                                                max_dims=3, max_side=4))
def test_matmul_forward(dtype, data, shapes):
    sa, sb = shapes.input_shapes
    a, b = data.draw(values(dtype, sa)), data.draw(values(dtype, sb))
    out = Tensor(a) @ Tensor(b)
    assert out.shape == np.matmul(a, b).shape == shapes.result_shape
    np.testing.assert_allclose(out.numpy(), np.matmul(a, b),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-3)
    assert out.dtype == dtype
    np.testing.assert_allclose(Tensor(a).matmul(Tensor(b)).numpy(), out.numpy())


@pytest.mark.parametrize("sa, sb", [((2, 3), (2, 3)), ((3,), (4,)), ((2, 3, 4), (2, 5, 4))])
def test_matmul_shape_mismatch(sa, sb):
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        Tensor(np.ones(sa)) @ Tensor(np.ones(sb))


def test_matmul_of_a_scalar_raises():
    with pytest.raises(RuntimeError, match="1-dimensional"):
        Tensor(2.0) @ Tensor(np.ones(2))


@st.composite
def reduction_args(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4))
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)
                | hnp.valid_tuple_axes(len(shape), min_size=1))
    return shape, axis, draw(st.booleans())


@given(op=st.sampled_from(["sum", "mean", "max"]), dtype=FLOATS, args=reduction_args(),
       data=st.data())
def test_reduction_forward(op, dtype, args, data):
    shape, axis, keepdims = args
    a = data.draw(values(dtype, shape))
    out = getattr(Tensor(a), op)(axis=axis, keepdims=keepdims)
    expected = np.asarray(getattr(a.astype(np.float64), op)(axis=axis, keepdims=keepdims))
    assert out.shape == expected.shape and out.dtype == dtype
    # float rounding of a sum of n terms: |error| <= n * eps * sum|a_i| (any summation order)
    tol = a.size * np.finfo(dtype).eps * max(float(np.abs(a).sum()), 1.0)
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=tol)


def test_reduction_dim_alias():
    a = np.arange(24.0).reshape(2, 3, 4)
    assert_matches(Tensor(a).sum(dim=1), a.sum(axis=1))
    assert_matches(Tensor(a).mean(dim=(0, 2), keepdims=True), a.mean(axis=(0, 2), keepdims=True))
    assert_matches(Tensor(a).max(dim=-1).values, a.max(axis=-1))
    with pytest.raises(TypeError):
        Tensor(a).sum(axis=0, dim=1)


@pytest.mark.parametrize("axis", [3, -4, (0, 5)])
def test_reduction_axis_out_of_range(axis):
    with pytest.raises(IndexError, match="range"):
        Tensor(np.ones((2, 3, 4))).sum(axis=axis)


def test_int_reductions():
    t = Tensor([[1, 5], [3, 2]])
    np.testing.assert_array_equal(t.sum(axis=0).numpy(), [4, 7])
    np.testing.assert_array_equal(t.max(axis=1).numpy(), [5, 3])
    np.testing.assert_array_equal(t.argmax(axis=1).numpy(), [1, 0])


@pytest.mark.parametrize("dims, shape", [((0, 2), (3, 4)), ([0, -2], (3, 4)), ((1,), (1, 3, 1, 4)),
                                         ((0, 1, 2, 3), (3, 4)), ((), (1, 3, 1, 4))], ids=str)
def test_squeeze_takes_a_tuple_of_dims_as_pytorch(dims, shape):
    """PyTorch 2 squeezes the size-1 axes among ``dims`` (and ``()`` squeezes none); a bare
    "too many values to unpack" escaped before."""
    x = Tensor(np.arange(12.0).reshape(1, 3, 1, 4), requires_grad=True)
    out = x.squeeze(dims)
    assert out.shape == shape
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((1, 3, 1, 4)))


@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=4), data=st.data())
def test_shape_ops_forward(shape, data):
    a = data.draw(values(np.float64, shape))
    t = Tensor(a)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    assert_matches(t.permute(perm), a.transpose(perm))
    assert_matches(t.T, a.T)
    assert_matches(t.reshape(-1), a.reshape(-1))
    assert_matches(t.reshape(tuple(reversed(shape))), a.reshape(tuple(reversed(shape))))
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)))
    assert_matches(t.unsqueeze(dim), np.expand_dims(a, dim))
    assert_matches(t.squeeze(), np.squeeze(a))
    if shape:
        axis = data.draw(st.integers(-len(shape), len(shape) - 1))
        assert_matches(t.flip(axis), np.flip(a, axis))
        if shape[axis] == 1:
            assert_matches(t.squeeze(axis), np.squeeze(a, axis))
    if len(shape) >= 2:
        d0, d1 = data.draw(st.permutations(range(len(shape))))[:2]
        assert_matches(t.transpose(d0, d1), np.swapaxes(a, d0, d1))
        assert_matches(t.transpose(), np.swapaxes(a, -2, -1))


def test_reshape_invalid():
    with pytest.raises(RuntimeError, match="invalid for input of size 6"):
        Tensor(np.ones((2, 3))).reshape(4, 2)


@pytest.mark.parametrize("dims", [(0, 0, 1), (0, 1)])
def test_permute_invalid(dims):
    with pytest.raises(RuntimeError, match="permutation"):
        Tensor(np.ones((2, 3, 4))).permute(*dims)


def test_permute_dim_out_of_range():
    with pytest.raises(IndexError, match="out of range"):
        Tensor(np.ones((2, 3, 4))).permute(0, 1, 3)


@given(data=st.data())
def test_basic_indexing_forward(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4))
    a = data.draw(values(np.float64, shape))
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True))
    assert_matches(Tensor(a)[index], a[index])


@given(data=st.data())
def test_integer_array_indexing_forward(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    a = data.draw(values(np.float64, shape))
    index = data.draw(hnp.integer_array_indices(shape))
    assert_matches(Tensor(a)[index], a[index])
    tensor_index = tuple(Tensor(i) for i in index)
    assert_matches(Tensor(a)[tensor_index], a[index])


@given(data=st.data())
def test_boolean_mask_forward(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    a = data.draw(values(np.float64, shape))
    mask = data.draw(hnp.arrays(np.bool_, shape))
    assert_matches(Tensor(a)[mask], a[mask])
    assert_matches(Tensor(a)[Tensor(mask)], a[mask])
    rows = data.draw(hnp.arrays(np.bool_, shape[:1]))
    assert_matches(Tensor(a)[Tensor(rows.tolist())], a[rows])  # a Python list of bools


@pytest.mark.parametrize("index", [5, -6, (0, 9), [0, 7]], ids=str)
def test_index_out_of_range(index):
    with pytest.raises(IndexError):
        Tensor(np.ones((5, 3)))[index]


@pytest.mark.parametrize("index, shape", [([], (0, 3)), ((slice(None), []), (5, 0)),
                                          (([], []), (0,))], ids=str)
def test_an_empty_index_list_selects_nothing_as_in_pytorch(index, shape):
    """NumPy reads ``[]`` as a float64 array: "indices must be long, int or bool" escaped."""
    x = Tensor(np.ones((5, 3)), requires_grad=True)
    assert x[index].shape == shape
    x[index].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((5, 3)))


@pytest.mark.parametrize("index, steps", [
    ((0, slice(None), [1, 2]), ((0,), (slice(None), [1, 2]))),
    ((slice(None), [0, 2], -1), ((slice(None), slice(None), -1), (slice(None), [0, 2]))),
    ((-1, None, slice(None), [3, 0, 3]), ((-1, None), (slice(None), slice(None), [3, 0, 3]))),
    ((1, Ellipsis, [0, 0]), ((1,), (Ellipsis, [0, 0]))),
], ids=["int_slice_list", "slice_list_int", "int_none", "int_ellipsis"])
def test_integers_go_first_when_mixed_with_index_arrays_as_in_pytorch(index, steps):
    """PyTorch selects the integers first: ``x[0, :, [1, 2]]`` is ``x[0][:, [1, 2]]``, of
    shape (3, 2). NumPy's rule (the result was (2, 3), transposed) differs exactly here.
    Expected: the two-step NumPy formula; reading, writing and the gradient."""
    a = np.arange(24.0).reshape(2, 3, 4)
    expected = a[steps[0]][steps[1]]
    x = Tensor(a, requires_grad=True)
    out = x[index]
    np.testing.assert_array_equal(out.numpy(), expected)
    weights = np.arange(1.0, expected.size + 1).reshape(expected.shape)
    (out * Tensor(weights)).sum().backward()
    grad = np.zeros_like(a)
    np.add.at(grad[steps[0]], steps[1], weights)   # a view of grad: the scatter lands in it
    np.testing.assert_array_equal(x.grad.numpy(), grad)
    y = Tensor(np.zeros((2, 3, 4)))
    y[index] = Tensor(weights)
    written = np.zeros((2, 3, 4))
    written[steps[0]][steps[1]] = weights
    np.testing.assert_array_equal(y.numpy(), written)


@pytest.mark.parametrize("index", [[[0, 1], [1, 2]], [np.array([0, 1]), np.array([1, 2])],
                                   [Tensor(np.array([0, 1])), Tensor(np.array([1, 2]))]],
                         ids=["lists", "arrays", "tensors"])
def test_a_list_of_index_lists_is_a_tuple_of_indices_as_in_pytorch(index):
    """``x[[rows, cols]]`` is ``x[rows, cols]`` in PyTorch (NumPy's old rule); it was read
    as one 2-D index array, of shape (2, 2, 4) instead of (2,)."""
    a = np.arange(12.0).reshape(3, 4)
    x = Tensor(a, requires_grad=True)
    np.testing.assert_array_equal(x[index].numpy(), a[[0, 1], [1, 2]])
    x[index].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.isin(np.arange(12), [1, 6]).reshape(3, 4))
    x = Tensor(np.zeros((3, 4)))
    x[index] = Tensor([5.0, 6.0], dtype="float64")
    assert x.numpy()[0, 1] == 5.0 and x.numpy()[1, 2] == 6.0 and x.numpy().sum() == 11.0
    np.testing.assert_array_equal(Tensor(a)[[2, 0, 2]].numpy(), a[[2, 0, 2]])  # ints: rows


def test_float_tensor_index_raises():
    with pytest.raises(IndexError, match="long, int or bool"):
        Tensor(np.ones(3))[Tensor([0.0, 1.0])]


def test_a_uint8_index_is_refused_as_ambiguous():
    """PyTorch reads a uint8 index as a (deprecated) mask, NumPy as row numbers: x[[1, 0, 1]
    as uint8] silently gave rows 1, 0, 1 (shape (3, 2)) where PyTorch gives rows 0 and 2."""
    mask = Tensor(np.array([1, 0, 1], np.uint8))
    with pytest.raises(IndexError, match=r"dtype uint8 is ambiguous .* bool mask \(mask != 0\)"):
        Tensor(np.ones((3, 2)))[mask]
    assert Tensor(np.ones((3, 2)))[mask != 0].shape == (2, 2)


@given(data=st.data(), n=st.integers(1, 4), axis=st.integers(-3, 2), dtype=FLOATS)
def test_cat_stack_forward(data, n, axis, dtype):
    base = data.draw(hnp.array_shapes(min_dims=3, max_dims=3, max_side=3))
    ax = axis % 3
    shapes = [base[:ax] + (data.draw(st.integers(0, 3)),) + base[ax + 1:] for _ in range(n)]
    arrays = [data.draw(values(dtype, s)) for s in shapes]
    assert_matches(Tensor.cat([Tensor(x) for x in arrays], axis), np.concatenate(arrays, axis))
    same = [data.draw(values(dtype, base)) for _ in range(n)]
    axis_stack = data.draw(st.integers(-4, 3))
    assert_matches(Tensor.stack([Tensor(x) for x in same], axis_stack), np.stack(same, axis_stack))


def test_cat_stack_errors():
    with pytest.raises(RuntimeError, match="sizes of tensors must match"):
        Tensor.cat([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))])
    with pytest.raises(RuntimeError, match="equal size"):
        Tensor.stack([Tensor(np.ones((2, 3))), Tensor(np.ones((3, 2)))])
    for join in (Tensor.cat, Tensor.stack):
        with pytest.raises(ValueError, match="non-empty"):
            join([])
        with pytest.raises(TypeError):
            join([Tensor([1.0]), [2.0]])


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="min and max"):
        Tensor([1.0]).clip()


@pytest.mark.parametrize("op", ["exp", "log", "tanh", "sigmoid", "mean"])
def test_float_only_ops_reject_integers(op):
    with pytest.raises(TypeError, match="floating point"):
        getattr(Tensor([1, 2]), op)()


@pytest.mark.parametrize("other", ["a", None, object(), True])
def test_unsupported_operand(other):
    with pytest.raises(TypeError):
        Tensor([1.0]) + other


def test_astype_forward():
    a = np.array([1.25, -2.5, 3.75])
    for dtype in ("float32", "float64", "int64"):
        out = Tensor(a).astype(dtype)
        assert out.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(out.numpy(), a.astype(dtype))
    assert Tensor(a).float().dtype == np.float32 and Tensor(a, dtype="float32").double().dtype \
        == np.float64


def test_ops_with_numpy_arrays_on_either_side():
    a = np.arange(6.0).reshape(2, 3)
    t = Tensor(np.ones((2, 3)))
    for out, expected in [(t + a, 1 + a), (a + t, a + 1), (a * t, a), (a - t, a - 1),
                          (t / (a + 1), 1 / (a + 1)), (a.T @ t, a.T @ np.ones((2, 3)))]:
        assert isinstance(out, Tensor)
        assert_matches(out, expected)


@pytest.mark.parametrize("make", [
    lambda: Tensor([1.0, 2.0]).transpose(0, 5),
    lambda: tg.nn.functional.softmax(Tensor([[1.0, 2.0]]), axis=2),
    lambda: tg.nn.functional.log_softmax(Tensor([1.0, 2.0]), dim=-2),
])
def test_bad_axes_raise_pytorchs_index_error(make):
    with pytest.raises(IndexError, match="Dimension out of range"):
        make()


def test_truth_value_of_a_multi_element_tensor_is_ambiguous():
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]))
    assert bool(Tensor([0.5])) is True and bool(Tensor(0.0)) is False


@pytest.mark.parametrize("make", [
    lambda: Tensor([1, 2, 3]) * 0.5,
    lambda: 0.5 * Tensor([1, 2, 3]),
    lambda: Tensor([1, 2, 3]) + Tensor([0.5, 0.5, 0.5]),
    lambda: Tensor([True, False]) * Tensor([2.0, 3.0]),
    lambda: Tensor([1, 2, 3]) / 2,
    lambda: Tensor([1, 2, 3]) / Tensor([2, 2, 2]),
])
def test_integers_meeting_floats_take_the_default_float_dtype_like_pytorch(make):
    # torch: int64 tensor * 0.5 -> float32 (NumPy alone would give float64)
    assert make().dtype == np.float32


def test_integer_and_float_values_are_unchanged_by_the_promotion():
    np.testing.assert_array_equal((Tensor([1, 2, 3]) / 2).numpy(), [0.5, 1.0, 1.5])
    np.testing.assert_array_equal((Tensor([1, 2, 3]) * Tensor([2, 2, 2])).numpy(), [2, 4, 6])
    assert (Tensor([1, 2, 3]) * Tensor([2, 2, 2])).dtype == np.int64
