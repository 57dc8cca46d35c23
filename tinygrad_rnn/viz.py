"""Pictures of what autograd and BPTT do: the graph behind a tensor, and norms through time.

* :func:`to_dot` writes the computation graph behind a tensor in Graphviz's DOT language: one
  box per tensor, labelled with the op that made it, its shape and dtype; parameters carry
  their names when you pass them. In the graph of an unrolled RNN (``nn.RNN(...,
  unroll=True)``) the ops of each time step are grouped in a box ``t = 1``, ``t = 2``, …, so
  the picture reads like the textbook's "RNN unrolled through time".
* :func:`draw` renders that graph to an image with the ``dot`` program of Graphviz.
* :func:`plot_norms` draws curves such as ``‖∂L/∂h_t‖`` against t on a log scale (matplotlib).

Draw the graph *before* calling ``backward()``: backward frees it (unless
``retain_graph=True``), and a freed graph has nothing left to show.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from typing import Mapping, cast

from . import backend
from .nn.module import Module
from .tensor import Tensor

__all__ = ["to_dot", "draw", "plot_norms", "GraphvizNotFoundError"]

GRAPHVIZ_HINT = ("install Graphviz, which provides the `dot` program: `apt-get install "
                 "graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) or `conda install "
                 "-c conda-forge graphviz` (the pip package `graphviz` does not include it)")


class GraphvizNotFoundError(RuntimeError):
    """Raised by :func:`draw` with ``strict=True`` when the Graphviz ``dot`` program is not
    on the PATH."""


class GraphvizNotFoundWarning(UserWarning):
    """Issued by :func:`draw` when ``dot`` is missing and it writes the DOT source instead."""


# ----------------------------------------------------------------------- graph traversal

def _collect(root: Tensor) -> tuple[list, list]:
    """Every tensor the graph of ``root`` reaches, and its edges ``(input, output)``.

    Iterative depth-first walk over ``node.parents`` (no recursion, so deep unrolled graphs
    work). Tensors are listed root first; inputs that need no gradient (data, constants) are
    included, as leaves.
    """
    tensors, edges, seen = [], [], {id(root)}
    stack = [root]
    while stack:
        tensor = stack.pop()
        tensors.append(tensor)
        node = tensor._node
        if node is None:
            continue
        if node.freed:
            raise RuntimeError(f"viz: the graph behind this tensor was freed by backward() "
                               f"(at op '{node.op}'); draw it before calling backward(), or "
                               "call backward(retain_graph=True)")
        for parent in node.parents:
            edges.append((parent, tensor))
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return tensors, edges


# ------------------------------------------------------------------ time-step clusters

def _reaches(start: Tensor, target: Tensor, max_depth: int = 4) -> bool:
    """Whether ``target`` is an input of ``start`` at most ``max_depth`` ops back."""
    frontier = [start]
    for _ in range(max_depth):
        frontier = [p for t in frontier if t._node is not None for p in t._node.parents]
        if any(p is target for p in frontier):
            return True
    return False


def _is_state_sequence(states: list) -> bool:
    """Whether the inputs of a ``stack`` look like the hidden states h_1 … h_T of a
    recurrence: each one computed from its neighbour a few ops earlier (forward or reverse)."""
    if len(states) < 2 or any(s._node is None for s in states):
        return False
    pairs = list(zip(states[:-1], states[1:]))
    forward = all(_reaches(b, a) for a, b in pairs)     # h_{t+1} computed from h_t
    reverse = all(_reaches(a, b) for a, b in pairs)     # h_t computed from h_{t+1}
    return forward or reverse


def _time_steps(tensors: list, consumers: dict) -> tuple[dict, dict]:
    """Group the ops of unrolled recurrences by time step.

    Returns ``cluster_of`` (``{id(tensor): (sequence, t)}``) and ``state_step``
    (``{id(h_t): t}``), with steps counted from 1 and one sequence per layer and direction.

    The unrolled RNN stacks its states h_1 … h_T into its output, so a ``stack`` whose inputs
    form a chain of states names the time steps. Step t then owns h_t and every op that only
    feeds h_t (its pre-activation, the recurrent matmul, the slice of the input projection);
    ops used by all steps (the input projection, ``W_hhᵀ``) stay outside. Cheap: each op is
    visited a few times, and graphs without such a stack get no clusters.
    """
    cluster_of: dict = {}
    state_step: dict = {}
    sequences = [t._node.parents for t in tensors
                 if t._node is not None and t._node.op == "stack"
                 and _is_state_sequence(list(t._node.parents))]
    for k, states in enumerate(sequences):
        for t, state in enumerate(states, start=1):
            state_step[id(state)] = t
            _claim(state, (k, t), cluster_of, consumers)
    return cluster_of, state_step


def _claim(state: Tensor, key: tuple, cluster_of: dict, consumers: dict) -> None:
    """Give cluster ``key`` the state and the ops that feed only it (all of whose
    consumers are already in that cluster)."""
    cluster_of[id(state)] = key
    frontier = [state]
    while frontier:
        tensor = frontier.pop()
        node = tensor._node
        for parent in node.parents if node is not None else ():
            if parent._node is None or id(parent) in cluster_of:
                continue
            if all(cluster_of.get(id(c)) == key for c in consumers.get(id(parent), ())):
                cluster_of[id(parent)] = key
                frontier.append(parent)


# ------------------------------------------------------------------------------- DOT

def _quote(text: str) -> str:
    """A DOT string literal; ``\\n`` in ``text`` becomes a line break in the label."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _describe(tensor: Tensor) -> str:
    shape = "(" + ", ".join(map(str, tensor.shape)) + ("," if tensor.ndim == 1 else "") + ")"
    return f"{shape} {tensor.dtype}"


#: Box styles: ops, leaves that get a gradient (parameters), leaves that don't (data).
_STYLES = {
    "op": 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"',
    "param": 'shape=box, style=filled, fillcolor="#fde9c9"',
    "input": 'shape=box, style=filled, fillcolor="#eeeeee"',
}


def _node_line(name: str, tensor: Tensor, param_names: dict, is_root: bool,
               state_step: int | None = None, input_names: dict | None = None) -> str:
    """The DOT statement declaring one tensor, e.g. ``n3 [label="tanh\\n(2, 4) float32", …];``"""
    if tensor._node is not None:
        kind, title = "op", tensor._node.op
        if state_step is not None:                 # a hidden state of an unrolled RNN
            title += f" = h_{state_step}"
    elif id(tensor) in param_names:
        kind, title = "param", param_names[id(tensor)]
    elif input_names and (input_name := _input_name(tensor, input_names)) is not None:
        kind, title = ("param" if tensor.requires_grad else "input"), input_name
    elif tensor.requires_grad:
        kind, title = "param", "leaf (requires_grad)"
    elif tensor.data.size == 1:
        kind, title = "input", f"constant {tensor.item():.4g}"   # e.g. the 1/n of mean()
    else:
        kind, title = "input", "input"
    style = _STYLES[kind] + (", penwidth=2.5" if is_root else "")
    return f"  {name} [label={_quote(title + chr(10) + _describe(tensor))}, {style}];"


def _param_names(params) -> dict:
    """``{id(parameter): name}`` from a Module or a ``{name: tensor}`` mapping."""
    if params is None:
        return {}
    if isinstance(params, Module):
        params = dict(params.named_parameters())
    if not isinstance(params, Mapping):
        raise TypeError(f"viz: params must be a Module or a {{name: tensor}} mapping such as "
                        f"dict(model.named_parameters()), got {type(params).__name__}")
    return {id(tensor): name for name, tensor in params.items()}


def _input_name(tensor: Tensor, input_names: dict) -> str | None:
    """The name of an input, or of the input a view was taken from (a layer reshapes ``x``
    or slices ``h0`` before using them; the view shares the input's memory)."""
    name = input_names.get(id(tensor))
    if name is None:
        base = getattr(tensor, "_base", None)
        name = input_names.get(id(base)) if base is not None else None
    return name


def _input_names(inputs) -> dict:
    """``{id(tensor): name}`` from a ``{name: tensor}`` mapping such as ``{"x": x}``."""
    if inputs is None:
        return {}
    if not isinstance(inputs, Mapping):
        raise TypeError("viz: inputs must be a {name: tensor} mapping such as "
                        f"{{'x': x, 'h0': h0}}, got {type(inputs).__name__}")
    return {id(tensor): name for name, tensor in inputs.items() if isinstance(tensor, Tensor)}


def to_dot(tensor: Tensor, params: Module | Mapping[str, Tensor] | None = None,
           title: str | None = None, inputs: Mapping[str, Tensor] | None = None) -> str:
    """DOT source (a string) of the computation graph that produced ``tensor``.

    Each tensor is one box: blue boxes are ops (``op``, shape, dtype), orange ones parameters
    or other leaves that require a gradient (labelled by name when ``params`` is given, e.g.
    ``params=model`` or ``params=dict(model.named_parameters())``), grey ones inputs
    (labelled by name when ``inputs`` is given, e.g. ``inputs={"x": x, "h0": h0}``). Arrows
    point from an op's inputs to its result; the tensor itself has a thick border. Ops of an
    unrolled RNN are grouped by time step. Render with :func:`draw` or ``dot -Tpng``.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"viz.to_dot: expected a Tensor, got {type(tensor).__name__}")
    tensors, edges = _collect(tensor)
    names = {id(t): f"n{i}" for i, t in enumerate(tensors)}
    consumers: dict = {}
    for parent, child in edges:
        consumers.setdefault(id(parent), []).append(child)
    cluster_of, state_step = _time_steps(tensors, consumers)
    param_names, input_names = _param_names(params), _input_names(inputs)

    declared = {id(t): _node_line(names[id(t)], t, param_names, t is tensor,
                                  state_step.get(id(t)), input_names) for t in tensors}
    lines = ["digraph autograd {", "  rankdir=TB;",
             '  graph [fontname="Helvetica", fontsize=11];',
             '  node [fontname="Helvetica", fontsize=10];', "  edge [arrowsize=0.7];"]
    if title:
        lines.append(f"  label={_quote(title)}; labelloc=t;")
    # Inputs first (the walk listed the root first), then one box per time step. Each
    # tensor is placed once (grouped in one pass), so this is linear in the graph's size.
    members: dict = {}
    for x in reversed(tensors):
        members.setdefault(cluster_of.get(id(x)), []).append(declared[id(x)])
    lines += members.pop(None, [])
    for k, t in sorted(members):
        lines.append(f"  subgraph cluster_{k}_{t} {{")
        lines.append(f'    label="t = {t}"; style="rounded,dashed"; color="#888888";')
        lines += ["  " + line for line in members[(k, t)]]
        lines.append("  }")
    lines += [f"  {names[id(a)]} -> {names[id(b)]};" for a, b in reversed(edges)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw(tensor: Tensor, path: str | os.PathLike,
         params: Module | Mapping[str, Tensor] | None = None, title: str | None = None,
         inputs: Mapping[str, Tensor] | None = None, strict: bool = False) -> str:
    """Render the graph of ``tensor`` (see :func:`to_dot`) to ``path``; returns the path
    written.

    The format follows the extension: ``.png``, ``.svg``, ``.pdf``, … are rendered by
    Graphviz's ``dot`` program; ``.dot``/``.gv`` writes the DOT source itself (no Graphviz
    needed). When ``dot`` is not on the PATH, the DOT source is written next to ``path``
    (``graph.png`` → ``graph.dot``) with a :class:`GraphvizNotFoundWarning` saying how to get
    Graphviz, so a notebook or script goes on; the returned path says which file was written.
    ``strict=True`` raises :class:`GraphvizNotFoundError` instead. The directory of ``path``
    is created if needed (``runs/graph.svg`` in a fresh directory), as ``train`` does.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    source = to_dot(tensor, params=params, title=title, inputs=inputs)
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    if fmt in ("dot", "gv"):
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        return path
    dot = shutil.which("dot")
    if dot is None:
        message = (f"viz.draw: cannot render {path!r}: the Graphviz `dot` program was not "
                   f"found on the PATH; {GRAPHVIZ_HINT}. Without Graphviz you can still write "
                   "the DOT source: viz.draw(tensor, 'graph.dot') or open('graph.dot', "
                   "'w').write(viz.to_dot(tensor)), and paste it into any online Graphviz "
                   "viewer.")
        if strict:
            raise GraphvizNotFoundError(message)
        fallback = os.path.splitext(path)[0] + ".dot"
        with open(fallback, "w", encoding="utf-8") as f:
            f.write(source)
        warnings.warn(f"{message} Wrote the DOT source to {fallback!r} instead.",
                      GraphvizNotFoundWarning, stacklevel=2)
        return fallback
    result = subprocess.run([dot, f"-T{fmt}", "-o", path], input=source, text=True,
                            capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"viz.draw: `dot -T{fmt}` failed for {path!r} (exit code "
                           f"{result.returncode}): {result.stderr.strip()}")
    return path


# ------------------------------------------------------------------------- norm plots

def plot_norms(curves: Mapping[str, object], path: str | os.PathLike, *,
               title: str = "", ylabel: str = "norm", xlabel: str = "time step t") -> str:
    """Plot curves over time steps 1 … T on a log y-axis and save the figure to ``path``.

    ``curves``: ``{legend label: values}`` (1-D arrays over t) for one panel, e.g.
    ``{"tanh": norms_tanh, "relu": norms_relu}``; or ``{panel title: {label: values}}`` for
    panels side by side (the same label gets the same colour in every panel). Zeros and
    infinities (a gradient that vanished to 0 or overflowed) are left out of a curve.
    Needs matplotlib (``pip install "tinygrad-rnn[plot]"``); raises ``ImportError`` saying so.
    """
    try:
        from matplotlib.figure import Figure  # the object API: no GUI backend, no pyplot state
    except ImportError:
        raise ImportError('plotting needs matplotlib: pip install "tinygrad-rnn[plot]" '
                          "(or pip install matplotlib)") from None
    panels = cast("Mapping[str, Mapping[str, object]]", curves) \
        if all(isinstance(v, Mapping) for v in curves.values()) else {"": curves}
    fig = Figure(figsize=(6.5 * len(panels), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (panel_title, panel) in zip(axes, panels.items()):
        _semilog_panel(ax, panel)
        ax.set(title=panel_title, xlabel=xlabel, ylabel=ylabel)
    if title:
        fig.suptitle(title)
    fig.savefig(os.fspath(path), dpi=120)
    return os.fspath(path)


def _semilog_panel(ax, curves: Mapping[str, object]) -> None:
    np = backend.np
    for label, values in curves.items():
        if isinstance(values, Tensor):
            values = values.data
        values = backend.to_host(values) if backend.is_array(values) else values  # CuPy → host
        values = np.asarray(values, dtype="float64").ravel()
        steps = np.arange(1, values.size + 1)
        shown = np.isfinite(values) & (values > 0)       # a log axis cannot show 0 or inf
        ax.semilogy(steps[shown], values[shown], marker=".", markersize=3, label=label)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
