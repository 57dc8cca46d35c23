"""``nn.Flatten``: merge a range of axes into one (e.g. ``(N, L, H) -> (N, L*H)``)."""
from __future__ import annotations

import math

from ..errors import ShapeError
from ..tensor import Tensor
from .module import Module


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """``x`` with axes ``start_dim..end_dim`` (inclusive, negatives count from the end)
    merged into one, as ``torch.flatten``; a 0-d tensor becomes shape ``(1,)``."""
    if x.ndim == 0:
        return x.reshape(1)
    start, end = (_axis(d, x.ndim, "Flatten") for d in (start_dim, end_dim))
    if start > end:
        raise ShapeError(f"flatten() has invalid args: start_dim ({start_dim}) cannot come "
                         f"after end_dim ({end_dim}) for a tensor of shape {x.shape}")
    return x.reshape(*x.shape[:start], math.prod(x.shape[start:end + 1]), *x.shape[end + 1:])


class Flatten(Module):
    """Merges axes ``start_dim..end_dim`` (default: all but the batch axis 0)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


def _axis(dim: int, ndim: int, owner: str) -> int:
    if not -ndim <= dim < ndim:
        raise IndexError(f"{owner}: Dimension out of range (expected to be in range of "
                         f"[{-ndim}, {ndim - 1}], but got {dim})")
    return dim % ndim

