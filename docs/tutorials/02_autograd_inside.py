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
# # 2. Autograd from the inside
#
# Every op on a `Tensor` that needs a gradient records a graph node: the op's name, the
# tensors it read, and a `backward` function that turns the gradient of its output into
# gradients of its inputs (a vector-Jacobian product). `loss.backward()` walks those nodes
# from the loss back to the leaves. Here we build a small graph, look at it, and then do its
# backward pass by hand.

# %%
import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, viz
from tinygrad_rnn.backend import np

tg.set_default_dtype("float64")          # exact comparisons below
tg.manual_seed(0)
x = Tensor([[0.5, -1.0, 2.0]])           # (1, 3) an input: no gradient needed
W = Tensor.randn(3, 4, requires_grad=True)   # (3, 4) a parameter
a = x @ W                                # (1, 4)
h = a.tanh()
loss = (h * h).mean()
print(loss)
print("the node that made loss:", loss.grad_fn)

# %% [markdown]
# ## The graph
# `viz.to_dot` writes the graph as Graphviz DOT source: one box per tensor, arrows from an
# op's inputs to its result. (`viz.draw(loss, "graph.png")` renders it when Graphviz is
# installed.)

# %%
dot = viz.to_dot(loss, params={"W": W})
print("\n".join(dot.splitlines()[:12]), "\n...")

# %% [markdown]
# ## Backward by hand
# The chain rule, one op at a time, from the loss back to `W`:
#
# * `loss = mean(h²)` over 4 numbers → $\partial L/\partial h = 2h/4$
# * `h = tanh(a)` → $\partial L/\partial a = \partial L/\partial h \odot (1 - h^2)$
# * `a = x W` → $\partial L/\partial W = x^\top\, \partial L/\partial a$

# %%
x_, h_ = x.numpy(), h.numpy()
dL_dh = 2 * h_ / h_.size
dL_da = dL_dh * (1 - h_ ** 2)
dL_dW_by_hand = x_.T @ dL_da

loss.backward()
autograd_difference = float(np.abs(W.grad.numpy() - dL_dW_by_hand).max())
print(f"largest difference, by hand vs .backward(): {autograd_difference:.1e}")

# %% [markdown]
# ## Checking against finite differences
# `tg.gradcheck` perturbs every input element by ±ε and compares the slope with the
# gradient autograd computed (in float64). It returns `True` or raises, naming the worst
# element.

# %%
W2 = Tensor(W.numpy(), requires_grad=True)
ok = tg.gradcheck(lambda W: ((x @ W).tanh() ** 2).mean(), [W2])
print("gradcheck:", ok)

# %% [markdown]
# ## The graph is freed after backward
# Saved intermediate values are dropped once `backward()` has used them, so a second call
# raises PyTorch's error (pass `retain_graph=True` to keep them).

# %%
try:
    loss.backward()
    second_backward = "no error"
except RuntimeError as exc:
    second_backward = str(exc).split(".")[0]
print(second_backward)

# %%
key_numbers = {"autograd_difference": autograd_difference, "gradcheck": bool(ok),
               "second_backward_raises": "second time" in second_backward}
key_numbers
