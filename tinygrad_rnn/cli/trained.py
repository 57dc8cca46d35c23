"""Opening a run that ``train`` saved, for the commands that study a trained model
(``evaluate``, ``sample``, ``bptt --checkpoint``)."""
from __future__ import annotations

import os

from ..train import Trainer
from .train import CHECKPOINT


def load_run(path: str) -> Trainer:
    """The trainer (task, model, step) saved at ``path``: a run directory written by
    ``python -m tinygrad_rnn train`` (holding ``checkpoint.npz``) or the checkpoint file
    itself. The model is built in the current default dtype and its weights cast to it."""
    checkpoint = os.path.join(path, CHECKPOINT) if os.path.isdir(path) else path
    if not os.path.exists(checkpoint):
        where = f"{path!r} has no {CHECKPOINT}" if os.path.isdir(path) else \
            f"{path!r} does not exist"
        raise ValueError(f"--checkpoint: {where}; expected a directory written by "
                         f"`python -m tinygrad_rnn train` (or its {CHECKPOINT})")
    trainer = Trainer.from_checkpoint(checkpoint)
    trainer.model.eval()
    return trainer


def describe(trainer: Trainer) -> str:
    """One line: task, cell and size, steps trained."""
    c = trainer.config
    cell = f"RNN({c.nonlinearity})" if c.cell == "rnn" else str(c.cell).upper()
    return (f"task {c.task}: {cell}, hidden {c.hidden}, {c.layers} layer(s), trained "
            f"{trainer.step} steps")
