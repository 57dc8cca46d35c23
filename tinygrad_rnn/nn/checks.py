"""Argument checks and the named choices of ``nn``, in one place.

Every layer checks its constructor arguments the same way and with PyTorch's wording, so a
mistake reads the same whichever layer it was made in (``nn.Linear(True, 3)`` is refused
exactly as ``nn.RNN(True, 3)`` is: a bool is not a size).
"""
from __future__ import annotations

import numbers
from typing import Any

#: Elman nonlinearities, as ``torch.nn.RNN`` names them.
NONLINEARITIES = ("tanh", "relu")
#: How a loss reduces its per-element values, as in ``torch.nn``.
REDUCTIONS = ("mean", "sum", "none")


def is_int(value: Any) -> bool:
    """An integer and not a bool (``True`` is an ``int`` to Python, never a size to us)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(owner: str, name: str, value: Any) -> None:
    """Refuse anything but an integer > 0 (a size such as ``input_size``)."""
    if not is_int(value) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")


def check_probability(value: Any, what: str = "dropout") -> None:
    """Refuse anything but a real number in [0, 1] (a dropout probability)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, numbers.Real)) \
            or not 0 <= float(value) <= 1:
        raise ValueError(f"{what} should be a number in range [0, 1] representing the "
                         f"probability of an element being zeroed, got {value!r}")


def check_choice(owner: str, name: str, value: Any, choices: tuple) -> None:
    """Refuse a value outside ``choices`` (a nonlinearity, a reduction)."""
    if value not in choices:
        expected = " or ".join(repr(c) for c in choices)
        # PyTorch's words ("Unknown nonlinearity 'gelu'. Select from 'tanh' or 'relu'."),
        # which code written for torch may match, then who raised it
        raise ValueError(f"Unknown {name} {value!r}. Select from {expected} ({owner})")
