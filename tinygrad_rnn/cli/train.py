"""``python -m tinygrad_rnn train TASK``: train a toy sequence model with good defaults.

Trains the task's model (:mod:`tinygrad_rnn.train`), prints a summary (first and last loss,
the task's metric against a trivial baseline, time, backend) and writes into ``--out``
(default ``runs/TASK``):

* ``checkpoint.npz``: model, optimizer, step and history; ``--resume`` continues it exactly;
* ``summary.json``: the summary's numbers (keys listed in :func:`summary_record`);
* ``plot.png`` (when matplotlib is installed): the loss curve and a prediction panel.

Ctrl-C or SIGTERM stops after the current step, saves the checkpoint, prints the command
that resumes, and exits with status 130 or 143.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import sys

from .. import backend, spectrum, tasks
from ..rundir import CheckpointLock
from ..spectrum import SpectrumTracker
from ..tasks.model import CELLS
from ..train import (
    LR_SCHEDULES,
    NONLINEARITIES,
    OPTIMIZERS,
    TrainConfig,
    TrainingInterrupted,
    TrainResult,
    read_checkpoint,
    train,
)
from .options import add_backend_option, use_backend_option

CHECKPOINT = "checkpoint.npz"
SUMMARY = "summary.json"
PLOT = "plot.png"

#: Command-line options that map one to one onto :class:`TrainConfig` fields.
CONFIG_OPTIONS = ("seed", "steps", "epochs", "batch_size", "seq_len", "hidden", "layers",
                  "cell", "nonlinearity", "lr", "optim", "lr_schedule", "clip", "text")


def _task_list() -> str:
    w = max(map(len, tasks.names()))
    lines = [f"  {name:{w}s} {tasks.get(name).summary}" for name in tasks.names()]
    return "tasks:\n" + "\n".join(lines)


def _defaults_table() -> str:
    rows = ["task defaults (steps, batch size, seq len, hidden, lr, optim, clip):"]
    w = max(map(len, tasks.names()))
    for name in tasks.names():
        d = tasks.get(name).defaults
        rows.append(f"  {name:{w}s} {d.steps:6d} {d.batch_size:4d} {d.seq_len:4d} {d.hidden:4d} "
                    f"{d.lr:8g} {d.optim:5s} {d.clip:g}")
    return "\n".join(rows)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train", help="train a toy sequence model (" + ", ".join(tasks.names()) + ")",
        description="Train an RNN, LSTM or GRU on a toy task, print its metric against a\n"
                    "trivial baseline, and save checkpoint.npz, summary.json and plot.png.",
        epilog=_task_list() + "\n\n" + _defaults_table() + "\n\nexamples:\n  python -m "
               "tinygrad_rnn train adding --steps 2000 --hidden 64\n  python -m "
               "tinygrad_rnn train adding --cell lstm --seq-len 100",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", metavar="TASK", help="one of: " + ", ".join(tasks.names()))
    run_opts = p.add_argument_group("run")
    run_opts.add_argument("--steps", type=int, metavar="N",
                          help="total optimisation steps (default: the task's)")
    run_opts.add_argument("--epochs", type=int, metavar="N",
                          help="passes over the training set, instead of --steps (tasks "
                               "with a finite data set: charlm, health)")
    run_opts.add_argument("--seed", type=int, metavar="N",
                          help="seed of the weights and of the data (default: 0)")
    add_backend_option(run_opts)
    run_opts.add_argument("--out", metavar="DIR",
                          help="output directory (default: runs/TASK, or the --resume "
                               "checkpoint's directory)")
    run_opts.add_argument("--resume", metavar="CHECKPOINT",
                          help="continue the run saved in CHECKPOINT exactly where it stopped "
                               "(with --steps/--epochs: up to that total)")
    run_opts.add_argument("--overwrite", action="store_true",
                          help="start afresh even if the output directory holds a run "
                               "(replacing its checkpoint); without it, that is refused")
    run_opts.add_argument("--save-every", type=int, default=0, metavar="N",
                          help="also save the checkpoint every N steps (default: at the end "
                               "and on interruption only)")
    run_opts.add_argument("--quiet", action="store_true",
                          help="no progress bar or progress lines")
    run_opts.add_argument("--no-plot", action="store_true", help="do not write plot.png")
    model = p.add_argument_group("model and optimisation (defaults: the task's)")
    model.add_argument("--hidden", type=int, metavar="H", help="hidden units per layer")
    model.add_argument("--layers", type=int, metavar="K", help="stacked RNN layers")
    model.add_argument("--cell", choices=CELLS,
                       help="recurrent layer: rnn (Elman, default), lstm or gru")
    model.add_argument("--nonlinearity", choices=NONLINEARITIES,
                       help="rnn only: tanh (default) or relu")
    model.add_argument("--unroll", action="store_true",
                       help="per-time-step autograd graph instead of the fused RNN layer "
                            "(same numbers, slower; for studying BPTT)")
    model.add_argument("--lr", type=float, help="learning rate")
    model.add_argument("--optim", choices=OPTIMIZERS,
                       help="adam, adamw, rmsprop (PyTorch defaults) or sgd (momentum 0.9)")
    model.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                       help="learning rate over the run: none (default), cosine (anneal to "
                            "0), step (/10 after each third) or onecycle (warm-up, anneal)")
    model.add_argument("--clip", type=float, metavar="C",
                       help="clip the gradient norm to C (0: no clipping)")
    data = p.add_argument_group("data (defaults: the task's)")
    data.add_argument("--batch-size", type=int, metavar="N", help="sequences per step")
    data.add_argument("--seq-len", type=int, metavar="L",
                      help="sequence length (copy: symbols to recall; health: hours)")
    data.add_argument("--text", metavar="FILE",
                      help="charlm: train on this UTF-8 text file instead of the generated "
                           "corpus")
    p.add_argument("--track-spectrum", type=int, nargs="?", const=0, metavar="EVERY",
                   help="record the singular values and eigenvalues of W_hh every EVERY steps "
                        "(default: 100 times per run) into summary.json, and plot "
                        "spectrum.png")
    return p


def run(args: argparse.Namespace) -> int:
    """Train, print the summary, write the files; returns the exit status."""
    if args.save_every < 0:
        raise ValueError(f"--save-every must be an integer >= 0, got {args.save_every}")
    tasks.get(args.task)                                  # an unknown task fails first
    use_backend_option(args)
    given = {name: getattr(args, name) for name in CONFIG_OPTIONS
             if getattr(args, name) is not None}
    if args.unroll:
        given["unroll"] = True
    if args.out:
        out = args.out
    elif args.resume:
        out = os.path.dirname(args.resume) or "."     # next to the checkpoint it continues
    else:
        out = os.path.join("runs", args.task)
    checkpoint = os.path.join(out, CHECKPOINT)
    if args.resume:
        job = dict(resume=args.resume, task=args.task, **given)
    else:
        job = dict(config=TrainConfig(args.task, **given))
    tracker = None if args.track_spectrum is None else SpectrumTracker(
        args.track_spectrum, partial=os.path.join(out, spectrum.PARTIAL))
    # Checked and locked before anything else: an unwritable --out, or another run writing
    # into it, fails now and not after the training.
    with CheckpointLock(checkpoint):
        if not args.resume and not args.overwrite:
            _refuse_overwriting_a_run(checkpoint)
        try:
            result = train(**job, checkpoint=checkpoint, quiet=args.quiet,
                           save_every=args.save_every, on_step=tracker)
        except TrainingInterrupted as stop:
            if tracker is not None:
                tracker.dump()                        # continued by the resumed run
            print(interruption_message(stop, args), file=sys.stderr)
            return stop.exit_code
        written = [checkpoint, write_summary(result, os.path.join(out, SUMMARY))]
        if tracker is not None:                      # adds "spectrum" to summary.json
            written += tracker.save(out, SUMMARY, plot=not args.no_plot)[1:]
        if not args.no_plot and importlib.util.find_spec("matplotlib") is not None:
            written.append(write_plot(result, os.path.join(out, PLOT)))
    print(format_summary(result, written))
    return 0


def _refuse_overwriting_a_run(checkpoint: str) -> None:
    """A fresh run never replaces an earlier one silently: ``train adding --cell lstm`` after
    ``train adding`` would write over the first run's checkpoint in runs/adding, and with it
    hours of training. Stop and say how to go on instead."""
    if not os.path.exists(checkpoint):
        return
    try:
        state = read_checkpoint(checkpoint)
        what = f"a {state['config']['task']} run saved at step {state['step']}"
    except Exception:  # damaged, or not ours: still somebody's file
        raise FileExistsError(f"{checkpoint} exists (not a readable checkpoint); write "
                              "this run elsewhere with --out DIR, or replace it with "
                              "--overwrite") from None
    raise FileExistsError(f"{checkpoint} holds {what}; continue it with --resume "
                          f"{shlex.quote(checkpoint)}, write this run elsewhere with --out DIR, "
                          "or replace it with --overwrite")


# -------------------------------------------------------------------------------- output

def interruption_message(stop: TrainingInterrupted, args: argparse.Namespace) -> str:
    """Where training stopped and the exact command that continues it."""
    command = ["python", "-m", "tinygrad_rnn", "train", args.task, "--resume", stop.checkpoint]
    if args.steps is not None:
        command += ["--steps", str(args.steps)]
    if args.epochs is not None:
        command += ["--epochs", str(args.epochs)]
    if args.track_spectrum is not None:
        command += ["--track-spectrum", str(args.track_spectrum)]
    if args.save_every:
        command += ["--save-every", str(args.save_every)]
    if backend.name != "numpy":
        command += ["--backend", backend.name]
    # No --out: a resumed run writes next to its checkpoint by default.
    return (f"\n{stop}; checkpoint saved to {stop.checkpoint}\n"
            f"resume with: {shlex.join(command)}")


def summary_record(result: TrainResult) -> dict:
    """The numbers of a run, as written to ``summary.json``."""
    trainer, metric, history = result.trainer, result.metric, result.history
    return {
        "task": trainer.config.task,
        "steps": trainer.step,
        "first_loss": history.loss[0] if history.loss else None,
        "last_loss": history.loss[-1] if history.loss else None,
        "last_loss_mean": history.smoothed_last() if history.loss else None,
        "metric_name": metric.name,
        "metric": metric.value,
        "baseline_metric": metric.baseline,
        "baseline_name": metric.baseline_name,
        "higher_is_better": metric.higher_is_better,
        "beats_baseline": metric.beats_baseline,
        "seconds": round(result.seconds, 3),
        "train_seconds_total": round(trainer.seconds, 3),
        "resumed_from_step": result.resumed_from,
        "backend": backend.name,
        "config": trainer.config.to_dict(),
    }


def write_summary(result: TrainResult, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summary_record(result), f, indent=2)
        f.write("\n")
    return path


def format_summary(result: TrainResult, written: list[str]) -> str:
    """The text printed at the end of a run."""
    r = summary_record(result)
    c = result.trainer.config
    assert c.cell is not None  # a trainer's settings are resolved
    layer = f"RNN({c.nonlinearity}, " if c.cell == "rnn" else f"{c.cell.upper()}("
    lines = [
        f"task     {r['task']}: {tasks.get(r['task']).summary}",
        f"model    {layer}hidden {c.hidden}, layers {c.layers}"
        f"{', unrolled' if c.unroll else ''}) + Linear; {c.optim} lr {c.lr:g}, clip "
        f"{c.clip:g}, batch {c.batch_size}, seq_len {c.seq_len}, seed {c.seed}",
        f"steps    {r['steps']}" + (f" (resumed from step {r['resumed_from_step']})"
                                   if r["resumed_from_step"] else ""),
    ]
    if r["first_loss"] is not None:
        lines.append(f"loss     first {r['first_loss']:.4g}, last {r['last_loss']:.4g} "
                     f"(mean of the last 5%: {r['last_loss_mean']:.4g})")
    lines += [f"metric   {result.metric.describe()}",
              f"time     {r['seconds']:.1f} s on {r['backend']}",
              f"wrote    {', '.join(written)}"]
    extra = result.trainer.task.report(result.trainer.model)
    return "\n".join(lines + ([extra] if extra else []))


def write_plot(result: TrainResult, path: str) -> str:
    """``plot.png``: the loss curve (log scale, raw and smoothed) and the task's panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    trainer = result.trainer
    losses = trainer.history.loss
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    steps = range(1, len(losses) + 1)
    left.plot(steps, losses, color="C0", alpha=0.35, lw=0.8, label="loss per step")
    left.plot(steps, _moving_average(losses), color="C0", label="moving average")
    left.set(yscale="log", xlabel="step", ylabel="training loss",
             title=f"{trainer.config.task}: training loss")
    left.legend(fontsize="small")
    trainer.task.plot(right, trainer.model)
    fig.suptitle(result.metric.describe(), fontsize="medium")
    fig.savefig(path, dpi=100)
    return path


def _moving_average(values: list[float]) -> list[float]:
    """Trailing mean over a window of 2% of the run (at least 1 step)."""
    window = max(1, len(values) // 50)
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out
