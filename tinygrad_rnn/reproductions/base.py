"""What a reproduction is, and the steps every one shares.

A reproduction is a sweep (:mod:`tinygrad_rnn.sweep`) with a verdict. Its module provides

* ``NAME``, ``PAPER`` (who, year, title) and ``SUMMARY`` (the result, in one line);
* ``QUICK`` and ``FULL``: two :class:`Plan` s, a grid and the settings fixed for every run.
  ``QUICK`` finishes in minutes on 2 CPU cores; ``FULL`` is the paper's grid or the closest
  that fits a CPU in hours (the module docstring says which);
* ``run_one(settings, out, **fixed) -> row``: one training run (a sweep job);
* ``claims(rows, plan) -> [claim, ...]``: the paper's statements checked against the rows,
  each built by :func:`claim`;
* ``plot(rows, path)``: the figure (only called when matplotlib is installed).

:func:`reproduce` runs it and writes ``results.csv``, ``summary.json`` and ``plot.png``.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import math
import os
import time
import warnings
from typing import Any, Callable

from .. import sweep
from ..train import Trainer, TrainingError, TrainingInterrupted

SUMMARY = "summary.json"
PLOT = "plot.png"


@dataclasses.dataclass(frozen=True)
class Plan:
    """A grid to sweep (``{setting: [values]}``) and the settings every run shares."""
    grid: dict
    fixed: dict

    def size(self) -> int:
        return math.prod(len(values) for values in self.grid.values())


def claim(text: str, paper_value: Any, measured: Any, holds: bool, **setting) -> dict:
    """One line of ``summary.json``: what the paper says, its number, ours, whether ours
    agrees, and the setting both refer to (e.g. ``T=100``)."""
    return {"claim": text, "paper_value": paper_value, "measured": measured,
            "holds": bool(holds), **setting}


def reproduce(module, quick: bool, out: str, workers: int = 1, scheduler: str | None = None,
              executor=None, log: Callable[[str], None] | None = None) -> dict:
    """Run the reproduction ``module`` (its quick or full plan) as a sweep into ``out``
    (executors as in :func:`~tinygrad_rnn.sweep.run_sweep`); write ``summary.json`` and, with
    matplotlib, ``plot.png``. Returns the summary."""
    plan = module.QUICK if quick else module.FULL
    started = time.perf_counter()
    job = functools.partial(module.run_one, **plan.fixed)
    rows = sweep.run_sweep(job, plan.grid, out, workers=workers, scheduler=scheduler,
                           executor=executor, log=log)
    summary = {"reproduction": module.NAME, "paper": module.PAPER, "summary": module.SUMMARY,
               "plan": "quick" if quick else "full", "grid": plan.grid, "fixed": plan.fixed,
               "runs": len(rows), "failed": sum(r["status"] != sweep.OK for r in rows),
               "seconds": round(time.perf_counter() - started, 1),
               "claims": module.claims([r for r in rows if r["status"] == sweep.OK], plan)}
    with open(os.path.join(out, SUMMARY), "w", encoding="utf-8") as f:
        json.dump(strict_json(summary), f, indent=2, allow_nan=False)
        f.write("\n")
    if importlib.util.find_spec("matplotlib") is not None:
        module.plot(rows, os.path.join(out, PLOT))
        summary["plot"] = os.path.join(out, PLOT)
    return summary


def strict_json(value):
    """``value`` with every NaN or infinite float replaced by None (JSON has neither; a
    diverged run's MSE is NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


# ------------------------------------------------------------- shared by the run_one's

def train_to_the_end(trainer: Trainer) -> int | None:
    """Run ``trainer`` to its last step. Returns None, or the step at which the loss became
    NaN or infinite (a diverged run is a result here, not an error)."""
    try:
        with warnings.catch_warnings():   # the overflow on the way to NaN is what we record
            warnings.simplefilter("ignore", RuntimeWarning)
            trainer.run(quiet=True)
    except TrainingInterrupted:
        raise
    except TrainingError:            # the loss stopped being finite
        return trainer.step + 1
    return None


def held_out_loss(trainer: Trainer) -> float:
    """The training loss of the task, on its held-out test set."""
    task = trainer.task
    x, y = task.test_set()
    return task.loss(task.predict(trainer.model, x), y).item()


def training_record(trainer: Trainer, diverged_at: int | None) -> dict:
    """The numbers every reproduction's row starts with."""
    loss = trainer.history.loss
    return {"steps": trainer.step, "optim": trainer.config.optim, "lr": trainer.config.lr,
            "clip": trainer.config.clip, "hidden": trainer.config.hidden,
            "first_loss": loss[0] if loss else None,
            "last_loss_mean": trainer.history.smoothed_last() if loss else None,
            "max_grad_norm": max(trainer.history.grad_norm, default=None),
            "diverged_at": diverged_at}


def mean(rows: list[dict], key: str) -> float:
    """Mean of ``key`` over ``rows`` (NaN for none)."""
    values = [float(r[key]) for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else math.nan


def select(rows: list[dict], **where) -> list[dict]:
    """The rows whose settings match ``where``."""
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def figure(panels: int = 1):
    """A matplotlib figure for a reproduction's plot (the object API: no GUI backend, no
    pyplot state) and its axes: one, or a row of ``panels``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.5 if panels == 1 else 6 * panels, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, (fig.subplots() if panels == 1 else fig.subplots(1, panels))
