"""Options that several commands share, written once."""
from __future__ import annotations

import argparse

from .. import backend


def add_backend_option(parser, what: str = "array backend") -> None:
    """``--backend numpy|cupy``: overrides ``TINYGRAD_RNN_BACKEND`` for this command."""
    parser.add_argument("--backend", choices=backend.CHOICES,
                        help=f"{what} (default: ${backend.ENV_VAR}, else numpy)")


def use_backend_option(args: argparse.Namespace) -> None:
    """Switch to ``--backend`` if given. CuPy missing (or no GPU) is a bad argument on this
    machine, reported as the usual one-line error (``ValueError``)."""
    if getattr(args, "backend", None):
        try:
            backend.use(args.backend)
        except RuntimeError as exc:
            raise ValueError(str(exc)) from None
