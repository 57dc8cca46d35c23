r"""The spectrum of the recurrent weights ``W_hh`` watched during training
(``python -m tinygrad_rnn train TASK --track-spectrum``).

Whether gradients vanish or explode is decided, step after step, by products of Jacobians
``diag(f'(a_t)) W_hh``; the singular values of ``W_hh`` bound how much one factor can stretch
(σ_max: Pascanu's bound) and its eigenvalues say what repeated multiplication does in the long
run (the spectral radius). Training moves them: this module records, every few steps and for
every layer, all singular values and the moduli of all eigenvalues of ``W_hh``; for an LSTM
or GRU, whose ``W_hh`` stacks one ``(H, H)`` block per gate (i, f, g, o / r, z, n), of each
block separately.

:class:`SpectrumTracker` is called by the trainer after each step (``Trainer.run(on_step=)``);
:meth:`SpectrumTracker.save` adds the record to the run's ``summary.json`` under
``"spectrum"`` and draws ``spectrum.png``.
"""
from __future__ import annotations

import json
import math
import os

from . import backend
from .nn import GRU, LSTM, RNN
from .step_jacobian import recurrent_layer

np = backend.np  # host NumPy: small SVDs and eigenvalue problems

__all__ = ["SpectrumTracker", "GATES"]

#: The gate blocks stacked in ``W_hh``, by layer type, in PyTorch's order.
GATES = {RNN: ("W_hh",), LSTM: ("i", "f", "g", "o"), GRU: ("r", "z", "n")}
#: How many records a run keeps when no interval is given.
DEFAULT_RECORDS = 100
PLOT = "spectrum.png"
#: An interrupted run's records, next to its checkpoint until the resumed run finishes.
PARTIAL = "spectrum.partial.json"


class SpectrumTracker:
    """Records the spectrum of every ``W_hh`` (block) every ``every`` training steps (0 or
    None: about :data:`DEFAULT_RECORDS` times over the run), plus at the first step.

    ``records``: ``{"steps": [s, …], "blocks": {name: {"singular_values": [[σ_1 ≥ …], …],
    "eigenvalue_moduli": [[|λ_1| ≥ …], …]}}}`` with block names ``"layer 0"`` (Elman) or
    ``"layer 0 f"`` (a gate's block), one inner list per recorded step.
    """

    def __init__(self, every: int | None = None, partial: str | None = None):
        if every is not None and (isinstance(every, bool) or not isinstance(every, int)
                                  or every < 0):
            raise ValueError(f"--track-spectrum: the interval must be an integer >= 0 (0: "
                             f"automatic), got {every!r}")
        self.every = every or None
        self.records: dict = {"steps": [], "blocks": {}}
        #: Where an interrupted run keeps its records (:meth:`dump`) for the resumed run.
        self.partial = partial
        self._started = False

    def __call__(self, trainer) -> None:
        """The trainer's per-step callback: record after the first step and every
        ``every`` steps."""
        if not self._started:
            self._started = True
            self._continue(trainer.step - 1)
        if self.every is None:
            self.every = max(1, trainer.config.steps // DEFAULT_RECORDS)
        if trainer.step == 1 or trainer.step % self.every == 0:
            self.record(trainer.step, trainer.model)

    def record(self, step: int, model) -> None:
        """Add the spectrum of ``model``'s recurrent weights at ``step``."""
        rnn = recurrent_layer(model, "--track-spectrum")
        gates = next(g for kind, g in GATES.items() if isinstance(rnn, kind))
        H = rnn.hidden_size
        self.records["steps"].append(int(step))
        for layer in range(rnn.num_layers):
            w_hh = backend.to_host(rnn.layer_weights(layer, 0)[1].data).astype("float64")
            for g, gate in enumerate(gates):
                block = w_hh[g * H:(g + 1) * H]
                name = f"layer {layer}" + ("" if len(gates) == 1 else f" {gate}")
                entry = self.records["blocks"].setdefault(
                    name, {"singular_values": [], "eigenvalue_moduli": []})
                # A diverging run's weights turn inf/NaN a step before its loss does (the
                # trainer then stops with the reason): record NaN, not an SVD failure.
                finite = bool(np.isfinite(block).all())
                entry["singular_values"].append(
                    np.linalg.svd(block, compute_uv=False).tolist() if finite
                    else [math.nan] * min(block.shape))
                if block.shape[0] == block.shape[1]:   # (proj_size makes it rectangular)
                    entry["eigenvalue_moduli"].append(
                        np.sort(np.abs(np.linalg.eigvals(block)))[::-1].tolist() if finite
                        else [math.nan] * H)

    def dump(self) -> None:
        """Keep the records of an interrupted run in ``partial``, for its resumed run."""
        if self.partial is not None:
            with open(self.partial, "w", encoding="utf-8") as f:
                json.dump({"every": self.every, "records": self.records}, f)

    def _continue(self, start: int) -> None:
        """A run resumed at step ``start`` takes over the records (up to ``start``) that
        its interrupted part dumped, and their interval, so that nothing is lost."""
        if start == 0 or self.partial is None or not os.path.exists(self.partial):
            return
        with open(self.partial, encoding="utf-8") as f:
            saved = json.load(f)
        keep = [i for i, step in enumerate(saved["records"]["steps"]) if step <= start]
        self.records = {
            "steps": [saved["records"]["steps"][i] for i in keep],
            "blocks": {name: {key: [values[i] for i in keep if i < len(values)]
                              for key, values in entry.items()}
                       for name, entry in saved["records"]["blocks"].items()}}
        self.every = self.every or saved["every"]

    def save(self, out: str, summary: str = "summary.json", plot: bool = True) -> list[str]:
        """Add the records to ``out/summary`` (key ``"spectrum"``) and, with matplotlib and
        ``plot``, draw ``out/spectrum.png``; returns the paths written."""
        path = os.path.join(out, summary)
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        data["spectrum"] = self.records
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        if self.partial is not None and os.path.exists(self.partial):
            os.remove(self.partial)                # now part of the summary
        written = [path]
        if plot and self.records["steps"]:
            try:
                written.append(self.plot(os.path.join(out, PLOT)))
            except ImportError:
                pass                               # the table and the JSON are enough
        return written

    def plot(self, path: str) -> str:
        """One panel per block: every singular value (thin) and the spectral radius (thick)
        against the training step. Needs matplotlib."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError('plotting needs matplotlib: pip install "tinygrad-rnn[plot]" '
                              "(or pip install matplotlib)") from None
        blocks = self.records["blocks"]
        columns = min(4, len(blocks))
        rows = -(-len(blocks) // columns)
        fig = Figure(figsize=(4 * columns, 3.2 * rows), layout="constrained")
        axes = fig.subplots(rows, columns, squeeze=False).ravel()
        steps = self.records["steps"]
        for ax, (name, entry) in zip(axes, blocks.items()):
            sigmas = np.array(entry["singular_values"])              # (records, H)
            ax.plot(steps, sigmas, color="tab:blue", lw=0.7, alpha=0.6)
            ax.plot([], [], color="tab:blue", lw=0.7, label="singular values")
            if entry["eigenvalue_moduli"]:
                radius = [m[0] for m in entry["eigenvalue_moduli"]]
                ax.plot(steps, radius, color="tab:red", lw=2, label="spectral radius")
            ax.axhline(1.0, color="gray", lw=0.8, ls="--")
            ax.set(title=name, xlabel="training step")
            ax.legend(fontsize="small")
        for ax in axes[len(blocks):]:
            ax.set_axis_off()
        fig.suptitle("spectrum of W_hh during training")
        fig.savefig(path, dpi=110)
        return path
