"""``health_varlen``: the ``health`` task with stays of different lengths, trained through
packing (``nn.utils.rnn``).

People stay a different number of hours: each record has between 12 (``2 × WINDOW``) and
``seq_len`` (24) hourly readings of the same two vitals as ``health``. The label is
``health``'s rule on each person's *own* record: their first 6 hours against *their* last 6
hours. So the end of a record matters, and it differs from person to person.

A batch is a :class:`~tinygrad_rnn.nn.utils.rnn.PackedSequence`
(``pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)``): the recurrent
layer runs each record to its own end and the head classifies from ``h_n``, each person's
own final state. Padded to ``seq_len`` and read at the last step instead, a model would have
to carry its state through the zeros after a short stay and find the record's end itself;
the packed layer never sees the padding, and computes only the real hours.

Metric: accuracy on held-out people, against the majority class of the training set.
"""
from __future__ import annotations

from .. import backend
from ..nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from ..tensor import Tensor
from .base import DATA_STREAM, TEST_STREAM, TRAIN_STREAM, Defaults, generator, to_tensor
from .health import WINDOW, HealthTask, at_risk
from .model import SequenceModel

np = backend.np  # host NumPy: the data is generated on the CPU, then moved to the backend


def vitals(x):
    """Breathing rate and blood pressure ``(N, hours)`` each, from the network's normalised
    readings ``x`` ``(N, hours, 2)`` (the inverse of ``health``'s scaling)."""
    return x[..., 0] * 4 + 16, x[..., 1] * 20 + 120


def own_record_labels(x, lengths):
    """``health``'s rule on each person's own record: its first and its last ``WINDOW``
    hours (``x`` ``(N, hours, 2)`` padded, ``lengths`` ``(N,)``) → ``(N,)`` int64."""
    last = lengths[:, None] - WINDOW + np.arange(WINDOW)[None, :]      # own last hours
    ends = np.concatenate([x[:, :WINDOW], np.take_along_axis(x, last[..., None], axis=1)],
                          axis=1)                                      # (N, 2·WINDOW, 2)
    return at_risk(*vitals(ends))


class PackedClassifier(SequenceModel):
    """A :class:`SequenceModel` (readout "last") for a ``PackedSequence`` input: the head
    reads ``h_n`` of the last layer, each sequence's own final state."""

    def forward_state(self, x: Tensor | PackedSequence, state=None) -> tuple:
        _, final = self.rnn(x, state)
        h_n = final[0] if isinstance(final, tuple) else final     # LSTM: (h_n, c_n)
        return self.fc(h_n[-1]), final                            # (N, H_out)


class HealthVarLenTask(HealthTask):
    name = "health_varlen"
    summary = "vitals of 12-24 h stays, packed (PackedSequence) -> at risk? (accuracy)"
    defaults = Defaults(steps=3000, batch_size=32, seq_len=24, hidden=32, lr=3e-3, clip=1.0)
    model_class = PackedClassifier

    def __init__(self, seed: int = 0, batch_size: int | None = None,
                 seq_len: int | None = None):
        super().__init__(seed, batch_size, seq_len)      # checks seq_len >= 2 * WINDOW
        self.train_x, self.train_y, self.train_lengths = self.records(
            generator(self.seed, DATA_STREAM), self.people)

    # ----------------------------------------------------------------------------- data
    def records(self, rng, n: int):
        """``n`` stays: readings ``x`` ``(n, seq_len, 2)`` (zero after each stay), labels
        ``(n,)`` and lengths ``(n,)`` uniform in ``[2·WINDOW, seq_len]``."""
        x, _ = self.readings(rng, n)                 # health's full-day readings
        lengths = rng.integers(2 * WINDOW, self.seq_len + 1, n)
        x[np.arange(self.seq_len)[None, :] >= lengths[:, None]] = 0.0
        return x, own_record_labels(x, lengths), lengths

    def packed(self, x, lengths) -> PackedSequence:
        return pack_padded_sequence(to_tensor(x), lengths.tolist(), batch_first=True,
                                    enforce_sorted=False)

    # The ignores: HealthTask's inputs are Tensors, these are packed; the methods this class
    # keeps from HealthTask (loss, evaluate through predict) take either, plot is its own.
    def batch(self, step: int) -> tuple[PackedSequence, Tensor]:  # type: ignore[override]
        """Stays of step ``step`` (each epoch in a fresh order drawn from (seed, epoch)):
        a PackedSequence of ``batch_size`` records and their labels ``(batch_size,)``."""
        epoch, i = divmod(step, self.steps_per_epoch())
        order = generator(self.seed, TRAIN_STREAM, epoch).permutation(self.people)
        picked = order[i * self.batch_size:(i + 1) * self.batch_size]
        return (self.packed(self.train_x[picked], self.train_lengths[picked]),
                to_tensor(self.train_y[picked]))

    def test_set(self) -> tuple[PackedSequence, Tensor]:  # type: ignore[override]
        x, y, lengths = self.records(generator(self.seed, TEST_STREAM), self.test_people)
        return self.packed(x, lengths), to_tensor(y)

    def plot(self, ax, model) -> None:
        x, y = self.test_set()
        shown = 12
        padded, lengths = pad_packed_sequence(x, batch_first=True)
        predicted = self.predict(model, x).argmax(axis=-1).numpy()[:shown]
        breathing, _ = vitals(padded.numpy()[:shown])
        for person in range(shown):
            hours = int(lengths.numpy()[person])
            wrong = predicted[person] != y.numpy()[person]
            ax.plot(breathing[person, :hours], color="C3" if predicted[person] else "C2",
                    ls="--" if wrong else "-", lw=1)
        ax.set(title="health_varlen: breathing rate of held-out stays\n"
                     "(red: flagged at risk, green: not; dashed: wrong)",
               xlabel="hour", ylabel="breaths/min")
