"""Training a task's model: the loop behind ``python -m tinygrad_rnn train TASK``.

    from tinygrad_rnn.train import TrainConfig, train
    result = train(TrainConfig("sine", steps=500), checkpoint="runs/sine/checkpoint.npz")
    print(result.metric.describe())

A :class:`Trainer` holds a task, its model and optimizer, the step counter and the loss
history. ``Trainer.run`` loops ``zero_grad → loss → backward → clip → step`` with a progress
bar and saves checkpoints through :func:`tinygrad_rnn.save` (atomic ``.npz``, never pickle).

**Exact resume.** Everything a step depends on is either in the checkpoint (weights,
optimizer state, step counter, loss history, configuration) or a pure function of it: the
batch of step ``s`` is drawn from a generator seeded with ``(seed, s)`` (see
:mod:`tinygrad_rnn.tasks.base`), not from a global generator whose state training advanced.
So ``Trainer.from_checkpoint(path).run()`` computes bit for bit the losses an uninterrupted
run would have computed. (No random-generator state needs saving: the only other draw, the
initial weights, happens once and its result is in the checkpoint.)

**Safe output.** ``run`` first checks that the checkpoint can be written and takes a lock on
it (:mod:`tinygrad_rnn.rundir`): a second process training into the same checkpoint fails at
once instead of overwriting the first one's run.

**Interrupts.** During ``run``, Ctrl-C (SIGINT) and SIGTERM are turned into a request to stop
after the current step, so the checkpoint saved then is consistent; ``run`` then raises
:class:`TrainingInterrupted`, whose ``exit_code`` is 130 or 143, as a shell reports a process
killed by those signals. A second Ctrl-C aborts at once.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, TypeVar

from . import backend, optim, tasks
from .backend import manual_seed
from .nn.utils import clip_grad_norm_
from .rundir import CheckpointLock, describe_non_regular
from .serialization import load, save
from .tasks.base import Metric, Task
from .tasks.model import CELLS, check_cell

CHECKPOINT_FORMAT = "tinygrad_rnn.train"
CHECKPOINT_VERSION = 1
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
LR_SCHEDULES = ("none", "cosine", "step", "onecycle")
NONLINEARITIES = ("tanh", "relu")

#: Settings that may differ when resuming: how long to train and where things run. Every
#: other setting defines the computation and must match the checkpoint.
RESUMABLE_OVERRIDES = ("steps", "epochs", "unroll")


class TrainingError(Exception):
    """A problem with a training run's settings or checkpoint (shown without a traceback)."""


class TrainingInterrupted(TrainingError):
    """Training stopped on a signal after saving a checkpoint (if it had a path to save to)."""

    def __init__(self, signum: int, step: int, checkpoint: str | None):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name} at step {step}")

    @property
    def exit_code(self) -> int:
        """128 + the signal number: 130 for SIGINT (Ctrl-C), 143 for SIGTERM."""
        return 128 + self.signum


# ---------------------------------------------------------------------------- settings

_Setting = TypeVar("_Setting")


def _filled(value: _Setting | None) -> _Setting:
    """A setting of a resolved :class:`TrainConfig` (``resolved()`` fills in every None),
    typed as such for the type checker."""
    assert value is not None, "the settings were not resolved"
    return value


@dataclass
class TrainConfig:
    """Everything that defines a training run. ``None`` means "the task's default"
    (:attr:`Task.defaults`); :meth:`resolved` fills those in."""
    task: str
    seed: int = 0
    steps: int | None = None          # total optimisation steps (not "more steps")
    epochs: int | None = None         # alternative to steps, for tasks with a finite data set
    batch_size: int | None = None
    seq_len: int | None = None
    hidden: int | None = None
    layers: int | None = None
    cell: str | None = None           # "rnn" (default), "lstm" or "gru"
    nonlinearity: str | None = None   # rnn only: "tanh" or "relu" (None for lstm/gru)
    lr: float | None = None
    optim: str | None = None
    lr_schedule: str | None = None    # "none" (default), "cosine", "step" or "onecycle"
    clip: float | None = None         # max gradient norm; 0 switches clipping off
    unroll: bool = False              # per-step autograd graph instead of the fused layer
    text: str | None = None           # charlm only: train on this file

    def resolved(self) -> "TrainConfig":
        """A copy with every default filled in and every value checked (``ValueError``)."""
        cls = tasks.get(self.task)
        d = cls.defaults
        if self.text is not None and "text" not in cls.options:
            raise ValueError(f"--text is only used by the charlm task, not by {self.task!r}")
        cell = self.cell if self.cell is not None else "rnn"
        check_cell(cell, self.nonlinearity)   # before filling in the RNN's default
        filled = {f: getattr(self, f) if getattr(self, f) is not None else getattr(d, f)
                  for f in ("batch_size", "seq_len", "hidden", "layers", "nonlinearity", "lr",
                            "optim", "clip")}
        filled["cell"] = cell
        filled["lr_schedule"] = self.lr_schedule if self.lr_schedule is not None else "none"
        if cell != "rnn":
            filled["nonlinearity"] = None   # gated cells have no choice of nonlinearity
        if self.text is not None:   # absolute, so that a resume from elsewhere finds it
            filled["text"] = os.path.abspath(self.text)
        config = dataclasses.replace(self, **filled)
        config._check()
        if config.epochs is not None:     # from here on only steps count
            config.steps, config.epochs = config._steps_from_epochs(), None
        elif config.steps is None:
            config.steps = d.steps
        return config

    def _check(self) -> None:
        _require(self.seed, "seed", minimum=0)
        for name in ("steps", "epochs", "batch_size", "seq_len", "hidden", "layers"):
            if getattr(self, name) is not None:
                _require(getattr(self, name), name, minimum=1)
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give --steps or --epochs, not both")
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; expected one of {', '.join(CELLS)}")
        if self.cell == "rnn" and self.nonlinearity not in NONLINEARITIES:
            raise ValueError(f"unknown nonlinearity {self.nonlinearity!r}; expected one of "
                             + ", ".join(NONLINEARITIES))
        if self.optim not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optim!r}; expected one of "
                             + ", ".join(OPTIMIZERS))
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.lr_schedule!r}; expected "
                             "one of " + ", ".join(LR_SCHEDULES))
        lr, clip = _filled(self.lr), _filled(self.clip)
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"--lr must be a positive number, got {self.lr}")
        if not (clip >= 0 and math.isfinite(clip)):
            raise ValueError(f"--clip must be a number >= 0 (0: no clipping), got {self.clip}")

    def _steps_from_epochs(self) -> int:
        per_epoch = self.make_task().steps_per_epoch()
        if per_epoch is None:
            raise ValueError(f"task {self.task!r} draws fresh data at every step, so it has no "
                             "epochs; use --steps")
        return _filled(self.epochs) * per_epoch

    def make_task(self) -> Task:
        """The task these settings describe."""
        extra = {"text": self.text} if self.text is not None else {}
        return tasks.get(self.task)(seed=self.seed, batch_size=self.batch_size,
                                    seq_len=self.seq_len, **extra)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _require(value, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else "an integer >= 0"
        raise ValueError(f"--{name.replace('_', '-')} must be {what}, got {value!r}")


def make_optimizer(name: str, parameters, lr: float) -> optim.Optimizer:
    """``"adam"``, ``"adamw"``, ``"rmsprop"``: PyTorch's defaults but ``lr``; ``"sgd"``: SGD
    with momentum 0.9."""
    if name == "adam":
        return optim.Adam(parameters, lr=lr)
    if name == "adamw":
        return optim.AdamW(parameters, lr=lr)
    if name == "rmsprop":
        return optim.RMSprop(parameters, lr=lr)
    if name == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=0.9)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")


def make_scheduler(name: str, optimizer: optim.Optimizer, steps: int):
    """The learning-rate schedule over a run of ``steps`` optimiser steps (stepped once per
    step): ``"cosine"`` anneals ``lr`` to 0, ``"step"`` divides it by 10 after each third,
    ``"onecycle"`` warms up from ``lr/25`` to ``lr`` over the first 30% and then anneals to
    ``lr/25e4`` (PyTorch's defaults); ``"none"`` keeps ``lr`` (returns None)."""
    lr = optimizer.param_groups[0]["lr"]
    if name == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    if name == "step":
        return optim.lr_scheduler.StepLR(optimizer, step_size=max(1, steps // 3), gamma=0.1)
    if name == "onecycle":
        return optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    return None


# ----------------------------------------------------------------------------- history

@dataclass
class History:
    """Per-step records of a run: ``loss[i]`` and ``grad_norm[i]`` (before clipping) of step
    ``i + 1``."""
    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)

    def to_state(self) -> dict[str, Any]:
        host = backend.np
        return {"loss": host.array(self.loss, dtype=host.float64),
                "grad_norm": host.array(self.grad_norm, dtype=host.float64)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "History":
        return cls(loss=[float(v) for v in state["loss"].numpy()],
                   grad_norm=[float(v) for v in state["grad_norm"].numpy()])

    def smoothed_last(self, fraction: float = 0.05) -> float:
        """Mean loss of the last ``fraction`` of the steps (at least one): a less noisy
        "final loss" than the last step alone."""
        n = max(1, int(len(self.loss) * fraction))
        return sum(self.loss[-n:]) / n


# ----------------------------------------------------------------------------- trainer

class Trainer:
    """A task, its model and optimizer, and where training stands (``step``, ``history``).

    ``Trainer(config)`` starts fresh (weights drawn after ``manual_seed(config.seed)``);
    :meth:`from_checkpoint` continues a saved run.
    """

    def __init__(self, config: TrainConfig):
        self.config = config.resolved()
        self.task = self.config.make_task()
        manual_seed(self.config.seed)          # the same seed gives the same initial weights
        self.model = self.task.make_model(self.config.hidden, self.config.layers,
                                          self.config.nonlinearity, self.config.unroll,
                                          cell=_filled(self.config.cell))
        self.optimizer = make_optimizer(_filled(self.config.optim), self.model.parameters(),
                                        _filled(self.config.lr))
        self.scheduler = make_scheduler(_filled(self.config.lr_schedule), self.optimizer,
                                        _filled(self.config.steps))
        self.step = 0                          # optimisation steps done so far
        self.history = History()
        self.seconds = 0.0                     # training time so far, over all resumes

    # ------------------------------------------------------------------------- training
    def train_step(self) -> float:
        """One optimisation step on the batch of step ``self.step``; returns its loss."""
        x, y = self.task.batch(self.step)
        self.optimizer.zero_grad()
        loss = self.task.loss(self.model(x), y)
        loss.backward()
        # Clipping with max_norm=inf only measures the norm (and changes nothing).
        clip = _filled(self.config.clip)
        max_norm = clip if clip > 0 else math.inf
        norm = clip_grad_norm_(self.model.parameters(), max_norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingError(
                f"the loss became {value} at step {self.step + 1}: training diverged; try a "
                f"smaller --lr (now {self.config.lr:g}) or gradient clipping (--clip 1)")
        self.step += 1
        self.history.loss.append(value)
        self.history.grad_norm.append(float(norm.item()))
        return value

    def run(self, checkpoint: str | None = None, quiet: bool = False, save_every: int = 0,
            log: Callable[[str], None] | None = None,
            on_step: Callable[["Trainer"], None] | None = None) -> History:
        """Train until ``config.steps`` steps are done, then save ``checkpoint`` (if given).

        Shows a progress bar with the running loss when stderr is a terminal (and not
        ``quiet``); otherwise, unless ``quiet``, prints a line at every tenth of the run.
        Saves every ``save_every`` steps too (0: only at the end); calls ``on_step(self)``
        after every step (e.g. ``spectrum.SpectrumTracker``). On SIGINT/SIGTERM:
        finishes the current step, saves, and raises :class:`TrainingInterrupted`.
        Before the first step, checks that ``checkpoint`` can be written and locks it
        (:class:`tinygrad_rnn.rundir.OutputError` if not, or if another process holds it).
        """
        # An unusable output fails now, not after the training; the lock keeps other runs out.
        lock = CheckpointLock(checkpoint) if checkpoint else contextlib.nullcontext()
        with lock, backend.blas_threads(), _setup_hidden_from_collector():
            self._run(checkpoint, quiet, save_every,
                      log or (lambda line: print(line, file=sys.stderr)), on_step)
        return self.history

    def _run(self, checkpoint: str | None, quiet: bool, save_every: int,
             log: Callable[[str], None], on_step: Callable[["Trainer"], None] | None) -> None:
        total = _filled(self.config.steps)
        bar = _progress_bar(self, total, disable=quiet or not sys.stderr.isatty())
        report_every = max(1, total // 10) if not quiet and bar.disable else 0
        running = None
        with _StopOnSignals() as stop:
            try:
                while self.step < total and stop.signum is None:
                    started = time.perf_counter()
                    loss = self.train_step()
                    self.seconds += time.perf_counter() - started
                    if on_step is not None:
                        on_step(self)
                    running = loss if running is None else 0.95 * running + 0.05 * loss
                    bar.update(1)
                    if self.step % 10 == 0 or self.step == total:
                        bar.set_postfix_str(f"loss {running:.4g}", refresh=False)
                    if report_every and (self.step % report_every == 0 or self.step == total):
                        log(f"step {self.step}/{total}  loss {running:.4g}")
                    if checkpoint and save_every and self.step % save_every == 0:
                        self.save(checkpoint)
            finally:
                bar.close()
        if checkpoint:
            self.save(checkpoint)
        if stop.signum is not None and self.step < total:
            raise TrainingInterrupted(stop.signum, self.step, checkpoint)

    def evaluate(self) -> Metric:
        """The task's held-out metric for the current model, with the baseline's."""
        with backend.blas_threads():
            return self.task.evaluate(self.model)

    # ---------------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        """Everything needed to continue exactly, as nested dicts of arrays and numbers."""
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "config": self.config.to_dict(), "task": self.task.config(),
                "step": self.step, "seconds": self.seconds, "backend": backend.name,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "history": self.history.to_state()}

    def save(self, path: str) -> None:
        """Write a checkpoint (atomically: an interrupted save keeps the previous file)."""
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        save(self.state(), path)

    @classmethod
    def from_checkpoint(cls, path: str, **overrides) -> "Trainer":
        """Continue the run saved at ``path``. ``overrides`` may change only
        :data:`RESUMABLE_OVERRIDES` (e.g. ``steps=`` to train longer); anything else that
        differs from the checkpoint, or a total of steps below those already done, raises
        :class:`TrainingError`."""
        state = read_checkpoint(path)
        # Checkpoints written before the cell option existed are Elman RNNs.
        saved = TrainConfig.from_dict({"cell": "rnn", **state["config"]})
        task = overrides.pop("task", None)
        if task is not None and task != saved.task:
            raise TrainingError(f"checkpoint {path!r} is for task {saved.task!r}, not {task!r}")
        config = _apply_overrides(saved, overrides, path)
        trainer = cls(config)
        _check_same_task(state["task"], trainer.task.config(), path)
        try:
            trainer.model.load_state_dict(state["model"])
            trainer.optimizer.load_state_dict(state["optimizer"])
            _load_scheduler(trainer, state.get("scheduler"), path)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise TrainingError(f"checkpoint {path!r} does not fit the model it describes: "
                                + " ".join(str(exc).split())) from None
        trainer.step = state["step"]
        if _filled(trainer.config.steps) < trainer.step:  # would train nothing, yet record it
            total = trainer.config.steps
            asked = (f"--epochs {overrides['epochs']} ({total} steps)" if overrides.get("epochs")
                     else f"--steps {total}")
            raise TrainingError(f"checkpoint {path!r} is already at step {trainer.step}; {asked} "
                                "asks for fewer (--steps and --epochs are totals): give a "
                                "larger total to train longer")
        trainer.seconds = float(state.get("seconds", 0.0))
        trainer.history = History.from_state(state["history"])
        return trainer


def _load_scheduler(trainer: Trainer, saved, path: str) -> None:
    """Restore the schedule exactly; it was planned for the saved number of steps, so a
    resume that changes ``--steps`` would no longer follow it."""
    if trainer.scheduler is None:
        return
    planned = {k: v for k, v in vars(trainer.scheduler).items()
               if k in ("T_max", "step_size", "total_steps")}
    trainer.scheduler.load_state_dict(saved)
    if any(getattr(trainer.scheduler, k) != v for k, v in planned.items()):
        raise TrainingError(f"checkpoint {path!r} follows a --lr-schedule "
                            f"{trainer.config.lr_schedule} planned for a different number of "
                            "steps; resume with the original --steps")


def read_checkpoint(path: str) -> dict[str, Any]:
    """Load a training checkpoint, checking that it is one and that nothing is missing."""
    what = describe_non_regular(path)
    if what is not None:
        raise TrainingError(f"--resume {path!r} is {what}; expected a checkpoint file (e.g. "
                            "runs/sine/checkpoint.npz)")
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    state = load(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"{path!r} is not a training checkpoint (one written by "
                            "`python -m tinygrad_rnn train`)")
    if state.get("version") != CHECKPOINT_VERSION:
        raise TrainingError(f"checkpoint {path!r} has version {state.get('version')!r}; this "
                            f"tinygrad_rnn reads version {CHECKPOINT_VERSION}")
    problem = _checkpoint_problem(state)
    if problem:
        raise TrainingError(f"checkpoint {path!r} is damaged: {problem}")
    return state


def _checkpoint_problem(state: dict[str, Any]) -> str | None:
    """What is missing or malformed in a training checkpoint (None if nothing)."""
    for key in ("config", "task", "model", "optimizer", "history"):
        if not isinstance(state.get(key), dict):
            return f"its {key!r} entry is missing" if key not in state else \
                f"its {key!r} entry is a {type(state[key]).__name__}, not a dict"
    if not isinstance(state["config"].get("task"), str):
        return "its configuration names no task"
    step = state.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        return f"its step counter is {step!r}, not an integer >= 0"
    seconds = state.get("seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return f"its training time is {seconds!r}, not a number"
    history = state["history"]
    for key in ("loss", "grad_norm"):
        values = history.get(key)
        if values is None or getattr(values, "ndim", None) != 1:
            return f"its history has no {key!r} record"
        if values.shape[0] != step:
            return (f"its history records {values.shape[0]} values of {key!r} for "
                    f"{step} steps")
    return None


def _check_same_task(saved: dict[str, Any], now: dict[str, Any], path: str) -> None:
    """The task settings stored in a checkpoint against those the resumed run gets; a
    setting the checkpoint does not record (an older version wrote it) is not compared."""
    differing = [key for key in saved.keys() & now.keys() if saved[key] != now[key]]
    differing += [key for key in saved.keys() - now.keys()]
    if not differing:
        return
    if "corpus_sha256" in differing:
        raise TrainingError(
            f"checkpoint {path!r} was trained on a different text (SHA-256 "
            f"{saved['corpus_sha256'][:12]}..., now {now['corpus_sha256'][:12]}... from "
            f"{now.get('text') or 'the generated corpus'}); resuming on other text would not "
            "continue the same run: restore that text, or start a new run")
    changes = ", ".join(f"{key} {saved.get(key)!r} -> {now.get(key)!r}"
                        for key in sorted(differing))
    raise TrainingError(f"checkpoint {path!r} was made with other task settings ({changes})")


def _apply_overrides(saved: TrainConfig, overrides: dict[str, Any], path: str) -> TrainConfig:
    """``saved`` with the allowed ``overrides``; a differing value of any other setting is an
    error (it would change the computation, so the run would not continue the same one)."""
    changes = {}
    if saved.cell != "rnn" and overrides.get("nonlinearity") is not None:
        check_cell(_filled(saved.cell), overrides["nonlinearity"])    # the clearer message
    for name, value in overrides.items():
        if name == "text" and value is not None:
            value = os.path.abspath(value)        # the checkpoint stores absolute paths
        if value is None or value == getattr(saved, name):
            continue
        if name not in RESUMABLE_OVERRIDES:
            raise TrainingError(
                f"--{name.replace('_', '-')} {value} conflicts with checkpoint {path!r}, which "
                f"was trained with {name}={getattr(saved, name)!r}; leave it out to resume")
        changes[name] = value
    if "epochs" in changes:
        changes["steps"] = None   # recomputed from the epochs by resolved()
    elif "steps" in changes:
        changes["epochs"] = None
    return dataclasses.replace(saved, **changes)


# ------------------------------------------------------------------------------ helpers

@contextlib.contextmanager
def _setup_hidden_from_collector():
    """Hide every object made before the run (the imported libraries, the model, the data)
    from Python's cyclic garbage collector until the run ends (``gc.freeze``).

    None of them becomes garbage while training; but an unrolled layer's graph, thousands of
    objects per step, keeps setting off full collections, and each would scan them all: in a
    process that has imported torch, that is about a third of a step at T = 2000, and a step
    gets slower per time step as T grows (``benchmarks/unrolled_gc.py --torch --freeze``
    shows it gone). A caller that has frozen objects itself manages the collector: left alone.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _progress_bar(trainer: Trainer, total: int, disable: bool):
    """A tqdm bar over the steps, starting at the steps already done."""
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=trainer.step, disable=disable, unit="step",
                desc=trainer.config.task, dynamic_ncols=True, leave=True)


class _StopOnSignals:
    """Within the block, SIGINT and SIGTERM set ``signum`` instead of killing the process,
    so the loop can stop cleanly between two steps. A second SIGINT raises
    KeyboardInterrupt at once. Does nothing outside the main thread (where Python does not
    allow installing handlers)."""

    SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt      # asked twice: stop now
        self.signum = signum

    def __enter__(self) -> "_StopOnSignals":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> Literal[False]:  # never swallows the exception
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False


# ------------------------------------------------------------------------------- train

@dataclass
class TrainResult:
    """What :func:`train` returns."""
    trainer: Trainer
    metric: Metric
    seconds: float            # wall-clock time of this call: build, train and evaluate
    resumed_from: int         # the step the run started from (0 when fresh)

    @property
    def history(self) -> History:
        return self.trainer.history


def train(config: TrainConfig | None = None, *, resume: str | None = None,
          checkpoint: str | None = None, quiet: bool = False, save_every: int = 0,
          log: Callable[[str], None] | None = None,
          on_step: Callable[[Trainer], None] | None = None, **overrides) -> TrainResult:
    """Train a task's model from scratch (``config``) or from a checkpoint (``resume``, with
    ``overrides`` such as ``steps=``), save ``checkpoint``, and evaluate it.

    Raises :class:`TrainingInterrupted` (after saving) on Ctrl-C or SIGTERM.
    """
    started = time.perf_counter()
    if (config is None) == (resume is None):
        raise ValueError("train: pass either a TrainConfig or resume=CHECKPOINT")
    if resume is not None:
        trainer = Trainer.from_checkpoint(resume, **overrides)
    else:
        assert config is not None  # exactly one of the two, checked above
        trainer = Trainer(dataclasses.replace(config, **overrides))
    start = trainer.step
    trainer.run(checkpoint=checkpoint, quiet=quiet, save_every=save_every, log=log,
                on_step=on_step)
    metric = trainer.evaluate()
    return TrainResult(trainer, metric, time.perf_counter() - started, start)
