"""PyTorch's top-level tensor functions: ``tg.tensor``, ``tg.zeros``, ``tg.arange``, ``tg.cat``...

Names, arguments and dtype rules are PyTorch's::

    x = tg.tensor([[1.0, 2.0]])          # Python floats: the default dtype (float32)
    i = tg.tensor([0, 2])                # Python ints: int64; bools: bool
    w = tg.zeros(3, 4, requires_grad=True)
    r = tg.arange(5)                     # int64, like torch.arange with int arguments
    y = tg.where(x > 0, x, 0.0)

Random tensors come from the package's seeded generator (:func:`tinygrad_rnn.manual_seed`),
not PyTorch's, so ``randn`` gives other numbers than ``torch.randn`` for the same seed.
``empty`` returns zeros: deterministic, where PyTorch leaves the memory uninitialised.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

from . import backend
from .tensor import Tensor, _shape_arg

__all__ = ["tensor", "zeros", "ones", "full", "empty", "arange", "eye", "randn", "rand",
           "zeros_like", "ones_like", "full_like", "empty_like", "randn_like", "rand_like",
           "cat", "stack", "where"]


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (a number, nested lists, an array or a
    Tensor), as ``torch.tensor``: Python floats get the default float dtype, ints int64,
    bools bool; arrays keep their dtype unless ``dtype`` is given."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


# ------------------------------------------------------------------------------- filled
def zeros(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of shape ``size`` (``zeros(2, 3)`` or ``zeros((2, 3))``)."""
    return Tensor.zeros(*size, dtype=dtype, requires_grad=requires_grad)


def ones(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor.ones(*size, dtype=dtype, requires_grad=requires_grad)


def empty(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zeros (PyTorch leaves the values undefined; zeros make runs reproducible)."""
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value``; without ``dtype`` the dtype
    follows the value as in PyTorch (bool, int64 or the default float dtype)."""
    if dtype is None:
        dtype = _dtype_of_number(fill_value)
    shape = _shape_arg((size,))
    filled = Tensor._wrap(backend.xp.full(shape, fill_value, dtype=backend.as_dtype(dtype)))
    return filled.requires_grad_(True) if requires_grad else filled


def arange(start, end=None, step=1, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """``start, start + step, ...`` up to (excluding) ``end``; ``arange(n)`` is ``0..n-1``.
    int64 when every argument is an int, else the default float dtype, as in PyTorch. Each
    value is computed as ``start + i * step`` in float64 (no accumulated rounding)."""
    if end is None:
        start, end = 0, start
    for name, value in (("start", start), ("end", end), ("step", step)):
        if not isinstance(value, numbers.Real):
            raise TypeError(f"arange(): {name} must be a number, got {type(value).__name__}")
    if step == 0:
        raise ValueError("arange(): step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange(): upper bound and larger bound inconsistent with step sign "
                         f"(start={start}, end={end}, step={step})")
    if dtype is None:
        integral = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = backend.np.int64 if integral else backend.get_default_dtype()
    count = max(0, math.ceil((end - start) / step))
    values = start + backend.xp.arange(count, dtype=backend.np.float64) * step \
        if backend.as_dtype(dtype).kind == "f" else \
        start + backend.xp.arange(count, dtype=backend.np.int64) * step
    made = Tensor._wrap(values.astype(backend.as_dtype(dtype)))
    return made.requires_grad_(True) if requires_grad else made


def eye(n: int, m: int | None = None, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """The ``n x m`` identity matrix (``m`` defaults to ``n``)."""
    made = Tensor._wrap(backend.xp.eye(n, n if m is None else m,
                                       dtype=_float_or(dtype)))
    return made.requires_grad_(True) if requires_grad else made


def randn(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples (from the package's seeded generator)."""
    return Tensor.randn(*size, dtype=_random_dtype(dtype, "randn"), requires_grad=requires_grad)


def rand(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1) (from the package's seeded generator)."""
    return Tensor.rand(*size, dtype=_random_dtype(dtype, "rand"), requires_grad=requires_grad)


# ---------------------------------------------------------------------------- *_like
def zeros_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zeros with ``input``'s shape and (unless ``dtype`` is given) dtype."""
    return zeros(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def ones_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def empty_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros_like(input, dtype=dtype, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value, *, dtype=None, requires_grad: bool = False) -> Tensor:
    return full(input.shape, fill_value, dtype=dtype or input.dtype, requires_grad=requires_grad)


def randn_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:
    return randn(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def rand_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:
    return rand(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


# ------------------------------------------------------------------- joining, choosing
def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing axis ``dim`` (``torch.cat``)."""
    return Tensor.cat(tensors, dim=dim)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis ``dim`` (``torch.stack``)."""
    return Tensor.stack(tensors, dim=dim)


def where(condition, input, other) -> Tensor:
    """``input`` where ``condition`` (bool) holds, ``other`` elsewhere; tensors or numbers,
    broadcast together. Gradients flow to whichever value was chosen."""
    return Tensor._where(condition, input, other)


# ---------------------------------------------------------------------------- helpers
def _dtype_of_number(value):
    """The dtype ``torch.full`` infers from a Python fill value."""
    if isinstance(value, bool):
        return backend.np.bool_
    if isinstance(value, numbers.Integral):
        return backend.np.int64
    if isinstance(value, numbers.Real):
        return backend.get_default_dtype()
    raise TypeError(f"full(): fill_value must be a number, got {type(value).__name__}")


def _float_or(dtype):
    return backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)


def _random_dtype(dtype, op: str):
    dtype = _float_or(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{op}(): random samples need a floating point dtype, got {dtype}")
    return dtype
