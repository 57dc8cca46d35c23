"""``python -m tinygrad_rnn bptt``: watch gradients vanish or explode through time.

Builds two Elman RNNs with the *same* weights, one with tanh and one with ReLU (``--cell``
adds or picks an LSTM and a GRU, built from the same seed), runs them on the same input and
back-propagates a loss. By default the input is random and the loss reads
only the last hidden state h_T, so every gradient ∂L/∂h_t with t < T got there by travelling
back through time. It prints, for every time step (or every k-th):

* ``|dL/dh_t|``: the norm of the gradient reaching h_t (``bptt.trace``);
* ``|dh_T/dh_t|``: the spectral norm of the Jacobian of h_T with respect to h_t
  (``bptt.jacobian_norms``), the factor by which the gradient was scaled on its way;

and the spectral radius of W_hh (Elman RNNs only: a gated layer's W_hh stacks its gates).
``--init-scale`` multiplies W_hh, moving the networks from vanishing (< 1) to exploding (> 1)
gradients; ``--plot`` draws the curves on a log scale.
Everything runs in float64 so that tiny gradients do not underflow to zero.

Two more modes (the BPTT lab):

* ``--compare``: exact BPTT, truncated BPTT for several chunk lengths, RTRL and UORO
  (``--methods``) on the same batch, with a loss at every step: each gradient's cosine and
  relative norm to the exact one, its time and peak memory (:mod:`tinygrad_rnn.compare`);
  a bar chart with ``--plot``.
* ``--checkpoint DIR [DIR ...]``: every analysis on models trained by ``train``, on their own
  task's first batch: the gradient flow maps ``|dh_T/dh_t|`` and ``|dL/dh_t|`` over layer and
  time (one heatmap, a row per model), the singular values of ``W_hh``, the Lyapunov
  spectrum and the gradient comparison. Files go to ``DIR/bptt/`` (``--out`` to change).
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
from dataclasses import dataclass
from typing import Callable

from .. import backend, bptt, compare as comparison, nn
from ..backend import get_default_dtype, set_default_dtype
from ..gradient_flow import gradient_flow, plot_gradient_flow
from ..nn.utils.rnn import PackedSequence, unpack_sequence
from ..step_jacobian import recurrent_layer
from ..tensor import Tensor
from .options import add_backend_option, make_output_directory, use_backend_option

np = backend.np  # host NumPy for the printed table

NONLINEARITIES = ("tanh", "relu")
#: The networks compared, by column name: Elman RNNs by nonlinearity, and the gated layers.
NETWORKS = NONLINEARITIES + ("lstm", "gru")
#: What ``--cell`` accepts, comma-separated: a network, "rnn" (tanh and relu) or "all".
CELL_GROUPS = {"rnn": NONLINEARITIES, "all": NETWORKS, **{n: (n,) for n in NETWORKS}}
DEFAULT_CELLS = "rnn"
INPUT_SIZE = 4          # input features of the task-free default
MAX_ROWS = 20           # rows printed when --every is not given
DEFAULT_PLOT = os.path.join("runs", "bptt", "bptt.png")
#: Sizes of the task-free default (a task brings its own defaults).
DEFAULTS = {"seq_len": 50, "hidden_size": 32, "batch_size": 8}
#: Smaller sizes for --compare: RTRL costs O(H²·|θ|) = O(H⁴) per step and sample.
COMPARE_DEFAULTS = {"hidden_size": 16, "batch_size": 4}
DEFAULT_COMPARE_PLOT = os.path.join("runs", "bptt", "compare.png")
#: --checkpoint skips RTRL (and many UORO draws) above this many multiply-adds.
RTRL_BUDGET = 2e9
LYAPUNOV_SHOWN = 5      # exponents printed by --checkpoint
COMPARE_BATCH = 4       # --checkpoint compares gradients on this many sequences of batch 0

DESCRIPTION = (
    "Gradient norms through time for a tanh and a ReLU RNN with the same weights (--cell: "
    "also, or instead, an LSTM and a GRU): |dL/dh_t| for every step t, the Jacobian norm "
    "|dh_T/dh_t| (spectral norm, mean over the batch) and the spectral radius of W_hh. By "
    "default: random inputs and a loss on the last step only, so the gradient must travel "
    "back through time.")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``bptt`` sub-command."""
    p = subparsers.add_parser("bptt", description=DESCRIPTION,
                              help="gradient norms through time: tanh vs ReLU RNN (--cell: "
                                   "LSTM, GRU)")
    p.add_argument("--seq-len", type=int, metavar="T",
                   help=f"sequence length T (default: {DEFAULTS['seq_len']}, or the task's)")
    p.add_argument("--hidden-size", type=int, metavar="H",
                   help=f"hidden units (default: {DEFAULTS['hidden_size']}, or the task's)")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help=f"sequences per batch (default: {DEFAULTS['batch_size']}, or the "
                        "task's)")
    p.add_argument("--cell", metavar="CELLS",
                   help="networks to compare, comma-separated: rnn (= tanh,relu), tanh, "
                        "relu, lstm, gru, or all (= tanh,relu,lstm,gru) (default: rnn)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--init-scale", type=float, default=1.0, metavar="S",
                   help="multiply W_hh by S after PyTorch's initialisation (spectral radius "
                        "about 0.6): smaller vanishes faster, about 3 and up explodes "
                        "(default: 1.0)")
    p.add_argument("--every", type=int, metavar="K",
                   help=f"print every K-th step (default: at most {MAX_ROWS} rows)")
    p.add_argument("--task", metavar="NAME",
                   help="use a training task's first batch, model and loss instead of "
                        f"random inputs: {', '.join(task_names())}")
    p.add_argument("--plot", metavar="PATH",
                   help=f"where to write the semilog plot of the norms, or with --compare the "
                        f"bar charts (default: {DEFAULT_PLOT} or {DEFAULT_COMPARE_PLOT} when "
                        "matplotlib is installed)")
    p.add_argument("--no-plot", action="store_true", help="print the table only")
    p.add_argument("--compare", action="store_true",
                   help="compare the gradients of exact BPTT, truncated BPTT, RTRL and UORO "
                        "(cosine, relative norm, time, memory; a loss at every step); sizes "
                        f"default to hidden {COMPARE_DEFAULTS['hidden_size']}, batch "
                        f"{COMPARE_DEFAULTS['batch_size']} (RTRL costs O(H^4) per step)")
    p.add_argument("--methods", metavar="LIST",
                   help="with --compare/--checkpoint: comma-separated methods bptt, tbptt:K, "
                        f"rtrl, uoro, uoro:D (default: {','.join(comparison.DEFAULT_METHODS)})")
    p.add_argument("--checkpoint", nargs="+", metavar="DIR",
                   help="run every analysis on models trained by `train` (run directories; "
                        "several: one heatmap with a row per model)")
    p.add_argument("--out", metavar="DIR",
                   help="with --checkpoint: where to write the figures (default: DIR/bptt of "
                        "the first checkpoint)")
    add_backend_option(p)
    return p


def task_names() -> list[str]:
    """The training tasks' names."""
    from .. import tasks
    return tasks.names()


# ---------------------------------------------------------------------------- measuring

@dataclass
class Measurement:
    """What one RNN showed: host arrays over t = 1 … T and one number."""
    grad_norms: np.ndarray      # ‖∂L/∂h_t‖, (T,)
    jacobian_norms: np.ndarray  # ‖∂h_T/∂h_t‖₂ (batch mean), (T,)
    spectral_radius: float | None   # of W_hh (of the last layer); None for LSTM/GRU


@dataclass
class Problem:
    """A recurrent layer (alone or inside a model), its input, and how to compute the loss."""
    rnn: nn.RNNBase
    x: Tensor | PackedSequence   # a packed task's batch (health_varlen)
    loss: Callable[[], Tensor]
    description: str
    seq_len: int
    batch_size: int
    last_step_loss: bool       # the loss reads h_T only: the ratio T → 1 is pure BPTT


def parse_cells(text: str) -> list[str]:
    """``--cell``'s value as the list of networks to compare, in :data:`NETWORKS` order
    (``ValueError`` naming a bad entry)."""
    chosen: set[str] = set()
    for part in (text or DEFAULT_CELLS).split(","):
        name = part.strip().lower()
        if name not in CELL_GROUPS:
            raise ValueError(f"--cell: unknown cell {part.strip()!r}; expected a comma-separated "
                             f"list of {', '.join(CELL_GROUPS)}")
        chosen.update(CELL_GROUPS[name])
    return [n for n in NETWORKS if n in chosen]


def make_layer(network: str, input_size: int, hidden_size: int, **options) -> nn.RNNBase:
    """The recurrent layer of one column: ``nn.RNN`` with that nonlinearity, ``nn.LSTM`` or
    ``nn.GRU``."""
    if network == "lstm":
        return nn.LSTM(input_size, hidden_size, **options)
    if network == "gru":
        return nn.GRU(input_size, hidden_size, **options)
    return nn.RNN(input_size, hidden_size, nonlinearity=network, **options)


def random_problem(network: str, args) -> Problem:
    """The task-free default: random inputs ``(T, N, 4)``; the loss is the batch mean of a
    fixed random unit readout of h_T, so ``∂L/∂h_T`` is the same for every network."""
    T, N, H = (args.seq_len or DEFAULTS["seq_len"], args.batch_size or DEFAULTS["batch_size"],
               args.hidden_size or DEFAULTS["hidden_size"])
    backend.manual_seed(args.seed)           # same seed, same weights for tanh and ReLU
    rnn = make_layer(network if network in NONLINEARITIES else "tanh", INPUT_SIZE, H)
    x = Tensor.randn(T, N, INPUT_SIZE)       # drawn after an Elman layer's weights, so that
    readout = Tensor.randn(H)                # every network sees the same x and readout
    if network not in NONLINEARITIES:
        backend.manual_seed(args.seed)       # the gated layer: its own weights, same seed
        rnn = make_layer(network, INPUT_SIZE, H)
    readout = readout / math.sqrt(float((readout * readout).sum().item()))

    def loss() -> Tensor:
        output, _ = rnn(x)
        return (output[-1] @ readout).mean()       # only the last step: all else is BPTT
    return Problem(rnn, x, loss, "random inputs, loss = batch mean of a random unit readout "
                                 "of h_T (last step only)", T, N, last_step_loss=True)


def task_problem(network: str, args) -> Problem:
    """A training task's first batch, its model (with the chosen cell) and loss."""
    from .. import tasks
    task = tasks.get(args.task)(seed=args.seed, batch_size=args.batch_size,
                                seq_len=args.seq_len)
    backend.manual_seed(args.seed)
    if network in NONLINEARITIES:
        model = task.make_model(hidden=args.hidden_size, nonlinearity=network)
    else:
        model = task.make_model(hidden=args.hidden_size, cell=network)
    x, y = task.batch(0)
    return Problem(model.rnn, x, lambda: task.loss(model(x), y),
                   f"task {args.task!r}: its training loss on batch 0",
                   task.time_steps,              # (copy: more than its seq_len)
                   task.batch_size, last_step_loss=task.readout == "last")


def measure(problem: Problem, init_scale: float) -> Measurement:
    """Back-propagate the problem's loss once and read the norms of the last layer."""
    bptt.scale_recurrent_weights_(problem.rnn, init_scale)
    with bptt.trace(problem.rnn) as tr:
        loss = problem.loss()
    loss.backward()
    row = -1                          # the last layer (its only direction: not bidirectional)
    radius = None
    if isinstance(problem.rnn, nn.RNN):
        w_hh = problem.rnn.layer_weights(problem.rnn.num_layers - 1, 0)[1]
        radius = bptt.spectral_radius(w_hh)
    return Measurement(grad_norms=tr.grad_norms()[row],
                       jacobian_norms=bptt.jacobian_norms(problem.rnn, problem.x)[row],
                       spectral_radius=radius)


# ------------------------------------------------------------------------------ printing

def steps_to_show(length: int, every: int | None) -> list[int]:
    """Time steps (1-based) for the table: every k-th counted back from T, plus t = 1."""
    k = every or max(1, math.ceil(length / MAX_ROWS))
    steps = set(range(length, 0, -k)) | {1}
    return sorted(steps)


def format_table(results: dict, every: int | None) -> str:
    """One row per shown step, columns ``|dL/dh_t|`` and ``|dh_T/dh_t|`` per network."""
    names = list(results)
    header = ["t"] + [f"|dL/dh_t| {n}" for n in names] + [f"|dh_T/dh_t| {n}" for n in names]
    length = len(results[names[0]].grad_norms)
    rows = []
    for t in steps_to_show(length, every):
        values = [results[n].grad_norms[t - 1] for n in names] + \
                 [results[n].jacobian_norms[t - 1] for n in names]
        rows.append([str(t)] + [f"{v:.3e}" for v in values])
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in [header] + rows]
    return "\n".join(lines)


def summary(name: str, m: Measurement, last_step_loss: bool) -> str:
    """One line: how the gradient changed from t = T back to t = 1 (called vanishing or
    exploding only when the loss reads the last step alone)."""
    first, last = m.grad_norms[0], m.grad_norms[-1]
    if not np.isfinite(first):
        verdict = "overflowed (exploding)"
    elif last == 0:
        verdict = "no gradient reached h_T"
    else:
        ratio = first / last
        kind = "vanishing" if ratio < 1e-2 else "exploding" if ratio > 1e2 else "stable-ish"
        verdict = f"|dL/dh_1| / |dL/dh_T| = {ratio:.2e}" + (f" ({kind})" if last_step_loss
                                                             else "")
    if m.spectral_radius is None:     # gated: W_hh stacks the gates' weights, not one map
        return f"  {name:>4}: {verdict}"
    return f"  {name:>4}: spectral radius of W_hh {m.spectral_radius:.3g}; {verdict}"


def same_weights(networks: list[str]) -> str:
    """What the compared networks share, for the header."""
    rnns = [n for n in networks if n in NONLINEARITIES]
    gated = [n for n in networks if n not in NONLINEARITIES]
    parts = []
    if len(rnns) == 2:
        parts.append("same weights for tanh and ReLU")
    if gated:
        parts.append(f"{' and '.join(n.upper() for n in gated)} from the same seed")
    return "; ".join(parts)


def write_plot(results: dict, path: str, title: str) -> None:
    """Two semilog panels: ``‖∂L/∂h_t‖`` and ``‖∂h_T/∂h_t‖``, a curve per network."""
    from .. import viz
    viz.plot_norms({"gradient |dL/dh_t|": {n: m.grad_norms for n, m in results.items()},
                    "Jacobian |dh_T/dh_t| (spectral norm)":
                        {n: m.jacobian_norms for n, m in results.items()}},
                   path, title=title, ylabel="norm (log scale)")


# ----------------------------------------------------------------------------------- run

def have_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def check_args(args) -> None:
    """Raise ``ValueError`` naming the first bad argument."""
    for name in DEFAULTS:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got "
                             f"{value}")
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {args.seed}")
    if not (args.init_scale > 0 and math.isfinite(args.init_scale)):
        raise ValueError(f"--init-scale must be a positive number, got {args.init_scale}")
    if args.every is not None and args.every < 1:
        raise ValueError(f"--every must be a positive integer, got {args.every}")
    if args.plot and not have_matplotlib():
        raise ValueError('--plot needs matplotlib, which is not installed: pip install '
                         '"tinygrad-rnn[plot]" (or pip install matplotlib)')
    if args.task is not None:
        from .. import tasks
        tasks.get(args.task)          # raises ValueError listing the valid names
    parse_cells(args.cell)
    if args.checkpoint:
        for option in ("task", "cell", "hidden_size", "seq_len", "batch_size"):
            if getattr(args, option) is not None:
                raise ValueError(f"--{option.replace('_', '-')} cannot be used with "
                                 "--checkpoint: a trained model brings its own task and sizes")
        if args.compare:
            raise ValueError("--checkpoint already runs the comparison; leave out --compare")
        if args.plot:
            raise ValueError("--checkpoint writes its figures into --out DIR, not --plot")
    if args.out and not args.checkpoint:
        raise ValueError("--out is for --checkpoint (use --plot PATH otherwise)")
    if args.methods is not None:
        if not (args.compare or args.checkpoint):
            raise ValueError("--methods needs --compare or --checkpoint")
        for method in parse_methods(args.methods):
            comparison.parse_method(method)        # a bad method fails before any work


def run(args: argparse.Namespace) -> int:
    """Measure, print the table (and write the plot); returns the exit status 0."""
    check_args(args)
    use_backend_option(args)
    if args.plot:                      # an unwritable --plot fails before the work
        make_output_directory(os.path.dirname(args.plot), "--plot")
    if args.checkpoint:
        return run_checkpoints(args)
    if args.compare:
        return run_compare(args)
    make_problem = task_problem if args.task else random_problem
    networks = parse_cells(args.cell)
    dtype = get_default_dtype()
    set_default_dtype("float64")      # tiny gradients must not underflow (float32: ~1e-38)
    try:
        problems = {f: make_problem(f, args) for f in networks}
        results = {f: measure(p, args.init_scale) for f, p in problems.items()}
    finally:
        set_default_dtype(dtype)
    p = problems[networks[0]]
    print(f"BPTT through {p.seq_len} steps: hidden {p.rnn.hidden_size}, batch {p.batch_size}, "
          f"seed {args.seed}, W_hh scale {args.init_scale:g}, backend {backend.name}")
    shared = same_weights(networks)
    print(p.description + (f"; {shared}" if shared else ""))
    print(format_table(results, args.every))
    print("|dL/dh_t|: gradient norm over batch and units; |dh_T/dh_t|: spectral norm, batch "
          "mean")
    for name, m in results.items():
        print(summary(name, m, p.last_step_loss))
    plot_path = args.plot or (DEFAULT_PLOT if have_matplotlib() and not args.no_plot else None)
    if plot_path:
        os.makedirs(os.path.dirname(plot_path) or ".", exist_ok=True)
        write_plot(results, plot_path, f"BPTT through {p.seq_len} steps, W_hh scale "
                                       f"{args.init_scale:g}")
        print(f"plot written to {plot_path}")
    elif not args.no_plot:
        print('(for a plot: pip install "tinygrad-rnn[plot]")')
    return 0


# ------------------------------------------------------------------------------ --compare

def parse_methods(text: str | None) -> list[str]:
    """``--methods``' value as a list (the default methods when not given)."""
    if text is None:
        return list(comparison.DEFAULT_METHODS)
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if not methods:
        raise ValueError("--methods: give at least one method, e.g. bptt,tbptt:5,rtrl")
    return methods


def compare_problem(network: str, args) -> tuple:
    """``(model, x, step_loss, description)`` for --compare: the task's first batch and its
    per-step losses, or random inputs with a fixed random readout of every ``h_t``."""
    H = args.hidden_size or COMPARE_DEFAULTS["hidden_size"]
    N = args.batch_size or COMPARE_DEFAULTS["batch_size"]
    backend.manual_seed(args.seed)
    if args.task:
        from .. import tasks
        task = tasks.get(args.task)(seed=args.seed, batch_size=N, seq_len=args.seq_len)
        if network in NONLINEARITIES:
            model = task.make_model(hidden=H, nonlinearity=network)
        else:
            model = task.make_model(hidden=H, cell=network)
        x, y = task.batch(0)
        # a packed task's batch (health_varlen) is refused there with a one-line reason
        return (model, x, comparison.task_step_loss(task, model, x, y),
                f"task {args.task!r}, batch 0, its loss split over the steps")
    T = args.seq_len or DEFAULTS["seq_len"]
    layer = make_layer(network, INPUT_SIZE, H)
    x = Tensor.randn(T, N, INPUT_SIZE)
    readout = Tensor.randn(H)
    readout = readout / math.sqrt(float((readout * readout).sum().item()))

    def step_loss(t: int, out_t: Tensor) -> Tensor:
        return (out_t @ readout).mean() * (1.0 / T)
    return layer, x, step_loss, "random inputs, loss = mean over steps of a random readout"


def run_compare(args) -> int:
    """Print the comparison table of every network (and draw the bar charts)."""
    methods = parse_methods(args.methods)
    dtype = get_default_dtype()
    set_default_dtype("float64")
    panels: dict = {}
    description, shape, hidden = "", (), 0
    try:
        for network in parse_cells(args.cell):
            model, x, step_loss, description = compare_problem(network, args)
            bptt.scale_recurrent_weights_(model, args.init_scale)
            panels[network] = comparison.compare(model, x, step_loss, methods, seed=args.seed)
            shape, hidden = x.shape, recurrent_layer(model, "bptt --compare").hidden_size
    finally:
        set_default_dtype(dtype)
    print(f"Gradient methods compared on {description}: input {shape}, hidden {hidden}, "
          f"seed {args.seed}, W_hh scale {args.init_scale:g}, backend {backend.name}")
    for network, results in panels.items():
        print(f"\n{network}:")
        print(comparison.format_table(results))
    print("\ncosine and norms against exact BPTT; time of one run; peak memory: host bytes "
          "allocated during a run (tracemalloc)")
    plot_path = args.plot or (DEFAULT_COMPARE_PLOT if have_matplotlib() and not args.no_plot
                              else None)
    if plot_path:
        os.makedirs(os.path.dirname(plot_path) or ".", exist_ok=True)
        comparison.plot_comparison(panels, plot_path, f"Gradient methods vs exact BPTT "
                                                      f"({description})")
        print(f"plot written to {plot_path}")
    return 0


# --------------------------------------------------------------------------- --checkpoint

def run_checkpoints(args) -> int:
    """Every analysis on each trained model; one heatmap for all of them."""
    from .trained import describe, load_run
    dtype = get_default_dtype()
    set_default_dtype("float64")          # the trained weights are cast up, as is the data
    flows: dict = {}
    comparisons: dict = {}
    try:
        trainers = [load_run(path) for path in args.checkpoint]
        out = args.out or os.path.join(args.checkpoint[0], "bptt")
        plotting = have_matplotlib() and not args.no_plot
        if plotting:                   # an unwritable --out fails before the analyses
            make_output_directory(out, "--out")
        for path, trainer in zip(args.checkpoint, trainers):
            name = _run_name(trainer, path, flows)
            print(f"=== {name}: {describe(trainer)} ({path})")
            flows[name], comparisons[name] = analyse(trainer, args)
    finally:
        set_default_dtype(dtype)
    if plotting:
        written = [plot_gradient_flow(flows, os.path.join(out, "flow.png"),
                                      "gradient flow of trained models (batch 0)")]
        shown = {n: r for n, r in comparisons.items() if r}
        if shown:
            written.append(comparison.plot_comparison(
                shown, os.path.join(out, "compare.png"), "gradient methods vs exact BPTT"))
        print("written: " + ", ".join(written))
    return 0


def _run_name(trainer, path: str, taken: dict) -> str:
    c = trainer.config
    name = f"{c.task}/{c.nonlinearity if c.cell == 'rnn' else c.cell}"
    return name if name not in taken else f"{name} ({os.path.basename(os.path.normpath(path))})"


def analyse(trainer, args) -> tuple:
    """Print the analyses of one trained model; returns its gradient flow and comparison."""
    task, model = trainer.task, trainer.model
    rnn = model.rnn
    x, y = task.batch(0)
    flow = gradient_flow(model, x, lambda: task.loss(model(x), y))
    model.zero_grad()
    last = Measurement(flow.grad_norms[-1], flow.jacobian_norms[-1], None)
    steps = flow.grad_norms.shape[1]                   # T (the longest, if packed)
    print(f"gradient flow through {steps} steps (last layer; batch 0 of the task):")
    print(format_table({"trained": last}, args.every))
    print(summary("last", last, task.readout == "last"))
    print("W_hh (per layer): " + "; ".join(_spectrum_line(rnn, layer)
                                           for layer in range(rnn.num_layers)))
    S = rnn.num_layers * rnn.hidden_size * (2 if isinstance(rnn, nn.LSTM) else 1)
    k = min(LYAPUNOV_SHOWN, S)
    first = unpack_sequence(x)[0] if isinstance(x, PackedSequence) else x[0:1]
    spectrum = bptt.lyapunov_spectrum(rnn, first, k=k, warmup=first.shape[-2] // 5)
    print(f"Lyapunov exponents (top {k} of {S}, per step, sequence 0): "
          + ", ".join(f"{v:+.4f}" for v in spectrum))
    results: list = []
    if not isinstance(x, PackedSequence):   # (a packed batch is refused just below)
        x, y = x[:COMPARE_BATCH], y[:COMPARE_BATCH]    # RTRL and UORO grow with the batch
    try:
        step_loss = comparison.task_step_loss(task, model, x, y)
    except ValueError as exc:
        print(f"gradient comparison skipped: {exc}")
        return flow, results
    methods = parse_methods(args.methods) if args.methods else \
        _affordable(list(comparison.DEFAULT_METHODS), rnn, x)
    results = comparison.compare(model, x, step_loss, methods, seed=args.seed)
    print(f"gradient methods against exact BPTT (the first {x.shape[0]} sequences):")
    print(comparison.format_table(results))
    return flow, results


def _spectrum_line(rnn, layer: int) -> str:
    """σ_max of each gate block of W_hh (and the spectral radius for an Elman layer)."""
    w_hh = backend.to_host(rnn.layer_weights(layer, 0)[1].data).astype("float64")
    H = rnn.hidden_size
    blocks = [w_hh[i:i + H] for i in range(0, w_hh.shape[0], H)]
    sigmas = "/".join(f"{np.linalg.norm(b, ord=2):.3g}" for b in blocks)
    text = f"layer {layer} sigma_max {sigmas}"
    if isinstance(rnn, nn.RNN):
        text += f", spectral radius {bptt.spectral_radius(w_hh):.3g}"
    return text


def _affordable(methods: list[str], rnn, x) -> list[str]:
    """The default methods without RTRL and many-draw UORO when their cost (about
    S²·|θ|·T·N multiply-adds) would take minutes; a list given with --methods is kept."""
    S = rnn.num_layers * rnn.hidden_size * (2 if isinstance(rnn, nn.LSTM) else 1)
    P = sum(p.numel() for p in rnn.parameters())
    cost = S * S * P * x.shape[0] * x.shape[1]
    if cost <= RTRL_BUDGET:
        return methods
    print(f"(RTRL would take about {cost:.1e} multiply-adds: left out, with uoro:D; "
          "--methods rtrl insists)")
    return [m for m in methods if m != "rtrl" and not m.startswith("uoro:")]
