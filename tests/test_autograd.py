"""Reverse-mode autograd: every op's gradient, and the semantics of ``backward``.

Gradients are checked against central finite differences of a *NumPy reference* of the same
function, in float64, so a mistake in our forward cannot hide a mistake in our backward. The
loss is ``sum(w * f(inputs))`` with a random weighting ``w`` (passed to ``backward(gradient=w)``),
so every output element matters.

Cases follow tinygrad's "one helper, many one-line cases" style: most lambdas are valid on a
NumPy array and on a Tensor alike, so they serve as their own reference.
"""
from __future__ import annotations

import gc
import math
import os
import pathlib
import subprocess
import sys
import tracemalloc
import weakref

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor

SEEDS = st.integers(0, 2**32 - 1)

# ------------------------------------------------------------------------------- helpers


def make_array(shape, domain, rng, dtype=np.float64):
    """Random values away from the places where an op is undefined or not smooth.
    ``any``: (-2, 2); ``pos``: (0.5, 2); ``nonzero``: ±(0.5, 2)."""
    if domain == "any":
        a = rng.uniform(-2.0, 2.0, shape)
    elif domain == "pos":
        a = rng.uniform(0.5, 2.0, shape)
    elif domain == "nonzero":
        a = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    else:
        raise ValueError(domain)
    return np.asarray(a, dtype=dtype)


def make_inputs(shapes, domains, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    if isinstance(domains, str):
        domains = (domains,) * len(shapes)
    return [make_array(s, d, rng, dtype) for s, d in zip(shapes, domains)]


def numeric_grad(np_fn, arrays, i, w, eps=1e-6):
    """Central differences of ``sum(w * np_fn(*arrays))`` w.r.t. ``arrays[i]`` (float64)."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    flat = arrays[i].reshape(-1)  # a view into arrays[i]
    grad = np.zeros(flat.shape)
    for k in range(flat.size):
        original = flat[k]
        flat[k] = original + eps
        plus = np.sum(w * np_fn(*arrays))
        flat[k] = original - eps
        minus = np.sum(w * np_fn(*arrays))
        flat[k] = original
        grad[k] = (plus - minus) / (2 * eps)
    return grad.reshape(arrays[i].shape)


def check_grad(tg_fn, np_fn, arrays, seed=0, rtol=1e-6, atol=1e-7):
    """Forward equals ``np_fn``; each input's gradient equals finite differences of ``np_fn``."""
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = tg_fn(*tensors)
    expected = np.asarray(np_fn(*arrays), dtype=np.float64)
    assert out.shape == expected.shape
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    w = np.random.default_rng(seed + 1).standard_normal(expected.shape)
    out.backward(Tensor(w))
    for i, (t, a) in enumerate(zip(tensors, arrays)):
        assert t.grad is not None, f"input {i} got no gradient"
        assert t.grad.shape == a.shape and t.grad.dtype == np.float64
        np.testing.assert_allclose(t.grad.numpy(), numeric_grad(np_fn, arrays, i, w),
                                   rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")


def case(name, tg_fn, np_fn=None, shapes=((3, 4),), domain="any"):
    """One op case: ``np_fn`` defaults to ``tg_fn`` (same syntax on arrays and Tensors)."""
    return pytest.param(tg_fn, np_fn or tg_fn, shapes, domain, id=name)


# ----------------------------------------------------------------------------- op tables

M = np.random.default_rng(7).random((4, 5)) > 0.5     # a fixed boolean mask for (4, 5)
ROWS = np.array([True, False, True, True])

ELEMENTWISE = [
    case("add", lambda a, b: a + b, shapes=((3, 4), (3, 4))),
    case("sub", lambda a, b: a - b, shapes=((3, 4), (3, 4))),
    case("mul", lambda a, b: a * b, shapes=((3, 4), (3, 4))),
    case("div", lambda a, b: a / b, shapes=((3, 4), (3, 4)), domain=("any", "nonzero")),
    case("pow_tensor_tensor", lambda a, b: a ** b, shapes=((3, 4), (3, 4)), domain=("pos", "any")),
    case("neg", lambda x: -x),
    case("exp", lambda x: x.exp(), np.exp),
    case("log", lambda x: x.log(), np.log, domain="pos"),
    case("tanh", lambda x: x.tanh(), np.tanh),
    case("sigmoid", lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    case("relu", lambda x: x.relu(), lambda x: np.maximum(x, 0), domain="nonzero"),
    case("clip", lambda x: x.clip(-0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5)),
    case("clip_min", lambda x: x.clip(min=-0.5), lambda x: np.clip(x, -0.5, None)),
    case("clip_max", lambda x: x.clip(max=0.5), lambda x: np.clip(x, None, 0.5)),
    case("clamp", lambda x: x.clamp(-1.0, 1.0), lambda x: np.clip(x, -1.0, 1.0)),
]

PYTHON_SCALARS = [
    case("x+2.5", lambda x: x + 2.5), case("2.5+x", lambda x: 2.5 + x),
    case("x+3", lambda x: x + 3), case("3+x", lambda x: 3 + x),
    case("x-2.5", lambda x: x - 2.5), case("2.5-x", lambda x: 2.5 - x),
    case("x-3", lambda x: x - 3), case("3-x", lambda x: 3 - x),
    case("x*2.5", lambda x: x * 2.5), case("2.5*x", lambda x: 2.5 * x),
    case("x*-3", lambda x: x * -3), case("-3*x", lambda x: -3 * x),
    case("x/2.5", lambda x: x / 2.5), case("2.5/x", lambda x: 2.5 / x, domain="nonzero"),
    case("x/4", lambda x: x / 4), case("4/x", lambda x: 4 / x, domain="nonzero"),
    case("x**2", lambda x: x ** 2), case("x**3", lambda x: x ** 3),
    case("x**1", lambda x: x ** 1), case("x**0", lambda x: x ** 0),
    case("x**2.5", lambda x: x ** 2.5, domain="pos"),
    case("x**0.5", lambda x: x ** 0.5, domain="pos"),
    case("x**-1.5", lambda x: x ** -1.5, domain="pos"),
    case("x**-2", lambda x: x ** -2, domain="nonzero"),
    case("2.5**x", lambda x: 2.5 ** x), case("2**x", lambda x: 2 ** x),
    case("0.5**x", lambda x: 0.5 ** x),
    case("np_float*x", lambda x: np.float64(1.5) * x),
    case("x*np_float", lambda x: x * np.float64(1.5)),
    case("x+np_array", lambda x: x + np.arange(4.0, dtype=np.float32), shapes=((3, 4),)),
    case("np_array*x", lambda x: np.arange(4.0, dtype=np.float32) * x, shapes=((3, 4),)),
]

MATMUL = [
    case(f"matmul_{'x'.join(map(str, sa))}@{'x'.join(map(str, sb))}", lambda a, b: a @ b,
         shapes=(sa, sb))
    for sa, sb in [((3, 4), (4, 5)), ((1, 4), (4, 1)), ((2, 3, 4), (2, 4, 5)),
                   ((2, 1, 3, 4), (5, 4, 2)), ((3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)),
                   ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,)),
                   ((4,), (2, 4, 3)), ((1, 1), (1, 1))]
] + [
    case("matmul_method", lambda a, b: a.matmul(b), lambda a, b: a @ b, shapes=((3, 4), (4, 2))),
    case("rmatmul_np", lambda b: np.arange(8.0, dtype=np.float32).reshape(2, 4) @ b,
         shapes=((4, 3),)),
]

REDUCTIONS = [
    case(f"{op}_axis={axis}_keepdims={keepdims}",
         (lambda op, axis, keepdims: lambda x: getattr(x, op)(axis=axis, keepdims=keepdims))(
             op, axis, keepdims), shapes=((2, 3, 4),))
    for op in ("sum", "mean", "max")
    for axis in (None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2))
    for keepdims in (False, True)
] + [
    case("sum_scalar", lambda x: x.sum(), shapes=((),)),
    case("mean_scalar", lambda x: x.mean(), shapes=((),)),
    case("max_scalar", lambda x: x.max(), shapes=((),)),
    case("sum_positional_axis", lambda x: x.sum(1), lambda x: x.sum(axis=1)),
    case("sum_dim", lambda x: x.sum(dim=1), lambda x: x.sum(axis=1)),
    case("mean_dim_keepdims", lambda x: x.mean(dim=0, keepdims=True),
         lambda x: x.mean(axis=0, keepdims=True)),
    case("max_dim", lambda x: x.max(dim=-1).values, lambda x: x.max(axis=-1)),
]

SHAPES = [
    case("reshape", lambda x: x.reshape(6, 2)),
    case("reshape_tuple", lambda x: x.reshape((2, 6))),
    case("reshape_-1", lambda x: x.reshape(-1)),
    case("reshape_to_scalar", lambda x: x.reshape(()), shapes=((1, 1),)),
    case("view", lambda x: x.view(4, 3), lambda x: x.reshape(4, 3)),
    case("transpose_default", lambda x: x.transpose(), lambda x: x.swapaxes(-2, -1),
         shapes=((2, 3, 4),)),
    case("transpose_0_2", lambda x: x.transpose(0, 2), lambda x: x.swapaxes(0, 2),
         shapes=((2, 3, 4),)),
    case("transpose_1d", lambda x: x.transpose(), lambda x: x, shapes=((3,),)),
    case("permute", lambda x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1),
         shapes=((2, 3, 4),)),
    case("permute_tuple", lambda x: x.permute((1, 2, 0)), lambda x: x.transpose(1, 2, 0),
         shapes=((2, 3, 4),)),
    case("permute_negative", lambda x: x.permute(-1, 0, 1), lambda x: x.transpose(2, 0, 1),
         shapes=((2, 3, 4),)),
    case("T_2d", lambda x: x.T),
    case("T_3d", lambda x: x.T, shapes=((2, 3, 4),)),
    case("unsqueeze_0", lambda x: x.unsqueeze(0), lambda x: np.expand_dims(x, 0)),
    case("unsqueeze_1", lambda x: x.unsqueeze(1), lambda x: np.expand_dims(x, 1)),
    case("unsqueeze_-1", lambda x: x.unsqueeze(-1), lambda x: np.expand_dims(x, -1)),
    case("squeeze", lambda x: x.squeeze(), np.squeeze, shapes=((1, 3, 1, 2),)),
    case("squeeze_dim", lambda x: x.squeeze(2), lambda x: np.squeeze(x, 2),
         shapes=((1, 3, 1, 2),)),
    case("squeeze_-2", lambda x: x.squeeze(-2), lambda x: np.squeeze(x, -2),
         shapes=((1, 3, 1, 2),)),
    case("squeeze_non_unit_dim", lambda x: x.squeeze(1), lambda x: x, shapes=((1, 3, 1, 2),)),
    case("flip_0", lambda x: x.flip(0), lambda x: np.flip(x, 0)),
    case("flip_1", lambda x: x.flip(1), lambda x: np.flip(x, 1)),
    case("flip_-1", lambda x: x.flip(-1), lambda x: np.flip(x, -1), shapes=((2, 3, 4),)),
]

INDEXING = [
    case("int", lambda x: x[1], shapes=((4, 5),)),
    case("negative_int", lambda x: x[-1], shapes=((4, 5),)),
    case("two_ints", lambda x: x[1, 2], shapes=((4, 5),)),
    case("slice", lambda x: x[1:3], shapes=((4, 5),)),
    case("slices_2d", lambda x: x[:, 1:4], shapes=((4, 5),)),
    case("step", lambda x: x[::2, 1::2], shapes=((4, 5),)),
    case("negative_step", lambda x: x[::-1, 3:0:-2], shapes=((4, 5),)),
    case("ellipsis", lambda x: x[..., 0], shapes=((2, 3, 4),)),
    case("newaxis", lambda x: x[None, :, None], shapes=((4, 5),)),
    case("int_list_repeated", lambda x: x[[0, 0, 2, 0]], shapes=((4, 5),)),
    case("int_array_2d_repeated", lambda x: x[np.array([[0, 1], [1, 1]])], shapes=((4, 5),)),
    case("int_arrays_pairs_repeated", lambda x: x[[0, 0, 3], [1, 1, 4]], shapes=((4, 5),)),
    case("int_and_list", lambda x: x[1, [0, 0, 4]], shapes=((4, 5),)),
    case("slice_and_list", lambda x: x[:, [2, 2, -1]], shapes=((4, 5),)),
    case("negative_int_array", lambda x: x[np.array([-1, -1, 0])], shapes=((4, 5),)),
    case("bool_mask", lambda x: x[M], shapes=((4, 5),)),
    case("bool_rows", lambda x: x[ROWS], shapes=((4, 5),)),
    case("tensor_int_index", lambda x: x[Tensor(np.array([0, 0, 3]))],
         lambda x: x[np.array([0, 0, 3])], shapes=((4, 5),)),
    case("tensor_bool_index", lambda x: x[Tensor(M)], lambda x: x[M], shapes=((4, 5),)),
    case("tensor_index_in_tuple", lambda x: x[:, Tensor(np.array([4, 4]))],
         lambda x: x[:, np.array([4, 4])], shapes=((4, 5),)),
]

JOINING = [
    case("cat_axis0", lambda a, b: Tensor.cat([a, b]), lambda a, b: np.concatenate([a, b]),
         shapes=((2, 3), (4, 3))),
    case("cat_axis1", lambda a, b, c: Tensor.cat([a, b, c], axis=1),
         lambda a, b, c: np.concatenate([a, b, c], axis=1), shapes=((2, 3), (2, 1), (2, 2))),
    case("cat_axis-1", lambda a, b: Tensor.cat((a, b), -1),
         lambda a, b: np.concatenate([a, b], -1), shapes=((2, 3, 1), (2, 3, 2))),
    case("cat_dim", lambda a, b: Tensor.cat([a, b], dim=1),
         lambda a, b: np.concatenate([a, b], 1), shapes=((2, 3), (2, 2))),
    case("cat_one", lambda a: Tensor.cat([a]), lambda a: a, shapes=((2, 3),)),
    case("cat_same_tensor_twice", lambda a: Tensor.cat([a, a]),
         lambda a: np.concatenate([a, a]), shapes=((2, 3),)),
    case("stack_axis0", lambda a, b, c: Tensor.stack([a, b, c]),
         lambda a, b, c: np.stack([a, b, c]), shapes=((2, 3),) * 3),
    case("stack_axis1", lambda a, b: Tensor.stack([a, b], axis=1),
         lambda a, b: np.stack([a, b], 1), shapes=((2, 3),) * 2),
    case("stack_axis-1", lambda a, b: Tensor.stack([a, b], -1),
         lambda a, b: np.stack([a, b], -1), shapes=((2, 3),) * 2),
    case("stack_dim", lambda a, b: Tensor.stack([a, b], dim=2),
         lambda a, b: np.stack([a, b], 2), shapes=((2, 3),) * 2),
    case("stack_scalars", lambda a, b: Tensor.stack([a, b]), lambda a, b: np.stack([a, b]),
         shapes=((), ())),
]

COMPOSITE = [
    case("rnn_step", lambda x, h, W, U, b: (x @ W.T + h @ U.T + b).tanh(),
         lambda x, h, W, U, b: np.tanh(x @ W.T + h @ U.T + b),
         shapes=((2, 3), (2, 4), (4, 3), (4, 4), (4,))),
    case("softmax", lambda x: x.exp() / x.exp().sum(axis=-1, keepdims=True),
         lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)),
    case("log_sum_exp", lambda x: (x - x.max(axis=1, keepdims=True)).exp().sum(axis=1).log(),
         lambda x: np.log(np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1))),
    case("reused_input", lambda x: x * x + x.exp() * x, lambda x: x * x + np.exp(x) * x),
    case("mse", lambda a, b: ((a - b) ** 2).mean(), shapes=((3, 4), (3, 4))),
    case("index_then_stack", lambda x: Tensor.stack([x[i] * (i + 1) for i in range(3)]),
         lambda x: np.stack([x[i] * (i + 1) for i in range(3)]), shapes=((3, 4),)),
]

ALL_CASES = ELEMENTWISE + PYTHON_SCALARS + MATMUL + REDUCTIONS + SHAPES + INDEXING + JOINING \
    + COMPOSITE


@pytest.mark.parametrize("tg_fn, np_fn, shapes, domain", ALL_CASES)
def test_grad_matches_finite_differences(tg_fn, np_fn, shapes, domain):
    check_grad(tg_fn, np_fn, make_inputs(shapes, domain, seed=1))


@pytest.mark.parametrize("tg_fn, np_fn, shapes, domain", ALL_CASES)
def test_float32_grads_stay_float32(tg_fn, np_fn, shapes, domain):
    """Every op's backward hands each input a gradient of the input's own dtype and shape
    (hooks see the raw gradient, before it is accumulated into .grad)."""
    tensors = [Tensor(a, requires_grad=True) for a in make_inputs(shapes, domain, 2, np.float32)]
    seen = []
    for t in tensors:
        t.register_hook(lambda g: seen.append((g.dtype, g.shape)))
    out = tg_fn(*tensors)
    assert out.dtype == np.float32
    out.backward(Tensor(np.ones(out.shape, dtype=np.float32)))
    assert seen and all(dt == np.float32 for dt, _ in seen), seen
    for t in tensors:
        assert t.grad.dtype == np.float32 and t.grad.shape == t.shape
    # and the float32 gradient is the float64 one, rounded
    ref = [Tensor(t.numpy().astype(np.float64), requires_grad=True) for t in tensors]
    tg_fn(*ref).backward(Tensor(np.ones(out.shape)))
    for t, r in zip(tensors, ref):
        np.testing.assert_allclose(t.grad.numpy(), r.grad.numpy(), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------- broadcasting (hypothesis)

BINARY = {
    "add": (lambda a, b: a + b, ("any", "any")),
    "sub": (lambda a, b: a - b, ("any", "any")),
    "mul": (lambda a, b: a * b, ("any", "any")),
    "div": (lambda a, b: a / b, ("any", "nonzero")),
    "pow": (lambda a, b: a ** b, ("pos", "any")),
}
BROADCAST_PAIRS = [((), ()), ((), (3,)), ((1,), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)),
                   ((2, 1, 4), (3, 1)), ((1, 1), (2, 1, 3)), ((5, 1, 1), ())]


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
@pytest.mark.parametrize("swap", [False, True], ids=["a_op_b", "b_op_a"])
def test_broadcast_grad(op, shapes, swap):
    fn, domains = BINARY[op]
    if swap:
        shapes = shapes[::-1]
    check_grad(fn, fn, make_inputs(shapes, domains, seed=3))


@given(op=st.sampled_from(sorted(BINARY)),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                max_side=3),
       seed=SEEDS)
def test_broadcast_grad_hypothesis(op, shapes, seed):
    fn, domains = BINARY[op]
    check_grad(fn, fn, make_inputs(shapes.input_shapes, domains, seed), seed=seed)


@given(shapes=hnp.mutually_broadcastable_shapes(signature="(n?,k),(k,m?)->(n?,m?)",
                                                max_dims=3, max_side=3),
       seed=SEEDS)
def test_matmul_grad_hypothesis(shapes, seed):
    """2-D, batched, broadcast-batched and 1-D operands on either side (NumPy's rules)."""
    check_grad(lambda a, b: a @ b, np.matmul, make_inputs(shapes.input_shapes, "any", seed),
               seed=seed)


UNARY = {"neg": (lambda x: -x, "any"), "exp": (lambda x: x.exp(), "any"),
         "log": (lambda x: x.log(), "pos"), "tanh": (lambda x: x.tanh(), "any"),
         "relu": (lambda x: x.relu(), "nonzero"), "sigmoid": (lambda x: x.sigmoid(), "any"),
         "square": (lambda x: x ** 2, "any"), "rpow": (lambda x: 1.5 ** x, "any"),
         "clip": (lambda x: x.clip(-1.0, 1.0), "any")}
NP_UNARY = {"neg": np.negative, "exp": np.exp, "log": np.log, "tanh": np.tanh,
            "relu": lambda x: np.maximum(x, 0), "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
            "square": np.square, "rpow": lambda x: 1.5 ** x,
            "clip": lambda x: np.clip(x, -1.0, 1.0)}


@given(op=st.sampled_from(sorted(UNARY)), shape=hnp.array_shapes(min_dims=0, max_dims=3,
                                                                 max_side=4), seed=SEEDS)
def test_unary_grad_hypothesis(op, shape, seed):
    fn, domain = UNARY[op]
    check_grad(fn, NP_UNARY[op], make_inputs([shape], domain, seed), seed=seed)


@st.composite
def reduction_args(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
    if not shape:
        return shape, None, draw(st.booleans())
    axis = draw(st.none() | hnp.valid_tuple_axes(len(shape), min_size=1)
                | st.integers(-len(shape), len(shape) - 1))
    return shape, axis, draw(st.booleans())


@given(op=st.sampled_from(["sum", "mean", "max"]), args=reduction_args(), seed=SEEDS)
def test_reduction_grad_hypothesis(op, args, seed):
    shape, axis, keepdims = args
    fn = lambda x: getattr(x, op)(axis=axis, keepdims=keepdims)  # noqa: E731
    check_grad(fn, fn, make_inputs([shape], "any", seed), seed=seed)


@given(data=st.data(), seed=SEEDS)
def test_basic_index_grad_hypothesis(data, seed):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True))
    fn = lambda x: x[index]  # noqa: E731
    check_grad(fn, fn, make_inputs([shape], "any", seed), seed=seed)


@given(data=st.data(), seed=SEEDS)
def test_integer_array_index_grad_hypothesis(data, seed):
    """Integer-array indices drawn with repeats: the gradient of a repeated element is the
    sum of the weights of every place it was read (scatter-add)."""
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    index = data.draw(hnp.integer_array_indices(
        shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=5)))
    fn = lambda x: x[index]  # noqa: E731
    check_grad(fn, fn, make_inputs([shape], "any", seed), seed=seed)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), seed=SEEDS)
def test_boolean_mask_grad_hypothesis(shape, seed):
    mask = np.random.default_rng(seed).random(shape) > 0.5
    check_grad(lambda x: x[Tensor(mask)], lambda x: x[mask], make_inputs([shape], "any", seed))


@given(shapes=st.lists(hnp.array_shapes(min_dims=2, max_dims=2, max_side=3), min_size=1,
                       max_size=4), axis=st.sampled_from([0, 1, -1, -2]), seed=SEEDS)
def test_cat_grad_hypothesis(shapes, axis, seed):
    ax = axis % 2
    shapes = [tuple(s[i] if i == ax else shapes[0][i] for i in range(2)) for s in shapes]
    check_grad(lambda *ts: Tensor.cat(ts, axis), lambda *xs: np.concatenate(xs, axis),
               make_inputs(shapes, "any", seed), seed=seed)


@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3),
       n=st.integers(1, 4), data=st.data(), seed=SEEDS)
def test_stack_grad_hypothesis(shape, n, data, seed):
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check_grad(lambda *ts: Tensor.stack(ts, axis), lambda *xs: np.stack(xs, axis),
               make_inputs([shape] * n, "any", seed), seed=seed)


@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=3), data=st.data(),
       seed=SEEDS)
def test_permute_reshape_grad_hypothesis(shape, data, seed):
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    new_shape = tuple(reversed(shape)) + (1,)
    check_grad(lambda x: x.permute(perm).reshape(new_shape),
               lambda x: x.transpose(perm).reshape(new_shape), make_inputs([shape], "any", seed),
               seed=seed)


@given(seed=SEEDS)
def test_gradcheck_on_composites(seed):
    """tinygrad_rnn.gradcheck agrees on an RNN step with random weights."""
    x, h, W, U, b = [Tensor(a, requires_grad=True) for a in
                     make_inputs([(2, 3), (2, 4), (4, 3), (4, 4), (4,)], "any", seed)]
    assert tg.gradcheck(lambda x, h, W, U, b: (x @ W.T + h @ U.T + b).tanh().sigmoid(),
                        [x, h, W, U, b])


# ---------------------------------------------------- gradients given by formulas (kinks)

def test_max_ties_share_gradient_equally():
    x = Tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0], [5.0, 5.0, 5.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    mask = x.numpy() == x.numpy().max(axis=1, keepdims=True)
    np.testing.assert_allclose(x.grad.numpy(), mask / mask.sum(axis=1, keepdims=True))


def test_max_ties_all_axes():
    x = Tensor([1.0, 4.0, 0.0, 4.0, 4.0], requires_grad=True)
    (x.max() * 6.0).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 2.0, 0, 2.0, 2.0])


def test_relu_grad_at_zero_is_zero():      # as torch.relu
    x = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0])


def test_clip_grad_passes_at_the_bounds():  # as torch.clamp: min <= x <= max
    x = Tensor([-2.0, -1.0, 0.0, 1.0, 2.0], requires_grad=True)
    x.clip(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 1.0, 1.0, 0.0])


def test_pow_zero_exponent_grad_is_zero_everywhere():
    x = Tensor([0.0, 2.0], requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])


@pytest.mark.parametrize("make, x_grad", [(lambda x, y: x ** y, [0.0, 1.0, 0.0]),
                                          (lambda x, y: 0.0 ** y, None)],
                         ids=["tensor_base", "number_base"])
def test_pow_at_zero_base_has_torchs_grads_not_nan(make, x_grad):
    # torch.pow at x = 0: d/dx = 0 where y == 0 and d/dy = 0 where y >= 0, not 0*inf = NaN
    x = Tensor([0.0, 0.0, 0.0], requires_grad=True)
    y = Tensor([0.0, 1.0, 2.0], requires_grad=True)
    make(x, y).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 0.0, 0.0])
    if x_grad is None:
        assert x.grad is None
    else:
        np.testing.assert_array_equal(x.grad.numpy(), x_grad)


def test_rpow_with_an_array_base_sums_the_grad_over_broadcast_axes():
    base = np.array([[2.0], [3.0]])
    y = Tensor([0.0, 1.0, 2.0], requires_grad=True)
    out = base ** y
    assert out.shape == (2, 3)
    out.sum().backward()
    assert y.grad.shape == (3,)
    np.testing.assert_allclose(y.grad.numpy(), (base ** y.numpy() * np.log(base)).sum(axis=0))


@pytest.mark.parametrize("src, dst", [("float32", "float64"), ("float64", "float32"),
                                      ("float64", "float64")])
@pytest.mark.parametrize("convert", ["astype", "method"])
def test_astype_grad_is_cast_back(src, dst, convert):
    w = np.random.default_rng(0).standard_normal((2, 3))
    x = Tensor(np.random.default_rng(1).standard_normal((2, 3)), dtype=src, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.dtype))  # the raw gradient astype hands back
    y = x.astype(dst) if convert == "astype" else (x.double() if dst == "float64" else x.float())
    assert y.dtype == np.dtype(dst)
    (y * Tensor(w, dtype=dst)).sum().backward()
    assert x.grad.dtype == np.dtype(src) and seen == [np.dtype(src)]
    np.testing.assert_allclose(x.grad.numpy(), w.astype(dst).astype(src), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_astype_to_non_float_is_cut_from_the_graph(dtype):
    x = Tensor([1.5, -2.0, 0.0], requires_grad=True)
    y = x.astype(dtype)
    assert y.dtype == np.dtype(dtype) and not y.requires_grad and y.is_leaf
    np.testing.assert_array_equal(y.numpy(), np.array([1.5, -2.0, 0.0]).astype(dtype))


# -------------------------------------------------------------------------- mixed dtypes

MIXED = [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / (b * b + 1)), ("pow", lambda a, b: (a * a + 1) ** b),
    ("cat", lambda a, b: Tensor.cat([a, b])),
    ("stack", lambda a, b: Tensor.stack([a, b])),
]


def test_matmul_of_two_dtypes_raises_as_in_pytorch():
    # torch.mm: "expected m1 and m2 to have the same dtype"; NumPy would promote silently.
    a, b = Tensor(np.ones((2, 3)), dtype="float32"), Tensor(np.ones((3, 2)), dtype="float64")
    with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype"):
        a @ b


@pytest.mark.parametrize("name, fn", MIXED, ids=[m[0] for m in MIXED])
@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")], ids=str)
def test_mixed_dtypes_give_each_leaf_its_own_dtype(name, fn, dtypes):
    rng = np.random.default_rng(0)
    a = Tensor(rng.standard_normal((2, 3)), dtype=dtypes[0], requires_grad=True)
    b = Tensor(rng.standard_normal((2, 3)), dtype=dtypes[1], requires_grad=True)
    seen = {}
    a.register_hook(lambda g: seen.__setitem__("a", g.dtype))
    b.register_hook(lambda g: seen.__setitem__("b", g.dtype))
    out = fn(a, b)
    assert out.dtype == np.float64  # promotion, as in NumPy and PyTorch
    out.sum().backward()
    assert (a.grad.dtype, b.grad.dtype) == tuple(np.dtype(d) for d in dtypes)
    assert (seen["a"], seen["b"]) == tuple(np.dtype(d) for d in dtypes)
    # values: the same as computing everything in float64
    a64 = Tensor(a.numpy().astype(np.float64), requires_grad=True)
    b64 = Tensor(b.numpy().astype(np.float64), requires_grad=True)
    fn(a64, b64).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), a64.grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), b64.grad.numpy(), rtol=1e-5)


# ------------------------------------------------------------------- backward semantics

def test_grad_accumulates_across_backward_calls():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])
    (x * 5.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 9.0, 11.0])
    x.grad = None
    x.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0, 1.0])


def test_backward_takes_pytorchs_gradient_keyword():
    """``y.backward(gradient=v)`` (PyTorch's name) is the vector-Jacobian product v^T dy/dx."""
    x = Tensor([1.0, -2.0, 0.5], requires_grad=True)
    (x * x).backward(gradient=Tensor([1.0, 10.0, -3.0]), retain_graph=False)
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([1.0, -2.0, 0.5]) * [1, 10, -3])


def test_grad_sums_over_every_use_within_one_graph():
    x = Tensor([1.0, -2.0], requires_grad=True)
    (x * x + x + x.exp()).sum().backward()  # d/dx = 2x + 1 + e^x
    xv = np.array([1.0, -2.0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * xv + 1 + np.exp(xv), rtol=1e-6)


def test_grad_is_owned_memory_not_a_view_of_another_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Tensor([3.0, 4.0], requires_grad=True)
    (x + y).sum().backward()
    x.grad.data[0] = 100.0
    assert y.grad.numpy()[0] == 1.0


def test_backward_never_writes_into_arrays_it_did_not_allocate():
    """The user's seed gradient, hooks' views and other tensors' .grad stay untouched when
    gradients are summed (the sweep may add in place only into buffers it owns)."""
    w = np.array([1.0, 2.0, 3.0])
    w_copy = w.copy()
    x = Tensor(np.zeros(3), requires_grad=True)
    y = Tensor(np.zeros(3), requires_grad=True)
    seen = []
    h = x + 0.0
    h.register_hook(lambda g: seen.append(g))
    out = h + h[[0, 1, 2]] + y + x[[2, 2, 2]] * 0.0
    out.backward(w, retain_graph=True)
    out.backward(Tensor(w))
    np.testing.assert_array_equal(w, w_copy)
    np.testing.assert_allclose(seen[0].numpy(), 2 * w_copy)
    np.testing.assert_allclose(seen[1].numpy(), 2 * w_copy)
    np.testing.assert_allclose(x.grad.numpy(), 2 * 2 * w_copy)
    np.testing.assert_allclose(y.grad.numpy(), 2 * w_copy)
    x.grad.data += 100.0
    np.testing.assert_allclose(y.grad.numpy(), 2 * w_copy)
    np.testing.assert_allclose(seen[0].numpy(), 2 * w_copy)


# A matrix shared by many products (an RNN's weight) has its transpose copied once per sweep.

@pytest.mark.parametrize("sweep", ["backward", "grad"])
def test_shared_weight_products_follow_an_in_place_update_between_sweeps(sweep):
    """The backward products ``g_t @ Wᵀ`` read a contiguous copy of ``Wᵀ`` made within the
    sweep: after an optimizer-style update of ``W.data`` in place, the next sweep must use the
    new ``W`` (a copy kept from the last sweep would give silently wrong gradients)."""
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((4, 4)), requires_grad=True)
    xs = [Tensor(rng.standard_normal((3, 4)), requires_grad=True) for _ in range(5)]
    seeds = [rng.standard_normal((3, 4)) for _ in xs]
    for _ in range(3):  # three sweeps, an update between each
        loss = sum(((x @ w) * s).sum() for x, s in zip(xs, seeds))
        if sweep == "backward":
            for x in xs:
                x.grad = None
            loss.backward()
            found = [x.grad.numpy() for x in xs]
        else:
            found = [g.numpy() for g in tg.autograd.grad(loss, xs)]
        for s, g in zip(seeds, found):
            np.testing.assert_allclose(g, s @ w.numpy().T, rtol=1e-12)
        w.data *= -1.5  # in place, as an optimizer step: no new array, no version bump


@pytest.mark.parametrize("transpose", [False, True])
def test_reused_layout_copies_a_strided_matrix_seen_twice_in_one_scope_only(transpose):
    from tinygrad_rnn.autograd import reused_layout, reused_layouts
    w = np.arange(12.0).reshape(3, 4)
    matrix = w if transpose else w.T     # what is multiplied by is w.T, a strided view
    expected = matrix.T if transpose else matrix
    assert not reused_layout(matrix, transpose).flags.c_contiguous  # no scope: the view
    with reused_layouts():
        first, second, third = (reused_layout(matrix, transpose) for _ in range(3))
        assert np.shares_memory(first, w)            # used once so far: no copy yet
        assert second.flags.c_contiguous and not np.shares_memory(second, w)
        assert third is second                       # one copy for the rest of the scope
        np.testing.assert_array_equal(second, expected)
        assert reused_layout(w, False) is w          # C-ordered already: never copied
    with reused_layouts():                           # the next scope starts afresh
        assert np.shares_memory(reused_layout(matrix, transpose), w)


def test_no_grad_flows_to_tensors_that_do_not_require_it():
    x = Tensor([1.0, 2.0], requires_grad=True)
    c = Tensor([3.0, 4.0])
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])


def test_graph_is_freed_after_backward():
    x = Tensor([0.5, -1.0], requires_grad=True)
    z = (x * 2.0).tanh().sum()
    z.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        z.backward()


def test_freed_intermediate_cannot_be_reused():
    x = Tensor([0.5, -1.0], requires_grad=True)
    h = x.tanh()
    h.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 3.0).sum().backward()


def test_retain_graph_allows_a_second_backward():
    x = Tensor([0.5, -1.0], requires_grad=True)
    z = (x * x).sum()
    z.backward(retain_graph=True)
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * 2 * np.array([0.5, -1.0]))
    with pytest.raises(RuntimeError, match="retain_graph"):
        z.backward()


def test_non_scalar_root_needs_a_grad():
    x = Tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2.0).backward()


def test_one_element_root_needs_no_grad():
    x = Tensor([[3.0]], requires_grad=True)
    (x * x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [[6.0]])


@pytest.mark.parametrize("as_tensor", [True, False])
def test_backward_with_explicit_grad(as_tensor):
    w = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, 1.0]])
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 3.0
    y.backward(Tensor(w) if as_tensor else w)
    np.testing.assert_allclose(x.grad.numpy(), 3.0 * w)


def test_backward_grad_of_wrong_shape_raises():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2.0).backward(Tensor(np.ones((3, 2))))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="requires_grad|does not require grad"):
        Tensor([1.0]).sum().backward()


def test_backward_on_a_leaf():
    x = Tensor(2.0, requires_grad=True)
    x.backward()
    assert x.grad.item() == 1.0


def test_leaf_and_non_leaf():
    x = Tensor([1.0], requires_grad=True)
    y = x * 2.0
    assert x.is_leaf and not y.is_leaf and y.requires_grad
    assert Tensor([1.0]).is_leaf
    assert x.grad_fn is None and y.grad_fn is not None


def test_retain_grad_on_non_leaf():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    z = x * 2.0
    y.retain_grad()
    (y * y + z).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * 3.0 * np.array([1.0, 2.0]))  # dL/dy = 2y
    assert z.grad is None                                                       # not retained
    np.testing.assert_allclose(x.grad.numpy(), 18.0 * np.array([1.0, 2.0]) + 2.0)


def test_retain_grad_accumulates_like_a_leaf():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * 3.0).retain_grad()
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [2.0, 2.0])


def test_retain_grad_without_requires_grad_raises():
    with pytest.raises(RuntimeError):
        Tensor([1.0]).retain_grad()


def test_hook_observes_the_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()))
    (y * Tensor([3.0, 5.0])).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [3.0, 5.0])
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 20.0])


def test_hook_replaces_the_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.register_hook(lambda g: g * 10.0)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 10.0 * 2 * np.array([1.0, 2.0]))


def test_hook_on_leaf_changes_what_is_accumulated():
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g * 0.0 + 7.0)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 7.0])


def test_hooks_run_in_registration_order_and_chain():
    x = Tensor([1.0], requires_grad=True)
    x.register_hook(lambda g: g + 1.0)
    x.register_hook(lambda g: g * 10.0)
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [(2.0 + 1.0) * 10.0])


def test_hook_removal_handle():
    x = Tensor([1.0, 2.0], requires_grad=True)
    calls = []
    remove = x.register_hook(lambda g: calls.append(1))
    x.sum().backward()
    remove()
    x.sum().backward()
    assert calls == [1]


def test_hook_handle_has_torchs_remove_method():
    x = Tensor([1.0, 2.0], requires_grad=True)
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    handle.remove()
    x.sum().backward()
    assert calls == []


def test_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError):
        Tensor([1.0]).register_hook(lambda g: g)


def test_detach_cuts_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    np.testing.assert_array_equal(d.numpy(), y.numpy())
    (y * d).sum().backward()  # only the y path contributes: dL/dx = 3 * d
    np.testing.assert_allclose(x.grad.numpy(), 3.0 * np.array([3.0, 6.0]))


def test_detached_hidden_state_allows_a_new_graph_after_backward():
    """Truncated BPTT: carry a detached hidden state into the next chunk."""
    w = Tensor([0.5], requires_grad=True)
    h = Tensor([1.0])
    for _ in range(3):
        h = (h * w).tanh()
        h.sum().backward()
        h = h.detach()
    assert w.grad is not None


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_requires_grad_on_non_float_raises(dtype):
    with pytest.raises(RuntimeError, match="floating point"):
        Tensor(np.array([1, 0]).astype(dtype)).requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        Tensor(np.array([1, 0]).astype(dtype), requires_grad=True)


def test_requires_grad_on_non_leaf_raises():
    y = Tensor([1.0], requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_requires_grad_flag_propagates():
    x = Tensor([1.0], requires_grad=True)
    c = Tensor([2.0])
    assert (x + c).requires_grad and (c * x).requires_grad and not (c * c).requires_grad
    assert Tensor([1.0]).requires_grad_().requires_grad


# ----------------------------------------------------------------------------- grad modes

def test_no_grad_context_records_nothing():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = (x * 2.0).tanh()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    with pytest.raises(RuntimeError):
        y.sum().backward()


@pytest.mark.parametrize("decorator, inside, outside", [
    (lambda: tg.no_grad(), False, True), (lambda: tg.enable_grad(), True, False),
    (lambda: tg.set_grad_enabled(False), False, True)], ids=["no_grad", "enable_grad",
                                                             "set_grad_enabled"])
def test_grad_mode_decorators_hold_inside_a_generator_at_every_resumption(decorator, inside,
                                                                          outside):
    """As PyTorch: the body runs in the decorator's mode each time it is resumed, the caller
    in its own in between; send, throw, close and the return value pass through."""
    x = Tensor([1.0], requires_grad=True)

    @decorator()
    def steps():
        received = yield tg.is_grad_enabled(), (x * 2).requires_grad
        try:
            yield tg.is_grad_enabled(), received
        except KeyError:
            yield "caught", tg.is_grad_enabled()
        return "done"

    with tg.set_grad_enabled(outside):
        run = steps()
        assert next(run) == (inside, inside)
        assert tg.is_grad_enabled() is outside
        assert run.send("hello") == (inside, "hello")
        assert run.throw(KeyError()) == ("caught", inside)
        with pytest.raises(StopIteration) as stop:
            next(run)
        assert stop.value.value == "done" and tg.is_grad_enabled() is outside
        closed = steps()
        next(closed)
        closed.close()
        assert tg.is_grad_enabled() is outside


def test_no_grad_decorator():
    @tg.no_grad()
    def step(x):
        assert not tg.is_grad_enabled()
        return x * 2.0 + 1.0

    x = Tensor([1.0], requires_grad=True)
    y = step(x)
    assert not y.requires_grad and y.is_leaf
    assert tg.is_grad_enabled()
    assert (x * 2.0).requires_grad  # recording is back on after the call


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            1 / 0
    assert tg.is_grad_enabled()


def test_no_grad_nests():
    with tg.no_grad():
        with tg.no_grad():
            pass
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = Tensor([1.0], requires_grad=True)
    with tg.no_grad():
        with tg.enable_grad():
            y = x * 2.0
        z = x * 2.0
    assert y.requires_grad and not y.is_leaf
    assert not z.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0])


def test_backward_closures_record_no_graph():
    """Gradients computed by backward are plain tensors (no create_graph)."""
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert not x.grad.requires_grad and x.grad.grad_fn is None


# -------------------------------------------------------------------------- detect_anomaly

def test_detect_anomaly_forward_names_the_op():
    x = Tensor([1.0, -1.0], requires_grad=True)
    with np.errstate(invalid="ignore"):
        with tg.detect_anomaly():
            with pytest.raises(RuntimeError, match="log"):
                x.log()


def test_detect_anomaly_forward_inf():
    x = Tensor([0.0, 1.0])
    with np.errstate(divide="ignore"):
        with tg.detect_anomaly():
            with pytest.raises(RuntimeError, match="div.*Inf|Inf.*div"):
                Tensor([1.0, 1.0]) / x


def test_detect_anomaly_backward_names_the_op():
    x = Tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(divide="ignore"):
        with tg.detect_anomaly():
            y = x ** 0.5           # finite forward: [0, 1]
            with pytest.raises(RuntimeError, match="pow.*backward"):
                y.sum().backward()  # d/dx sqrt(x) at 0 is Inf


def test_detect_anomaly_catches_inf_from_a_hook():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    h.register_hook(lambda g: g * np.inf)
    with tg.detect_anomaly():
        with pytest.raises(RuntimeError, match="mul"):
            h.sum().backward()


def test_detect_anomaly_as_decorator():
    @tg.detect_anomaly()
    def f(x):
        return x.log()

    with np.errstate(invalid="ignore"):
        with pytest.raises(RuntimeError, match="log"):
            f(Tensor([-1.0]))
        assert np.isnan(Tensor([-1.0]).log().numpy()).all()  # off again after the call


def test_anomaly_off_lets_nan_through():
    x = Tensor([-1.0, 0.0], requires_grad=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = x.log()
        y.sum().backward()
    out = y.numpy()
    assert np.isnan(out[0]) and np.isinf(out[1])
    assert np.isinf(x.grad.numpy()[1])


# ---------------------------------------------------------------------- depth and memory

def test_deep_chain_backprops_under_default_recursion_limit():
    n = 100_000
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # CPython's default
    try:
        x0 = Tensor(np.array(1.0), requires_grad=True)  # float64
        x = x0
        for _ in range(n):
            x = x * 1.0001
        x.backward()
    finally:
        sys.setrecursionlimit(limit)
    assert math.isclose(x.item(), 1.0001 ** n, rel_tol=1e-9)
    assert math.isclose(x0.grad.item(), 1.0001 ** n, rel_tol=1e-9)


def test_deep_graph_can_be_dropped_without_backward():
    """Deleting a 100,000-node graph that never ran backward must not overflow the C stack
    (run in a subprocess, so that a crash is a failed test, not a dead test run)."""
    code = ("import gc, numpy as np\nfrom tinygrad_rnn import Tensor\n"
            "x = Tensor(np.array(1.0), requires_grad=True)\n"
            "for _ in range(100_000):\n    x = x + 1.0\n"
            "del x\ngc.collect()\nprint('ok')\n")
    root = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


@pytest.mark.parametrize("retain_graph", [False, True])
def test_intermediates_are_freed_after_backward(retain_graph):
    x = Tensor(np.ones((3, 3)), requires_grad=True)
    h = (x * 2.0).tanh()
    h2 = h @ h
    z = h2.sum()
    refs = [weakref.ref(h), weakref.ref(h2)]
    z.backward(retain_graph=retain_graph)
    del h, h2
    gc.collect()
    alive = [r() is not None for r in refs]
    # the root still exists; without retain_graph it must not keep its inputs alive
    assert alive == [retain_graph] * 2
    del z
    gc.collect()
    assert all(r() is None for r in refs)


def test_intermediates_are_freed_without_the_cycle_collector():
    """The graph holds no reference cycles: plain reference counting frees it."""
    x = Tensor(np.ones(4), requires_grad=True)
    h = (x * 2.0).sigmoid()
    ref = weakref.ref(h)
    z = (h * h).sum()
    gc.disable()
    try:
        del h, z
        assert ref() is None
    finally:
        gc.enable()


@pytest.mark.single_backend  # NumPy's arrays are not tracked; CuPy's (and the stand-in's) are
@pytest.mark.parametrize("layer, limit", [("RNN", 16), ("LSTM", 72), ("GRU", 90)])
def test_an_unrolled_step_makes_few_objects_for_the_garbage_collector(layer, limit):
    """Each node of an unrolled RNN is a Tensor, a Node and a tuple of parents (plus
    ``ctx``), with no closure and no cells: that keeps full collections rare and short in a
    process with a large heap (benchmarks/unrolled_gc.py). Closures made it 32 objects per
    step for the RNN, 133 for the LSTM."""
    from tinygrad_rnn import nn
    T = 100
    rnn = getattr(nn, layer)(3, 8, unroll=True)
    x = Tensor(np.random.default_rng(0).standard_normal((T, 2, 3)).astype(np.float32))
    rnn(x)                               # warm-up: lazily created objects are not the graph's
    gc.collect()
    before = len(gc.get_objects())
    out, _ = rnn(x)
    per_step = (len(gc.get_objects()) - before) / T
    assert out.requires_grad and per_step <= limit


def test_a_gradient_is_complete_when_its_tensor_has_its_turn():
    """The sweep takes tensors latest-recorded first: every consumer of ``h`` (recorded after
    it) has contributed before ``h``'s hook runs, however the paths interleave."""
    x = Tensor([0.5, -1.0], requires_grad=True)
    h = x * 2.0
    early = h.tanh()
    chain = early
    for _ in range(20):
        chain = chain * 1.0
    late = h * 3.0                        # recorded long after ``early``, read from ``h`` too
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    (chain + late).sum().backward()
    expected = 1 - np.tanh(np.array([1.0, -2.0])) ** 2 + 3.0
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], expected, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), 2 * expected, rtol=1e-6)


def test_memory_does_not_grow_over_iterations():
    rng = np.random.default_rng(0)
    W = Tensor(rng.standard_normal((8, 8)), requires_grad=True)
    b = Tensor(rng.standard_normal(8), requires_grad=True)
    x = Tensor(rng.standard_normal((4, 8)))

    def step():
        h = x
        for _ in range(3):
            h = (h @ W.T + b).tanh()
        loss = (h * h).mean()
        loss.backward()
        W.grad = None
        b.grad = None

    for _ in range(20):  # warm up caches
        step()
    tracemalloc.start()
    try:
        for i in range(1, 1001):
            step()
            if i == 100:
                gc.collect()
                at_100 = tracemalloc.get_traced_memory()[0]
        gc.collect()
        at_1000 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # one leaked graph per iteration would be ~900 * several kB
    assert at_1000 - at_100 < 64 * 1024, (at_100, at_1000)


def test_detect_anomaly_catches_a_hook_that_returns_nan_on_a_leaf():
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: tg.Tensor([float("nan"), 1.0]))  # made without an op
    with tg.detect_anomaly():
        with pytest.raises(RuntimeError, match="hook.*NaN"):
            (x * 2.0).sum().backward()


def test_removing_a_hook_twice_is_harmless():
    x = tg.Tensor([1.0], requires_grad=True)
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    handle.remove()
    handle.remove()
    (x * 3.0).sum().backward()
    assert calls == [] and x.grad.numpy().tolist() == [3.0]
