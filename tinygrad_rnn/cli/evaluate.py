"""``python -m tinygrad_rnn evaluate --checkpoint DIR``: score a trained model again.

Loads the run that ``train`` saved in DIR and prints its task's held-out metric next to the
trivial baseline's (the same numbers ``train`` printed at the end of the run).
"""
from __future__ import annotations

import argparse

from .options import add_backend_option, use_backend_option
from .trained import describe, load_run


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate", help="score a trained model on its task's held-out data",
        description="Load a run saved by `train` and print its task's held-out metric next "
                    "to the trivial baseline's.")
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="a run directory written by `train` (or its checkpoint.npz)")
    add_backend_option(p)
    return p


def run(args: argparse.Namespace) -> int:
    use_backend_option(args)
    trainer = load_run(args.checkpoint)
    print(describe(trainer))
    print(trainer.evaluate().describe())
    return 0
