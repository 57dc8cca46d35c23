"""``adding``: Hochreiter & Schmidhuber's adding problem (1997), a test of long memory.

Each input step has two channels: a value drawn from U(0, 1) and a marker that is 1 at exactly
two steps (one in the first half of the sequence, one in the second half) and 0 elsewhere.
The target, read after the last step, is the sum of the two marked values. The model has to
notice the first marked value, keep it through many steps of distracting values, and add the
second one.

Metric: mean squared error on held-out sequences, against the baseline "always predict 1.0"
(the mean of the target), whose MSE is the variance of a sum of two U(0, 1): 2/12 ≈ 0.167.
Solving the problem is usually taken to mean an MSE well below that, e.g. < 0.01.
"""
from __future__ import annotations

from .. import backend
from ..nn import functional as F
from ..nn.module import Module
from ..tensor import Tensor
from .base import TEST_STREAM, TRAIN_STREAM, Defaults, Metric, Task, generator, to_tensor

np = backend.np  # host NumPy: the data is generated on the CPU, then moved to the backend


class AddingTask(Task):
    name = "adding"
    summary = "the adding problem: sum the two marked values of a long sequence (MSE)"
    defaults = Defaults(steps=5000, batch_size=64, seq_len=25, hidden=64, lr=3e-3, clip=1.0)
    readout = "last"
    test_size = 4000

    @property
    def input_size(self) -> int:
        return 2

    @property
    def output_size(self) -> int:
        return 1

    def examples(self, rng, n: int) -> tuple[Tensor, Tensor]:
        """``n`` sequences: ``x`` ``(n, seq_len, 2)`` (value, marker), ``y`` ``(n, 1)``."""
        if self.seq_len < 2:
            raise ValueError(f"adding: seq_len must be at least 2, got {self.seq_len}")
        values = rng.uniform(0.0, 1.0, size=(n, self.seq_len))
        half = self.seq_len // 2
        first = rng.integers(0, half, size=n)                 # one mark in the first half
        second = rng.integers(half, self.seq_len, size=n)     # one in the second half
        markers = np.zeros((n, self.seq_len))
        rows = np.arange(n)
        markers[rows, first] = markers[rows, second] = 1.0
        x = np.stack([values, markers], axis=-1)
        y = (values[rows, first] + values[rows, second])[:, None]
        return to_tensor(x), to_tensor(y)

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        return self.examples(generator(self.seed, TRAIN_STREAM, step), self.batch_size)

    def test_set(self) -> tuple[Tensor, Tensor]:
        return self.examples(generator(self.seed, TEST_STREAM), self.test_size)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(output, target)

    def evaluate(self, model: Module) -> Metric:
        x, y = self.test_set()
        mse = F.mse_loss(self.predict(model, x), y).item()
        baseline = F.mse_loss(Tensor.ones_like(y), y).item()   # always predict 1.0
        return Metric("test MSE", mse, baseline, "always predict 1.0", higher_is_better=False)

    def plot(self, ax, model: Module) -> None:
        x, y = self.test_set()
        target, prediction = y.numpy()[:200, 0], self.predict(model, x[:200]).numpy()[:, 0]
        ax.plot([0, 2], [0, 2], "k--", lw=1, label="perfect")
        ax.axhline(1.0, color="C0", ls=":", label="baseline (1.0)")
        ax.scatter(target, prediction, s=8, c="C1", label="model")
        ax.set(title="adding: held-out sums", xlabel="true sum", ylabel="predicted sum",
               xlim=(0, 2), ylim=(-0.2, 2.2))
        ax.legend(loc="upper left", fontsize="small")
