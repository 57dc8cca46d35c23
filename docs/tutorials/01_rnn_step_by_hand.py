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
# # 1. An RNN step by hand
#
# The notebooks this project grew from build a PyTorch `nn.RNN`, print its output, and then
# recompute the hidden states by hand from its four parameters. Here is the same lesson with
# `tinygrad_rnn` alone. An Elman RNN computes, for every time step $t$,
#
# $$h_t = \tanh\left(x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}\right), \qquad h_0 = 0.$$
#
# `nn.RNN` takes PyTorch's arguments and returns PyTorch's pair: `output` (every $h_t$) and
# `h_n` (the last one, per layer and direction).

# %%
import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.backend import np  # host NumPy, for data and printing

tg.manual_seed(0)
features, hidden_size, batch_size, time_steps = 2, 3, 1, 24   # as in the first seed notebook
rnn = nn.RNN(input_size=features, hidden_size=hidden_size, batch_first=True)
x = Tensor.rand(batch_size, time_steps, features)   # (N, L, H_in): one person, 24 hours, 2 vitals
output, h_n = rnn(x)
print("output:", output.shape, " h_n:", h_n.shape)
for name, p in rnn.named_parameters():
    print(f"{name:12s} {p.shape}")

# %% [markdown]
# ## The first step by hand
# With $h_0 = 0$ the recurrent term vanishes, so the first hidden state only needs the input
# weights and both biases:

# %%
W_ih, W_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
x_1 = x[0, 0]                                          # (H_in,)
h_1 = (x_1 @ W_ih.T + b_ih + b_hh).tanh()
print("by hand:", h_1.numpy().round(4))
print("nn.RNN: ", output[0, 0].numpy().round(4))

# %% [markdown]
# ## Every step by hand
# A loop over time, carrying $h$ forward. The last state is `h_n`.

# %%
h = Tensor.zeros(hidden_size)
by_hand = []
for t in range(time_steps):
    h = (x[0, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh).tanh()
    by_hand.append(h.numpy())
by_hand = np.stack(by_hand)
max_difference = float(np.abs(by_hand - output[0].numpy()).max())
print(f"largest difference to nn.RNN over all {time_steps} steps: {max_difference:.1e}")
print("h_n equals the last state:", np.allclose(h_n[0, 0].numpy(), by_hand[-1], atol=1e-6))

# %% [markdown]
# ## The numbers a seed notebook printed
# The third seed notebook printed its trained-from-scratch `nn.RNN(2, 1)` parameters (to 4
# decimals), the first rows of its data, and the layer's output. Put those printed weights
# into our layer and the printed outputs come back (up to the rounding of the weights):

# %%
printed_state = {"weight_ih_l0": [[-0.6367, 0.9996]], "weight_hh_l0": [[0.1889]],
                 "bias_ih_l0": [0.3082], "bias_hh_l0": [-0.9327]}
printed_data = [[0.8823, 0.9150], [0.3829, 0.9593], [0.3904, 0.6009]]
printed_output = [-0.2652, 0.0405, -0.2588]           # what PyTorch printed for those rows

seed_rnn = nn.RNN(2, 1)
seed_rnn.load_state_dict({k: Tensor(v) for k, v in printed_state.items()})
seed_output, _ = seed_rnn(Tensor(printed_data))        # unbatched input: (L, H_in)
ours = seed_output.numpy().ravel()
print("ours:   ", ours.round(4))
print("printed:", printed_output)
seed_difference = float(np.abs(ours - np.array(printed_output)).max())

# %% [markdown]
# ## What the seeds got wrong, made hard here
# One seed notebook wrote its own RNN and fell into three traps: a parameter moved with
# `.to(device)` stopped being a leaf (so it never got a gradient), one scalar bias was shared by
# all units, and the zero hidden state was re-created at every call. In `tinygrad_rnn`:
# parameters are `Parameter`s registered on the module (`rnn.parameters()` lists them), the
# biases have one entry per unit (`bias_ih_l0` is `(H,)`), and `h0` defaults to zeros only
# when you do not pass one.

# %%
key_numbers = {"max_difference": max_difference, "seed_difference": seed_difference,
               "n_parameters": len(list(rnn.parameters()))}
key_numbers
