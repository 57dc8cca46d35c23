"""``charlm``: a character-level language model (predict the next character of text).

The text is the default corpus written by :mod:`.grammar` (a tiny English-like grammar), or
the user's own file (``--text FILE``). The last 10% of it is held out. Every training step
takes ``batch_size`` random windows of ``seq_len + 1`` characters from the rest; the model
reads the characters one-hot and, at every step, predicts the next one (sequence to sequence,
cross entropy).

Metric: bits per character on the held-out text (the cross entropy in base 2; lower is
better), against the unigram baseline: a model that ignores context and predicts every
character with its frequency in the training text. At the end the model writes a sample.
"""
from __future__ import annotations

import hashlib
import math
import os

from .. import backend
from ..autograd import no_grad
from ..nn import functional as F
from ..nn.module import Module
from ..tensor import Tensor
from . import grammar
from .base import SAMPLE_STREAM, TRAIN_STREAM, Defaults, Metric, Task, generator, to_tensor
from .model import SequenceModel

np = backend.np  # host NumPy: the data is generated on the CPU, then moved to the backend

HELD_OUT = 0.1            # fraction of the text kept for the metric
EVAL_STREAMS = 16         # the held-out text is read as this many parallel streams


class CharLMTask(Task):
    name = "charlm"
    summary = "character-level language model on a generated corpus or --text FILE (bits/char)"
    defaults = Defaults(steps=1500, batch_size=32, seq_len=50, hidden=128, lr=3e-3, clip=1.0)
    readout = "all"
    options = ("text",)

    def __init__(self, seed: int = 0, batch_size: int | None = None,
                 seq_len: int | None = None, text: str | None = None,
                 corpus_sha256: str | None = None, vocab_sha256: str | None = None):
        """``corpus_sha256``/``vocab_sha256`` (as :meth:`config` records them): when given,
        the text must still have them (``ValueError`` otherwise)."""
        super().__init__(seed, batch_size, seq_len)
        self.text_path = None if text is None else os.path.abspath(text)
        self.text = grammar.corpus() if text is None else read_text(text)
        if corpus_sha256 is not None and corpus_sha256 != _sha256(self.text):
            raise ValueError(f"charlm: the text {self.text_path or '(generated corpus)'} has "
                             f"changed: its SHA-256 is no longer {corpus_sha256[:12]}...")
        self.vocab = sorted(set(self.text))                      # index → character
        if vocab_sha256 is not None and vocab_sha256 != _sha256("".join(self.vocab)):
            raise ValueError("charlm: the text's vocabulary has changed")
        self.index = {c: i for i, c in enumerate(self.vocab)}    # character → index
        codes = np.array([self.index[c] for c in self.text], dtype=np.int64)
        split = int(len(codes) * (1 - HELD_OUT))
        self.train_codes, self.test_codes = codes[:split], codes[split:]
        need = self.seq_len + 1
        if len(self.train_codes) <= need or len(self.test_codes) < EVAL_STREAMS * 2:
            raise ValueError(f"charlm: the text has {len(codes)} characters, too short for "
                             f"seq_len={self.seq_len}; expected at least "
                             f"{max(int(need / (1 - HELD_OUT)) + 2, 20 * EVAL_STREAMS)}")

    @property
    def input_size(self) -> int:
        return len(self.vocab)

    @property
    def output_size(self) -> int:
        return len(self.vocab)

    def steps_per_epoch(self) -> int:
        """Steps that predict as many characters as the training part holds."""
        return -(-len(self.train_codes) // (self.batch_size * self.seq_len))

    def config(self) -> dict:
        """The settings, the text's path, and a SHA-256 of the text and of the vocabulary:
        a checkpoint keeps them, so resuming on a changed file is caught (the path alone
        would not see an edited file)."""
        return {**super().config(), "text": self.text_path,
                "corpus_sha256": _sha256(self.text), "vocab_sha256": _sha256("".join(self.vocab))}

    # ---------------------------------------------------------------------------- data
    def one_hot(self, codes) -> Tensor:
        """Character indices ``(N, L)`` → one-hot inputs ``(N, L, vocab)``."""
        return to_tensor(np.eye(len(self.vocab))[codes])

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """``x`` ``(batch_size, seq_len, vocab)`` one-hot; ``y`` ``(batch_size, seq_len)``
        the index of the next character."""
        rng = generator(self.seed, TRAIN_STREAM, step)
        starts = rng.integers(0, len(self.train_codes) - self.seq_len, size=self.batch_size)
        windows = self.train_codes[starts[:, None] + np.arange(self.seq_len + 1)]
        return self.one_hot(windows[:, :-1]), to_tensor(windows[:, 1:])

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output.reshape(-1, len(self.vocab)), target.reshape(-1))

    # ------------------------------------------------------------------------- metric
    def evaluate(self, model: Module) -> Metric:
        """Bits/char of the held-out text, read as :data:`EVAL_STREAMS` long streams (the
        hidden state carries across the whole stream, as when the model generates)."""
        length = (len(self.test_codes) - 1) // EVAL_STREAMS
        streams = self.test_codes[:EVAL_STREAMS * length + 1]
        inputs = streams[:-1].reshape(EVAL_STREAMS, length)
        targets = streams[1:].reshape(EVAL_STREAMS, length)
        logits = self.predict(model, self.one_hot(inputs))
        nats = self.loss(logits, to_tensor(targets)).item()
        return Metric("bits/char", nats / math.log(2), self.unigram_bits(targets),
                      "unigram frequencies", higher_is_better=False)

    def unigram_bits(self, targets) -> float:
        """Cross entropy (bits/char) of ``targets`` under the training text's character
        frequencies (add-one smoothed, so a character unseen in training costs finite bits)."""
        counts = np.bincount(self.train_codes, minlength=len(self.vocab)) + 1.0
        log2p = np.log2(counts / counts.sum())
        return float(-log2p[targets].mean())

    # ----------------------------------------------------------------------- sampling
    def sample(self, model: SequenceModel, length: int = 300, prime: str | None = None,
               temperature: float = 0.8) -> str:
        """``prime`` followed by ``length`` characters drawn from the model, one at a time,
        the hidden state carried from each character to the next. Random draws come from
        the task's seed, so a model always writes the same sample."""
        rng = generator(self.seed, SAMPLE_STREAM)
        prime = prime or self.text[:self.text.find(" ") + 1] or self.vocab[0]
        codes = [self.index[c] for c in prime if c in self.index] or [0]
        was_training = model.training
        model.eval()
        out, state = [], None
        with no_grad():
            logits, state = model.forward_state(self.one_hot(np.array([codes])), state)
            for _ in range(length):
                p = F.softmax(logits[0, -1] * (1.0 / temperature)).numpy().astype(np.float64)
                code = int(rng.choice(len(p), p=p / p.sum()))
                out.append(self.vocab[code])
                logits, state = model.forward_state(self.one_hot(np.array([[code]])), state)
        model.train(was_training)
        return prime + "".join(out)

    def report(self, model: SequenceModel) -> str:
        return "sample (temperature 0.8):\n" + self.sample(model)

    def plot(self, ax, model: Module) -> None:
        """Per-character loss of the first held-out characters: the model is unsure at the
        start of words and sure in their middle."""
        codes = self.test_codes[:61]             # fewer when the held-out text is short
        steps = np.arange(len(codes) - 1)
        logits = self.predict(model, self.one_hot(codes[None, :-1]))
        logp = F.log_softmax(logits[0], axis=-1).numpy()
        bits = -logp[steps, codes[1:]] / math.log(2)
        ax.bar(steps, bits, color="C1")
        ax.set_xticks(steps)
        ax.set_xticklabels([repr(self.vocab[c])[1:-1] for c in codes[1:]], fontsize=6)
        ax.set(title="charlm: bits spent on each held-out character", ylabel="bits")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_text(path: str) -> str:
    """The contents of a UTF-8 text file, with a clear error if it can't be read."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"charlm: --text {path!r} is a directory; expected a text file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"charlm: text file {path!r} does not exist")
    if not os.path.isfile(path):   # a FIFO or a device (/dev/zero) would never end
        raise ValueError(f"charlm: --text {path!r} is not a regular file (a FIFO or a "
                         "device); expected a text file")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise ValueError(f"charlm: text file {path!r} is not UTF-8 text ({exc})") from None
    if not text:
        raise ValueError(f"charlm: text file {path!r} is empty; expected some text to learn")
    return text
