"""``health``: flag patients whose vital signs deteriorate over a day (the seeds' setting).

Each of N people has 24 hourly readings (``seq_len`` hours) of two vitals, breathing rate
(breaths/min) and systolic blood pressure (mmHg): a tensor ``(N, 24, 2)``, as in the seed
notebook. A person's readings wander around their own resting values; some people go through
a sustained deterioration (breathing speeds up, or blood pressure sinks, from some hour on),
others have a short spike that settles again. The label is a rule on the readings
themselves, in the spirit of early-warning scores::

    at risk (1)  if  mean(breathing, last 6 h) - mean(breathing, first 6 h) > 3 breaths/min
                 or  mean(pressure, first 6 h) - mean(pressure, last 6 h)  > 15 mmHg
    else 0

An RNN reads the 24 hours in order and classifies from its last hidden state (cross
entropy over the two classes). It has to remember the first hours to compare them with the
last ones: one reading alone says little, since resting values differ between people.

Metric: accuracy on held-out people, against the majority class of the training set.
"""
from __future__ import annotations

from .. import backend
from ..nn import functional as F
from ..nn.module import Module
from ..tensor import Tensor
from .base import (
    DATA_STREAM,
    TEST_STREAM,
    TRAIN_STREAM,
    Defaults,
    Metric,
    Task,
    generator,
    to_tensor,
)

np = backend.np  # host NumPy: the data is generated on the CPU, then moved to the backend

WINDOW = 6                      # hours averaged at the start and at the end of the day
BREATHING_RISE = 3.0            # breaths/min
PRESSURE_DROP = 15.0            # mmHg


def at_risk(breathing, pressure):
    """The labelling rule, on host arrays ``(N, hours)``: ``(N,)`` int64 in {0, 1}."""
    rise = breathing[:, -WINDOW:].mean(1) - breathing[:, :WINDOW].mean(1)
    drop = pressure[:, :WINDOW].mean(1) - pressure[:, -WINDOW:].mean(1)
    return ((rise > BREATHING_RISE) | (drop > PRESSURE_DROP)).astype(np.int64)


class HealthTask(Task):
    name = "health"
    summary = "24 hourly vitals (breathing, blood pressure) per person -> at risk? (accuracy)"
    defaults = Defaults(steps=6000, batch_size=32, seq_len=24, hidden=32, lr=3e-3, clip=1.0)
    readout = "last"
    people = 2000                   # size of the training set
    test_people = 1000

    def __init__(self, seed: int = 0, batch_size: int | None = None,
                 seq_len: int | None = None):
        super().__init__(seed, batch_size, seq_len)
        if self.seq_len < 2 * WINDOW:
            raise ValueError(f"health: seq_len (hours) must be at least {2 * WINDOW}, got "
                             f"{self.seq_len}")
        self.train_x, self.train_y = self.readings(generator(self.seed, DATA_STREAM),
                                                   self.people)

    @property
    def input_size(self) -> int:
        return 2

    @property
    def output_size(self) -> int:
        return 2

    def steps_per_epoch(self) -> int:
        return -(-self.people // self.batch_size)

    # ----------------------------------------------------------------------------- data
    def readings(self, rng, n: int):
        """``n`` people: host arrays ``x`` ``(n, hours, 2)`` (normalised) and labels ``(n,)``."""
        hours = np.arange(self.seq_len)
        breathing = rng.normal(16, 2, (n, 1)) + rng.normal(0, 1.0, (n, self.seq_len))
        pressure = rng.normal(120, 10, (n, 1)) + rng.normal(0, 4.0, (n, self.seq_len))
        # A sustained change from a random hour on: breathing up, or pressure down.
        onset = rng.integers(WINDOW, self.seq_len - 2, (n, 1))
        after = np.clip(hours - onset, 0, None)
        kind = rng.integers(0, 3, (n, 1))         # 0: none, 1: breathing, 2: pressure
        breathing += (kind == 1) * after * rng.uniform(0.2, 1.0, (n, 1))
        pressure -= (kind == 2) * after * rng.uniform(1.0, 5.0, (n, 1))
        # A short spike in the middle of the day that settles again (not a sustained rise).
        middle = rng.integers(WINDOW, self.seq_len - WINDOW + 1, (n, 1))
        spike = np.abs(hours - middle) < 2
        breathing += spike * (rng.random((n, 1)) < 0.3) * rng.uniform(3, 8, (n, 1))
        labels = at_risk(breathing, pressure)
        # Readings are fed to the network centred and scaled to about unit size.
        x = np.stack([(breathing - 16) / 4, (pressure - 120) / 20], axis=-1)
        return x, labels

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """People of step ``step``: each epoch visits the training set in a fresh order,
        drawn from (seed, epoch). ``x`` ``(batch_size, hours, 2)``, ``y`` ``(batch_size,)``."""
        epoch, i = divmod(step, self.steps_per_epoch())
        order = generator(self.seed, TRAIN_STREAM, epoch).permutation(self.people)
        picked = order[i * self.batch_size:(i + 1) * self.batch_size]
        return to_tensor(self.train_x[picked]), to_tensor(self.train_y[picked])

    def test_set(self) -> tuple[Tensor, Tensor]:
        x, y = self.readings(generator(self.seed, TEST_STREAM), self.test_people)
        return to_tensor(x), to_tensor(y)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output, target)

    def evaluate(self, model: Module) -> Metric:
        x, y = self.test_set()
        labels = y.numpy()
        accuracy = float((self.predict(model, x).argmax(axis=-1).numpy() == labels).mean())
        majority = int(self.train_y.mean() >= 0.5)
        return Metric("accuracy", accuracy, float((labels == majority).mean()),
                      f"always predict the majority class ({'at risk' if majority else 'fine'})",
                      higher_is_better=True)

    def plot(self, ax, model: Module) -> None:
        x, y = self.test_set()
        shown = 12
        predicted = self.predict(model, x[:shown]).argmax(axis=-1).numpy()
        breathing = x.numpy()[:shown, :, 0] * 4 + 16
        for person in range(shown):
            wrong = predicted[person] != y.numpy()[person]
            ax.plot(breathing[person], color="C3" if predicted[person] else "C2",
                    ls="--" if wrong else "-", lw=1)
        ax.set(title="health: breathing rate of held-out people\n"
                     "(red: flagged at risk, green: not; dashed: wrong)",
               xlabel="hour", ylabel="breaths/min")
