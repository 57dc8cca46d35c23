"""``python -m tinygrad_rnn sweep TASK --grid KEY=V1,V2 ... --out DIR``: one ``train`` run per
combination of the grid, in local processes or on a Dask cluster (:mod:`tinygrad_rnn.sweep`).

Writes ``DIR/<settings>/`` per run (checkpoint, summary.json, result.json),
``DIR/results.csv`` (one row per run) and, with matplotlib, ``DIR/sweep.png``: the metric
against one grid key, one line per value of another. Rerunning skips the finished runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import os

from .. import sweep as sweeps, tasks
from .options import make_output_directory
from .train import CONFIG_OPTIONS


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``sweep`` sub-command."""
    p = subparsers.add_parser(
        "sweep", help="train over a grid of settings, in parallel (local processes or Dask)",
        description="Run `train TASK` once per combination of the --grid values, each with its "
                    "own --out under DIR;\ngather DIR/results.csv and plot the metric. Runs "
                    "already finished are skipped on rerun;\na failed run is recorded with its "
                    "error and the others go on.",
        epilog="grid keys: " + ", ".join(CONFIG_OPTIONS) + "\n\nexamples:\n"
               "  python -m tinygrad_rnn sweep adding --grid hidden=16,32,64 cell=rnn,lstm "
               "--steps 500 --out runs/sweep --workers 2\n"
               "  python -m tinygrad_rnn sweep sine --grid lr=1e-3,3e-3 seed=0,1,2 --out "
               "runs/lr --scheduler tcp://host:8786",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", metavar="TASK", help="one of: " + ", ".join(tasks.names()))
    p.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2",
                   help="settings to vary (train's options, e.g. hidden=16,32 lr=1e-3,3e-3)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="settings fixed for every run (e.g. steps=500 batch_size=32)")
    p.add_argument("--steps", type=int, metavar="N", help="steps of every run (as --set steps=N)")
    p.add_argument("--out", required=True, metavar="DIR", help="the sweep's directory")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=1, metavar="N",
                       help="local processes running at once (default: 1)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on the Dask distributed scheduler at ADDRESS (e.g. "
                            'tcp://host:8786; needs pip install "tinygrad-rnn[distributed]")')
    p.add_argument("--plot-x", metavar="KEY", help="grid key on the plot's x axis (default: the "
                                                   "first numeric key with several values)")
    p.add_argument("--plot-lines", metavar="KEY",
                   help="grid key drawn as one line per value (default: the next varying key)")
    p.add_argument("--no-plot", action="store_true", help="do not write sweep.png")
    return p


def run(args: argparse.Namespace) -> int:
    grid = sweeps.parse_grid(args.grid)
    fixed = {}
    for key, values in sweeps.parse_grid(args.set).items():
        if len(values) > 1:
            raise ValueError(f"--set {key} takes one value; to vary it, put it in --grid")
        fixed[key] = values[0]
    if args.steps is not None:
        fixed["steps"] = args.steps
    job = sweeps.TrainJob(args.task, **fixed)
    make_output_directory(args.out, "--out")
    try:
        rows = sweeps.run_sweep(job, grid, args.out, workers=args.workers,
                                scheduler=args.scheduler)
    except ImportError as exc:     # Dask missing: a one-line error naming the extra
        raise ValueError(str(exc)) from None
    written = [os.path.join(args.out, sweeps.RESULTS)]
    if not args.no_plot and importlib.util.find_spec("matplotlib") is not None:
        x, lines = plot_keys(grid, args.plot_x, args.plot_lines)
        if x is not None:
            name = next((r["metric_name"] for r in rows if r.get("metric_name")), None)
            written.append(sweeps.plot_sweep(rows, x, os.path.join(args.out, sweeps.PLOT),
                                             lines=lines, title=f"{args.task} sweep",
                                             ylabel=name and f"held-out {name}"))
    failed = sum(row["status"] != sweeps.OK for row in rows)
    print(f"{len(rows) - failed} runs ok, {failed} failed; wrote {', '.join(written)}")
    return 1 if failed else 0


def plot_keys(grid: dict, x: str | None, lines: str | None) -> tuple:
    """The keys to plot: those asked for (checked), else the first numeric key with several
    values on x and the next key with several values as lines."""
    for key in (x, lines):
        if key is not None and key not in grid:
            raise ValueError(f"--plot-x/--plot-lines {key!r} is not a grid key; grid keys: "
                             + ", ".join(grid))
    varying = [k for k, values in grid.items() if len(values) > 1]
    if x is None:
        numeric = [k for k in varying if all(isinstance(v, (int, float)) for v in grid[k])]
        x = (numeric or varying or list(grid) or [None])[0]
    if lines is None:
        lines = next((k for k in varying if k != x), None)
    return x, lines
