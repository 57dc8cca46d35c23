"""The exception classes the package raises, where Python's own do not say enough.

PyTorch raises ``RuntimeError`` for shape and size mistakes (operands that do not broadcast,
a matmul with mismatched inner sizes, an input of the wrong size for a layer); this package
used to raise ``ValueError`` for the same mistakes. Code written for either catches one of
them, so :class:`ShapeError` is both: ``except RuntimeError`` (PyTorch habit) and
``except ValueError`` (Python habit) each catch it.
"""
from __future__ import annotations


class ShapeError(ValueError, RuntimeError):
    """A shape or size that does not fit: catchable as ``RuntimeError`` (as in PyTorch) and
    as ``ValueError``."""
