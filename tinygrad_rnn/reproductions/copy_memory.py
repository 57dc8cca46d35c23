r"""``copy``: the copying-memory problem of Arjovsky, Shah & Bengio (2016), "Unitary
Evolution Recurrent Neural Networks", section 4.1.

The network reads 10 symbols (of 8), waits T steps, sees a "go" marker and must write the 10
symbols back. A network without memory can do no better than a uniform guess over the 8
symbols at the 10 recall steps (and the blank everywhere else), so its cross-entropy per time
step, over all T + 20 steps, is

    baseline(T) = 10 · ln 8 / (T + 20)        (0.1733 at T = 100).

The paper reports that a tanh RNN stays at this baseline and an LSTM goes below it (at T = 100
both within the iterations plotted; the unitary RNN goes far lower).

**Our measurement.** The ``copy`` task of this package (``delay=T``, ``seq_len=10``: the same
T + 20 steps) scores only the 10 recall steps, so it reports the cross-entropy per recalled
symbol, whose memoryless value is ln 8. We convert it to the paper's scale by assuming the
T + 10 blank outputs are predicted perfectly (which is learnt early): ``CE_paper = CE_recall ·
10 / (T + 20)``. Both are in ``results.csv``.

**Setting** (the paper's, except where noted): tanh RNN with 80 hidden units, LSTM with 40,
batch 20, RMSprop with lr 1e-3 and decay 0.9 (``optim.RMSprop(..., alpha=0.9)``); gradient
norm clipped at 1 (the paper does not say; it does not change what a memoryless model can
reach). One seed.

* ``--quick``: T = 20 and 100, 1,500 steps per model (a few minutes on 2 cores). T = 20 is
  not in the paper: it shows that the same setup does learn when the lag is short.
* full: the paper's delays T = 100, 200, 300, 500, both models, 5,000 steps each (a few CPU
  hours; the paper trained longer, so an LSTM that needs more steps may still look stuck).
"""
from __future__ import annotations

import math

from .. import optim
from ..tasks.copying import CopyTask
from ..train import TrainConfig, Trainer
from .base import (
    Plan,
    claim,
    figure,
    held_out_loss,
    mean,
    select,
    train_to_the_end,
    training_record,
)

NAME = "copy"
PAPER = "Arjovsky, Shah & Bengio 2016, Unitary Evolution Recurrent Neural Networks (sec. 4.1)"
SUMMARY = ("copying memory: a tanh RNN stays at the memoryless baseline 10·ln8/(T+20), an "
           "LSTM goes below it")

SYMBOLS, RECALL = 8, 10
HIDDEN = {"rnn": 80, "lstm": 40}            # the paper's sizes
PAPER_DELAYS = (100, 200, 300, 500)
SHARED = dict(batch_size=20, lr=1e-3, clip=1.0)
RMSPROP_DECAY = 0.9

QUICK = Plan(grid={"T": [20, 100], "cell": ["rnn", "lstm"], "seed": [0]},
             fixed=dict(steps=1500, **SHARED))
FULL = Plan(grid={"T": list(PAPER_DELAYS), "cell": ["rnn", "lstm"], "seed": [0]},
            fixed=dict(steps=5000, **SHARED))


def baseline(T: int) -> float:
    """Cross-entropy per time step of the memoryless guess: ``10 ln 8 / (T + 20)``."""
    return RECALL * math.log(SYMBOLS) / (T + 2 * RECALL)


def run_one(settings: dict, out: str, steps: int, batch_size: int, lr: float,
            clip: float) -> dict:
    """Train one model on the copy task with delay ``settings["T"]``."""
    T, cell, seed = settings["T"], settings["cell"], settings["seed"]
    config = TrainConfig("copy", seed=seed, steps=steps, batch_size=batch_size,
                         seq_len=RECALL, hidden=HIDDEN[cell], cell=cell, lr=lr, clip=clip)
    trainer = Trainer(config)
    # The paper's optimizer, with its decay 0.9 (train's choices are Adam and SGD).
    trainer.optimizer = optim.RMSprop(trainer.model.parameters(), lr=lr, alpha=RMSPROP_DECAY)
    # The train command's copy task has a fixed delay; this one waits T steps. Its input and
    # output sizes are the same, so the model built for the former fits.
    trainer.task = CopyTask(seed=seed, batch_size=batch_size, seq_len=RECALL,
                            symbols=SYMBOLS, delay=T)
    diverged_at = train_to_the_end(trainer)
    recall_ce = held_out_loss(trainer)
    return {**training_record(trainer, diverged_at), "optim": f"rmsprop(alpha={RMSPROP_DECAY})",
            "recall_ce": recall_ce, "recall_ce_memoryless": math.log(SYMBOLS),
            "ce_per_step": recall_ce * RECALL / (T + 2 * RECALL), "baseline": baseline(T),
            "recall_accuracy": trainer.evaluate().value}


def claims(rows: list[dict], plan: Plan) -> list[dict]:
    """Per delay T of the paper: the RNN stays within 5% of the baseline; the LSTM goes at
    least 2% below it (2% is several standard errors of a 10,000-symbol test set's
    cross-entropy). Other delays (T = 20) are in the rows only."""
    out = []
    for T in [T for T in plan.grid["T"] if T in PAPER_DELAYS]:
        b = baseline(T)
        rnn = mean(select(rows, T=T, cell="rnn"), "ce_per_step")
        lstm = mean(select(rows, T=T, cell="lstm"), "ce_per_step")
        out.append(claim("a tanh RNN (80 units) stays at the memoryless baseline",
                         round(b, 4), rnn, abs(rnn - b) <= 0.05 * b, T=T, cell="rnn",
                         metric="cross-entropy per time step"))
        out.append(claim("an LSTM (40 units) goes below the memoryless baseline",
                         f"< {b:.4f}", lstm, lstm < 0.98 * b, T=T, cell="lstm",
                         metric="cross-entropy per time step"))
    return out


def plot(rows: list[dict], path: str) -> str:
    """Cross-entropy per time step against T, per model, with the baseline curve."""
    from ..sweep import plot_sweep
    fig, ax = figure()
    plot_sweep(rows, "T", path, metric="ce_per_step", lines="cell", ax=ax,
               title="copy task (Arjovsky et al. 2016)")
    Ts = sorted({r["T"] for r in rows})
    ax.plot(Ts, [baseline(T) for T in Ts], "k--", label="10 ln 8 / (T + 20)")
    ax.set(ylabel="held-out cross-entropy per time step")
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)
    return path
