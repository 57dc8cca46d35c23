"""Options that several commands share, written once."""
from __future__ import annotations

import argparse
import os

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


def make_output_directory(directory: str, option: str) -> None:
    """Create ``directory`` (for ``option``'s files) now, before any work, or raise a
    ``ValueError`` saying why it cannot be (not OSError's bare "File exists: 'a'")."""
    try:
        os.makedirs(directory or ".", exist_ok=True)
    except OSError as exc:
        reason = ("a part of that path is a file, not a directory"
                  if isinstance(exc, (FileExistsError, NotADirectoryError)) else exc.strerror)
        raise ValueError(f"{option}: cannot create the directory {directory!r} ({reason})") \
            from None
