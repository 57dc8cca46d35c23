r"""``nn.LSTM`` and ``nn.LSTMCell``: long short-term memory, with PyTorch's exact semantics.

An LSTM carries two states: the hidden state ``h`` (what the layer outputs) and the cell
state ``c`` (its memory). At each step four gates are computed from the input and the
previous hidden state, stacked in PyTorch's order **i, f, g, o** in every weight matrix
(``weight_ih`` is ``[W_ii; W_if; W_ig; W_io]``, ``(4H, H_in)``)::

    i_t = σ(x_t W_iiᵀ + b_ii + h_{t-1} W_hiᵀ + b_hi)      input gate
    f_t = σ(x_t W_ifᵀ + b_if + h_{t-1} W_hfᵀ + b_hf)      forget gate
    g_t = tanh(x_t W_igᵀ + b_ig + h_{t-1} W_hgᵀ + b_hg)   candidate cell
    o_t = σ(x_t W_ioᵀ + b_io + h_{t-1} W_hoᵀ + b_ho)      output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)                    with proj_size > 0: h_t = (o_t ⊙ tanh(c_t)) W_hrᵀ

**Why gating fixes vanishing gradients.** In an Elman RNN the gradient travelling back from
``h_t`` to ``h_{t-1}`` is multiplied by ``diag(f'(a_t)) W_hh`` at every step, so over many
steps it shrinks (or grows) geometrically. The LSTM's cell state is updated *additively*:
``∂c_t/∂c_{t-1} = diag(f_t)``, with no weight matrix and no squashing derivative. When the
forget gate is open (``f_t ≈ 1``) the gradient flows back along the cell states almost
unchanged over many steps (the "constant error carousel"), and the network learns when to
open and close it.

As for ``nn.RNN``, the recurrence of one layer and direction is written twice:

* :func:`lstm_unrolled`: a per-time-step graph of primitive :class:`Tensor` ops, so autograd
  itself performs backpropagation through time;
* :func:`lstm_fused`: one graph node for the whole sequence, a forward loop over backend arrays
  and the BPTT backward written out by hand (equations in its docstring).

Both take ``x`` ``(T, N, H_in)``, ``h0`` ``(N, H_out)`` and ``c0`` ``(N, H)`` and return
``(hs, cs)``: every hidden state ``(T, N, H_out)`` and every cell state ``(T, N, H)`` in time
order (``reverse=True`` runs from t = T down to 1; its final states are then ``hs[0]``,
``cs[0]``). ``H_out`` is ``proj_size`` when the projection ``W_hr`` ``(H_out, H)`` is given,
else ``H``.
"""
from __future__ import annotations

from typing import Callable

from ..tensor import Tensor
from .rnn_base import RNNBase, RNNCellBase


# ------------------------------------------------------------------------ the recurrences

def lstm_step(gates: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM update from the gates' pre-activations ``(N, 4H)`` (i, f, g, o blocks) and the
    previous cell state ``(N, H)``: returns ``(o ⊙ tanh(c), c)`` with
    ``c = σ(f) ⊙ c_prev + σ(i) ⊙ tanh(g)`` (before any projection)."""
    H = c_prev.shape[-1]
    i = gates[:, 0:H].sigmoid()
    f = gates[:, H:2 * H].sigmoid()
    g = gates[:, 2 * H:3 * H].tanh()
    o = gates[:, 3 * H:4 * H].sigmoid()
    c = f * c_prev + i * g
    return o * c.tanh(), c


def lstm_unrolled(x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor,
                  b_ih: Tensor | None, b_hh: Tensor | None, w_hr: Tensor | None = None,
                  reverse: bool = False,
                  on_step: Callable[[int, Tensor], None] | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM layer as a per-time-step graph of primitive ops.

    ``x`` ``(T, N, H_in)``, ``h0`` ``(N, H_out)``, ``c0`` ``(N, H)`` → ``(hs, cs)``, all hidden
    states ``(T, N, H_out)`` and cell states ``(T, N, H)``. ``on_step(t, h_t)`` is called with
    each new hidden state (``bptt.trace`` uses it).
    """
    # The input's share of the gates does not depend on h: one matmul for all steps.
    projected = x @ w_ih.T                                    # (T, N, 4H)
    if b_ih is not None:
        projected = projected + (b_ih + b_hh)
    w_hh_t = w_hh.T
    w_hr_t = w_hr.T if w_hr is not None else None
    T = x.shape[0]
    steps = range(T - 1, -1, -1) if reverse else range(T)
    h, c = h0, c0
    hs, cs = [None] * T, [None] * T
    for t in steps:
        h, c = lstm_step(projected[t] + h @ w_hh_t, c)       # gates → (o ⊙ tanh(c_t), c_t)
        if w_hr_t is not None:
            h = h @ w_hr_t                                    # the projection
        hs[t], cs[t] = h, c
        if on_step is not None:
            on_step(t, h)
    return Tensor.stack(hs, axis=0), Tensor.stack(cs, axis=0)


def _sigmoid_(xp, a) -> None:
    """σ(a) in place, as ½(1 + tanh(a/2)): the same function, without exp overflow."""
    a *= 0.5
    xp.tanh(a, out=a)
    a += 1
    a *= 0.5


def _previous(xp, states, first, reverse: bool):
    """The state each step started from, in time order: ``states`` ``(T, N, K)`` shifted by
    one step, with ``first`` (the initial state ``(N, K)``) where the direction begins."""
    if reverse:
        return xp.concatenate([states[1:], first[None]], axis=0)
    return xp.concatenate([first[None], states[:-1]], axis=0)


def lstm_fused(x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor,
               b_ih: Tensor | None, b_hh: Tensor | None, w_hr: Tensor | None = None,
               reverse: bool = False,
               on_state_grads: Callable | None = None) -> tuple[Tensor, Tensor]:
    r"""One LSTM layer as a single graph node with hand-written BPTT.

    ``x`` ``(T, N, H_in)``, ``h0`` ``(N, H_out)``, ``c0`` ``(N, H)`` → ``(hs, cs)`` as
    :func:`lstm_unrolled`. The node (op ``lstm``) outputs ``[h_t | c_t]``, ``(T, N, H_out + H)``;
    ``hs`` and ``cs`` are slices of it.

    Forward: the input's share of the gates for all steps is one matmul, ``(T, N, 4H)``; the loop
    adds ``h_{t-1} W_hhᵀ`` and applies the gate nonlinearities in place, so that buffer ends up
    holding the gate values ``i_t, f_t, g_t, o_t`` that the backward pass needs, next to the
    ``c_t`` kept in the output.

    Backward (BPTT). With ``g^h_t``, ``g^c_t`` the gradients arriving from outside at ``h_t`` and
    ``c_t`` (from the output, and from ``h_n``, ``c_n`` at the last step), walk t = T … 1
    carrying the gradients that flow back from step t+1, and write ``a^i_t`` … ``a^o_t`` for the
    gates' pre-activations and ``m_t = o_t ⊙ tanh(c_t)``::

        δh_t  = g^h_t + δa_{t+1} W_hh                  (δa_{T+1} = 0)
        δm_t  = δh_t W_hr                              (δm_t = δh_t without projection)
        δc_t  = g^c_t + δc_{t+1} ⊙ f_{t+1} + δm_t ⊙ o_t ⊙ (1 - tanh²(c_t))
        δa^i_t = δc_t ⊙ g_t ⊙ i_t (1 - i_t)          σ' = σ (1 - σ)
        δa^f_t = δc_t ⊙ c_{t-1} ⊙ f_t (1 - f_t)
        δa^g_t = δc_t ⊙ i_t ⊙ (1 - g_t²)              tanh' = 1 - tanh²
        δa^o_t = δm_t ⊙ tanh(c_t) ⊙ o_t (1 - o_t)
        δa_t  = [δa^i_t, δa^f_t, δa^g_t, δa^o_t]       (N, 4H)

    The path ``δc_{t+1} ⊙ f_{t+1}`` is the one without a matrix product: it is why the LSTM's
    gradients do not have to vanish. With every ``δa_t`` known, the parameter gradients are sums
    over time, one matmul each::

        ∂L/∂W_ih = Σ_t δa_tᵀ x_t        ∂L/∂W_hh = Σ_t δa_tᵀ h_{t-1}
        ∂L/∂b_ih = ∂L/∂b_hh = Σ_t Σ_n δa_t
        ∂L/∂W_hr = Σ_t δh_tᵀ m_t
        ∂L/∂x_t  = δa_t W_ih             ∂L/∂h_0 = δa_1 W_hh,   ∂L/∂c_0 = δc_1 ⊙ f_1

    ``on_state_grads(δh)`` (``(T, N, H_out)``, time order) lets ``bptt.trace`` see every δh_t.
    """
    xp = x.xp
    X, W_ih, W_hh = x.data, w_ih.data, w_hh.data
    W_hr = w_hr.data if w_hr is not None else None
    T, N = X.shape[0], X.shape[1]
    H, P = W_hh.shape[0] // 4, W_hh.shape[1]                 # P = H_out
    order = range(T - 1, -1, -1) if reverse else range(T)

    # ---- forward
    gates = (X.reshape(T * N, -1) @ W_ih.T).reshape(T, N, 4 * H)  # x_t W_ihᵀ, every t
    if b_ih is not None:
        gates += b_ih.data + b_hh.data
    out = xp.empty((T, N, P + H), dtype=X.dtype)             # [h_t | c_t]
    hs, cs = out[:, :, :P], out[:, :, P:]
    W_hh_T = W_hh.T
    h, c = h0.data, c0.data
    for t in order:
        a = gates[t]
        a += h @ W_hh_T                                      # pre-activations a^i … a^o
        _sigmoid_(xp, a[:, 0:2 * H])                         # i_t, f_t
        xp.tanh(a[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])   # g_t
        _sigmoid_(xp, a[:, 3 * H:])                          # o_t
        i, f, g, o = a[:, 0:H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c = f * c + i * g                                    # c_t
        m = o * xp.tanh(c)                                   # o_t ⊙ tanh(c_t)
        h = m @ W_hr.T if W_hr is not None else m            # h_t
        cs[t] = c
        hs[t] = h

    parents = (x, h0, c0, w_ih, w_hh) + ((b_ih, b_hh) if b_ih is not None else ()) \
        + ((w_hr,) if w_hr is not None else ())

    def backward(grad):
        g_h, g_c = grad[:, :, :P], grad[:, :, P:]
        c_before = _previous(xp, cs, c0.data, reverse)       # c_{t-1} for every t
        tanh_c = xp.tanh(cs)
        delta = xp.empty_like(gates)                         # δa_t for every t
        delta_h = xp.empty((T, N, P), dtype=X.dtype)         # δh_t for every t
        carry_h = xp.zeros((N, P), dtype=X.dtype)            # δa_{t+1} W_hh
        carry_c = xp.zeros((N, H), dtype=X.dtype)            # δc_{t+1} ⊙ f_{t+1}
        for t in reversed(order):
            i, f, g, o = (gates[t][:, k * H:(k + 1) * H] for k in range(4))
            d_h = delta_h[t]
            xp.add(g_h[t], carry_h, out=d_h)                 # δh_t
            d_m = d_h @ W_hr if W_hr is not None else d_h    # δm_t
            d_c = g_c[t] + carry_c + d_m * o * (1 - tanh_c[t] * tanh_c[t])   # δc_t
            d_i, d_f, d_g, d_o = (delta[t][:, k * H:(k + 1) * H] for k in range(4))
            xp.multiply(d_c * g, i * (1 - i), out=d_i)       # δa^i_t
            xp.multiply(d_c * c_before[t], f * (1 - f), out=d_f)   # δa^f_t
            xp.multiply(d_c * i, 1 - g * g, out=d_g)         # δa^g_t
            xp.multiply(d_m * tanh_c[t], o * (1 - o), out=d_o)     # δa^o_t
            carry_c = d_c * f
            carry_h = delta[t] @ W_hh
        if on_state_grads is not None:
            on_state_grads(delta_h)

        # ---- sums over time, one matmul each
        flat = delta.reshape(T * N, 4 * H)
        grad_x = (flat @ W_ih).reshape(X.shape) if x.requires_grad else None
        grad_w_ih = flat.T @ X.reshape(T * N, -1)
        h_before = _previous(xp, hs, h0.data, reverse)
        grad_w_hh = flat.T @ h_before.reshape(T * N, P)
        grads = (grad_x, carry_h if h0.requires_grad else None,
                 carry_c if c0.requires_grad else None, grad_w_ih, grad_w_hh)
        if b_ih is not None:
            grad_b = flat.sum(axis=0)
            grads += (grad_b, grad_b)
        if W_hr is not None:
            m = gates[:, :, 3 * H:] * tanh_c                 # m_t = o_t ⊙ tanh(c_t)
            grads += (delta_h.reshape(T * N, P).T @ m.reshape(T * N, H),)
        return grads

    packed = Tensor._make(out, parents, backward, "lstm" + ("_reverse" if reverse else ""))
    return packed[:, :, :P], packed[:, :, P:]


# ---------------------------------------------------------------------------------- layers

class LSTM(RNNBase):
    r"""Multi-layer LSTM, as ``torch.nn.LSTM`` (equations in the module docstring).

    Args (as PyTorch): ``input_size``, ``hidden_size``, ``num_layers=1``, ``bias=True``,
    ``batch_first=False``, ``dropout=0.0`` (between layers, training mode only),
    ``bidirectional=False``, ``proj_size=0`` (> 0: project each ``h_t`` to that size with
    ``weight_hr_l{k}`` ``(proj_size, hidden_size)``); plus ``unroll=False`` (True: per-step
    autograd graph instead of the fused BPTT node) and ``dtype``.

    Parameters per layer k and direction: ``weight_ih_l{k}`` ``(4H, H_in)``, ``weight_hh_l{k}``
    ``(4H, H_out)``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(4H,)``, ``weight_hr_l{k}``
    ``(H_out, H)`` (only with ``proj_size``), ``_reverse`` suffix for the backward direction;
    gates stacked i, f, g, o; all drawn from U(-1/sqrt(H), 1/sqrt(H)).

    ``forward(input, hx=None)`` with ``hx = (h0, c0)`` → ``(output, (h_n, c_n))``; with
    D = 2 if bidirectional else 1 and H_out = proj_size or hidden_size:
        input:  ``(L, N, H_in)``, ``(N, L, H_in)`` if ``batch_first``, or unbatched ``(L, H_in)``
        h0/h_n: ``(D*num_layers, N, H_out)`` (unbatched ``(D*num_layers, H_out)``)
        c0/c_n: ``(D*num_layers, N, H)`` (unbatched ``(D*num_layers, H)``); zeros if hx is None
        output: ``(L, N, D*H_out)`` (batch_first: ``(N, L, D*H_out)``; unbatched ``(L, D*H_out)``)
    """

    _mode = "LSTM"
    _gates = 4
    _state_names = ("h0", "c0")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, unroll: bool = False,
                 dtype=None):
        super().__init__(input_size, hidden_size, num_layers=num_layers, bias=bias,
                         batch_first=batch_first, dropout=dropout, bidirectional=bidirectional,
                         proj_size=proj_size, unroll=unroll, dtype=dtype)

    def forward(self, input: Tensor, hx: tuple | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the whole sequence; returns ``(output, (h_n, c_n))`` (shapes in the class
        docstring)."""
        return super().forward(input, hx)

    def _canonical_state(self, hx, x: Tensor, unbatched: bool) -> tuple:
        if hx is None:
            h0 = c0 = None
        elif isinstance(hx, (tuple, list)) and len(hx) == 2:
            h0, c0 = hx
            if h0 is None or c0 is None:
                raise TypeError("LSTM: hx must be a tuple (h0, c0) of two Tensors, got None "
                                "in it; pass hx=None for zero initial states")
        else:
            what = f"a {type(hx).__name__}" if not isinstance(hx, (tuple, list)) \
                else f"a {type(hx).__name__} of length {len(hx)}"
            raise TypeError(f"LSTM: expected hx to be a tuple (h0, c0) of two Tensors, got "
                            f"{what}")
        return (self._canonical_h0(h0, x, unbatched, "h0", self.output_size, "hidden[0]"),
                self._canonical_h0(c0, x, unbatched, "c0", self.hidden_size, "hidden[1]"))

    def _recurrence(self, x: Tensor, start: tuple, weights: tuple, reverse: bool,
                    unroll: bool | None = None, **watch) -> tuple:
        unroll = self.unroll if unroll is None else unroll
        recurrence = lstm_unrolled if unroll else lstm_fused
        hs, cs = recurrence(x, *start, *weights, reverse=reverse, **watch)
        last = 0 if reverse else -1
        return hs, (hs[last], cs[last])


class LSTMCell(RNNCellBase):
    """One LSTM step, as ``torch.nn.LSTMCell``: ``(h', c') = cell(x, (h, c))`` with the
    equations of the module docstring (no projection).

    input ``(N, H_in)`` or unbatched ``(H_in,)``; ``hx = (h, c)``, each ``(N, H)`` or ``(H,)``
    (zeros if None). Parameters: ``weight_ih`` ``(4H, H_in)``, ``weight_hh`` ``(4H, H)``,
    ``bias_ih``, ``bias_hh`` ``(4H,)``, gates stacked i, f, g, o.
    """

    _mode = "LSTMCell"
    _gates = 4

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple[Tensor, Tensor]:
        x, unbatched = self._canonical_input(input)
        if hx is None:
            h0 = c0 = None
        elif isinstance(hx, (tuple, list)) and len(hx) == 2:
            h0, c0 = hx
        else:
            raise TypeError(f"LSTMCell: expected hx to be a tuple (h, c) of two Tensors, got "
                            f"{type(hx).__name__}")
        h = self._canonical_state(h0, x, unbatched, "h")
        c = self._canonical_state(c0, x, unbatched, "c")
        gates = x @ self.weight_ih.T + h @ self.weight_hh.T
        if self.bias:
            gates = gates + self.bias_ih + self.bias_hh
        h, c = lstm_step(gates, c)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)
