"""``SequenceModel``: the network every task trains, a recurrent layer (``nn.RNN``,
``nn.LSTM`` or ``nn.GRU``, chosen by ``cell``) followed by an ``nn.Linear`` head, as the
seeds' ``SimpleRNN``::

    readout="all":   x (N, L, H_in) ─RNN─▶ states (N, L, H) ─Linear─▶ y (N, L, H_out)
    readout="last":  x (N, L, H_in) ─RNN─▶ states[:, -1] (N, H) ─Linear─▶ y (N, H_out)

Whatever the cell, the recurrent layer is the attribute ``rnn`` (so parameter names are
``rnn.weight_ih_l0``, …, and ``bptt.trace(model)`` finds it).
"""
from __future__ import annotations

from ..nn.gru import GRU
from ..nn.linear import Linear
from ..nn.lstm import LSTM
from ..nn.module import Module
from ..nn.rnn import RNN
from ..tensor import Tensor

READOUTS = ("all", "last")
#: Recurrent layers a model can be built with: Elman RNN, LSTM, GRU.
CELLS = ("rnn", "lstm", "gru")
_LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def check_cell(cell: str, nonlinearity: str | None = None) -> None:
    """``ValueError`` for an unknown ``cell``, or a ``nonlinearity`` given with a gated cell
    (LSTM and GRU have fixed sigmoid/tanh gates; only the Elman RNN has the choice)."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; expected one of {', '.join(CELLS)}")
    if nonlinearity is not None and cell != "rnn":
        raise ValueError(f"--nonlinearity only applies to --cell rnn; the {cell} has fixed "
                         f"gates (leave --nonlinearity out)")


class SequenceModel(Module):
    """A recurrent layer (``batch_first=True``) with a linear read-out.

    ``cell``: ``"rnn"`` (Elman, with ``nonlinearity`` tanh or relu), ``"lstm"`` or ``"gru"``
    (``nonlinearity`` must then be None). ``readout="all"`` applies the head at every time
    step (sequence to sequence: next-value prediction, language models); ``readout="last"``
    only to the last hidden state (sequence to one: the adding problem, classification).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 num_layers: int = 1, nonlinearity: str | None = None, unroll: bool = False,
                 readout: str = "all", cell: str = "rnn"):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"SequenceModel: readout must be one of {READOUTS}, got {readout!r}")
        check_cell(cell, nonlinearity)
        self.readout, self.cell = readout, cell
        options: dict[str, object] = dict(num_layers=num_layers, batch_first=True,
                                          unroll=unroll)
        if cell == "rnn":
            options["nonlinearity"] = nonlinearity or "tanh"
        self.rnn = _LAYERS[cell](input_size, hidden_size, **options)
        self.fc = Linear(hidden_size, output_size)

    def forward(self, x: Tensor, state=None) -> Tensor:
        """``x`` ``(N, L, H_in)`` → ``(N, L, H_out)`` (readout "all") or ``(N, H_out)``
        ("last")."""
        return self.forward_state(x, state)[0]

    def forward_state(self, x: Tensor, state=None) -> tuple:
        """Like :meth:`forward`, also returning the final state, to continue a sequence later
        (text generation): ``h_n`` ``(num_layers, N, H)``, or ``(h_n, c_n)`` for an LSTM. Pass
        it back as ``state``."""
        states, final = self.rnn(x, state)                # (N, L, H), h_n or (h_n, c_n)
        if self.readout == "last":
            states = states[:, -1]                         # (N, H)
        return self.fc(states), final

    def extra_repr(self) -> str:
        return f"cell={self.cell!r}, readout={self.readout!r}"
