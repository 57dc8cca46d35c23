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

The step equations (and their hand-written BPTT step) are ``cells.GRUEquations``; the
driver in ``recurrence.py`` runs them over the sequence, as for every cell.
"""
from __future__ import annotations

from ..tensor import Tensor
from .cells import GRUEquations
from .rnn_base import RNNBase, RNNCellBase


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

    def _cell(self, *extra_weights: Tensor) -> GRUEquations:
        return GRUEquations()


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
        (h,) = self._step(x, (self._canonical_state(hx, x, unbatched),))
        return h.squeeze(0) if unbatched else h

    def _cell(self) -> GRUEquations:
        return GRUEquations()
