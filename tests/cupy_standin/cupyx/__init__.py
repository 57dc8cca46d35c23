"""``cupyx`` for the CuPy stand-in (see ``cupy``'s docstring): pinned host buffers, and the
deprecated ``scatter_add``, which raises so the package keeps to ``cupy.add.at``."""
from __future__ import annotations

import numpy as _np

STANDIN = True


def scatter_add(a, slices, value):
    raise DeprecationWarning("cupyx.scatter_add is deprecated: use cupy.add.at(a, slices, value)")


def empty_pinned(shape, dtype=float, order="C"):
    """A host array in page-locked memory (here: an ordinary NumPy array)."""
    return _np.empty(shape, dtype=dtype, order=order)


def zeros_pinned(shape, dtype=float, order="C"):
    return _np.zeros(shape, dtype=dtype, order=order)
