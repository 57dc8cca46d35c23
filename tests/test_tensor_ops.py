"""PyTorch's everyday Tensor methods (abs, sqrt, min/max, where, var/std, norm, gather, ...).

Values and gradients are replayed from PyTorch recordings (``tests/fixtures/tensor_ops``,
schema in ``tests/fixtures/record_ops11.py``) through the package's own runner
(``parity.run_file``, also behind ``python -m tinygrad_rnn check``). The other tests check
what a recording cannot hold: argument spellings, errors, and gradients given by a formula.
"""
from __future__ import annotations

import pathlib
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend, parity
from tinygrad_rnn.errors import ShapeError

FIXTURES = sorted((pathlib.Path(__file__).resolve().parent / "fixtures" / "tensor_ops")
                  .glob("*.npz"))


def test_fixtures_cover_both_dtypes_and_every_op_has_a_replay():
    metas = [parity.load_fixture(p)[0] for p in FIXTURES]
    assert {m["dtype"] for m in metas} == {"float32", "float64"}
    assert {m["op"] for m in metas} == set(parity.TENSOR_OPS)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_matches_pytorch(path):
    with warnings.catch_warnings():  # kinks: sqrt(0), var of one value, log(0)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        rows = parity.run_file(path)
    assert rows
    tolerance = 1e-12 if path.stem.endswith("f64") else 1e-5  # issue 11: float64 <= 1e-12
    for row in rows:
        assert row.error <= tolerance, (row.quantity, row.error, row.note)


def grad_of(fn, x):
    x = Tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    fn(x).sum().backward()
    return x.grad.numpy()


# ------------------------------------------------------------------ argument spellings
def test_dim_keepdim_and_axis_keepdims_are_the_same():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = Tensor(a)
    for name in ("sum", "mean"):
        torch_style = getattr(x, name)(dim=(0, 2), keepdim=True).numpy()
        numpy_style = getattr(x, name)(axis=(0, 2), keepdims=True).numpy()
        np.testing.assert_array_equal(torch_style, numpy_style)
        assert torch_style.shape == (1, 3, 1)
    assert x.var(dim=1, keepdim=True).shape == x.var(axis=1, keepdims=True).shape == (2, 1, 4)
    assert x.argmax(dim=1, keepdim=True).shape == (2, 1, 4)
    np.testing.assert_array_equal(x.argmax(dim=-1).numpy(), a.argmax(axis=-1))
    assert x.argmax().item() == 23 and x.argmin(keepdim=True).shape == (1, 1, 1)


def test_max_min_return_values_and_indices_with_dim():
    x = Tensor([[1.0, 5.0, 5.0], [7.0, -1.0, 7.0]])
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])  # the first of tied maxima
    assert indices.dtype == tg.int64
    out = x.min(dim=0, keepdim=True)
    assert out.values.shape == out.indices.shape == (1, 3)
    assert x.max().item() == 7.0 and x.min().item() == -1.0
    np.testing.assert_array_equal(x.max(axis=1).numpy(), [5.0, 7.0])  # NumPy's spelling
    np.testing.assert_array_equal(x.max(Tensor(6.0)).numpy(), [[6, 6, 6], [7, 6, 7]])
    with pytest.raises(TypeError):
        x.max((0, 1))
    with pytest.raises(TypeError):
        x.max(dim=1, keepdims=True)


def test_flip_accepts_torch_spellings():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = Tensor(a)
    expected = a[::-1, :, ::-1]
    for out in (x.flip(0, 2), x.flip([0, 2]), x.flip(dims=(0, 2)), x.flip((2, 0))):
        np.testing.assert_array_equal(out.numpy(), expected)
    with pytest.raises(TypeError):
        x.flip()
    with pytest.raises(RuntimeError, match="appears multiple times"):
        x.flip(0, 0)


def test_size_dim_t_flatten():
    x = Tensor(np.zeros((2, 3, 4)))
    assert x.size() == (2, 3, 4) and x.size(-1) == 4 and x.dim() == 3
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
    assert Tensor(1.0).flatten().shape == (1,)
    assert Tensor(np.zeros((2, 3))).t().shape == (3, 2) and Tensor([1.0, 2.0]).t().shape == (2,)
    with pytest.raises(ShapeError, match="t\\(\\) expects a tensor with <= 2 dimensions"):
        x.t()
    with pytest.raises(IndexError):
        x.size(3)
    with pytest.raises(IndexError):
        Tensor(1.0).size(0)
    with pytest.raises(ShapeError):
        x.flatten(2, 1)


def test_split_and_chunk_sizes_follow_pytorch():
    x = Tensor(np.arange(10.0))
    assert [p.shape[0] for p in x.split(4)] == [4, 4, 2]
    assert [p.shape[0] for p in x.split([3, 7])] == [3, 7]
    assert [p.shape[0] for p in x.chunk(3)] == [4, 4, 2]
    assert [p.shape[0] for p in Tensor(np.arange(4.0)).chunk(3)] == [2, 2]  # fewer pieces
    with pytest.raises(ShapeError, match="sum exactly to 10"):
        x.split([3, 3])
    with pytest.raises(ShapeError, match="greater than 0"):
        x.chunk(0)


def test_expand_is_a_view_and_its_errors_name_the_sizes():
    x = Tensor([[1.0], [2.0]], requires_grad=True)
    y = x.expand(3, -1, 4)
    assert y.shape == (3, 2, 4)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[12.0], [12.0]])
    assert Tensor(np.zeros(3)).expand_as(Tensor(np.zeros((2, 3)))).shape == (2, 3)
    with pytest.raises(ShapeError, match=r"expanded size of the tensor \(3\) must match"):
        x.expand(3, 3)
    with pytest.raises(ShapeError, match="number of sizes provided"):
        x.expand(4)
    with pytest.raises(ShapeError, match="leading, non-existing dimension"):
        x.expand(-1, 2, 1)


@pytest.mark.parametrize("write", [
    lambda y: y.add_(1.0), lambda y: y.zero_(), lambda y: y.__setitem__((0, 0), 5.0),
    lambda y: y.copy_(Tensor(np.ones((3, 4)))), lambda y: y[0].mul_(2.0),
], ids=["add_", "zero_", "setitem", "copy_", "view_of_it"])
def test_writing_into_an_expanded_view_names_the_problem(write):
    """NumPy's broadcast view is read-only: 'output array is read-only', 'value cannot be
    converted to type float32 without overflow' or 'value tensor of shape [] cannot be
    broadcast to indexing result of shape []' escaped; PyTorch's words now, and the way out."""
    y = Tensor(np.zeros((1, 4), np.float32)).expand(3, 4)
    with pytest.raises(RuntimeError, match=r"more than one element of the written-to tensor "
                                           r"refers to a single memory location. Please "
                                           r"clone\(\)"):
        write(y)
    write(y.clone())   # the way out


def test_repeat_tiles_and_sums_gradients():
    x = Tensor([[1.0, 2.0]], requires_grad=True)
    y = x.repeat(2, 1, 3)
    np.testing.assert_array_equal(y.numpy(), np.tile([[1.0, 2.0]], (2, 1, 3)))
    (y * Tensor(np.arange(12.0).reshape(2, 1, 6))).sum().backward()
    w = np.arange(12.0).reshape(2, 6)
    np.testing.assert_array_equal(x.grad.numpy(), [[w[:, 0::2].sum(), w[:, 1::2].sum()]])
    with pytest.raises(ShapeError):
        x.repeat(2)


def test_gather_errors_like_pytorch():
    x = Tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 1 with size 3"):
        x.gather(1, Tensor([[3]]))
    with pytest.raises(IndexError, match="index -1 is out of bounds"):
        x.gather(1, Tensor([[-1]]))
    with pytest.raises(ShapeError, match="same number of dimensions"):
        x.gather(1, Tensor([0]))
    with pytest.raises(ShapeError, match="no larger than self"):
        x.gather(1, Tensor([[0], [0], [0]]))
    with pytest.raises(TypeError, match="int64"):
        x.gather(1, Tensor([[0.0]]))


def test_where_and_masked_fill_dtypes_and_errors():
    x = Tensor([1.0, -2.0, 3.0], requires_grad=True)
    mask = Tensor(np.array([True, False, True]))
    y = tg.where(mask, x, 0.0)
    assert y.dtype == tg.float32
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 1.0])
    assert tg.where(mask, 1.0, 0).dtype == tg.float32  # two numbers: torch's promotion
    assert tg.where(mask, 1, 0).dtype == tg.int64
    assert tg.where(mask, Tensor([1, 2, 3]), 0.5).dtype == tg.float32
    filled = x.masked_fill(mask, -1)
    assert filled.dtype == tg.float32 and filled.tolist() == [-1.0, -2.0, -1.0]
    with pytest.raises(TypeError, match="boolean"):
        tg.where(Tensor([1.0, 0.0, 1.0]), x, x)
    with pytest.raises(TypeError, match="masked_fill_ only supports boolean masks"):
        x.masked_fill(Tensor([1, 0, 1]), 0.0)
    with pytest.raises(ShapeError, match="0-dimensional value tensor"):
        x.masked_fill(mask, Tensor([1.0]))
    with pytest.raises(ShapeError):
        tg.where(Tensor(np.ones((2, 2), bool)), x, x)


def test_masked_fill_with_a_tensor_value_gets_its_gradient():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = Tensor(5.0, requires_grad=True)
    (x.masked_fill(Tensor(np.array([True, False, True])), v) * Tensor([1.0, 10.0, 100.0])) \
        .sum().backward()
    assert v.grad.item() == 101.0
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 10.0, 0.0])


# ----------------------------------------------------- gradients at kinks, by formula
def test_gradients_at_kinks_follow_pytorch():
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(grad_of(lambda x: x.abs(), [0.0, -2.0, 3.0]), [0, -1, 1])
        np.testing.assert_array_equal(grad_of(lambda x: x.sqrt(), [0.0, 4.0]), [np.inf, 0.25])
        # |x| at a tie: the largest magnitudes share; sign gives the direction.
        np.testing.assert_array_equal(grad_of(lambda x: x.norm(float("inf")), [1.0, -3.0, 3.0]),
                                      [0.0, -0.5, 0.5])
        np.testing.assert_array_equal(grad_of(lambda x: x.norm(), [0.0, 0.0]), [0.0, 0.0])
        np.testing.assert_array_equal(grad_of(lambda x: x.norm(p=0), [0.0, 2.0]), [0.0, 0.0])
        np.testing.assert_array_equal(grad_of(lambda x: x.std(), [2.0, 2.0, 2.0]), [0, 0, 0])
        np.testing.assert_array_equal(
            grad_of(lambda x: x.maximum(Tensor([1.0, 1.0, 1.0])), [0.0, 1.0, 2.0]), [0, 0.5, 1])
        np.testing.assert_array_equal(grad_of(lambda x: x.amax(), [1.0, 3.0, 3.0]),
                                      [0.0, 0.5, 0.5])
        np.testing.assert_array_equal(grad_of(lambda x: x.max(0).values, [1.0, 3.0, 3.0]),
                                      [0.0, 1.0, 0.0])


def test_var_std_corrections():
    a = np.array([[1.0, 2.0, 4.0, 8.0], [0.0, -1.0, 3.0, 3.0]])
    x = Tensor(a)
    np.testing.assert_allclose(x.var(1).numpy(), a.var(axis=1, ddof=1), rtol=1e-14)
    np.testing.assert_allclose(x.var(1, unbiased=False).numpy(), a.var(axis=1), rtol=1e-14)
    np.testing.assert_allclose(x.std(correction=0).numpy(), a.std(), rtol=1e-14)
    np.testing.assert_allclose(x.var(False).numpy(), a.var(), rtol=1e-14)  # var(unbiased)
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        assert np.isnan(Tensor([1.0]).var().item())
    with pytest.raises(TypeError):
        x.var(unbiased=True, correction=1)
    with pytest.raises(TypeError):
        Tensor([1, 2]).var()


def test_logsumexp_is_stable_and_its_gradient_is_softmax():
    a = np.array([[1000.0, 1000.0], [-1000.0, 0.0]])
    x = Tensor(a, requires_grad=True)
    out = x.logsumexp(1)
    np.testing.assert_allclose(out.numpy(), [1000.0 + np.log(2.0), np.log1p(np.exp(-1000.0))])
    out.sum().backward()
    # exp(x - out): out = 1000 + log 2 is rounded to 1000's spacing (1e-13), as in PyTorch
    np.testing.assert_allclose(x.grad.numpy(), x.softmax(1).numpy(), rtol=1e-12)


def test_cumsum_dtypes_and_integer_inputs_of_float_functions():
    assert Tensor([1, 2, 3]).cumsum(0).dtype == tg.int64
    assert Tensor(np.array([True, True])).cumsum(0).tolist() == [1, 2]
    assert Tensor([1.0, 2.0]).cumsum(0, dtype=tg.float64).dtype == tg.float64
    assert Tensor([4]).sqrt().dtype == tg.float32 and Tensor([4]).sqrt().item() == 2.0
    assert Tensor([-4]).abs().dtype == tg.int64


def test_clone_is_a_copy_in_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    assert y.data is not x.data and not backend.module_of(x.data).shares_memory(y.data, x.data)
    (y * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_softmax_methods_need_a_dim_and_a_float_tensor():
    x = Tensor([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(x.softmax(-1).numpy().sum(), 1.0, rtol=1e-6)
    with pytest.raises(TypeError):
        x.softmax()
    with pytest.raises(TypeError):
        Tensor([1, 2]).log_softmax(0)


@pytest.mark.parametrize("shape, dim", [((0, 3), 0), ((0, 3), 1), ((3, 0), 1), ((2, 0, 4), -2)])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_of_an_empty_tensor_is_empty_as_in_pytorch(shape, dim, op):
    """Along a size-0 axis there is no maximum to shift by (NumPy's "zero-size array to
    reduction operation maximum" escaped before); PyTorch returns the empty tensor."""
    x = Tensor(np.zeros(shape), requires_grad=True)
    out = getattr(x, op)(dim)
    assert out.shape == shape
    out.sum().backward()
    assert x.grad.shape == shape


@pytest.mark.parametrize("call", [lambda x, b: x.clamp(min=b), lambda x, b: x.clip(max=b),
                                  lambda x, b: x.clamp_(b, None)])
def test_clamp_with_tensor_bounds_is_refused_clearly(call):
    """NumPy's "unsupported operand type(s) for &=" escaped before."""
    with pytest.raises(TypeError, match=r"clamp\(\): min and max must be numbers here, got a "
                                        r"Tensor; pass bound.item\(\)"):
        call(Tensor([0.5, -1.0]), Tensor([0.0, 0.0]))


@pytest.mark.parametrize("op, formula", [
    (lambda t: t.norm(), lambda a: np.sqrt((a * a).sum())),
    (lambda t: t.norm(3), lambda a: (np.abs(a) ** 3).sum() ** (1 / 3)),
    (lambda t: t.std(), lambda a: a.std(ddof=1)),
    (lambda t: t.reshape(1, 3).std(1, keepdim=True), lambda a: [[a.std(ddof=1)]]),
], ids=["norm", "norm3", "std", "std_dim"])
def test_float16_norm_and_std_are_taken_in_float32_as_pytorch(op, formula):
    """Squares of float16 entries of 256 or more overflowed: inf where PyTorch (which
    accumulates in float32) gives the formula's value rounded to float16."""
    a = np.array([300.0, 400.0, -200.0])
    t = Tensor(a.astype(np.float16), requires_grad=True)
    out = op(t)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out.numpy(), np.asarray(formula(a)).astype(np.float16))
    out.sum().backward()
    assert t.grad.dtype == np.float16 and np.isfinite(t.grad.numpy()).all()


def test_dim_empty_tuple_reduces_every_axis_as_in_pytorch():
    a = np.array([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]])
    x = Tensor(a, requires_grad=True)
    assert x.sum(dim=()).item() == a.sum()
    np.testing.assert_allclose(x.var(dim=()).item(), a.var(ddof=1), rtol=1e-14)
    # The formula 2 (x - mean) / (N - 1); PyTorch 2.13 gives +-inf here (a bug in its
    # var_backward for an empty dim list), so this case is checked by formula only.
    x.var(dim=()).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (a - a.mean()) / (a.size - 1), rtol=1e-14)


@given(length=st.integers(0, 12), size=st.integers(1, 5), chunks=st.integers(1, 6))
def test_split_and_chunk_pieces_rebuild_the_tensor(length, size, chunks):
    a = np.arange(float(length * 2)).reshape(2, length)
    x = Tensor(a, requires_grad=True)
    pieces = x.split(size, dim=1)
    # PyTorch's rule: pieces of ``size``, the last one shorter; one empty piece if length 0.
    assert [p.shape[1] for p in pieces] == ([size] * (length // size)
                                            + ([length % size] if length % size else [])
                                            or [0])
    np.testing.assert_array_equal(Tensor.cat(list(pieces), dim=1).numpy(), a)
    parts = x.chunk(chunks, dim=-1)
    step = -(-length // chunks) if length else 0
    assert all(p.shape[1] == step for p in parts[:-1]) and len(parts) <= chunks
    np.testing.assert_array_equal(Tensor.cat(list(parts), dim=1).numpy(), a)
    sum((p * float(i + 1)).sum() for i, p in enumerate(parts)).backward()
    expected = np.concatenate([np.full((2, p.shape[1]), i + 1.0) for i, p in enumerate(parts)],
                              axis=1)
    np.testing.assert_array_equal(x.grad.numpy(), expected)


@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3), dim=st.integers(0, 2),
       seed=st.integers(0, 2**16))
def test_gather_matches_take_along_axis_and_scatters_back(shape, dim, seed):
    dim = dim % len(shape)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    index_shape = list(shape)
    index_shape[dim] = 4  # longer than the axis: indices repeat
    index = rng.integers(0, shape[dim], size=index_shape)
    x = Tensor(a, requires_grad=True)
    out = x.gather(dim, Tensor(index))
    np.testing.assert_array_equal(out.numpy(), np.take_along_axis(a, index, axis=dim))
    out.sum().backward()
    expected = np.zeros(shape)
    for position in np.ndindex(*index.shape):
        target = list(position)
        target[dim] = index[position]
        expected[tuple(target)] += 1.0
    np.testing.assert_array_equal(x.grad.numpy(), expected)


@pytest.mark.parametrize("op, changed", [
    (lambda x: x.sqrt(), "output"), (lambda x: x.rsqrt(), "output"),
    (lambda x: x.expm1(), "output"), (lambda x: x.amax(1), "output"),
    (lambda x: x.std(1), "output"), (lambda x: x.logsumexp(1), "output"),
    (lambda x: x.norm(dim=1), "output"), (lambda x: x.log_softmax(1), "output"),
    (lambda x: x.abs(), "input"), (lambda x: x.maximum(x * 0.5), "input"),
    (lambda x: x.norm(dim=1), "input"), (lambda x: x.sin(), "input"),
])
def test_in_place_change_of_what_a_backward_reads_is_an_error(op, changed):
    x = Tensor([[1.0, 4.0], [2.0, 9.0]], requires_grad=True)
    y = op(x)
    with tg.no_grad():
        (y if changed == "output" else x).mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# ------------------------------------------------------ PyTorch's method forms of operators
@pytest.mark.parametrize("method, operator_form", [
    (lambda a, b: a.add(b), lambda a, b: a + b),
    (lambda a, b: a.add(b, alpha=-2.5), lambda a, b: a + b * -2.5),
    (lambda a, b: a.sub(b, alpha=3), lambda a, b: a - b * 3),
    (lambda a, b: a.mul(b), lambda a, b: a * b),
    (lambda a, b: a.div(b), lambda a, b: a / b),
    (lambda a, b: a.pow(b), lambda a, b: a ** b),
    (lambda a, b: a.pow(3), lambda a, b: a ** 3),
    (lambda a, b: a.neg() + b, lambda a, b: -a + b),
    (lambda a, b: a.mm(b.t()), lambda a, b: a @ b.t()),
    (lambda a, b: a.t().contiguous() * b.t(), lambda a, b: a.t() * b.t()),
])
def test_method_forms_are_the_operators_values_and_gradients(method, operator_form):
    rng = np.random.default_rng(3)
    data = [rng.uniform(0.5, 2.0, (2, 3)) for _ in range(2)]
    results = []
    for fn in (method, operator_form):
        a, b = (Tensor(d, requires_grad=True) for d in data)
        out = fn(a, b)
        (out * Tensor(np.arange(out.data.size).reshape(out.shape))).sum().backward()
        grads = [t.grad.numpy() for t in (a, b) if t.grad is not None]
        results.append([out.numpy()] + grads)
    for got, expected in zip(*results):
        np.testing.assert_array_equal(got, expected)


def test_comparison_methods_and_in_place_alpha():
    a, b = Tensor([1.0, 2.0, 3.0]), Tensor([2.0, 2.0, 2.0])
    for name, expected in [("eq", [0, 1, 0]), ("ne", [1, 0, 1]), ("lt", [1, 0, 0]),
                           ("le", [1, 1, 0]), ("gt", [0, 0, 1]), ("ge", [0, 1, 1])]:
        assert getattr(a, name)(b).tolist() == [bool(v) for v in expected], name
    p = Tensor([1.0, 1.0])
    p.add_(Tensor([2.0, 4.0]), alpha=-0.5).sub_(Tensor([1.0, 1.0]), alpha=2)
    assert p.tolist() == [1.0 - 1.0 - 2.0, 1.0 - 2.0 - 2.0]


def test_mm_takes_matrices_only_as_torch_mm():
    with pytest.raises(RuntimeError, match="mat2 must be a matrix"):
        Tensor(np.ones((2, 3))).mm(Tensor(np.ones(3)))
    with pytest.raises(RuntimeError, match="self must be a matrix"):
        Tensor(np.ones(3)).mm(Tensor(np.ones((3, 2))))
