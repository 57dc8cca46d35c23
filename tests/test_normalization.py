"""``nn.LayerNorm`` / ``F.layer_norm``: the formula, the affine parameters, PyTorch's repr
and shape errors. Values and gradients against PyTorch are in ``test_nn_extra_parity.py``."""
from __future__ import annotations

import numpy as np
import pytest

from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.errors import ShapeError


def test_output_has_zero_mean_unit_variance_per_sample():
    x = np.random.default_rng(0).standard_normal((4, 3, 8)) * 5 + 2
    out = nn.LayerNorm(8).double()(Tensor(x)).numpy()
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_float16_is_normalised_in_float32_as_pytorch():
    """Entries of 256 or more square past float16's range: the variance was inf and every
    output 0. Expected: the formula in float64, then rounded to float16 (PyTorch's result)."""
    x = np.array([[300.0, 400.0, -200.0, 10.0]], np.float16)
    t = Tensor(x, requires_grad=True)
    out = nn.functional.layer_norm(t, (4,))
    x64 = x.astype(np.float64)
    expected = (x64 - x64.mean()) / np.sqrt(x64.var() + 1e-5)
    assert out.dtype == np.float16
    np.testing.assert_allclose(out.numpy(), expected.astype(np.float16), rtol=1e-3)
    out.sum().backward()   # Σ of a normalised row does not depend on x: gradient ~ 0
    assert t.grad.dtype == np.float16
    np.testing.assert_allclose(t.grad.numpy(), 0.0, atol=1e-4)


def test_parameters_and_state_dict():
    ln = nn.LayerNorm((3, 4))
    assert [(n, p.shape) for n, p in ln.named_parameters()] == [("weight", (3, 4)),
                                                                ("bias", (3, 4))]
    np.testing.assert_array_equal(ln.weight.numpy(), np.ones((3, 4)))
    assert list(nn.LayerNorm(4, elementwise_affine=False).parameters()) == []
    assert [n for n, _ in nn.LayerNorm(4, bias=False).named_parameters()] == ["weight"]


def test_repr_matches_pytorch():
    assert repr(nn.LayerNorm(3)) == \
        "LayerNorm((3,), eps=1e-05, elementwise_affine=True, bias=True)"
    assert repr(nn.LayerNorm((3, 4), eps=1e-3, elementwise_affine=False)) == \
        "LayerNorm((3, 4), eps=0.001, elementwise_affine=False, bias=False)"


def test_wrong_trailing_shape_is_a_shape_error():
    with pytest.raises(ShapeError, match=r"Given normalized_shape=\[3\], expected input with "
                                         r"shape \[\*, 3\], but got input of size\[2, 4\]"):
        nn.LayerNorm(3)(Tensor(np.zeros((2, 4), np.float32)))
