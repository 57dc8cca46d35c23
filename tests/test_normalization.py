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
