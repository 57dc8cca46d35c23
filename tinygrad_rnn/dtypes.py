"""PyTorch's dtype names: ``tinygrad_rnn.float32``, ``.float64``, ``.int64``, ``.bool``, ...

Each name is the NumPy dtype object itself, so it is accepted wherever a dtype is (``dtype=``
of every factory, ``Tensor.astype``, NumPy and CuPy) and compares equal to what
``Tensor.dtype`` returns::

    x = tg.tensor([1.0, 2.0])
    x.dtype == tg.float32            # True
    tg.zeros(3, dtype=tg.int64)

The aliases are PyTorch's: ``float`` is float32, ``double`` float64, ``half`` float16,
``long`` int64 and ``int`` int32. (A deliberate difference: ``str(tg.float32)`` is
``"float32"``, NumPy's name, where PyTorch prints ``"torch.float32"``.)
"""
from __future__ import annotations

from .backend import np as _np

float16 = _np.dtype("float16")
float32 = _np.dtype("float32")
float64 = _np.dtype("float64")
int8 = _np.dtype("int8")
int16 = _np.dtype("int16")
int32 = _np.dtype("int32")
int64 = _np.dtype("int64")
uint8 = _np.dtype("uint8")
bool = _np.dtype("bool")  # noqa: A001  (PyTorch's name, shadowing the builtin here only)

half = float16
float = float32  # noqa: A001
double = float64
short = int16
int = int32  # noqa: A001
long = int64

__all__ = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
           "bool", "half", "float", "double", "short", "int", "long"]
