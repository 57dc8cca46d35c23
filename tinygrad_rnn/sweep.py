"""Sweeps: one training run per combination of a grid of settings, run in parallel.

    from tinygrad_rnn.sweep import TrainJob, parse_grid, run_sweep
    grid = parse_grid(["hidden=16,32", "seed=0,1"])          # 4 runs
    rows = run_sweep(TrainJob("adding", steps=200), grid, "runs/sweep", workers=2)

or, from the shell, ``python -m tinygrad_rnn sweep adding --grid hidden=16,32 seed=0,1
--steps 200 --out runs/sweep``.

**Layout.** Every run gets its own directory under ``out``, named after its settings
(``hidden=16,seed=0/``), holding what ``train --out`` writes there (``checkpoint.npz``,
``summary.json``) and ``result.json``, the run's row. ``out/results.csv`` gathers the rows in
grid order: the settings, ``status`` (``ok`` or ``failed``), the final numbers, and
``error`` (the exception, on one line, of a failed run).

**Resumable.** A run whose ``result.json`` says ``ok`` for the same job (same task and fixed
settings) is not run again, so a sweep that was stopped (or that gained grid values)
continues where it was. A failed run is retried; Ctrl-C cancels the runs not started.

**Failures stay local.** An exception in one run is caught in the worker and recorded in its
row; the other runs go on.

**Executors.** Runs are handed to a :class:`concurrent.futures.Executor`: by default a pool
of local processes (``workers``), or, with ``scheduler=ADDRESS``, a Dask distributed cluster
through ``Client(ADDRESS).get_executor()``, whose futures follow the same interface (install
the optional extra: ``pip install "tinygrad-rnn[distributed]"``). On several machines, put
``out`` on a file system they share if you want the checkpoints: the driver (this process)
writes ``result.json`` and ``results.csv`` itself either way.

**Same numbers everywhere.** A run is a pure function of its settings (the weights come from
``manual_seed(seed)``, the batch of step s from ``(seed, s)``), so any executor gives the same
rows. Runs never share a process concurrently: the initial weights are drawn from a
process-wide generator, so a lock makes runs that land in one process (a Dask worker with
several threads) take turns instead of interleaving their draws.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import dataclasses
import functools
import json
import math
import multiprocessing
import os
import sys
import threading
import time
from typing import Any, Callable, Iterator, Sequence

RESULTS = "results.csv"
RESULT = "result.json"
PLOT = "sweep.png"
OK, FAILED = "ok", "failed"
DASK_MISSING = ('--scheduler needs Dask distributed, which is not installed; install it with: '
                'pip install "tinygrad-rnn[distributed]"')

#: A run: ``job(settings, out_dir) -> {name: number or text}``, the run's final numbers. It
#: must be picklable (a module-level function or a dataclass instance) to reach a worker.
Job = Callable[[dict, str], dict]


# ---------------------------------------------------------------------------------- grid

def parse_value(text: str) -> Any:
    """A grid value from the command line: an int, a float, ``true``/``false``, or the text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_grid(items: Sequence[str]) -> dict[str, list]:
    """``["hidden=16,32", "cell=rnn,lstm"]`` → ``{"hidden": [16, 32], "cell": ["rnn", "lstm"]}``
    (keys in the order given; ``-`` in a key is read as ``_``, as in ``--batch-size``)."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier() or not values.strip():
            raise ValueError(f"--grid expects KEY=V1,V2,... (e.g. hidden=16,32), got {item!r}")
        if key in grid:
            raise ValueError(f"--grid gives {key!r} twice; list all its values at once")
        parsed = [parse_value(v) for v in values.split(",")]
        if len(set(map(repr, parsed))) != len(parsed):
            raise ValueError(f"--grid {key}: a value is repeated in {values!r}")
        grid[key] = parsed
    return grid


def combinations(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, the last key varying fastest."""
    combos: list[dict] = [{}]
    for key, values in grid.items():
        combos = [{**combo, key: value} for combo in combos for value in values]
    return combos


def run_name(settings: dict) -> str:
    """The directory name of a run: ``hidden=16,seed=0`` (``/`` and spaces made ``_``)."""
    parts = []
    for key, value in settings.items():
        text = repr(value) if isinstance(value, float) else str(value)
        parts.append(f"{key}={text}".replace(os.sep, "_").replace(" ", "_"))
    return ",".join(parts) or "default"


# ------------------------------------------------------------------------ the train job

#: The final numbers of a ``train`` run copied into its row (from its ``summary.json``).
TRAIN_COLUMNS = ("steps", "first_loss", "last_loss", "last_loss_mean", "metric_name", "metric",
                 "baseline_metric", "beats_baseline")


@dataclasses.dataclass(frozen=True)
class TrainJob:
    """One ``train TASK`` run per combination: the grid's settings over ``fixed`` ones (both
    :class:`~tinygrad_rnn.train.TrainConfig` fields, e.g. ``steps=200``)."""
    task: str
    fixed: dict = dataclasses.field(default_factory=dict)

    def __init__(self, task: str, **fixed):
        object.__setattr__(self, "task", task)
        object.__setattr__(self, "fixed", fixed)

    def check(self, grid: dict[str, list]) -> None:
        """``ValueError`` for an unknown task or a setting ``train`` does not have, before any
        run starts (a bad *value* only fails its own runs)."""
        from . import tasks
        from .train import TrainConfig
        tasks.get(self.task)
        known = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "task"]
        for key in list(grid) + list(self.fixed):
            if key not in known:
                raise ValueError(f"unknown setting {key!r} for a train run; expected one of "
                                 + ", ".join(known))
        both = set(grid) & set(self.fixed)
        if both:
            raise ValueError(f"{', '.join(sorted(both))} is both fixed and in the grid")

    def identity(self) -> dict:
        return {"train": self.task, "fixed": self.fixed}

    def __call__(self, settings: dict, out: str) -> dict:
        from .cli.train import CHECKPOINT, SUMMARY, summary_record, write_summary
        from .train import TrainConfig, train
        config = TrainConfig(self.task, **{**self.fixed, **settings})
        result = train(config, checkpoint=os.path.join(out, CHECKPOINT), quiet=True)
        write_summary(result, os.path.join(out, SUMMARY))
        record = summary_record(result)
        return {key: record[key] for key in TRAIN_COLUMNS}


# ----------------------------------------------------------------------------- running

_ONE_RUN_AT_A_TIME = threading.Lock()


def execute(job: Job, settings: dict, out: str) -> tuple[dict, float]:
    """Run ``job`` on ``settings`` in this process (what a worker does): the row
    (``status`` then the job's numbers, or ``error``) and the seconds it took."""
    with _ONE_RUN_AT_A_TIME:
        started = time.perf_counter()
        try:
            os.makedirs(out, exist_ok=True)
            row = {"status": OK, **job(dict(settings), out)}
        except Exception as exc:    # recorded in the row: one failed run must not stop others
            row = {"status": FAILED, "error": one_line(exc)}
        return row, time.perf_counter() - started


def one_line(exc: BaseException) -> str:
    """``TypeName: message`` on one line."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": ")


@contextlib.contextmanager
def local_executor(workers: int) -> Iterator[concurrent.futures.Executor]:
    """A pool of ``workers`` fresh processes ("spawn": the same start on every OS)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {workers!r}")
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield pool


@contextlib.contextmanager
def dask_executor(address: str) -> Iterator[concurrent.futures.Executor]:
    """The workers of the Dask distributed scheduler at ``address`` (e.g. ``tcp://host:8786``),
    as a ``concurrent.futures`` executor. ``ImportError`` naming the extra without Dask."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(DASK_MISSING) from None
    with Client(address) as client:
        yield client.get_executor()


def run_sweep(job: Job, grid: dict[str, list], out: str, *, workers: int = 1,
              scheduler: str | None = None, executor: concurrent.futures.Executor | None = None,
              log: Callable[[str], None] | None = None) -> list[dict]:
    """Run every combination of ``grid`` not already done in ``out`` and write
    ``out/results.csv``; returns the rows in grid order (settings, then the row's numbers).

    Runs go to ``executor`` if given, else to the Dask scheduler at ``scheduler``, else to
    ``workers`` local processes. ``log`` receives one line per finished run (default: stderr).
    A run counts as done only if it finished ``ok`` with the same job (e.g. the same fixed
    ``steps``): changing those reruns it.
    """
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    if hasattr(job, "check"):
        job.check(grid)
    identity = job_identity(job)
    combos = combinations(grid)
    os.makedirs(out, exist_ok=True)
    saved = [read_result(os.path.join(out, run_name(c))) for c in combos]
    rows: list[dict | None] = [r["row"] if r else None for r in saved]
    todo = [i for i, r in enumerate(saved)
            if r is None or r["row"]["status"] != OK or r.get("job") != identity]
    if len(todo) < len(combos):
        log(f"{len(combos) - len(todo)} of {len(combos)} runs already finished in {out}; "
            f"running the other {len(todo)}")
    if todo:
        with _executor(executor, scheduler, workers) as pool:
            futures = {pool.submit(execute, job, combos[i], os.path.join(out, run_name(combos[i]))):
                       i for i in todo}
            try:
                for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                    i = futures[future]
                    row, seconds = _collect(future, out, combos[i], identity)
                    rows[i] = row
                    write_results(os.path.join(out, RESULTS), combos, rows)
                    log(f"[{done}/{len(todo)}] {run_name(combos[i])}: {describe(row)} "
                        f"({seconds:.1f} s)")
            except BaseException:   # Ctrl-C: drop the runs not started yet, then stop
                for future in futures:
                    future.cancel()
                raise
    write_results(os.path.join(out, RESULTS), combos, rows)
    return [{**c, **r} for c, r in zip(combos, rows) if r is not None]


def _executor(executor, scheduler: str | None, workers: int):
    """A context giving the executor to use: the one given, Dask's, or a process pool."""
    if executor is not None:
        return contextlib.nullcontext(executor)
    if scheduler is not None:
        return dask_executor(scheduler)
    return local_executor(workers)


def _collect(future: concurrent.futures.Future, out: str, settings: dict,
             identity: dict) -> tuple[dict, float]:
    """The row of a finished run and its seconds (also saved in its ``result.json``)."""
    try:
        row, seconds = future.result()
    except Exception as exc:      # the worker itself died (killed, out of memory)
        row, seconds = {"status": FAILED, "error": one_line(exc)}, math.nan
    write_result(os.path.join(out, run_name(settings)), settings, row, seconds, identity)
    return row, seconds


def job_identity(job: Job) -> dict:
    """What defines a job's computation, as JSON (stored with each result): a
    ``functools.partial``'s function and arguments, a job's ``identity()``, or its type."""
    if isinstance(job, functools.partial):
        ident = {"function": f"{job.func.__module__}.{job.func.__qualname__}",
                 "args": list(job.args), "keywords": dict(job.keywords)}
    elif hasattr(job, "identity"):
        ident = job.identity()
    else:
        ident = {"function": f"{type(job).__module__}.{type(job).__qualname__}"}
    return json.loads(json.dumps(ident))     # as it reads back from result.json


def describe(row: dict) -> str:
    if row["status"] != OK:
        return f"failed: {row.get('error', '')}"
    if "metric" in row:
        return f"ok, {row.get('metric_name', 'metric')} {row['metric']:.4g}"
    return "ok"


# ------------------------------------------------------------------------------- files

def read_result(run_dir: str) -> dict | None:
    """``run_dir/result.json`` (``settings``, ``row``, ``job``, ``seconds``), or None when the
    run has not finished."""
    path = os.path.join(run_dir, RESULT)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except ValueError:                 # a torn file: run it again
        return None
    if not isinstance(saved, dict) or "status" not in saved.get("row", {}):
        return None                    # not one of ours: run it again
    return saved


def write_result(run_dir: str, settings: dict, row: dict, seconds: float,
                 identity: dict) -> None:
    """``run_dir/result.json``, written atomically (a killed write leaves no half file)."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, RESULT)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"settings": settings, "row": row, "job": identity,
                   "seconds": round(seconds, 3)}, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def write_results(path: str, combos: list[dict], rows: list) -> None:
    """``results.csv``: one line per finished run, in grid order; columns: the settings,
    ``status``, every number any run reported (first-seen order), then ``error``."""
    done = [(c, r) for c, r in zip(combos, rows) if r is not None]
    columns = list(combos[0]) if combos else []
    for _, row in done:
        columns += [k for k in row if k not in columns and k != "error"]
    if any("error" in r for _, r in done):
        columns.append("error")
    with open(path + ".tmp", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        for settings, row in done:
            writer.writerow({**settings, **row})
    os.replace(path + ".tmp", path)


def read_results(path: str) -> list[dict]:
    """The rows of a ``results.csv``, with numbers parsed back (``parse_value``)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: parse_value(v) if v != "" else None for k, v in row.items()}
                for row in csv.DictReader(f)]


# -------------------------------------------------------------------------------- plot

def plot_sweep(rows: list[dict], x: str, path: str, metric: str = "metric",
               lines: str | None = None, title: str = "", logx: bool = False,
               ylabel: str | None = None, ax=None) -> str:
    """Plot ``metric`` against setting ``x``, one line per value of setting ``lines``, the
    mean over any other setting that varies (e.g. seeds). Writes ``path`` (a PNG) unless
    drawing on a given matplotlib ``ax``. Returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    fig = None
    if ax is None:
        fig = Figure(figsize=(6.5, 4.5), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
    for label, points in group_means(rows, x, metric, lines).items():
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o", label=f"{lines}={label}" if lines else None)
    ax.set(xlabel=x, ylabel=ylabel or metric, title=title)
    if logx:
        ax.set_xscale("log")
    if lines:
        ax.legend(fontsize="small")
    if fig is not None:
        fig.savefig(path, dpi=100)
    return path


def group_means(rows: list[dict], x: str, metric: str,
                lines: str | None = None) -> dict[Any, list[tuple]]:
    """``{line value: [(x value, mean metric), ...]}`` over the finished runs (sorted by x),
    averaging the runs that share both values; ``lines=None`` gives one line keyed None."""
    sums: dict = {}
    for row in rows:
        value = row.get(metric)
        if row.get("status") != OK or not isinstance(value, (int, float)):
            continue
        key = (row.get(lines) if lines else None, row[x])
        total, count = sums.get(key, (0.0, 0))
        sums[key] = (total + float(value), count + 1)
    out: dict = {}
    for (label, xv), (total, count) in sums.items():
        out.setdefault(label, []).append((xv, total / count))
    return {label: sorted(points, key=lambda p: p[0]) for label, points in out.items()}
