"""Teach an RNN to predict the next value of a noisy sine wave.

This is the seeds' ``SimpleRNN`` (an ``nn.RNN`` followed by an ``nn.Linear`` on every time
step), trained with a plain loop: make a batch, run the model, compute the loss, backward,
clip, step. ``python -m tinygrad_rnn train sine`` does the same with more bells and whistles.

Run it:  python examples/train_sine.py      (a few seconds on a laptop CPU)
"""
import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, optim
from tinygrad_rnn.backend import np  # host NumPy, for making data

tg.manual_seed(0)                      # the same initial weights on every run
rng = np.random.default_rng(0)         # the same waves on every run
N, L, H = 32, 40, 32                   # batch size, sequence length, hidden units


# ------------------------------------------------------------------------- the data
def waves(n):
    """n noisy sine waves with random amplitude, speed and phase.

    Returns x (n, L, 1): the wave at steps 1..L, and y (n, L, 1): the wave at steps 2..L+1,
    so y[:, t] is the value that follows x[:, t].
    """
    amplitude = rng.uniform(0.5, 1.0, size=(n, 1))
    omega = rng.uniform(0.15, 0.6, size=(n, 1))           # radians per step
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    t = np.arange(L + 1)
    s = amplitude * np.sin(omega * t + phase) + 0.05 * rng.standard_normal((n, L + 1))
    s = s.astype(np.float32)
    return Tensor(s[:, :-1, None]), Tensor(s[:, 1:, None])


# ------------------------------------------------------------------------ the model
class SimpleRNN(nn.Module):
    """x (N, L, 1) -> hidden states (N, L, H) -> a prediction at every step (N, L, 1)."""

    def __init__(self, hidden):
        super().__init__()
        self.rnn = nn.RNN(input_size=1, hidden_size=hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x):
        states, _ = self.rnn(x)           # h0 defaults to zeros; we don't need h_n
        return self.fc(states)            # Linear acts on the last axis: every step at once


model = SimpleRNN(H)
optimizer = optim.Adam(model.parameters(), lr=1e-2)
loss_fn = nn.MSELoss()
print(model)

# ------------------------------------------------------------------------- training
for step in range(1, 2001):
    x, y = waves(N)                        # a fresh batch every step
    optimizer.zero_grad()                  # forget the previous step's gradients
    loss = loss_fn(model(x), y)
    loss.backward()                        # backpropagation through time
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)   # tame rare big gradients
    optimizer.step()
    if step % 200 == 0:
        print(f"step {step:4d}  loss {loss.item():.4f}")

# ----------------------------------------------------------------------- evaluation
x, y = waves(500)                          # waves the model has never seen
with tg.no_grad():                         # no graph needed: we won't call backward
    model_mse = loss_fn(model(x), y).item()
baseline_mse = loss_fn(x, y).item()        # "the next value equals this one"
print(f"test MSE {model_mse:.4f}; predicting the previous value: {baseline_mse:.4f} "
      f"({baseline_mse / model_mse:.1f}x worse)")
print(f"noise floor (no model can beat it): 0.05**2 = {0.05 ** 2:.4f}")
