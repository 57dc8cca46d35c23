"""What every toy task provides, and the small helpers they share.

A task is a recipe for one learning problem. It knows how to

* make the training batch of any step: ``batch(step) -> (x, y)``. The batch is a pure function
  of ``(seed, step)`` (never of a global random generator that training has advanced), so a
  run resumed from a checkpoint at step ``s`` sees exactly the batches an uninterrupted run
  would have seen;
* build a model for it: ``make_model(hidden, layers, nonlinearity, unroll, cell)`` (an
  ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` with an ``nn.Linear`` head, see :mod:`.model`);
* score a model: ``loss(output, y)`` for training, and ``evaluate(model)`` for a held-out
  :class:`Metric` reported next to the metric of a trivial baseline;
* describe itself: ``defaults`` (hyper-parameters that train well in a few seconds),
  ``config()`` (what is needed to rebuild it, stored in checkpoints) and ``plot(ax, model)``
  (a prediction panel for ``plot.png``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .. import backend
from ..autograd import no_grad
from ..nn.module import Module
from ..nn.utils.rnn import PackedSequence
from ..tensor import Tensor
from .model import SequenceModel, check_cell

#: Evaluation runs the model on at most this many (sequence, time step) pairs at once, so
#: a model that trains can always be evaluated: the held-out set may be far larger than a
#: training batch (e.g. 4,000 sequences of 10,000 steps would need tens of GB in one go).
EVAL_CHUNK_STEPS = 1 << 18

#: Independent random streams of one task: training batches, the held-out test set, text
#: sampling, and the examples of a finite training set.
TRAIN_STREAM, TEST_STREAM, SAMPLE_STREAM, DATA_STREAM = 0, 1, 2, 3


def to_tensor(array) -> Tensor:
    """A host array as a Tensor on the active backend: floats in the default dtype (float32
    unless changed), integers as int64 class indices."""
    if array.dtype.kind == "f":
        return Tensor(array, dtype=backend.get_default_dtype())
    return Tensor(array, dtype="int64")


def generator(seed: int, *keys: int):
    """A host NumPy generator determined by ``seed`` and ``keys`` alone (e.g. the stream and
    the step): a fresh one per call, so no state has to be saved to resume."""
    return backend.np.random.default_rng([int(seed), *(int(k) for k in keys)])


@dataclass(frozen=True)
class Defaults:
    """A task's default hyper-parameters (every one can be overridden on the command line)."""
    steps: int
    batch_size: int
    seq_len: int
    hidden: int
    layers: int = 1
    nonlinearity: str = "tanh"
    lr: float = 1e-2
    optim: str = "adam"
    clip: float = 1.0


@dataclass(frozen=True)
class Metric:
    """A held-out score of the model next to the same score of a trivial baseline."""
    name: str                 # e.g. "test MSE", "accuracy", "bits/char"
    value: float              # the model's score
    baseline: float           # the trivial baseline's score
    baseline_name: str        # what the baseline does, e.g. "predict the previous value"
    higher_is_better: bool

    @property
    def beats_baseline(self) -> bool:
        return self.value > self.baseline if self.higher_is_better else self.value < self.baseline

    def describe(self) -> str:
        """One line: ``test MSE 0.0123 vs 0.0456 (predict the previous value): 3.7x lower``."""
        return (f"{self.name} {self.value:.4g} vs {self.baseline:.4g} ({self.baseline_name}): "
                f"{self.improvement()}")

    def improvement(self) -> str:
        """How much better than the baseline, in words (a ratio for errors, points for
        accuracies)."""
        if self.value == self.baseline:
            return "no better than the baseline"
        if self.higher_is_better:
            verdict = "better" if self.beats_baseline else "worse"
            return f"{self.value - self.baseline:+.4g} ({verdict})"
        if self.value <= 0:
            return "error reduced to 0"
        ratio = self.baseline / self.value
        return f"{ratio:.3g}x lower" if ratio >= 1 else f"{1 / ratio:.3g}x higher (worse)"


class Task:
    """Base class of the toy tasks; subclasses set the class attributes and the methods that
    raise ``NotImplementedError``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""          # one line, shown by ``train --help``
    defaults: ClassVar[Defaults]
    #: Extra constructor options the command line may pass (e.g. charlm's ``text``).
    options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, seed: int = 0, batch_size: int | None = None,
                 seq_len: int | None = None):
        self.seed = _non_negative_int("seed", seed)
        self.batch_size = _positive_int("batch_size", batch_size or self.defaults.batch_size)
        self.seq_len = _positive_int("seq_len", seq_len or self.defaults.seq_len)

    # ------------------------------------------------------------------------- to override
    @property
    def input_size(self) -> int:
        raise NotImplementedError

    @property
    def output_size(self) -> int:
        raise NotImplementedError

    @property
    def time_steps(self) -> int:
        """Length of the input sequences (the time axis of ``x``); ``seq_len`` unless a task
        defines ``seq_len`` otherwise (copy: symbols to recall)."""
        return self.seq_len

    #: "all": the head reads every time step (sequence to sequence); "last": only the last.
    readout: ClassVar[str] = "all"
    #: The network :meth:`make_model` builds (a task with its own input format subclasses it).
    model_class: ClassVar[type[SequenceModel]] = SequenceModel

    def batch(self, step: int) -> tuple[Tensor | PackedSequence, Tensor]:
        """Inputs and targets of training step ``step`` (deterministic in seed and step)."""
        raise NotImplementedError

    def test_set(self) -> tuple[Tensor | PackedSequence, Tensor]:
        """The held-out inputs and targets, for a task that has a fixed test set."""
        raise NotImplementedError

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def evaluate(self, model: Module) -> Metric:
        raise NotImplementedError

    def steps_per_epoch(self) -> int | None:
        """Steps that make one pass over a finite training set; None when every step draws
        fresh data (then "epochs" mean nothing and only ``steps`` count)."""
        return None

    def plot(self, ax, model: Module) -> None:
        """Draw a prediction panel on a matplotlib ``ax`` (no matplotlib import needed here)."""
        ax.set_axis_off()

    def report(self, model: SequenceModel) -> str:
        """Extra text for the end-of-run summary (e.g. generated text); empty by default."""
        return ""

    # ----------------------------------------------------------------------------- shared
    def make_model(self, hidden: int | None = None, layers: int | None = None,
                   nonlinearity: str | None = None, unroll: bool = False,
                   cell: str = "rnn") -> SequenceModel:
        """A recurrent layer (batch_first) with an ``nn.Linear`` head, sized for this task:
        ``cell="rnn"`` an ``nn.RNN`` (``nonlinearity`` tanh or relu, default the task's),
        ``"lstm"`` an ``nn.LSTM``, ``"gru"`` an ``nn.GRU`` (no ``nonlinearity`` then: a
        ``ValueError``). Weights come from the global seeded generator: call
        ``tinygrad_rnn.manual_seed`` first for reproducible weights."""
        d = self.defaults
        check_cell(cell, nonlinearity)
        if cell == "rnn":
            nonlinearity = nonlinearity or d.nonlinearity
        return self.model_class(self.input_size, hidden or d.hidden, self.output_size,
                             num_layers=layers or d.layers, nonlinearity=nonlinearity,
                             unroll=unroll, readout=self.readout, cell=cell)

    def config(self) -> dict[str, Any]:
        """What rebuilds this task: ``type(task)(**task.config())`` (JSON-able values)."""
        return {"seed": self.seed, "batch_size": self.batch_size, "seq_len": self.seq_len}

    def predict(self, model: Module, x: Tensor | PackedSequence) -> Tensor:
        """The model's output for ``x`` ``(N, L, features)`` in evaluation mode, without
        recording a graph. The sequences are run in chunks of at most
        :data:`EVAL_CHUNK_STEPS` time steps in all (each sequence is independent of the
        others, so the chunks' outputs joined are the output for the whole batch)."""
        was_training = model.training
        model.eval()
        try:
            with no_grad():
                if not isinstance(x, Tensor):  # a PackedSequence: its rows interleave sequences
                    return model(x)
                per_chunk = max(1, EVAL_CHUNK_STEPS // max(1, x.shape[1] if x.ndim > 1 else 1))
                if x.shape[0] <= per_chunk:
                    return model(x)
                return Tensor.cat([model(x[i:i + per_chunk])
                                   for i in range(0, x.shape[0], per_chunk)])
        finally:
            model.train(was_training)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _non_negative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value
