"""``SequenceModel``: the network every task trains, an ``nn.RNN`` followed by an
``nn.Linear`` head, as the seeds' ``SimpleRNN``::

    readout="all":   x (N, L, H_in) ─RNN─▶ states (N, L, H) ─Linear─▶ y (N, L, H_out)
    readout="last":  x (N, L, H_in) ─RNN─▶ states[:, -1] (N, H) ─Linear─▶ y (N, H_out)
"""
from __future__ import annotations

from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.rnn import RNN
from ..tensor import Tensor

READOUTS = ("all", "last")


class SequenceModel(Module):
    """An Elman RNN (``batch_first=True``) with a linear read-out.

    ``readout="all"`` applies the head at every time step (sequence to sequence: next-value
    prediction, language models); ``readout="last"`` only to the last hidden state (sequence
    to one: the adding problem, classification).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 num_layers: int = 1, nonlinearity: str = "tanh", unroll: bool = False,
                 readout: str = "all"):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"SequenceModel: readout must be one of {READOUTS}, got {readout!r}")
        self.readout = readout
        self.rnn = RNN(input_size, hidden_size, num_layers=num_layers,
                       nonlinearity=nonlinearity, batch_first=True, unroll=unroll)
        self.fc = Linear(hidden_size, output_size)

    def forward(self, x: Tensor, h0: Tensor | None = None) -> Tensor:
        """``x`` ``(N, L, H_in)`` → ``(N, L, H_out)`` (readout "all") or ``(N, H_out)``
        ("last")."""
        return self.forward_state(x, h0)[0]

    def forward_state(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Like :meth:`forward`, also returning the final hidden state ``h_n``
        ``(num_layers, N, H)``, to continue a sequence later (text generation)."""
        states, h_n = self.rnn(x, h0)                      # (N, L, H), (layers, N, H)
        if self.readout == "last":
            states = states[:, -1]                         # (N, H)
        return self.fc(states), h_n

    def extra_repr(self) -> str:
        return f"readout={self.readout!r}"
