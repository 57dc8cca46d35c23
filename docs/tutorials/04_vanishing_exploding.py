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
# # 4. Vanishing and exploding gradients
#
# On its way back from step $T$ to step $t$, a gradient is multiplied by one Jacobian per step:
#
# $$\frac{\partial h_T}{\partial h_t} = \prod_{s=t+1}^{T} \operatorname{diag}(f'(a_s))\, W_{hh}.$$
#
# With tanh, $|f'| \le 1$, so each factor stretches a vector by at most $\sigma_{\max}(W_{hh})$,
# the largest singular value (Pascanu, Mikolov & Bengio 2013):
#
# $$\left\|\frac{\partial h_T}{\partial h_t}\right\| \le \sigma_{\max}(W_{hh})^{T-t}.$$
#
# If $\sigma_{\max} < 1$ the gradient must vanish geometrically. We measure it.

# %%
import matplotlib.pyplot as plt

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, bptt, nn
from tinygrad_rnn.backend import np

tg.set_default_dtype("float64")
T, N, H_in, H = 40, 4, 3, 16
tg.manual_seed(0)
x = Tensor.randn(T, N, H_in)

curves, bound_holds = {}, {}
for gain in (0.5, 1.0, 2.0):
    tg.manual_seed(1)
    rnn = nn.RNN(H_in, H)
    bptt.scale_recurrent_weights_(rnn, gain / bptt.spectral_radius(rnn.weight_hh_l0))
    norms = bptt.jacobian_norms(rnn, x)[0]                 # ‖∂h_T/∂h_t‖, t = 1..T
    sigma = float(np.linalg.svd(rnn.weight_hh_l0.numpy(), compute_uv=False)[0])
    bound = sigma ** (T - 1 - np.arange(T))
    curves[gain] = norms
    bound_holds[gain] = bool(np.all(norms <= bound * (1 + 1e-9)))
    print(f"spectral radius {gain:.1f}: σ_max = {sigma:.2f}, ‖∂h_T/∂h_1‖ = {norms[0]:.2e}, "
          f"bound {bound[0]:.2e}, holds: {bound_holds[gain]}")

fig, ax = plt.subplots(figsize=(6, 3.5))
for gain, norms in curves.items():
    ax.semilogy(np.arange(1, T + 1), norms, label=f"ρ(W_hh) = {gain}")
ax.set_xlabel("t"), ax.set_ylabel("‖∂h_T/∂h_t‖"), ax.legend(), ax.set_title("tanh RNN")
plt.show()

# %% [markdown]
# ## Why gating helps: RNN vs LSTM vs GRU on the adding problem
# The adding problem (Hochreiter & Schmidhuber 1997): a sequence of random numbers, two of
# them marked; the target is their sum. Always answering 1 gives a mean squared error of
# about 0.167. The first marked number can lie at the very start, so the model must carry it
# across the whole sequence: exactly where a vanishing gradient hurts. We train each cell
# briefly with the package's own trainer (small settings, so the notebook runs in seconds).

# %%
from tinygrad_rnn.train import TrainConfig, train

tg.set_default_dtype("float32")
results = {}
for cell in ("rnn", "lstm", "gru"):
    run = train(TrainConfig(task="adding", cell=cell, seq_len=30, hidden=24, steps=600, lr=0.01,
                            seed=0), quiet=True)
    results[cell] = run.metric.value
    print(f"{cell:4s} test MSE {run.metric.value:.4f}  ({run.seconds:.1f} s)")

fig, ax = plt.subplots(figsize=(4, 3))
ax.bar(list(results), list(results.values()))
ax.axhline(0.167, color="grey", linestyle="--", label="answer 1 (0.167)")
ax.set_ylabel("test MSE"), ax.legend()
plt.show()

# %%
key_numbers = {"bound_holds": bound_holds, "vanishes": float(curves[0.5][0]),
               "adding_mse": results}
key_numbers
