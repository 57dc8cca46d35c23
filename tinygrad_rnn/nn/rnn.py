"""``nn.RNN`` and ``nn.RNNCell``: Elman recurrent layers with PyTorch's exact semantics.

Same constructor arguments, parameter names (``weight_ih_l{k}``, ``weight_hh_l{k}``,
``bias_ih_l{k}``, ``bias_hh_l{k}``, ``_reverse`` for the backward direction), initialisation
U(-1/sqrt(H), 1/sqrt(H)), shapes and defaults as ``torch.nn.RNN``, so a PyTorch state dict loads
as is. The layers, directions, states and input handling are shared with LSTM and GRU in
``rnn_base.py``; the Elman step equations are ``cells.ElmanEquations``, run by the driver in
``recurrence.py``: ``unroll=False`` (default) as the fused layer with hand-written BPTT,
``unroll=True`` as the per-time-step autograd graph.
"""
from __future__ import annotations

from ..tensor import Tensor
from .cells import ElmanEquations
from .checks import NONLINEARITIES, check_choice
from .rnn_base import RNNBase, RNNCellBase


class RNN(RNNBase):
    r"""Multi-layer Elman RNN: ``h_t = f(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)``.

    Args (as ``torch.nn.RNN``): ``input_size``, ``hidden_size``, ``num_layers=1``,
    ``nonlinearity='tanh'`` (or ``'relu'``), ``bias=True``, ``batch_first=False``,
    ``dropout=0.0`` (between layers, training mode only), ``bidirectional=False``; plus
    ``unroll=False`` (True: per-step autograd graph instead of the fused BPTT node).

    Shapes, with D = 2 if bidirectional else 1:
        input: ``(L, N, H_in)``, ``(N, L, H_in)`` if ``batch_first``, or unbatched ``(L, H_in)``
        h0:    ``(D*num_layers, N, H_out)`` (``(D*num_layers, H_out)`` unbatched); zeros if None
        output: ``(L, N, D*H_out)`` (batch_first: ``(N, L, D*H_out)``; unbatched ``(L, D*H_out)``)
        h_n:   ``(D*num_layers, N, H_out)`` (unbatched ``(D*num_layers, H_out)``)
    """

    _mode = "RNN"
    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, unroll: bool = False,
                 dtype=None):
        check_choice("RNN", "nonlinearity", nonlinearity, NONLINEARITIES)
        super().__init__(input_size, hidden_size, num_layers=num_layers, bias=bias,
                         batch_first=batch_first, dropout=dropout, bidirectional=bidirectional,
                         unroll=unroll, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run the whole sequence; returns ``(output, h_n)`` (shapes in the class docstring)."""
        return super().forward(input, h0)

    def _cell(self, *extra_weights: Tensor) -> ElmanEquations:
        return ElmanEquations(self.nonlinearity)

    def _extra_options(self) -> str:
        return f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else ""


class RNNCell(RNNCellBase):
    """One Elman step: ``h' = f(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)``, as ``torch.nn.RNNCell``.

    input ``(N, H_in)`` or ``(H_in,)``; hx ``(N, H)`` or ``(H,)`` (zeros if None) → h' of the
    same batch layout. Parameters: ``weight_ih`` ``(H, H_in)``, ``weight_hh`` ``(H, H)``,
    ``bias_ih``, ``bias_hh`` ``(H,)``.
    """

    _mode = "RNNCell"
    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", dtype=None):
        check_choice("RNNCell", "nonlinearity", nonlinearity, NONLINEARITIES)
        super().__init__(input_size, hidden_size, bias=bias, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, unbatched = self._canonical_input(input)
        (h,) = self._step(x, (self._canonical_state(hx, x, unbatched),))
        return h.squeeze(0) if unbatched else h

    def _cell(self) -> ElmanEquations:
        return ElmanEquations(self.nonlinearity)

    def _extra_options(self) -> str:
        return f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else ""
