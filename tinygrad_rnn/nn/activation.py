"""Activation functions as modules, for ``nn.Sequential``."""
from __future__ import annotations

import warnings

from ..tensor import Tensor
from . import functional as F
from .module import Module


class Tanh(Module):
    """``tanh(x)`` elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class ReLU(Module):
    """``max(x, 0)`` elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Softmax(Module):
    """``softmax(x)`` along ``dim``: each slice along it becomes a probability vector."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, dim=_implicit_dim("Softmax", self.dim, x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``log(softmax(x))`` along ``dim``, computed stably (for ``NLLLoss``)."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, dim=_implicit_dim("LogSoftmax", self.dim, x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _implicit_dim(name: str, dim: int | None, x: Tensor) -> int:
    """PyTorch's legacy choice when no ``dim`` is given (0 for 0-, 1- and 3-D input, else 1),
    with PyTorch's warning: pass ``dim`` explicitly."""
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {name.lower()} has been deprecated. "
                  "Change the call to include dim=X as an argument.", UserWarning,
                  stacklevel=3)
    return 0 if x.ndim in (0, 1, 3) else 1
