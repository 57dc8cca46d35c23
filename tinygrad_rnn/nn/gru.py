r"""``nn.GRU`` and ``nn.GRUCell``: gated recurrent units, with PyTorch's exact semantics.

A GRU has one state ``h`` and three gates, stacked in PyTorch's order **r, z, n** in every
weight matrix (``weight_ih`` is ``[W_ir; W_iz; W_in]``, ``(3H, H_in)``)::

    r_t = σ(x_t W_irᵀ + b_ir + h_{t-1} W_hrᵀ + b_hr)             reset gate
    z_t = σ(x_t W_izᵀ + b_iz + h_{t-1} W_hzᵀ + b_hz)             update gate
    n_t = tanh(x_t W_inᵀ + b_in + r_t ⊙ (h_{t-1} W_hnᵀ + b_hn))   candidate state
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

Note where ``b_hn`` sits: *inside* the reset product, as in PyTorch (and cuDNN), not next to
``b_in``; the two placements give different numbers.

**Why gating fixes vanishing gradients.** The new state is a convex mix of the candidate and
the old state, so ``∂h_t/∂h_{t-1}`` contains the term ``diag(z_t)``, with no weight matrix and
no squashing derivative. Where the update gate is near 1 the gradient is passed back almost
unchanged, step after step, instead of being multiplied by ``diag(f'(a_t)) W_hh`` as in an
Elman RNN.

As for ``nn.RNN``, the recurrence of one layer and direction is written twice:

* :func:`gru_unrolled`: a per-time-step graph of primitive :class:`Tensor` ops, so autograd
  itself performs backpropagation through time;
* :func:`gru_fused`: one graph node for the whole sequence, a forward loop over backend arrays
  and the BPTT backward written out by hand (equations in its docstring).

Both take ``x`` ``(T, N, H_in)`` and ``h0`` ``(N, H)`` and return every hidden state
``(T, N, H)`` in time order (``reverse=True`` runs from t = T down to 1; its final state is
then ``out[0]``).
"""
from __future__ import annotations

from typing import Callable

from ..tensor import Tensor
from .lstm import _previous, _sigmoid_
from .rnn_base import RNNBase, RNNCellBase


# ------------------------------------------------------------------------ the recurrences

def gru_step(x_gates: Tensor, h_gates: Tensor, h_prev: Tensor) -> Tensor:
    """One GRU update from the input's share of the gates ``x W_ihᵀ + b_ih`` ``(N, 3H)``, the
    state's share ``h_prev W_hhᵀ + b_hh`` ``(N, 3H)`` (r, z, n blocks) and ``h_prev``."""
    H = h_prev.shape[-1]
    r = (x_gates[:, 0:H] + h_gates[:, 0:H]).sigmoid()
    z = (x_gates[:, H:2 * H] + h_gates[:, H:2 * H]).sigmoid()
    n = (x_gates[:, 2 * H:3 * H] + r * h_gates[:, 2 * H:3 * H]).tanh()
    return n + z * (h_prev - n)                        # = (1 - z) ⊙ n + z ⊙ h_prev


def gru_unrolled(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
                 b_hh: Tensor | None, reverse: bool = False,
                 on_step: Callable[[int, Tensor], None] | None = None) -> Tensor:
    """One GRU layer as a per-time-step graph of primitive ops.

    ``x`` ``(T, N, H_in)``, ``h0`` ``(N, H)`` → all hidden states ``(T, N, H)``.
    ``on_step(t, h_t)`` is called with each new hidden state (``bptt.trace`` uses it).
    """
    # The input's share of the gates does not depend on h: one matmul for all steps. The
    # state's share cannot be merged with it, because r multiplies its n block.
    x_gates = x @ w_ih.T                                    # (T, N, 3H)
    if b_ih is not None:
        x_gates = x_gates + b_ih
    w_hh_t = w_hh.T
    T = x.shape[0]
    steps = range(T - 1, -1, -1) if reverse else range(T)
    h, states = h0, [None] * T
    for t in steps:
        h_gates = h @ w_hh_t
        if b_hh is not None:
            h_gates = h_gates + b_hh
        h = gru_step(x_gates[t], h_gates, h)
        states[t] = h
        if on_step is not None:
            on_step(t, h)
    return Tensor.stack(states, axis=0)


def gru_fused(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
              b_hh: Tensor | None, reverse: bool = False,
              on_state_grads: Callable | None = None) -> Tensor:
    r"""One GRU layer as a single graph node with hand-written BPTT.

    ``x`` ``(T, N, H_in)``, ``h0`` ``(N, H)`` → all hidden states ``(T, N, H)`` (op ``gru``).

    Forward: the input's share of the gates for all steps is one matmul, ``(T, N, 3H)``; the
    loop computes the state's share ``h_{t-1} W_hhᵀ + b_hh`` and overwrites the buffer with the
    gate values ``r_t, z_t, n_t``. The backward pass needs those, the states, and
    ``h_{t-1} W_hnᵀ + b_hn`` (the term the reset gate multiplies), which is kept too.

    Backward (BPTT). Write ``a^r_t, a^z_t`` for the gates' pre-activations, ``a^n_t`` for the
    argument of tanh in ``n_t``, ``u_t = h_{t-1} W_hnᵀ + b_hn``, and ``g_t`` for the gradient
    arriving at ``h_t`` from the output at step t (and from ``h_n``). Walk t = T … 1::

        δh_t   = g_t + δh_{t+1} ⊙ z_{t+1} + δb_{t+1} W_hh       (δ_{T+1} = 0)
        δa^n_t = δh_t ⊙ (1 - z_t) ⊙ (1 - n_t²)
        δa^z_t = δh_t ⊙ (h_{t-1} - n_t) ⊙ z_t (1 - z_t)
        δa^r_t = δa^n_t ⊙ u_t ⊙ r_t (1 - r_t)
        δa_t   = [δa^r_t, δa^z_t, δa^n_t]           gradient of x_t W_ihᵀ + b_ih   (N, 3H)
        δb_t   = [δa^r_t, δa^z_t, δa^n_t ⊙ r_t]     gradient of h_{t-1} W_hhᵀ + b_hh

    ``δh_{t+1} ⊙ z_{t+1}`` is the direct path through the update gate, without a matrix
    product. Then the sums over time, one matmul each::

        ∂L/∂W_ih = Σ_t δa_tᵀ x_t       ∂L/∂b_ih = Σ_t Σ_n δa_t      ∂L/∂x_t = δa_t W_ih
        ∂L/∂W_hh = Σ_t δb_tᵀ h_{t-1}   ∂L/∂b_hh = Σ_t Σ_n δb_t
        ∂L/∂h_0  = δh_1 ⊙ z_1 + δb_1 W_hh

    ``on_state_grads(δh)`` (``(T, N, H)``, time order) lets ``bptt.trace`` see every δh_t.
    """
    xp = x.xp
    X, W_ih, W_hh = x.data, w_ih.data, w_hh.data
    T, N = X.shape[0], X.shape[1]
    H = W_hh.shape[1]
    order = range(T - 1, -1, -1) if reverse else range(T)

    # ---- forward
    gates = (X.reshape(T * N, -1) @ W_ih.T).reshape(T, N, 3 * H)  # x_t W_ihᵀ, every t
    if b_ih is not None:
        gates += b_ih.data
    hs = xp.empty((T, N, H), dtype=X.dtype)
    u = xp.empty((T, N, H), dtype=X.dtype)                  # h_{t-1} W_hnᵀ + b_hn
    W_hh_T = W_hh.T
    h = h0.data
    for t in order:
        h_gates = h @ W_hh_T                                # (N, 3H)
        if b_hh is not None:
            h_gates += b_hh.data
        a = gates[t]
        a[:, 0:2 * H] += h_gates[:, 0:2 * H]                # a^r_t, a^z_t
        _sigmoid_(xp, a[:, 0:2 * H])                        # r_t, z_t
        r, z, n = a[:, 0:H], a[:, H:2 * H], a[:, 2 * H:]
        u[t] = h_gates[:, 2 * H:]
        n += r * u[t]                                       # a^n_t
        xp.tanh(n, out=n)                                   # n_t
        hs[t] = n + z * (h - n)                             # h_t
        h = hs[t]

    parents = (x, h0, w_ih, w_hh) + ((b_ih, b_hh) if b_ih is not None else ())

    def backward(grad):
        h_before = _previous(xp, hs, h0.data, reverse)      # h_{t-1} for every t
        delta_x = xp.empty_like(gates)                      # δa_t
        delta_h = xp.empty_like(gates)                      # δb_t
        state_grads = xp.empty_like(hs) if on_state_grads is not None else None
        carry = xp.zeros((N, H), dtype=X.dtype)             # δh_{t+1} ⊙ z_{t+1} + δb_{t+1} W_hh
        for t in reversed(order):
            r, z, n = gates[t][:, 0:H], gates[t][:, H:2 * H], gates[t][:, 2 * H:]
            d_h = grad[t] + carry                           # δh_t
            if state_grads is not None:
                state_grads[t] = d_h
            d_r, d_z, d_n = (delta_x[t][:, k * H:(k + 1) * H] for k in range(3))
            xp.multiply(d_h * (1 - z), 1 - n * n, out=d_n)            # δa^n_t
            xp.multiply(d_h * (h_before[t] - n), z * (1 - z), out=d_z)  # δa^z_t
            xp.multiply(d_n * u[t], r * (1 - r), out=d_r)              # δa^r_t
            delta_h[t][:, 0:2 * H] = delta_x[t][:, 0:2 * H]
            xp.multiply(d_n, r, out=delta_h[t][:, 2 * H:])             # δa^n_t ⊙ r_t
            carry = d_h * z + delta_h[t] @ W_hh
        if state_grads is not None:
            on_state_grads(state_grads)

        # ---- sums over time, one matmul each
        flat_x = delta_x.reshape(T * N, 3 * H)
        flat_h = delta_h.reshape(T * N, 3 * H)
        grad_x = (flat_x @ W_ih).reshape(X.shape) if x.requires_grad else None
        grads = (grad_x, carry if h0.requires_grad else None,
                 flat_x.T @ X.reshape(T * N, -1), flat_h.T @ h_before.reshape(T * N, H))
        if b_ih is not None:
            grads += (flat_x.sum(axis=0), flat_h.sum(axis=0))
        return grads

    return Tensor._make(hs, parents, backward, "gru" + ("_reverse" if reverse else ""))


# ---------------------------------------------------------------------------------- layers

class GRU(RNNBase):
    r"""Multi-layer GRU, as ``torch.nn.GRU`` (equations in the module docstring).

    Args (as PyTorch): ``input_size``, ``hidden_size``, ``num_layers=1``, ``bias=True``,
    ``batch_first=False``, ``dropout=0.0`` (between layers, training mode only),
    ``bidirectional=False``; plus ``unroll=False`` (True: per-step autograd graph instead of
    the fused BPTT node) and ``dtype``.

    Parameters per layer k and direction: ``weight_ih_l{k}`` ``(3H, H_in)``, ``weight_hh_l{k}``
    ``(3H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(3H,)``, ``_reverse`` suffix for the
    backward direction; gates stacked r, z, n; all drawn from U(-1/sqrt(H), 1/sqrt(H)).

    ``forward(input, hx=None)`` → ``(output, h_n)``, with D = 2 if bidirectional else 1:
        input:  ``(L, N, H_in)``, ``(N, L, H_in)`` if ``batch_first``, or unbatched ``(L, H_in)``
        hx/h_n: ``(D*num_layers, N, H)`` (unbatched ``(D*num_layers, H)``); zeros if None
        output: ``(L, N, D*H)`` (batch_first: ``(N, L, D*H)``; unbatched ``(L, D*H)``)
    """

    _mode = "GRU"
    _gates = 3

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, unroll: bool = False, dtype=None):
        super().__init__(input_size, hidden_size, num_layers=num_layers, bias=bias,
                         batch_first=batch_first, dropout=dropout, bidirectional=bidirectional,
                         unroll=unroll, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run the whole sequence; returns ``(output, h_n)`` (shapes in the class docstring)."""
        return super().forward(input, hx)

    def _recurrence(self, x: Tensor, start: tuple, weights: tuple, reverse: bool,
                    unroll: bool | None = None, **watch) -> tuple:
        unroll = self.unroll if unroll is None else unroll
        recurrence = gru_unrolled if unroll else gru_fused
        hs = recurrence(x, start[0], *weights, reverse=reverse, **watch)
        return hs, (hs[0] if reverse else hs[-1],)


class GRUCell(RNNCellBase):
    """One GRU step, as ``torch.nn.GRUCell``: ``h' = cell(x, h)`` with the equations of the
    module docstring.

    input ``(N, H_in)`` or unbatched ``(H_in,)``; hx ``(N, H)`` or ``(H,)`` (zeros if None).
    Parameters: ``weight_ih`` ``(3H, H_in)``, ``weight_hh`` ``(3H, H)``, ``bias_ih``,
    ``bias_hh`` ``(3H,)``, gates stacked r, z, n.
    """

    _mode = "GRUCell"
    _gates = 3

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, unbatched = self._canonical_input(input)
        h = self._canonical_state(hx, x, unbatched)
        x_gates, h_gates = x @ self.weight_ih.T, h @ self.weight_hh.T
        if self.bias:
            x_gates, h_gates = x_gates + self.bias_ih, h_gates + self.bias_hh
        h = gru_step(x_gates, h_gates, h)
        return h.squeeze(0) if unbatched else h
