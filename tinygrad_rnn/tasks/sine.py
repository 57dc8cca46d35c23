"""``sine``: next-value prediction on noisy sine waves (sequence to sequence).

Each sequence is ``s_t = A sin(ω t + φ) + ε_t`` with a random amplitude ``A``, angular
frequency ``ω`` (radians per step) and phase ``φ`` per sequence, and Gaussian noise ``ε``.
At every step the model sees ``s_t`` and predicts ``s_{t+1}`` (the seeds' ``SimpleRNN``:
RNN + Linear on every step). To do better than repeating the last value it must work out
where on the wave it is and how fast the wave turns, which takes a few steps of memory.

Metric: mean squared error on held-out waves, against the baseline "predict the previous
value" (``ŷ_{t+1} = s_t``). The noise sets a floor no model can beat: ``noise²``.
"""
from __future__ import annotations

from .. import backend
from ..nn import functional as F
from ..nn.module import Module
from ..tensor import Tensor
from .base import TEST_STREAM, TRAIN_STREAM, Defaults, Metric, Task, generator, to_tensor

np = backend.np  # host NumPy: the data is generated on the CPU, then moved to the backend


class SineTask(Task):
    name = "sine"
    summary = "noisy sine waves: predict the next value at every step (seq-to-seq, MSE)"
    defaults = Defaults(steps=2000, batch_size=32, seq_len=40, hidden=32, lr=1e-2, clip=1.0)
    readout = "all"

    noise = 0.05                   # standard deviation of ε
    omega_range = (0.15, 0.6)      # radians per step: periods of about 10 to 40 steps
    amplitude_range = (0.5, 1.0)
    test_size = 256                # held-out waves for the metric

    @property
    def input_size(self) -> int:
        return 1

    @property
    def output_size(self) -> int:
        return 1

    def waves(self, rng, n: int):
        """``n`` noisy waves of ``seq_len + 1`` samples: host array ``(n, seq_len + 1)``."""
        amplitude = rng.uniform(*self.amplitude_range, size=(n, 1))
        omega = rng.uniform(*self.omega_range, size=(n, 1))
        phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
        t = np.arange(self.seq_len + 1)
        clean = amplitude * np.sin(omega * t + phase)
        return clean + self.noise * rng.standard_normal(clean.shape)

    def split(self, waves) -> tuple[Tensor, Tensor]:
        """Inputs ``s_1..s_L`` and targets ``s_2..s_{L+1}``, both ``(n, L, 1)``."""
        return to_tensor(waves[:, :-1, None]), to_tensor(waves[:, 1:, None])

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """``x``, ``y``: ``(batch_size, seq_len, 1)``; ``y[:, t] = x[:, t + 1]``."""
        return self.split(self.waves(generator(self.seed, TRAIN_STREAM, step), self.batch_size))

    def test_set(self) -> tuple[Tensor, Tensor]:
        return self.split(self.waves(generator(self.seed, TEST_STREAM), self.test_size))

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(output, target)

    def evaluate(self, model: Module) -> Metric:
        x, y = self.test_set()
        mse = F.mse_loss(self.predict(model, x), y).item()
        previous = F.mse_loss(x, y).item()        # the baseline predicts ŷ_{t+1} = s_t
        return Metric("test MSE", mse, previous, "predict the previous value",
                      higher_is_better=False)

    def plot(self, ax, model: Module) -> None:
        x, y = self.test_set()
        prediction = self.predict(model, x[:1]).numpy()[0, :, 0]
        t = np.arange(1, self.seq_len + 1)
        ax.plot(t, y.numpy()[0, :, 0], "k.", label="next value (target)")
        ax.plot(t, prediction, "C1-", label="model prediction")
        ax.plot(t, x.numpy()[0, :, 0], "C0:", alpha=0.6, label="previous value (baseline)")
        ax.set(title="sine: one held-out wave", xlabel="time step", ylabel="value")
        ax.legend(loc="lower left", fontsize="small")
