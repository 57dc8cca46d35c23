"""Truncated backpropagation through time (k1 = k2 = k) on one long sequence.

Full BPTT on a sequence of 600 steps keeps the graph of all 600 steps in memory and sends
every gradient back all the way to step 1. Truncated BPTT cuts the sequence into chunks of
k steps and, for each chunk:

1. runs the RNN on the k steps, starting from the hidden state the previous chunk ended in;
2. back-propagates the loss of these k steps and updates the weights;
3. carries the final hidden state into the next chunk *detached*: its value goes on (the
   network still sees one continuous sequence), its graph does not (the next backward stops
   at the chunk boundary: at most k steps of BPTT, and memory for k steps only).

Step 3 is the one people forget. This script shows what happens then, trains a next-value
predictor on long sine waves with truncated BPTT, and uses ``bptt.trace`` to show that no
gradient crosses a chunk boundary.

Run it:  python examples/truncated_bptt.py      (a few seconds)
"""
import textwrap

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, bptt, nn, optim
from tinygrad_rnn.backend import np  # host NumPy, for making data and printing
from tinygrad_rnn.nn import functional as F

tg.manual_seed(0)
L, N, K = 600, 16, 25                 # sequence length, batch, steps per chunk


# ------------------------------------------------------------------------- the data
# Long noisy sine waves with slowly drifting frequency; predict the next value at every step.
def long_waves(rng, n, length):
    omega = rng.uniform(0.1, 0.4, size=(n, 1)) + 0.05 * np.sin(np.arange(length + 1) / 80)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    wave = np.sin(np.cumsum(omega, axis=1) + phase) + 0.05 * rng.standard_normal((n, length + 1))
    wave = wave.astype(np.float32)
    return Tensor(wave[:, :-1, None]), Tensor(wave[:, 1:, None])   # (N, L, 1) each


rng = np.random.default_rng(0)
x, y = long_waves(rng, N, L)


class NextValue(nn.Module):
    """RNN + a Linear head on every step; ``forward`` also returns the final state."""

    def __init__(self, hidden=32):
        super().__init__()
        self.rnn = nn.RNN(1, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x, h=None):
        out, h_n = self.rnn(x, h)         # (N, k, H), (1, N, H)
        return self.fc(out), h_n


model = NextValue()

# ----------------------------------------------- 1. forgetting to detach: an error
chunk_pairs = zip(bptt.chunks(x, K, batch_first=True), bptt.chunks(y, K, batch_first=True))
first, second = next(chunk_pairs), next(chunk_pairs)
pred, h = model(first[0])
F.mse_loss(pred, first[1]).backward()          # frees the graph of chunk 1
pred, _ = model(second[0], h)                  # h still belongs to chunk 1's (freed) graph
try:
    F.mse_loss(pred, second[1]).backward()
except RuntimeError as exc:
    print("Without .detach(), chunk 2's backward walks into chunk 1's freed graph:")
    print(textwrap.indent(textwrap.fill(f"RuntimeError: {exc}", 88), "  "), "\n")
model.zero_grad()

# --------------------------------------------------------- 2. training with TBPTT
opt = optim.Adam(model.parameters(), lr=0.01)
for epoch in range(1, 13):
    h, losses = None, []                       # a new pass starts from h_0 = 0
    for x_k, y_k in zip(bptt.chunks(x, K, batch_first=True), bptt.chunks(y, K, batch_first=True)):
        pred, h = model(x_k, h)                # continue from where the last chunk ended
        loss = F.mse_loss(pred, y_k)
        opt.zero_grad()
        loss.backward()                        # BPTT through these K steps only
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        h = h.detach()                         # keep the value, drop the graph
        losses.append(loss.item())
    if epoch in (1, 2, 4, 8, 12):
        print(f"epoch {epoch:2d}: mean chunk loss {np.mean(losses):.4f}")

# Evaluate on fresh waves, carrying the state through the whole sequence (no graph needed).
x_test, y_test = long_waves(np.random.default_rng(1), 64, L)
with tg.no_grad():
    pred, _ = model(x_test)
print(f"held-out MSE {F.mse_loss(pred, y_test).item():.4f}  vs  'next = current' "
      f"{F.mse_loss(x_test, y_test).item():.4f}\n")

# ------------------------------------ 3. where the gradient goes: one trace, all chunks
# The loss of each chunk reads only its last step here, so the gradient has to travel back.
# bptt.trace joins the chunks of all forward calls along time.
h = None
with bptt.trace(model) as tr:
    for x_k in bptt.chunks(x[:, :4 * K], K, batch_first=True):
        pred, h = model(x_k, h)
        pred[:, -1].sum().backward()
        h = h.detach()
norms = tr.grad_norms()[0]                     # ‖∂L_chunk/∂h_t‖ for t = 1 … 4K
print(f"‖∂L/∂h_t‖ with the loss on the last step of each {K}-step chunk:")
for c in range(4):
    start, end = norms[c * K], norms[(c + 1) * K - 1]
    print(f"  chunk {c + 1} (t = {c * K + 1:3d} … {(c + 1) * K:3d}): "
          f"{end:.2e} at its last step → {start:.2e} at its first")
print("Each chunk's gradient starts fresh at its own last step and stops at its first:")
print("the detached state is a wall, which is exactly what 'truncated' means.")
