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

The step equations (and their hand-written BPTT step) are ``cells.LSTMEquations``; the
driver in ``recurrence.py`` runs them over the sequence, as for every cell.
"""
from __future__ import annotations

from ..tensor import Tensor
from .cells import LSTMEquations
from .rnn_base import RNNBase, RNNCellBase


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

    def _cell(self, *extra_weights: Tensor) -> LSTMEquations:
        return LSTMEquations(*extra_weights)          # weight_hr with proj_size > 0


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
        h, c = self._step(x, (h, c))
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)

    def _cell(self) -> LSTMEquations:
        return LSTMEquations()
