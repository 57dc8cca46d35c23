# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Backpropagation through time, by hand
#
# `nn.RNN` exists twice: `unroll=True` builds one small graph per time step out of primitive
# ops, and autograd does BPTT by walking it; `unroll=False` (the default, *fused*) runs the
# loop on raw arrays and records one node whose backward is BPTT written out by hand. Here we
# derive that backward pass, compute it with NumPy, and check it against both.
#
# Forward, for $t = 1 \dots T$: $a_t = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}$,
# $h_t = \tanh(a_t)$. Let $g_t = \partial L / \partial h_t$ be the gradient that reaches
# $h_t$ *directly* from the loss (through the output at step $t$). Then $h_t$ also feeds
# $a_{t+1}$, so its total gradient is
#
# $$\delta h_t = g_t + \delta a_{t+1} W_{hh}, \qquad \delta a_t = \delta h_t \odot (1 - h_t^2),
# \qquad \delta a_{T+1} = 0,$$
#
# computed from $t = T$ down to $1$. The parameters are shared by every step, so their
# gradients are sums over time:
#
# $$\frac{\partial L}{\partial W_{ih}} = \sum_t \delta a_t^\top x_t,\quad
# \frac{\partial L}{\partial W_{hh}} = \sum_t \delta a_t^\top h_{t-1},\quad
# \frac{\partial L}{\partial b_{ih}} = \frac{\partial L}{\partial b_{hh}} = \sum_t \sum_n \delta a_t.$$

# %%
import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.backend import np

tg.set_default_dtype("float64")
T, N, H_in, H = 8, 3, 2, 4
tg.manual_seed(0)
x = Tensor.randn(T, N, H_in)              # (L, N, H_in), time-major
w = Tensor.randn(T, N, H)                 # a random weight per output: L = Σ output ⊙ w

def gradients(unroll):
    tg.manual_seed(1)                      # the same weights for both implementations
    rnn = nn.RNN(H_in, H, unroll=unroll)
    output, _ = rnn(x)
    (output * w).sum().backward()
    return rnn, output.numpy(), {n: p.grad.numpy() for n, p in rnn.named_parameters()}

rnn, hs, fused = gradients(unroll=False)
_, _, unrolled = gradients(unroll=True)

# %% [markdown]
# ## The backward sweep with NumPy
# With $L = \sum_t \sum_n \text{output}_t \odot w_t$, the direct gradient is $g_t = w_t$.

# %%
W_hh = rnn.weight_hh_l0.numpy()
xs, g = x.numpy(), w.numpy()
h_prev = np.concatenate([np.zeros((1, N, H)), hs[:-1]])   # h_{t-1}, with h_0 = 0
delta_a = np.zeros((T, N, H))
carry = np.zeros((N, H))                                   # δa_{t+1} W_hh
for t in reversed(range(T)):
    delta_h = g[t] + carry
    delta_a[t] = delta_h * (1 - hs[t] ** 2)
    carry = delta_a[t] @ W_hh

by_hand = {
    "weight_ih_l0": np.einsum("tnh,tni->hi", delta_a, xs),
    "weight_hh_l0": np.einsum("tnh,tnk->hk", delta_a, h_prev),
    "bias_ih_l0": delta_a.sum(axis=(0, 1)),
    "bias_hh_l0": delta_a.sum(axis=(0, 1)),
}
for name in by_hand:
    print(f"{name:13s} by hand vs fused {np.abs(by_hand[name] - fused[name]).max():.1e}"
          f"   fused vs unrolled {np.abs(fused[name] - unrolled[name]).max():.1e}")

# %% [markdown]
# ## Where the gradient goes through time
# $\|\delta h_t\|$ is the size of the gradient that reaches step $t$. `bptt.trace` records
# the same quantity from inside the layer, for either implementation.

# %%
from tinygrad_rnn import bptt

tg.manual_seed(1)
traced = nn.RNN(H_in, H)
with bptt.trace(traced) as tr:
    out, _ = traced(x)
(out * w).sum().backward()
delta_h_by_hand = np.stack([delta_a[t] / (1 - hs[t] ** 2) for t in range(T)])
trace_difference = float(np.abs(tr.grads[0] - delta_h_by_hand).max())
print("‖δh_t‖ per step:", np.linalg.norm(delta_h_by_hand.reshape(T, -1), axis=1).round(3))
print(f"bptt.trace vs by hand: {trace_difference:.1e}")

# %%
key_numbers = {
    "hand_vs_fused": max(float(np.abs(by_hand[k] - fused[k]).max()) for k in by_hand),
    "fused_vs_unrolled": max(float(np.abs(fused[k] - unrolled[k]).max()) for k in fused),
    "trace_difference": trace_difference,
}
key_numbers
