"""Vanishing and exploding gradients, measured: tanh vs ReLU, small vs large W_hh.

Backpropagation through time multiplies the gradient by one Jacobian per step on its way
back from the loss at step T to the hidden state at step t:

    ∂L/∂h_t = ∂L/∂h_T · ∂h_T/∂h_t,    ∂h_T/∂h_t = Π_{s=t+1..T} diag(f'(a_s)) W_hh

If those factors shrink vectors, the gradient vanishes geometrically with T - t; if they
stretch them, it explodes. Two knobs decide which: the size of W_hh (its spectral radius)
and the nonlinearity (tanh' ≤ 1 and saturates; ReLU' is 0 or 1, so ReLU passes W_hh through).

This script builds four RNNs (tanh / ReLU × small / large W_hh), puts the loss on the last
step only, and records ‖∂L/∂h_t‖ for every t with ``bptt.trace``. It prints a table and, with
matplotlib installed, writes runs/examples/vanishing_gradients.png.

Run it:  python examples/vanishing_gradients.py      (about a second)
The same study from the command line:  python -m tinygrad_rnn bptt --init-scale 2
"""
import os

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, bptt, nn
from tinygrad_rnn.backend import np  # host NumPy, for printing

T, N, H, INPUTS = 60, 8, 32, 4       # time steps, batch, hidden units, input features
SCALES = {"small W_hh (x0.5)": 0.5, "large W_hh (x4)": 4.0}
tg.set_default_dtype("float64")      # gradients of 1e-40 would underflow to 0 in float32

# The same random input for every network.
tg.manual_seed(0)
x = Tensor.randn(T, N, INPUTS)
readout = Tensor.randn(H) / np.sqrt(H)


def gradient_through_time(nonlinearity, scale):
    """‖∂L/∂h_t‖ for t = 1..T, and the spectral radius of W_hh."""
    tg.manual_seed(1)                          # same seed: the same weights for every network
    rnn = nn.RNN(INPUTS, H, nonlinearity=nonlinearity)
    bptt.scale_recurrent_weights_(rnn, scale)  # W_hh ← scale · W_hh
    with bptt.trace(rnn) as tr:                # records h_t, then ∂L/∂h_t during backward
        output, _ = rnn(x)
        loss = (output[-1] @ readout).mean()   # the loss only sees the last step
    loss.backward()
    return tr.grad_norms()[0], bptt.spectral_radius(rnn.weight_hh_l0)


results = {}
for panel, scale in SCALES.items():
    for f in ("tanh", "relu"):
        results[panel, f] = gradient_through_time(f, scale)

# A table: the gradient at a few steps, relative to where it entered (t = T).
steps = [T, T - 10, T - 30, 1]
print(f"‖∂L/∂h_t‖ / ‖∂L/∂h_T‖ for a loss on step T = {T} only")
print(f"{'':24s}{'ρ(W_hh)':>9s}" + "".join(f"{'t=' + str(t):>11s}" for t in steps))
for (panel, f), (norms, radius) in results.items():
    relative = [norms[t - 1] / norms[-1] for t in steps]
    print(f"{panel + ', ' + f:24s}{radius:9.2f}" + "".join(f"{r:11.2e}" for r in relative))

print("""
Reading it:
* small W_hh: every factor shrinks the gradient; after 59 steps almost nothing is left of it,
  so the loss cannot teach the network anything about the first inputs (vanishing);
* large W_hh with ReLU: f' = 1 on the active units, so W_hh's growth passes straight through
  and the gradient explodes (clip it: nn.utils.clip_grad_norm_);
* large W_hh with tanh: it grows too, but far more slowly: large W_hh drives the units into
  saturation, where f' = 1 - h² is small and holds the gradient back.""")

# The plot: one panel per W_hh scale, log scale on the y-axis.
try:
    from tinygrad_rnn import viz
    panels = {panel: {f: results[panel, f][0] for f in ("tanh", "relu")} for panel in SCALES}
    path = os.path.join("runs", "examples", "vanishing_gradients.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    viz.plot_norms(panels, path, ylabel="‖∂L/∂h_t‖ (log scale)",
                   title=f"Gradient reaching h_t from a loss on step {T}")
    print(f"\nplot written to {path}")
except ImportError as exc:                     # matplotlib is optional
    print(f"\n(no plot: {exc})")
