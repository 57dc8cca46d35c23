"""``python -m tinygrad_rnn sample --checkpoint DIR``: let a trained character-level
language model (task ``charlm``) write text.

``--prime TEXT`` is fed to the model first (default: the first word of its training text);
then ``--length`` characters are drawn one at a time from the softmax of the logits divided
by ``--temperature`` (below 1: safer, more repetitive; above 1: more surprising), the hidden
state carried from each character to the next. The draws come from the task's seed, so the
same model and options always write the same text.
"""
from __future__ import annotations

import argparse
import math
from typing import Any

from .options import add_backend_option, use_backend_option
from .trained import load_run


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``sample`` sub-command."""
    p = subparsers.add_parser(
        "sample", help="generate text with a trained charlm model",
        description="Generate text with a character-level language model trained by "
                    "`python -m tinygrad_rnn train charlm`.")
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="a charlm run directory written by `train` (or its checkpoint.npz)")
    p.add_argument("--prime", metavar="TEXT",
                   help="text to start from (default: the first word of the training text)")
    p.add_argument("--temperature", type=float, default=0.8, metavar="T",
                   help="softmax temperature, > 0 (default: 0.8)")
    p.add_argument("--length", type=int, default=300, metavar="N",
                   help="characters to generate after the prime (default: 300)")
    add_backend_option(p)
    return p


def run(args: argparse.Namespace) -> int:
    if not (args.temperature > 0 and math.isfinite(args.temperature)):
        raise ValueError(f"--temperature must be a positive number, got {args.temperature}")
    if args.length < 0:
        raise ValueError(f"--length must be an integer >= 0, got {args.length}")
    if args.prime is not None and not args.prime:
        raise ValueError("--prime must not be empty (leave it out for the default)")
    use_backend_option(args)
    trainer = load_run(args.checkpoint)
    task: Any = trainer.task                      # a CharLMTask once the check below passes
    if trainer.config.task != "charlm":
        raise ValueError(f"--checkpoint: {args.checkpoint!r} is a {trainer.config.task!r} run; "
                         "only charlm models generate text")
    if args.prime:
        unknown = sorted({c for c in args.prime if c not in task.vocab})
        if unknown:
            raise ValueError(f"--prime: characters {''.join(unknown)!r} never occur in the "
                             f"training text, so the model has no input for them")
    print(task.sample(trainer.model, length=args.length, prime=args.prime,
                      temperature=args.temperature))
    return 0
