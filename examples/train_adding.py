"""The adding problem (Hochreiter & Schmidhuber, 1997): can an RNN remember a number?

Every time step brings two inputs: a random value in [0, 1) and a marker (0 or 1). Exactly
two steps are marked, one in each half of the sequence. After the last step the network must
output the sum of the two marked values. Guessing 1.0 (the average sum) every time gives a
mean squared error of about 0.167; a network that really remembers gets far below that.

The network reads the whole sequence and only its last hidden state goes to the Linear head
("sequence to one"). The gradient of the loss must therefore flow back through time to the
first marked step: that is backpropagation through time at work.

Run it:  python examples/train_adding.py      (about ten seconds on a laptop CPU)
"""
import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, optim
from tinygrad_rnn.backend import np  # host NumPy, for making data

tg.manual_seed(0)
rng = np.random.default_rng(0)
T, N, H = 25, 64, 64                   # sequence length, batch size, hidden units


# ------------------------------------------------------------------------- the data
def adding_batch(n):
    """x (n, T, 2): (value, marker) per step; y (n, 1): the sum of the two marked values."""
    values = rng.uniform(0, 1, size=(n, T))
    first = rng.integers(0, T // 2, size=n)            # a marked step in the first half
    second = rng.integers(T // 2, T, size=n)           # and one in the second half
    markers = np.zeros((n, T))
    rows = np.arange(n)
    markers[rows, first] = 1
    markers[rows, second] = 1
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second])[:, None].astype(np.float32)
    return Tensor(x), Tensor(y)


# ------------------------------------------------------------------------ the model
class Adder(nn.Module):
    """x (N, T, 2) -> RNN -> the last hidden state (N, H) -> Linear -> the sum (N, 1)."""

    def __init__(self, hidden):
        super().__init__()
        self.rnn = nn.RNN(input_size=2, hidden_size=hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x):
        states, _ = self.rnn(x)           # (N, T, H)
        return self.fc(states[:, -1])     # only the last step: the whole sequence was read


model = Adder(H)
optimizer = optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.MSELoss()

# ------------------------------------------------------------------------- training
# For a while the loss sits near 0.167 (the network predicts the average); then it finds out
# how to use the markers and the loss drops quickly.
running = None
for step in range(1, 5001):
    x, y = adding_batch(N)
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)   # BPTT can explode: clip
    optimizer.step()
    running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
    if step % 500 == 0:
        print(f"step {step:4d}  loss (running mean) {running:.4f}")

# ----------------------------------------------------------------------- evaluation
x, y = adding_batch(2000)
with tg.no_grad():
    prediction = model(x)
mse = loss_fn(prediction, y).item()
baseline = loss_fn(Tensor.ones_like(y), y).item()
print(f"test MSE {mse:.4f}; always answering 1.0: {baseline:.4f}")
print("solved (MSE < 0.01)!" if mse < 0.01 else "not solved yet: try more steps")
for i in range(3):
    print(f"  true sum {y.numpy()[i, 0]:.3f}   predicted {prediction.numpy()[i, 0]:.3f}")
