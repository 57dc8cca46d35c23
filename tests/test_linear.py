"""``nn.Linear``: ``y = x Wᵀ + b`` on the last axis; shapes, gradients (against the
formulas), initialisation and errors. PyTorch's own numbers: ``tests/test_nn_parity.py``."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn


@pytest.mark.parametrize("shape, out_shape", [((4, 3), (4, 5)), ((3,), (5,)),
                                              ((2, 6, 3), (2, 6, 5)), ((1, 2, 2, 3), (1, 2, 2, 5))])
@pytest.mark.parametrize("bias", [True, False])
def test_output_shape(shape, out_shape, bias):
    layer = nn.Linear(3, 5, bias=bias)
    assert layer(Tensor(np.ones(shape, np.float32))).shape == out_shape


def test_parameters_names_shapes_and_dtype():
    layer = nn.Linear(3, 5)
    assert [(n, p.shape) for n, p in layer.named_parameters()] == [("weight", (5, 3)),
                                                                    ("bias", (5,))]
    assert all(p.dtype == np.float32 for p in layer.parameters())
    assert all(p.dtype == np.float64 for p in nn.Linear(3, 5, dtype="float64").parameters())
    assert layer.bias.requires_grad and layer.weight.is_leaf
    tg.set_default_dtype("float64")
    assert nn.Linear(3, 5).weight.dtype == np.float64


@given(lead=st.lists(st.integers(1, 3), max_size=2), fin=st.integers(1, 4),
       fout=st.integers(1, 4), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_forward_and_gradients_match_the_formulas(lead, fin, fout, bias, seed):
    tg.manual_seed(seed)
    layer = nn.Linear(fin, fout, bias=bias, dtype="float64")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, fin))
    g = rng.standard_normal((*lead, fout))
    W = layer.weight.numpy()
    b = layer.bias.numpy() if bias else np.zeros(fout)
    xt = Tensor(x, requires_grad=True)
    y = layer(xt)
    np.testing.assert_allclose(y.numpy(), x @ W.T + b, rtol=1e-13, atol=1e-14)
    (y * Tensor(g)).sum().backward()
    x2, g2 = x.reshape(-1, fin), g.reshape(-1, fout)
    np.testing.assert_allclose(xt.grad.numpy(), g @ W, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(layer.weight.grad.numpy(), g2.T @ x2, rtol=1e-13, atol=1e-14)
    if bias:
        np.testing.assert_allclose(layer.bias.grad.numpy(), g2.sum(axis=0), rtol=1e-13,
                                   atol=1e-14)


def test_init_is_uniform_in_plus_minus_one_over_sqrt_in_features():
    tg.manual_seed(1)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w = layer.weight.numpy().astype(float).ravel()
    assert np.all(np.abs(w) <= bound) and np.all(np.abs(layer.bias.numpy()) <= bound)
    assert w.min() < -0.999 * bound and w.max() > 0.999 * bound
    assert abs(w.mean()) < 5 * bound / math.sqrt(3 * w.size)
    assert w.var() == pytest.approx(bound ** 2 / 3, rel=0.02)


def test_float32_stays_float32():
    layer = nn.Linear(3, 2)
    x = Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == layer.weight.grad.dtype == layer.bias.grad.dtype \
        == np.float32


@pytest.mark.parametrize("x, error, match", [
    (Tensor(np.ones((4, 2), np.float32)), ValueError,
     r"expected input with last dimension 3 \(in_features\), got shape \(4, 2\)"),
    (Tensor(np.float32(1.0)), ValueError, r"last dimension 3"),
    (np.ones((4, 3), np.float32), TypeError, r"expected a Tensor input, got ndarray"),
])
def test_forward_errors(x, error, match):
    with pytest.raises(error, match=match):
        nn.Linear(3, 5)(x)


@pytest.mark.parametrize("args, match", [((0, 5), "in_features must be a positive integer, "
                                                  "got 0"),
                                         ((3, -1), "out_features must be a positive integer, "
                                                   "got -1"),
                                         ((3.0, 5), "in_features must be a positive integer")])
def test_constructor_errors(args, match):
    with pytest.raises(ValueError, match=match):
        nn.Linear(*args)


def test_repr():
    assert repr(nn.Linear(3, 5)) == "Linear(in_features=3, out_features=5, bias=True)"
    assert repr(nn.Linear(3, 5, bias=False)) == \
        "Linear(in_features=3, out_features=5, bias=False)"


def test_a_torch_tensor_input_is_named_with_the_conversion():
    torch_like = type("Tensor", (), {"__module__": "torch"})()   # torch.Tensor's names
    with pytest.raises(TypeError, match=r"Linear: got a torch.Tensor from PyTorch.*\.numpy\(\)"):
        tg.nn.Linear(2, 3)(torch_like)
