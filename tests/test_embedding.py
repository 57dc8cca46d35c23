"""``nn.Embedding`` / ``F.embedding``: lookup, the ``padding_idx`` contract (zero row at the
start, never a gradient), PyTorch's repr, and clear refusals. Values and gradients against
PyTorch are in ``test_nn_extra_parity.py``."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, optim
from tinygrad_rnn.nn import functional as F


def test_lookup_shapes_and_rows():
    emb = nn.Embedding(10, 3)
    ids = np.array([[1, 2, 1], [9, 0, 4]])
    out = emb(Tensor(ids))
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[ids])


def test_padding_row_starts_at_zero_and_never_moves():
    tg.manual_seed(0)
    emb = nn.Embedding(6, 4, padding_idx=-1)           # negative: counts from the end
    assert emb.padding_idx == 5
    np.testing.assert_array_equal(emb.weight.numpy()[5], np.zeros(4))
    nn.init.ones_(emb.weight)                          # a non-zero padding row stays as is
    opt = optim.SGD(emb.parameters(), lr=0.5)
    ids = Tensor(np.array([[5, 1, 5], [2, 5, 1]]))
    for _ in range(3):
        opt.zero_grad()
        (emb(ids) ** 2).sum().backward()
        np.testing.assert_array_equal(emb.weight.grad.numpy()[5], np.zeros(4))
        opt.step()
    np.testing.assert_array_equal(emb.weight.numpy()[5], np.ones(4))
    assert not np.allclose(emb.weight.numpy()[1], 1.0)


def test_repeated_ids_accumulate_gradient():
    weight = Tensor(np.zeros((3, 2)), requires_grad=True)
    F.embedding(Tensor(np.array([0, 2, 0, 0])), weight).sum().backward()
    np.testing.assert_array_equal(weight.grad.numpy(), [[3, 3], [0, 0], [1, 1]])


def test_from_pretrained_is_frozen_by_default():
    table = Tensor(np.arange(6.0).reshape(3, 2))
    emb = nn.Embedding.from_pretrained(table)
    assert not emb.weight.requires_grad
    np.testing.assert_array_equal(emb(Tensor(np.array([2]))).numpy(), [[4.0, 5.0]])
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad


def test_repr_matches_pytorch():
    assert repr(nn.Embedding(10, 3, padding_idx=0)) == "Embedding(10, 3, padding_idx=0)"
    assert repr(nn.Embedding(5, 2)) == "Embedding(5, 2)"


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.Embedding(5, 3, padding_idx=5), ValueError, "Padding_idx must be within"),
    (lambda: nn.Embedding(5, 3, max_norm=1.0), NotImplementedError, "max_norm"),
    (lambda: nn.Embedding(0, 3), ValueError, "num_embeddings must be a positive integer"),
    (lambda: nn.Embedding(5, 3)(Tensor(np.array([5]))), IndexError, "index out of range"),
    (lambda: nn.Embedding(5, 3)(Tensor(np.array([-1]))), IndexError, "index out of range"),
    (lambda: nn.Embedding(5, 3)(Tensor(np.array([1.0]))), TypeError, "integer index tensor"),
])
def test_refusals(make, error, match):
    with pytest.raises(error, match=match):
        make()
