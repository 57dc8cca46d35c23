"""The command line: ``python -m tinygrad_rnn COMMAND ...``.

Commands (each in its own module, exposing ``add_parser(subparsers)`` and
``run(args) -> exit status``):

* ``train TASK``: train a toy sequence model (:mod:`.train`);
* ``bptt``: gradient norms through time, tanh vs ReLU RNN, and LSTM and GRU with ``--cell``
  (:mod:`.bptt`);
* ``check``: replay the PyTorch fixtures on this install (:mod:`.check`);
* ``evaluate``, ``sample``: score a trained model, let a trained charlm write
  (:mod:`.evaluate`, :mod:`.sample`);
* ``sweep TASK``: train over a grid of settings, locally or on Dask (:mod:`.sweep`);
* ``reproduce NAME``: rerun a published result and compare (:mod:`.reproduce`).

Errors in what the user asked for (bad arguments, a missing file, an unknown task or
backend, a bad ``TINYGRAD_RNN_BACKEND`` included, sizes too large for the memory) are printed
as one line, ``tinygrad_rnn: error: ...``, with a non-zero exit status; ``--debug`` shows the
traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

PROG = "python -m tinygrad_rnn"
COMMANDS = ("train", "bptt", "check", "evaluate", "sample", "sweep", "reproduce")

#: Exceptions that mean "the input was wrong" rather than "tinygrad_rnn has a bug".
USER_ERRORS: tuple = (ValueError, TypeError, OSError)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit status 2), not the usage
    block followed by the message."""

    def error(self, message: str):
        self.exit(2, f"tinygrad_rnn: error: {message} (see `{self.prog} --help`)\n")


def _load_command(name: str):
    """The module of command ``name``, or the reason it can't be imported: a broken or
    missing command must not take the others down with it."""
    try:
        return importlib.import_module(f"{__name__}.{name}"), None
    except Exception as exc:  # ImportError, or an error raised while importing it
        return None, f"{type(exc).__name__}: {exc}"


def _version() -> str:
    from .. import __version__
    return __version__


def build_parser() -> tuple[ArgumentParser, dict]:
    """The parser with every available sub-command, and ``{name: its module, or why it
    could not be imported}``."""
    parser = ArgumentParser(
        prog=PROG, description="Train and study recurrent networks with tinygrad_rnn.")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback when a command fails")
    parser.add_argument("--version", action="version", version=f"tinygrad_rnn {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name in COMMANDS:
        module, problem = _load_command(name)
        modules[name] = module or problem
        if module is None:
            subparsers.add_parser(name, help=f"(unavailable: {problem})")
            continue
        sub = module.add_parser(subparsers)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show the full traceback when the command fails")
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    module = modules[args.command]
    if isinstance(module, str):
        return _fail(f"the {args.command!r} command is not available in this install "
                     f"(tinygrad_rnn.cli.{args.command}: {module})")
    from .. import backend
    from ..train import TrainingError
    try:
        with backend.blas_threads():   # small matrices: one BLAS thread (set_num_threads)
            return int(module.run(args) or 0)
    except BrokenPipeError:
        # The reader went away (e.g. `... | head`): stop quietly, as Unix tools do, and
        # point stdout at /dev/null so that Python's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        if args.debug:
            raise
        return _fail("interrupted", status=130)
    except (TrainingError, backend.BackendUnavailableError) + USER_ERRORS as exc:
        if args.debug:
            raise
        return _fail(_one_line(exc))
    except MemoryError as exc:   # sizes too large for this machine (e.g. --hidden 10000000)
        if args.debug:
            raise
        return _fail(f"out of memory ({_one_line(exc)}); try fewer hidden units, a smaller "
                     "batch or shorter sequences")


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (OS errors as "reason: 'path'")."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.strerror}: {exc.filename!r}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _fail(message: str, status: int = 1) -> int:
    print(f"tinygrad_rnn: error: {message}", file=sys.stderr)
    return status
