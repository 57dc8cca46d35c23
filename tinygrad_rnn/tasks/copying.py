"""``copy``: remember a string of symbols, wait, then recall it (a memory task).

Input (one-hot, ``symbols + 2`` channels): ``seq_len`` random symbols, ``delay`` blanks, a
"go" marker, then ``seq_len - 1`` more blanks. From the "go" step on the model must output the
remembered symbols, in order::

    input   3 1 4 1 5  _ _ _ _ _  ▶ _ _ _ _        (_ blank, ▶ go)
    target  . . . . .  . . . . .  3 1 4 1 5        (. not scored)

Only the recall steps count in the loss and the metric. Metric: per-symbol accuracy on the
recalled part of held-out sequences, against chance (``1 / symbols``), which is all a model
without memory can do since the symbols are drawn uniformly and independently.
"""
from __future__ import annotations

from .. import backend
from ..nn import functional as F
from ..nn.module import Module
from ..tensor import Tensor
from .base import TEST_STREAM, TRAIN_STREAM, Defaults, Metric, Task, generator, to_tensor

np = backend.np  # host NumPy: the data is generated on the CPU, then moved to the backend


class CopyTask(Task):
    name = "copy"
    summary = "recall a string of seq_len symbols after a delay (per-symbol accuracy)"
    defaults = Defaults(steps=2000, batch_size=64, seq_len=5, hidden=128, lr=3e-3, clip=1.0)
    readout = "all"
    test_size = 1000

    def __init__(self, seed: int = 0, batch_size: int | None = None,
                 seq_len: int | None = None, symbols: int = 8, delay: int = 10):
        super().__init__(seed, batch_size, seq_len)
        if not isinstance(symbols, int) or symbols < 2:
            raise ValueError(f"copy: symbols must be an integer >= 2, got {symbols!r}")
        if not isinstance(delay, int) or delay < 0:
            raise ValueError(f"copy: delay must be a non-negative integer, got {delay!r}")
        self.symbols, self.delay = symbols, delay

    @property
    def blank(self) -> int:
        return self.symbols

    @property
    def go(self) -> int:
        return self.symbols + 1

    @property
    def input_size(self) -> int:
        return self.symbols + 2          # the symbols, blank and go

    @property
    def output_size(self) -> int:
        return self.symbols

    @property
    def time_steps(self) -> int:
        """Time steps per sequence: the string, the delay, then the recall."""
        return 2 * self.seq_len + self.delay

    def config(self) -> dict:
        return {**super().config(), "symbols": self.symbols, "delay": self.delay}

    def examples(self, rng, n: int) -> tuple[Tensor, Tensor]:
        """``x`` one-hot ``(n, time_steps, symbols + 2)``; ``y`` ``(n, seq_len)`` the symbols
        to recall (int64)."""
        string = rng.integers(0, self.symbols, size=(n, self.seq_len))
        codes = np.full((n, self.time_steps), self.blank)
        codes[:, :self.seq_len] = string
        codes[:, self.seq_len + self.delay] = self.go
        x = np.eye(self.input_size)[codes]
        return to_tensor(x), to_tensor(string)

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        return self.examples(generator(self.seed, TRAIN_STREAM, step), self.batch_size)

    def test_set(self) -> tuple[Tensor, Tensor]:
        return self.examples(generator(self.seed, TEST_STREAM), self.test_size)

    def recalled(self, output: Tensor) -> Tensor:
        """The logits of the recall steps: ``(N, time_steps, symbols)`` → ``(N, seq_len,
        symbols)``."""
        return output[:, -self.seq_len:]

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        logits = self.recalled(output).reshape(-1, self.symbols)     # (N * seq_len, symbols)
        return F.cross_entropy(logits, target.reshape(-1))

    def evaluate(self, model: Module) -> Metric:
        x, y = self.test_set()
        guesses = self.recalled(self.predict(model, x)).argmax(axis=-1).numpy()
        accuracy = float((guesses == y.numpy()).mean())
        return Metric("recall accuracy", accuracy, 1.0 / self.symbols, "chance",
                      higher_is_better=True)

    def plot(self, ax, model: Module) -> None:
        x, y = self.test_set()
        rows = 12
        guesses = self.recalled(self.predict(model, x[:rows])).argmax(axis=-1).numpy()
        correct = guesses == y.numpy()[:rows]
        ax.imshow(correct, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
        for (i, j), symbol in np.ndenumerate(guesses):
            ax.text(j, i, str(symbol), ha="center", va="center", fontsize=8)
        ax.set(title="copy: recalled symbols (green = correct)", xlabel="recall position",
               ylabel="held-out sequence")
