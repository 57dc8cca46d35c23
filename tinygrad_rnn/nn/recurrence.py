r"""The Elman recurrence for one layer and one direction, written twice.

For an input sequence ``x_1 … x_T`` (each ``(N, H_in)``) and an initial state ``h_0``
(``(N, H)``), an Elman layer computes, with ``f`` = tanh or ReLU::

    a_t = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh        (pre-activation, (N, H))
    h_t = f(a_t)

* :func:`elman_unrolled` builds that loop from the primitive ops of :class:`Tensor`: one small
  graph per time step, chained through ``h``. Backpropagation through time is then nothing
  special: autograd walks the unrolled graph from ``h_T`` back to ``h_0``.
* :func:`elman_fused` runs the same loop over raw backend arrays and records a single graph
  node for the whole sequence, whose backward is BPTT written out by hand (equations in its
  docstring). It is the fast path, and the tests prove it equal to the unrolled one.

Both take the sequence in time-major layout ``(T, N, H_in)`` and return every hidden state,
``(T, N, H)`` in time order. ``reverse=True`` runs from ``t = T`` down to ``t = 1`` (the
backward direction of a bidirectional layer); ``h_T`` of that direction is then ``out[0]``.
"""
from __future__ import annotations

from typing import Callable

from ..tensor import Tensor

NONLINEARITIES = ("tanh", "relu")


def elman_unrolled(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
                   b_hh: Tensor | None, nonlinearity: str = "tanh", reverse: bool = False,
                   on_step: Callable[[int, Tensor], None] | None = None) -> Tensor:
    """One Elman layer as a per-time-step graph of primitive ops.

    ``x`` ``(T, N, H_in)``, ``h0`` ``(N, H)`` → all hidden states ``(T, N, H)``.
    ``on_step(t, h_t)`` is called with each new hidden state (``bptt.trace`` uses it).
    """
    activation = Tensor.tanh if nonlinearity == "tanh" else Tensor.relu
    # The input projection does not depend on h, so it is done for all steps at once;
    # only the recurrent part has to be a loop.
    projected = x @ w_ih.T                                    # (T, N, H)
    if b_ih is not None:
        projected = projected + (b_ih + b_hh)
    w_hh_t = w_hh.T
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    h, states = h0, [None] * x.shape[0]
    for t in steps:
        h = activation(projected[t] + h @ w_hh_t)             # h_t = f(a_t)
        states[t] = h
        if on_step is not None:
            on_step(t, h)
    return Tensor.stack(states, axis=0)


def elman_fused(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
                b_hh: Tensor | None, nonlinearity: str = "tanh", reverse: bool = False,
                on_state_grads: Callable | None = None) -> Tensor:
    r"""One Elman layer as a single graph node with hand-written BPTT.

    ``x`` ``(T, N, H_in)``, ``h0`` ``(N, H)`` → all hidden states ``(T, N, H)``.

    Forward: the input projections of all steps are one matmul into a ``(T, N, H)`` buffer;
    the loop adds ``h_{t-1} W_hhᵀ`` and applies ``f`` in place, so the buffer ends up holding
    ``h_1 … h_T`` and nothing else needs to be kept (f' is recovered from h).

    Backward (BPTT). With ``g_t = ∂L/∂h_t`` coming from the layer's output at step t only,
    walk t = T … 1 carrying ``δh`` (the gradient reaching ``h_t`` through ``h_{t+1}``)::

        δh_t = g_t + δa_{t+1} W_hh          total gradient of h_t  (δa_{T+1} = 0)
        δa_t = δh_t ⊙ f'(a_t)               f' = 1 - h_t² (tanh),  [h_t > 0] (ReLU)

    then, with every ``δa_t`` known, the parameter gradients are sums over time, done as one
    matmul each::

        ∂L/∂W_ih = Σ_t δa_tᵀ x_t       ∂L/∂W_hh = Σ_t δa_tᵀ h_{t-1}
        ∂L/∂b_ih = ∂L/∂b_hh = Σ_t Σ_n δa_t
        ∂L/∂x_t  = δa_t W_ih            ∂L/∂h_0  = δa_1 W_hh

    ``on_state_grads(δh)`` (``(T, N, H)``, time order) lets ``bptt.trace`` see every δh_t.

    Cost: the loops make no Python objects but array views, allocate nothing (every step
    writes into buffers made before the loop) and never wait for the GPU under CuPy. Memory:
    the output ``(T, N, H)`` (plus the rows of ``x``, copied when ``x`` is a batch_first view)
    from the forward pass to the backward pass, which adds one ``(T, N, H)`` buffer (δa).
    """
    xp = x.xp
    X, W_ih, W_hh = x.data, w_ih.data, w_hh.data
    T, N, H = X.shape[0], X.shape[1], W_hh.shape[0]
    order = range(T - 1, -1, -1) if reverse else range(T)

    # ---- forward: hs[t] = f(x_t W_ihᵀ + b + h_{t-1} W_hhᵀ), computed in place
    hs = xp.empty((T, N, H), dtype=X.dtype)
    # x_t W_ihᵀ for every t at once: one matmul over all T·N rows. A batch_first x arrives as
    # a transposed view, which reshape copies (faster than a batched matmul at every size);
    # the backward pass reuses those rows for ∂L/∂W_ih.
    x_rows = X.reshape(T * N, -1)
    xp.matmul(x_rows, W_ih.T, out=hs.reshape(T * N, H))
    if b_ih is not None:
        hs += b_ih.data + b_hh.data
    W_hh_T = W_hh.T
    recurrent = xp.empty((N, H), dtype=X.dtype)            # h_{t-1} W_hhᵀ
    h_prev = h0.data
    for t in order:
        a_t = hs[t]
        xp.matmul(h_prev, W_hh_T, out=recurrent)
        a_t += recurrent                                   # a_t
        if nonlinearity == "tanh":                         # h_t = f(a_t)
            xp.tanh(a_t, out=a_t)
        else:
            xp.maximum(a_t, 0, out=a_t)
        h_prev = a_t

    parents = (x, h0, w_ih, w_hh) + ((b_ih, b_hh) if b_ih is not None else ())

    def backward(g):
        # delta holds f'(a_t) of every step (from the stored h_t), then δa_t in its place.
        delta = xp.empty_like(hs)
        if nonlinearity == "tanh":
            xp.multiply(hs, hs, out=delta)
            xp.subtract(1, delta, out=delta)               # 1 - h_t²
        else:
            xp.sign(hs, out=delta)                         # [h_t > 0], as h_t = relu(a_t) ≥ 0
        state_grads = xp.empty_like(hs) if on_state_grads is not None else None
        delta_h = xp.empty((N, H), dtype=hs.dtype)
        carry = xp.zeros((N, H), dtype=hs.dtype)           # δa_{t+1} W_hh
        for t in reversed(order):
            if state_grads is not None:
                delta_h = state_grads[t]
            xp.add(g[t], carry, out=delta_h)               # δh_t
            delta_a = delta[t]
            delta_a *= delta_h                             # δa_t = δh_t ⊙ f'(a_t)
            xp.matmul(delta_a, W_hh, out=carry)
        if state_grads is not None:
            on_state_grads(state_grads)
        return _parameter_grads(delta, carry, x, x_rows, h0, w_ih, w_hh, b_ih, hs, reverse)

    name = f"rnn_{nonlinearity}" + ("_reverse" if reverse else "")
    return Tensor._make(hs, parents, backward, name)


def _parameter_grads(delta_a, grad_h0, x, x_rows, h0, w_ih, w_hh, b_ih, hs, reverse):
    """The sums over time of the BPTT equations, each as one matmul over all T·N rows."""
    T, N, H = hs.shape
    flat_delta = delta_a.reshape(T * N, H)
    flat_h = hs.reshape(T * N, H)
    grad_x = (flat_delta @ w_ih.data).reshape(x.shape) if x.requires_grad else None
    grad_h0 = grad_h0 if h0.requires_grad else None
    grad_w_ih = flat_delta.T @ x_rows
    # Σ_t δa_tᵀ h_{t-1}: h_{t-1} is the previous row block of hs (the next one in reverse),
    # and h_0 for the first step.
    first, rest, before = (T - 1, slice(0, -N), slice(N, None)) if reverse else \
        (0, slice(N, None), slice(0, -N))
    grad_w_hh = flat_delta[rest].T @ flat_h[before]
    grad_w_hh += delta_a[first].T @ h0.data
    grads = (grad_x, grad_h0, grad_w_ih, grad_w_hh)
    if b_ih is not None:
        grad_b = flat_delta.sum(axis=0)
        grads += (grad_b, grad_b)
    return grads
