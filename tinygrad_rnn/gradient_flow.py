r"""Gradient flow maps: how strongly each hidden state, at every step and in every layer, is
still connected to the end of the sequence and to the loss.

Two maps over (layer, time), rows in PyTorch's ``h_n`` order (layer 0, layer 1, …; the
reverse direction after its layer's forward one):

* ``‖∂h_T/∂h_t‖``: the spectral norm of the Jacobian from a layer's state at step t to its
  final state (:func:`tinygrad_rnn.bptt.jacobian_norms`), a property of the model and the
  input alone: how much of a gradient arriving at the end survives the way back to t;
* ``‖∂L/∂h_t‖``: the norm of the gradient of an actual loss reaching each ``h_t``
  (:func:`tinygrad_rnn.bptt.trace`), what BPTT really delivers there.

Drawn as heatmaps on a log colour scale (:func:`plot_gradient_flow`), an Elman RNN's map
fades to the left (vanishing gradients) where a trained LSTM's or GRU's stays bright.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import backend
from .step_jacobian import recurrent_layer
from .tensor import Tensor

np = backend.np  # host NumPy: the maps are small host arrays

__all__ = ["GradientFlow", "gradient_flow", "plot_gradient_flow"]


@dataclass
class GradientFlow:
    """The two maps of one model, host arrays ``(num_layers*D, T)`` (module docstring)."""
    jacobian_norms: np.ndarray    # ‖∂h_T/∂h_t‖₂, batch mean
    grad_norms: np.ndarray        # ‖∂L/∂h_t‖ over batch and units


def gradient_flow(model, x, loss: Callable[[], Tensor], h0=None) -> GradientFlow:
    """Both maps for the recurrent layer in ``model`` (the layer itself or a module holding
    one) on input ``x`` (and ``h0``) as the layer takes them; ``loss()`` runs the model's
    forward pass and returns the scalar loss Tensor (called once, inside a trace, and
    back-propagated). The parameters' ``.grad`` receive that loss's gradient as usual."""
    from . import bptt  # (bptt exposes this module: import it late)
    rnn = recurrent_layer(model, "gradient_flow")
    with bptt.trace(rnn) as tr:
        value = loss()
    value.backward()
    return GradientFlow(jacobian_norms=bptt.jacobian_norms(rnn, x, h0),
                        grad_norms=tr.grad_norms())


def plot_gradient_flow(flows: Mapping[str, GradientFlow], path: str, title: str = "") -> str:
    """Heatmaps, a row per model (``{name: GradientFlow}``) and a column per map, time on
    the x axis, layers on the y axis, colour = log10 of the norm. Needs matplotlib."""
    try:
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('plotting needs matplotlib: pip install "tinygrad-rnn[plot]" '
                          "(or pip install matplotlib)") from None
    fig = Figure(figsize=(12, 1.2 + 1.6 * len(flows) * max(
        1, max(f.grad_norms.shape[0] for f in flows.values()) / 2)), layout="constrained")
    axes = fig.subplots(len(flows), 2, squeeze=False)
    maps = [[_positive(f.jacobian_norms), _positive(f.grad_norms)] for f in flows.values()]
    # One colour scale per column, shared by the models, so that their rows compare.
    norms = []
    for column in range(2):
        values = np.concatenate([m[column].ravel() for m in maps])
        values = values[np.isfinite(values)]
        norms.append(LogNorm(vmin=values.min(), vmax=values.max()) if values.size else None)
    for row, name, pair in zip(axes, flows, maps):
        for ax, shown, norm, label in zip(row, pair, norms, ("|dh_T/dh_t|", "|dL/dh_t|")):
            T = shown.shape[1]
            image = ax.imshow(shown, aspect="auto", norm=norm, cmap="viridis",
                              extent=(0.5, T + 0.5, shown.shape[0] - 0.5, -0.5))
            ax.set(title=f"{name}: {label}", xlabel="time step t", ylabel="layer")
            ax.set_yticks(range(shown.shape[0]))
            fig.colorbar(image, ax=ax)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return path


def _positive(values):
    """The map with zeros and infinities (vanished or overflowed) blanked for a log scale."""
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)
