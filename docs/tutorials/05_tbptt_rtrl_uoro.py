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
# # 5. Truncated BPTT, RTRL and UORO compared
#
# A recurrent layer with a loss at every step, $L = \sum_{t=1}^{T} L_t$, shares its parameters
# $\theta$ across all steps. The chain rule gives the exact gradient as a double sum over a
# step $t$ where a loss is read and an earlier step $s \le t$ where $\theta$ acted:
#
# $$\frac{\partial L}{\partial \theta} = \sum_{t=1}^{T} \sum_{s=1}^{t}
# \underbrace{\frac{\partial L_t}{\partial h_t}}_{\delta_t}\;
# \underbrace{\frac{\partial h_t}{\partial h_{t-1}} \cdots
# \frac{\partial h_{s+1}}{\partial h_s}}_{J_t \cdots J_{s+1}}\;
# \underbrace{\frac{\partial^+ h_s}{\partial \theta}}_{D_s}$$
#
# ($D_s$ is $\theta$'s *direct* effect at step $s$, the previous state held fixed). The four
# methods of this tutorial are four ways of evaluating, or approximating, that sum:
#
# | method | how | gradient | memory |
# |---|---|---|---|
# | BPTT | group by $s$, walk back from $T$ | exact | $O(T H)$ |
# | truncated BPTT($k$) | keep the pairs $(s, t)$ in one chunk of $k$ steps | biased | $O(k H)$ |
# | RTRL | group by $t$, carry $M_t = \partial h_t / \partial \theta$ forwards | exact | $O(H P)$ |
# | UORO | carry a random rank-one stand-in for $M_t$ | unbiased, noisy | $O(H + P)$ |
#
# ($H$: the hidden size; $P$: the number of parameters in $\theta$.)
#
# Everything below runs in float64 on a small problem, so exact means exact to rounding.

# %%
import time

import matplotlib.pyplot as plt

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, bptt, nn
from tinygrad_rnn.backend import np
from tinygrad_rnn.compare import format_table
from tinygrad_rnn.nn import functional as F

tg.set_default_dtype("float64")
T, N, H_in, H, DELAY = 20, 4, 2, 8, 4
tg.manual_seed(0)
x = Tensor.randn(T, N, H_in)                                   # (T, N, H_in), time-major
target = np.zeros((T, N, 1))
target[DELAY:, :, 0] = x.numpy()[:-DELAY, :, 0]                # recall the input 4 steps back
y = Tensor(target)


class Recaller(nn.Module):
    """An Elman layer and a linear read-out at every step."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(H_in, H)
        self.head = nn.Linear(H, 1)


tg.manual_seed(1)
model = Recaller()
bptt.scale_recurrent_weights_(model, 0.95 / bptt.spectral_radius(model.rnn.weight_hh_l0))


def step_loss(t, out_t):
    """L_t from the layer's output at step t, out_t (N, H)."""
    return F.mse_loss(model.head(out_t), y[t])


def flat_grad():
    """The recurrent layer's gradient, flattened in named_parameters() order."""
    return np.concatenate([p.grad.numpy().ravel() for p in model.rnn.parameters()])


n_params = sum(p.numel() for p in model.rnn.parameters())
print(f"T = {T} steps, batch {N}, H = {H}: the layer has P = {n_params} parameters")

# %% [markdown]
# ## Exact BPTT
# Run the whole sequence, add up the step losses, call `backward()` once. Autograd walks the
# stored trajectory from $T$ back to 1, which is the double sum grouped by $s$: the gradient
# that reaches $h_s$ is $\delta h_s = \delta_s + \delta h_{s+1} J_{s+1}$ (tutorial 3).

# %%
model.zero_grad()
output, _ = model.rnn(x)
loss = sum((step_loss(t, output[t]) for t in range(1, T)), step_loss(0, output[0]))
loss.backward()
g_exact = flat_grad()
print(f"L = {loss.item():.4f},  ‖∂L/∂θ‖ = {np.linalg.norm(g_exact):.4f}")

# %% [markdown]
# ## Truncated BPTT: what it cuts
# Truncated BPTT with $k_1 = k_2 = k$ cuts the sequence into chunks of $k$ steps
# (`bptt.chunks`), back-propagates each chunk's loss within the chunk, and carries the final
# state into the next chunk **detached**: its value goes on, its graph does not. So every
# term of the double sum whose path $s \to t$ crosses a chunk boundary is dropped. Memory is
# $O(k)$ instead of $O(T)$, and the price is a bias against dependencies longer than the
# chunk (ours spans `DELAY` = 4 steps).
#
# `bptt.trace` shows the cut: the gradient reaching the *last* state of a chunk is only that
# step's own $\delta_t$, exactly what one-step truncation ($k = 1$) sees everywhere.

# %%
def truncated_bptt(k):
    """Truncated BPTT with k1 = k2 = k, gradients added (no update in between); returns the
    layer's flat gradient and ∂L/∂h_t for every step, (T, N, H)."""
    model.zero_grad()
    h = None
    with bptt.trace(model.rnn) as tr:
        for start, x_k in zip(range(0, T, k), bptt.chunks(x, k)):
            out, h = model.rnn(x_k, h)
            chunk_loss = sum((step_loss(start + i, out[i]) for i in range(1, len(x_k))),
                             step_loss(start, out[0]))
            chunk_loss.backward()
            h = h.detach()                       # keep the value, forget the graph
    return flat_grad(), tr.grads[0]


K = 5
g_tbptt, delta_h_tbptt = truncated_bptt(K)
_, delta_h_direct = truncated_bptt(1)             # δh_t = δ_t: only step t's own loss
_, delta_h_exact = truncated_bptt(T)              # one chunk: exact BPTT
chunk_ends = np.arange(K - 1, T, K)
chunk_end_difference = float(np.abs(delta_h_tbptt[chunk_ends] - delta_h_direct[chunk_ends]).max())
print(f"at the chunk ends, TBPTT({K})'s ∂L/∂h_t minus δ_t alone: {chunk_end_difference:.1e}")


def per_step_norm(delta_h):
    return np.linalg.norm(delta_h.reshape(T, -1), axis=1)


steps = np.arange(1, T + 1)
fig, ax = plt.subplots(figsize=(6.5, 3.3), layout="constrained")
ax.plot(steps, per_step_norm(delta_h_exact), "o-", label="exact BPTT")
ax.plot(steps, per_step_norm(delta_h_tbptt), "s-", label=f"truncated BPTT, k = {K}")
ax.plot(steps, per_step_norm(delta_h_direct), ".:", color="grey", label="δ_t only (k = 1)")
for end in chunk_ends[:-1]:
    ax.axvline(end + 1.5, color="grey", lw=0.6)
ax.set_xlabel("t"), ax.set_ylabel("‖∂L/∂h_t‖"), ax.legend(fontsize="small")
ax.set_title("the gradient that reaches each state")
plt.show()

# %% [markdown]
# ## RTRL: BPTT's forward-in-time twin
# Group the double sum by $t$ instead: $\frac{\partial L}{\partial\theta} = \sum_t \delta_t
# M_t$ with $M_t = \sum_{s \le t} J_t \cdots J_{s+1} D_s = \partial h_t / \partial \theta$,
# an $(H, P)$ matrix per sample that obeys a forward recursion:
#
# $$M_0 = 0, \qquad M_t = J_t M_{t-1} + D_t .$$
#
# Real-time recurrent learning (Williams & Zipser 1989) carries $M_t$ along with $h_t$ and
# adds $\delta_t M_t$ as soon as step $t$'s loss is known: no stored trajectory, no backward
# sweep, so it works online on an endless stream. It computes the *same* sum, so it must
# agree with BPTT to rounding. The price is the product $J_t M_{t-1}$: $O(H^2 P)
# = O(H^4)$ per step, against BPTT's $O(H^2)$. `bptt.rtrl` takes the same `step_loss`; the
# head still gets its exact gradient through autograd.

# %%
model.zero_grad()
rtrl_loss = bptt.rtrl(model, x, step_loss)
g_rtrl = flat_grad()
rtrl_vs_bptt = float(np.abs(g_rtrl - g_exact).max())
print(f"loss {rtrl_loss.item():.4f} (BPTT: {loss.item():.4f});  "
      f"max |RTRL − BPTT| = {rtrl_vs_bptt:.1e}")

# %% [markdown]
# ## UORO: an unbiased rank-one estimate
# UORO (Tallec & Ollivier 2017) replaces $M_t$ by an outer product $\tilde h_t \tilde\theta_t^\top$
# ($H + P$ numbers), updated with fresh random signs $\nu$ every step:
#
# $$\tilde h_t = \rho_0 J_t \tilde h_{t-1} + \rho_1 \nu, \qquad
# \tilde\theta_t = \tilde\theta_{t-1} / \rho_0 + \nu^\top D_t / \rho_1 .$$
#
# Multiplied out, $\tilde h_t \tilde\theta_t^\top = J_t \tilde h_{t-1}\tilde\theta_{t-1}^\top +
# \nu\nu^\top D_t + (\text{terms linear in } \nu)$, and $\mathbb{E}[\nu\nu^\top] = I$, so
# $\mathbb{E}[\tilde h_t \tilde\theta_t^\top] = M_t$: one draw is noisy, but right on average.
# If one draw has total variance $\operatorname{tr}\Sigma = v\,\lVert g\rVert^2$, the mean of
# $d$ independent draws has $\mathbb{E}\lVert \bar g_d - g\rVert^2 = v \lVert g\rVert^2 / d$:
# its relative error shrinks like $\sqrt{v/d}$. `bptt.uoro_samples` runs many draws at once
# (they share the trajectory); we cut them into groups of $d$ and measure the
# root-mean-square error of the group means.

# %%
DRAWS = 4096
draws = bptt.uoro_samples(model, x, step_loss, draws=DRAWS, generator=0)   # (DRAWS, P)
g_norm = np.linalg.norm(g_exact)
variance = float(draws.var(axis=0, ddof=1).sum() / g_norm ** 2)            # v
group_sizes = [1, 4, 16, 64]
rms_error = []
for d in group_sizes:
    means = draws.reshape(DRAWS // d, d, -1).mean(axis=1)                  # (DRAWS/d, P)
    rms_error.append(float(np.sqrt((np.linalg.norm(means - g_exact, axis=1) ** 2).mean())
                           / g_norm))
mean_error = float(np.linalg.norm(draws.mean(axis=0) - g_exact) / g_norm)  # all the draws
print(f"one draw: variance v = tr Σ/‖g‖² = {variance:.2f}")
for d, err in zip(group_sizes, rms_error):
    print(f"mean of {d:3d} draws: rms relative error {err:.3f}   (√(v/d) = "
          f"{np.sqrt(variance / d):.3f})")
print(f"mean of all {DRAWS} draws: relative error {mean_error:.4f}   "
      f"(√(v/{DRAWS}) = {np.sqrt(variance / DRAWS):.4f})")

fig, ax = plt.subplots(figsize=(5, 3.3), layout="constrained")
d_line = np.array([1, DRAWS])
ax.loglog(d_line, np.sqrt(variance / d_line), color="grey", ls="--", label="√(v/d)")
ax.loglog(group_sizes, rms_error, "o", label="rms error of a mean of d draws")
ax.loglog([DRAWS], [mean_error], "s", label=f"the mean of all {DRAWS}")
ax.set_xlabel("draws d"), ax.set_ylabel("‖ḡ_d − g‖ / ‖g‖"), ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# ## Side by side
# `bptt.compare` runs every method on the same batch and parameters and scores each
# gradient against BPTT's: the cosine similarity (does it point the right way?) and the
# relative norm $\lVert g \rVert / \lVert g_{\text{exact}} \rVert$ (is it the right size?).
# Truncation with $k \ge T$ is one chunk, i.e. BPTT itself; below the dependency's span the
# cosine drops. RTRL is exact; one UORO draw is far off in both direction and size, and only
# the mean of many draws approaches the gradient. (On a problem this small the times are
# mostly Python overhead and vary from run to run; how RTRL's $O(H^4)$ per step overtakes
# BPTT as $H$ grows is measured by `benchmarks/online_gradients.py`.)

# %%
methods = ["tbptt:1", "tbptt:2", "tbptt:5", "tbptt:10", f"tbptt:{T}", "rtrl", "uoro",
           "uoro:100"]
start = time.perf_counter()
results = bptt.compare(model, x, step_loss, methods=["bptt"] + methods, seed=0)
print(format_table(results))
print(f"(compare ran in {time.perf_counter() - start:.1f} s)")

labels = [r.method for r in results]
where = np.arange(len(labels))
fig, axes = plt.subplots(1, 2, figsize=(10, 3.3), layout="constrained")
axes[0].bar(where, [r.cosine for r in results])
axes[0].set_ylim(min(-0.1, min(r.cosine for r in results) - 0.05), 1.05)
axes[0].set_title("cosine to the exact gradient")
axes[1].bar(where, [r.relative_norm for r in results])
axes[1].axhline(1.0, color="grey", lw=0.8)
axes[1].set_title("‖g‖ / ‖g_exact‖")
for ax in axes:
    ax.set_xticks(where, labels, rotation=45, ha="right")
plt.show()

# %%
by_method = {r.method: r for r in results}
key_numbers = {
    "T": T, "K": K, "delay": DELAY,
    "rtrl_vs_bptt": rtrl_vs_bptt,
    "chunk_end_difference": chunk_end_difference,
    "tbptt_vs_manual": float(np.abs(by_method[f"tbptt:{K}"].gradient - g_tbptt).max()),
    "cosine": {r.method: r.cosine for r in results},
    "relative_norm": {r.method: r.relative_norm for r in results},
    "relative_error": {r.method: r.relative_error for r in results},
    "uoro_variance": variance, "uoro_draws": DRAWS,
    "uoro_group_sizes": group_sizes, "uoro_rms_error": rms_error,
    "uoro_mean_error": mean_error,
}
key_numbers
