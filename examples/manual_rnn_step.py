"""What does nn.RNN actually compute? Recompute it by hand, then train a small model.

This is the lesson of the seed notebooks (shared/seeds/), with tinygrad_rnn alone:

1. build an ``nn.RNN`` and run it on a small batch;
2. recompute every hidden state by hand from its four parameters,
       h_t = tanh(x_t @ W_ihᵀ + b_ih + h_{t-1} @ W_hhᵀ + b_hh),
   and see that the numbers are the same;
3. train the notebooks' ``SimpleRNN`` (an RNN, then a Linear layer on every time step) to
   predict the next value of a sine wave, and watch the loss fall.

Run it:  python examples/manual_rnn_step.py      (a few seconds on a laptop CPU)
"""
import math

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, optim
from tinygrad_rnn.backend import np  # host NumPy, for making data and printing

tg.manual_seed(0)

# --------------------------------------------------------------------------------------
# 1. An RNN on a batch of 2 sequences, 3 steps each, 4 features per step.
#    batch_first=True: input is (batch, seq, feature), like seed notebook 001.
# --------------------------------------------------------------------------------------
rnn = nn.RNN(input_size=4, hidden_size=5, num_layers=1, batch_first=True)
x = Tensor(np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) / 10)
h0 = Tensor.zeros(1, 2, 5)                  # (num_layers * directions, batch, hidden)

output, h_n = rnn(x, h0)
print("output, the hidden state of every step:", output.shape)      # (2, 3, 5)
print("h_n, the hidden state of the last step:", h_n.shape)          # (1, 2, 5)
print(output)

# --------------------------------------------------------------------------------------
# 2. The same numbers by hand. The layer has exactly four parameters:
# --------------------------------------------------------------------------------------
for name, p in rnn.named_parameters():
    print(f"  {name:<13} {p.shape}")
W_ih, W_hh = rnn.weight_ih_l0, rnn.weight_hh_l0    # (5, 4) and (5, 5)
b_ih, b_hh = rnn.bias_ih_l0, rnn.bias_hh_l0        # (5,) and (5,)

h = h0[0]                                          # (batch, hidden)
by_hand = []
for t in range(3):
    x_t = x[:, t, :]                               # step t of every sequence: (batch, 4)
    h = (x_t @ W_ih.T + b_ih + h @ W_hh.T + b_hh).tanh()
    by_hand.append(h)
    diff = np.abs(h.numpy() - output[:, t, :].numpy()).max()
    print(f"step {t}: by hand {h.numpy()[0].round(4)}  nn.RNN {output[:, t].numpy()[0].round(4)}"
          f"  max difference {diff:.1e}")
    assert diff < 1e-6

# The last hidden state is h_n (one layer, one direction):
assert np.allclose(h_n[0].numpy(), by_hand[-1].numpy(), atol=1e-6)
print("h_n equals the last hand-computed state: yes\n")


# --------------------------------------------------------------------------------------
# 3. Training: the seed notebooks' SimpleRNN, predicting the next value of a sine wave.
# --------------------------------------------------------------------------------------
class SimpleRNN(nn.Module):
    """An RNN, then a Linear head applied to the hidden state of every time step."""

    def __init__(self, n_inputs, n_hidden, n_outputs):
        super().__init__()
        self.rnn = nn.RNN(n_inputs, n_hidden, batch_first=True)
        self.fc = nn.Linear(n_hidden, n_outputs)

    def forward(self, X):                          # X: (batch, seq, n_inputs)
        out, _ = self.rnn(X)                       # (batch, seq, n_hidden); h0 = zeros
        return self.fc(out)                        # (batch, seq, n_outputs)


def sine_batch(rng, batch=16, steps=30):
    """Sine waves with random phase and frequency; the target is the next value."""
    phase = rng.uniform(0, 2 * math.pi, size=(batch, 1))
    freq = rng.uniform(0.1, 0.3, size=(batch, 1))
    wave = np.sin(phase + freq * np.arange(steps + 1)).astype(np.float32)
    return Tensor(wave[:, :-1, None]), Tensor(wave[:, 1:, None])


model = SimpleRNN(n_inputs=1, n_hidden=16, n_outputs=1)
opt = optim.Adam(model.parameters(), lr=0.01)
loss_fn = nn.MSELoss()
rng = np.random.default_rng(0)

window = []
for step in range(1, 301):
    inputs, target = sine_batch(rng)
    opt.zero_grad()
    loss = loss_fn(model(inputs), target)
    loss.backward()                                # backpropagation through time
    opt.step()
    window.append(loss.item())
    if step == 1 or step % 50 == 0:
        print(f"step {step:3d}  mean loss of the last {len(window):2d} steps {np.mean(window):.5f}")
        window = []

# A baseline without memory: predict that the next value equals the current one.
inputs, target = sine_batch(rng, batch=256)
with tg.no_grad():
    model_loss = loss_fn(model(inputs), target).item()
copy_loss = loss_fn(inputs, target).item()
print(f"held-out batch: model {model_loss:.5f}, 'next = current' baseline {copy_loss:.5f}")
print("The sine's frequency is only visible over several steps: the hidden state carries it.")
