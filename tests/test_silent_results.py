"""Regression tests for the silent wrong results of issue 10 that a graph program cannot
express (those that can are replayed by test_fuzz.py from ``fixtures/silent``).

Expected numbers, dtypes and exception types come from PyTorch, recorded in
``fixtures/silent/facts.npz`` by ``tests/fixtures/record_silent.py``, or from a formula.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend, nn, optim
from tinygrad_rnn.nn import functional as F

FACTS_PATH = Path(__file__).resolve().parent / "fixtures" / "silent" / "facts.npz"
with np.load(FACTS_PATH, allow_pickle=False) as _f:
    FACTS = {k: _f[k] for k in _f.files}
META = json.loads(FACTS.pop("meta").item())
MODIFIED = "one of the variables needed for gradient computation has been modified by an " \
           "inplace operation"


# ------------------------------------------------------------------ 1. comparisons, hashing

def test_tensors_stay_hashable_by_identity():
    a, b = Tensor([1.0, 2.0]), Tensor([1.0, 2.0])
    assert len({a, b}) == 2 and {a: 1, b: 2}[a] == 1
    model = nn.Linear(2, 2)
    params = list(model.parameters())
    assert params[0] in set(params) and len(set(params)) == len(params)


def test_optimizer_and_module_with_equal_valued_parameters():
    # Two parameters with equal values must stay two parameters (== is elementwise now).
    model = nn.Linear(3, 3)
    with tg.no_grad():
        model.weight.fill_(0.5)
        model.bias.fill_(0.5)
    opt = optim.SGD(model.parameters(), lr=0.1)
    F.mse_loss(model(Tensor(np.ones((2, 3), np.float32))), Tensor(np.zeros((2, 3), np.float32))
               ).backward()
    opt.step()
    assert len(opt.param_groups[0]["params"]) == 2
    assert len(model.state_dict()) == 2


def test_equality_with_none_and_strings_is_false_and_ordering_raises():
    t = Tensor([1.0])
    assert (t == None) is False and (t != None) is True  # noqa: E711
    with pytest.raises(TypeError):
        t < None  # noqa: B015


# ------------------------------------------------------------------ 2-3. in-place, versions

def test_manual_sgd_update_under_no_grad_changes_the_parameter():
    w = Tensor([1.0, -2.0], requires_grad=True)
    (w * w).sum().backward()
    with tg.no_grad():
        w -= 0.25 * w.grad                      # w - 0.25 * 2w = 0.5 w
    np.testing.assert_array_equal(w.numpy(), [0.5, -1.0])
    assert w.is_leaf and w.requires_grad


def test_leaf_inplace_message_is_pytorchs():
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used "
                                           "in an in-place operation"):
        w += 1


def test_inplace_inside_a_graph_is_recorded_as_pytorch_does(float64_default):
    """``loss += step_loss``, ``outputs[t] = h``, ``h *= mask``: PyTorch records these in the
    graph; so do we, while nothing has read the tensor yet. Gradients by the chain rule:
    L = Σ_t (w x_t)² + ½ Σ outputs + Σ (w x_T m) with outputs[t] = w x_t."""
    x = np.array([0.5, -1.0, 2.0])
    w = Tensor(1.5, requires_grad=True)
    loss, outputs = 0, Tensor.zeros(3)
    for t in range(3):
        h = w * float(x[t])
        outputs[t] = h
        loss += h * h
    loss += outputs.sum() * 0.5
    masked = w * float(x[-1])
    masked *= Tensor(3.0)
    (loss + masked).backward()
    expected = 2 * 1.5 * (x ** 2).sum() + 0.5 * x.sum() + 3.0 * x[-1]
    np.testing.assert_allclose(w.grad.item(), expected, rtol=1e-12)


def test_inplace_on_a_tensor_already_read_is_refused_clearly():
    w = Tensor([1.0, 2.0], requires_grad=True)
    y = w * 2
    z = y * 3  # reads y: rewriting y's history would send z's gradient the wrong way
    with pytest.raises(RuntimeError, match="cannot be recorded in the graph.*y = y \\+ x"):
        y += 1
    assert z.grad_fn is not None


@pytest.mark.parametrize("shape, other, refused", [
    ((2, 3), lambda x: x[0], True),               # part of x: partial overlap
    ((1, 3), lambda x: x[0], True),               # all of x's bytes, read as (3,): partial
    ((3,), lambda x: x[::-1], True),              # the same bytes, backwards (a view here)
    ((2, 3), lambda x: x, False),                 # x += x: the very same block
    ((2, 3), lambda x: x[:], False),              # a view laid out exactly as x
])
def test_in_place_op_reading_memory_it_writes_is_refused_as_in_pytorch(shape, other, refused):
    # PyTorch compares where the two blocks start and end *and* their strides: only the same
    # block read the same way may be both input and output of an in-place op.
    x = Tensor(np.arange(float(np.prod(shape))).reshape(shape))
    if refused:
        with pytest.raises(RuntimeError, match="refer to a single memory location"):
            x *= other(x)
    else:
        expected = x.numpy() ** 2
        x *= other(x)
        assert np.array_equal(x.numpy(), expected)


def test_version_error_names_the_op_and_the_inplace_op():
    w = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (w * w * w).sum()
    with tg.no_grad():
        w -= 1
    with pytest.raises(RuntimeError, match=MODIFIED + r".*saved by 'mul'.*'sub_'"):
        loss.backward()


def test_version_check_after_retain_graph_and_a_later_change():
    w = Tensor([1.0, 2.0], requires_grad=True)
    loss = (w.exp()).sum()
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(w.grad.numpy(), np.exp([1.0, 2.0]), rtol=1e-6)
    with tg.no_grad():
        w.mul_(2)  # exp saved its output, not w: still fine
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(w.grad.numpy(), 2 * np.exp([1.0, 2.0]), rtol=1e-6)


@pytest.mark.parametrize("op, grad, refused", [
    ("mul", lambda x0, y: x0, False),              # d(x0 * y)/dy = x0: y's values unused
    ("div", lambda x0, y: -x0 / (y * y), True)])   # d(x0 / y)/dy reads y: refused
def test_in_place_product_saves_the_factor_only_when_its_backward_reads_it(op, grad, refused):
    """``x *= y`` with x needing no gradient reads only x's old values (as PyTorch saves
    them): changing y afterwards is fine. ``x /= y`` reads y for y's own gradient. Found by
    the differential fuzzer (seed 31)."""
    w = Tensor([1.0, 2.0], requires_grad=True)
    y = w * 1.0
    x = Tensor([3.0, 4.0])
    if op == "mul":
        x *= y
    else:
        x /= y
    with tg.no_grad():
        y -= 0.5
    if refused:
        with pytest.raises(RuntimeError, match=MODIFIED + ".*'sub_'"):
            x.sum().backward()
        return
    x.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), grad(np.array([3.0, 4.0]), np.array([1.0, 2.0])))


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("unroll", [False, True])
def test_optimizer_step_between_forward_and_backward_raises(mode, unroll):
    tg.manual_seed(0)
    layer = getattr(nn, mode)(3, 4, unroll=unroll)
    opt = optim.SGD(layer.parameters(), lr=0.1)
    x = Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32))
    layer(x)[0].sum().backward()       # gradients for the step
    loss = layer(x)[0].sum()           # a graph that saved the weights
    opt.step()                         # changes them in place
    with pytest.raises(RuntimeError, match=MODIFIED + ".*saved by '.*'.*'sub_'"):
        loss.backward()


def test_optimizer_step_after_backward_is_fine():
    tg.manual_seed(0)
    layer = nn.LSTM(3, 4)
    opt = optim.Adam(layer.parameters(), lr=0.1)
    x = Tensor(np.ones((5, 2, 3), np.float32))
    for _ in range(2):
        opt.zero_grad()
        layer(x)[0].sum().backward()
        opt.step()


def test_views_share_memory_and_version_as_in_pytorch():
    x = Tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    row, flat, t = x[0], x.reshape(6), x.T
    row += 10                                          # writes through, as torch's views do
    np.testing.assert_array_equal(x.numpy()[0], [10, 11, 12])
    assert flat.numpy()[0] == 10 and t.numpy()[0, 0] == 10
    assert x[0, 1].ndim == 0
    x[0, 1] = -1.0                                      # an int index is a view too
    f = x.flip(0)                                       # torch.flip copies
    f += 100
    assert x.numpy().max() < 100


# ------------------------------------------------------------------------------ 4. hooks

def test_inplace_hook_does_not_leak_into_the_other_operand():
    a = Tensor([1.0, 1.0], requires_grad=True)
    b = Tensor([1.0, 1.0], requires_grad=True)

    def double_in_place(g):
        g *= 2
    a.register_hook(double_in_place)
    (a + b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [2.0, 2.0])   # d/da = 1, doubled
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])   # untouched


# ---------------------------------------------------------------------------- 5. float16

def test_float16_reductions_and_losses_accumulate_in_float32():
    ones = Tensor(np.ones(100000, np.float16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the sum itself overflows, as torch
        assert ones.sum().item() == FACTS["f16_sum_ones"]
    assert ones.mean().item() == FACTS["f16_mean_ones"] == 1.0
    x = Tensor(FACTS["f16_x"])
    assert F.mse_loss(x, Tensor(np.zeros_like(FACTS["f16_x"]))).item() == FACTS["f16_mse"]
    np.testing.assert_array_equal(x.mean(axis=1).numpy(), FACTS["f16_mean_rows"])
    np.testing.assert_array_equal(x.sum(axis=0).numpy(), FACTS["f16_sum_cols"])
    assert x.mean().dtype == np.float16


# ---------------------------------------------------------------- 6. exploding ReLU RNN

def test_exploding_unrolled_relu_rnn_matches_torch_non_finite_pattern():
    layer = nn.RNN(3, 4, nonlinearity="relu", unroll=True)
    for name, p in layer.named_parameters():
        p.data = backend.to_backend(FACTS[f"relu_rnn_{name}"].copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y, _ = layer(Tensor(FACTS["relu_rnn_x"]))
        (y * Tensor(FACTS["relu_rnn_w"])).sum().backward()
    np.testing.assert_allclose(y.numpy(), FACTS["relu_rnn_y"], rtol=1e-4, equal_nan=True)
    for name, p in layer.named_parameters():
        expected = FACTS[f"relu_rnn_grad_{name}"]
        np.testing.assert_array_equal(np.isnan(p.grad.numpy()), np.isnan(expected), name)
        np.testing.assert_allclose(p.grad.numpy(), expected, rtol=1e-3, equal_nan=True,
                                   err_msg=name)


# ------------------------------------------------------------------------- 7. weak scalars

DTYPE_CASES = {
    "t32 ** np.float64(2)": lambda t32, i64: t32 ** np.float64(2),
    "np.array(2.0) * t32": lambda t32, i64: np.array(2.0) * t32,
    "t32 * np.float64(3)": lambda t32, i64: t32 * np.float64(3),
    "t32 + np.float32(3)": lambda t32, i64: t32 + np.float32(3),
    "i64 ** 0.5": lambda t32, i64: i64 ** 0.5,
    "i64.clip(0.5, 1.5)": lambda t32, i64: i64.clip(0.5, 1.5),
    "i64 * np.float64(0.5)": lambda t32, i64: i64 * np.float64(0.5),
    "t32 > np.float64(0.5)": lambda t32, i64: t32 > np.float64(0.5),
}


@pytest.mark.parametrize("expr", sorted(DTYPE_CASES))
def test_numpy_scalars_and_0d_arrays_are_weak(expr):
    t32, i64 = Tensor(np.ones(3, np.float32)), Tensor(np.array([1, 2, 4]))
    out = DTYPE_CASES[expr](t32, i64)
    assert isinstance(out, Tensor)
    assert "torch." + str(out.dtype) == META["dtypes"][expr]


# -------------------------------------------------------------------- 9. Python protocols

PROTOCOLS = {
    "list_0d": lambda: list(Tensor(1.0)),
    "iter_0d": lambda: iter(Tensor(1.0)),
    "len_0d": lambda: len(Tensor(1.0)),
    "float_2": lambda: float(Tensor([1.0, 1.0])),
    "int_2": lambda: int(Tensor([1.0, 1.0])),
    "item_2": lambda: Tensor([1.0, 1.0]).item(),
    "bool_2": lambda: bool(Tensor([1.0, 1.0])),
    "format_1d": lambda: format(Tensor([1.0]), ".4f"),
    "float_1d": lambda: float(Tensor([2.5])),
    "int_1d": lambda: int(Tensor([2.7])),
    "bool_0d": lambda: bool(Tensor(0.0)),
    "format_0d": lambda: format(Tensor(1.23456, dtype="float64"), ".4f"),
    "list_1d": lambda: [t.item() for t in Tensor([1.0, 2.0])],
}


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_python_protocols_behave_as_in_torch(name):
    expected = META["protocols"][name]
    if "raises" in expected:
        with pytest.raises(Exception) as info:
            PROTOCOLS[name]()
        assert expected["raises"] in [c.__name__ for c in type(info.value).__mro__]
    else:
        assert repr(PROTOCOLS[name]()) == expected["returns"]
