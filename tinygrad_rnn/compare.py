r"""Gradient algorithms side by side: exact BPTT, truncated BPTT, RTRL and UORO on one model.

All of them answer the same question, "what is ``∂L/∂θ`` for the recurrent layer's
parameters, with ``L = Σ_t L_t`` a loss at every step?", with different trade-offs:

============  ==============================  ============  ==========================
method        gradient                        memory        time per step
============  ==============================  ============  ==========================
``bptt``      exact                           O(T·S)        O(|θ|)
``tbptt:K``   biased: drops every path        O(K·S)        O(|θ|)
              longer than the chunk of K
``rtrl``      exact (forward in time)         O(S·|θ|)      O(S²·|θ|)
``uoro``      unbiased, noisy (one draw)      O(S + |θ|)    O(S² + S·|θ|)
``uoro:D``    the mean of D UORO draws        O(D·(S+|θ|))  D times UORO's
============  ==============================  ============  ==========================

(S: the state size, H or 2H for an LSTM; T: the sequence length. The costs are the
methods'; this package's UORO builds ``∂s_t/∂θ`` (S·|θ|) each step, as RTRL does, so its
measured memory is RTRL's order, not O(S + |θ|).) :func:`compare` runs each
method on the same batch and parameters and reports how close its gradient is to the exact
one: the **cosine similarity** (does it point the same way?), the **relative norm**
``‖g‖/‖g_exact‖`` (is it the right size?) and the relative error ``‖g − g_exact‖/‖g_exact‖``,
with the wall time and the peak host memory the method allocated (``tracemalloc``, in a
second run so that tracing does not slow the timed one; NumPy reports its buffers to it).
For ``uoro:D`` the D draws also give UORO's variance: that of one draw, summed over the
parameters, relative to ‖g_exact‖².

Truncated BPTT here is the k1 = k2 = K scheme of :func:`tinygrad_rnn.bptt.chunks`: the
sequence is cut into chunks of K steps, each chunk's loss is back-propagated within the
chunk, the state is carried into the next chunk detached, and the chunk gradients are
added (no parameter update in between, so every method sees the same θ).
"""
from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import backend
from .autograd import no_grad
from .nn.module import Module
from .nn.rnn_base import RNNBase
from .nn.utils.rnn import PackedSequence
from .online import rtrl, uoro, uoro_samples
from .step_jacobian import recurrent_layer
from .tensor import Tensor

np = backend.np  # host NumPy: flat gradients and a small table

__all__ = ["compare", "MethodResult", "DEFAULT_METHODS", "format_table", "task_step_loss",
           "plot_comparison", "parse_method"]

#: What :func:`compare` runs when ``methods`` is not given.
DEFAULT_METHODS = ("bptt", "tbptt:2", "tbptt:5", "tbptt:10", "tbptt:20", "rtrl", "uoro",
                   "uoro:100")

StepLoss = Callable[[int, Tensor], Tensor]


@dataclass
class MethodResult:
    """One method's gradient compared with the exact one (BPTT's)."""
    method: str
    cosine: float              # cos∠(g, g_exact)
    relative_norm: float       # ‖g‖ / ‖g_exact‖
    relative_error: float      # ‖g − g_exact‖ / ‖g_exact‖
    seconds: float             # wall time of one run
    peak_bytes: int            # peak host memory allocated during a run (tracemalloc)
    gradient: np.ndarray = field(repr=False)  # flat, in the layer's named_parameters() order
    #: ``uoro:D`` only: the variance of one UORO draw, summed over the parameters, relative
    #: to ‖g_exact‖² (measured from the D draws); None for the deterministic methods.
    variance: float | None = None


def compare(model: Module, x: Tensor, step_loss: StepLoss,
            methods: Sequence[str] = DEFAULT_METHODS, h0=None, seed: int = 0) -> list:
    r"""Run each gradient method on the same data and parameters; one
    :class:`MethodResult` per method, in the order given.

    ``model``: the recurrent layer, or a module holding exactly one (e.g. a task's
    ``SequenceModel``); its other parameters (a head) should be inside ``model`` so that
    their ``.grad`` too is left as it was found (each method's run starts from cleared
    gradients; the previous ``.grad`` values are put back at the end). ``x``, ``h0``: as for
    the layer's forward; ``step_loss(t, out_t)``: the loss at step t, as in
    :func:`~tinygrad_rnn.online.rtrl`. ``methods``: ``"bptt"``, ``"tbptt:K"``, ``"rtrl"``,
    ``"uoro"``, ``"uoro:D"`` (the module docstring's table). ``seed`` seeds UORO's signs.
    Only the recurrent layer's gradient is compared (the head's is exact in every method).
    Refused (``ValueError``), because the methods would not differentiate one loss: a layer
    with inter-layer dropout in training mode (call ``.eval()``), ``"tbptt:K"`` on a
    bidirectional layer, and a ``PackedSequence`` ``x``.
    """
    rnn = recurrent_layer(model, "compare")
    parsed = [parse_method(m) for m in methods]
    _check_setting(rnn, x, h0, parsed)
    params = list(model.parameters()) if isinstance(model, Module) else list(rnn.parameters())
    saved = [p.grad for p in params]
    try:
        exact, _ = _run(rnn, params, ("bptt", None), x, step_loss, h0, seed)
        results = []
        for text, method in zip(methods, parsed):
            start = time.perf_counter()
            grad, draws = _run(rnn, params, method, x, step_loss, h0, seed)
            seconds = time.perf_counter() - start
            peak = _peak_memory(_run, rnn, params, method, x, step_loss, h0, seed)
            results.append(_score(text, grad, exact, seconds, peak, draws))
    finally:
        for p, g in zip(params, saved):
            p.grad = g
    return results


# ---------------------------------------------------------------------------- the methods

def parse_method(method: str) -> tuple:
    """``"tbptt:5"`` → ``("tbptt", 5)``; ``"rtrl"`` → ``("rtrl", None)``; ``ValueError`` for
    anything else."""
    if not isinstance(method, str):
        raise TypeError(f"compare: a method is a string such as 'bptt' or 'tbptt:5', got "
                        f"{method!r}")
    name, _, arg = method.strip().lower().partition(":")
    if name in ("bptt", "rtrl") and not arg:
        return name, None
    if name == "uoro" and not arg:
        return name, None
    if name in ("tbptt", "uoro") and arg.isdigit() and int(arg) > 0:
        return name, int(arg)
    raise ValueError(f"compare: unknown method {method!r}; expected 'bptt', 'tbptt:K' (K > 0 "
                     "steps per chunk), 'rtrl', 'uoro' or 'uoro:D' (mean of D > 0 draws)")


def _check_setting(rnn: RNNBase, x, h0, methods: list) -> None:
    """Refuse a setting in which the methods would not compute the gradient of one loss."""
    if isinstance(x, PackedSequence):
        raise ValueError("compare: x is a PackedSequence; the methods need a padded batch "
                         "(T, N, H_in) with a loss at every step of every sequence")
    if rnn.training and rnn.dropout > 0 and rnn.num_layers > 1:
        raise ValueError("compare: inter-layer dropout is random in training mode, so every "
                         "run (the exact one too) would see another loss; call rnn.eval() "
                         "(or use dropout=0)")
    if rnn.bidirectional and any(name == "tbptt" for name, _ in methods):
        raise ValueError("compare: truncated BPTT cuts a bidirectional layer's reverse "
                         "direction into chunks, which changes its outputs (not only its "
                         "gradient); use bidirectional=False for 'tbptt:K'")
    with no_grad():
        rnn(x, h0)                     # the layer's own checks of x and h0, same errors


def _run(rnn, params, method: tuple, x, step_loss, h0, seed: int) -> tuple:
    """One method's flat gradient of the layer (host float64), and for ``uoro:D`` its D
    draws ``(D, P)`` (else None); clears ``.grad`` first."""
    for p in params:
        p.grad = None
    name, arg = method
    if name == "bptt":
        _truncated(rnn, x, step_loss, h0, None)
    elif name == "tbptt":
        _truncated(rnn, x, step_loss, h0, arg)
    elif name == "rtrl":
        rtrl(rnn, x, step_loss, h0)
    elif arg is None:
        uoro(rnn, x, step_loss, h0, generator=seed)
    else:
        draws = uoro_samples(rnn, x, step_loss, h0, draws=arg, generator=seed)
        return draws.mean(axis=0), draws
    return np.concatenate([
        backend.to_host(p.grad.data).astype("float64").ravel() if p.grad is not None
        else np.zeros(p.numel()) for p in rnn.parameters()]), None


def _truncated(rnn: RNNBase, x: Tensor, step_loss: StepLoss, h0, k: int | None) -> None:
    """(Truncated) BPTT: chunks of ``k`` steps (None: the whole sequence), each chunk's
    summed step losses back-propagated, the final state carried on detached."""
    time_axis = 1 if rnn.batch_first and x.ndim == 3 else 0
    T = x.shape[time_axis]
    k = T if k is None else k
    state = h0
    for start in range(0, T, k):
        window = slice(start, min(start + k, T))
        chunk = x[window] if time_axis == 0 else x[:, window]
        output, state = rnn(chunk, state)
        loss = step_loss(start, output[0] if time_axis == 0 else output[:, 0])
        for i in range(1, window.stop - start):
            loss = loss + step_loss(start + i, output[i] if time_axis == 0 else output[:, i])
        if loss.requires_grad:
            loss.backward()
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) \
            else state.detach()


def _peak_memory(run, *args) -> int:
    """Peak bytes allocated (and traced by ``tracemalloc``) while ``run(*args)`` runs."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        run(*args)
        return max(0, tracemalloc.get_traced_memory()[1] - before)
    finally:
        if not was_tracing:
            tracemalloc.stop()


def _score(method: str, grad, exact, seconds: float, peak: int, draws) -> MethodResult:
    exact_norm, norm = float(np.linalg.norm(exact)), float(np.linalg.norm(grad))
    if exact_norm == 0:
        raise ValueError("compare: the exact gradient is zero (does step_loss depend on the "
                         "layer's output?); there is nothing to compare with")
    cosine = float(grad @ exact) / (norm * exact_norm) if norm > 0 else 0.0
    variance = None
    if draws is not None and len(draws) > 1:
        variance = float(draws.var(axis=0, ddof=1).sum()) / exact_norm ** 2
    return MethodResult(method, cosine, norm / exact_norm,
                        float(np.linalg.norm(grad - exact)) / exact_norm, seconds, peak, grad,
                        variance)


# ---------------------------------------------------------------------- tasks and output

def task_step_loss(task, model, x: Tensor | PackedSequence, y: Tensor) -> StepLoss:
    """The per-step losses of a training task, for :func:`compare`: with ``model`` a task's
    ``SequenceModel`` (its head is ``model.fc``) and ``(x, y)`` a batch, returns
    ``step_loss(t, out_t)`` whose sum over t equals ``task.loss(model(x), y)``.

    readout "last" (adding, health): the whole loss sits at the last step. readout "all":
    step t's mean loss divided by T (a mean over N·T elements is the mean over t of the
    per-step means). The split is checked once on this batch; a task whose loss is not of
    that form (copy: it reads only the recall steps) raises ``ValueError``.
    """
    if not isinstance(x, Tensor):   # a PackedSequence: steps hold different sequences
        raise ValueError(f"compare: task {task.name!r} gives packed sequences of different "
                         "lengths; the comparison needs a padded batch (one loss per time "
                         "step of every sequence): use a task with sequences of one length")
    T = x.shape[1]                                                # batch_first

    def step_loss(t: int, out_t: Tensor) -> Tensor:
        logits = model.fc(out_t)                                  # (N, H_out)
        if task.readout == "last":
            return task.loss(logits, y) if t == T - 1 else (logits * 0.0).sum()
        return task.loss(logits.unsqueeze(1), y[:, t:t + 1]) * (1.0 / T)

    with no_grad():
        whole = task.loss(model(x), y).item()
        output, _ = model.rnn(x)
        try:
            split = sum(step_loss(t, output[:, t]).item() for t in range(T))
        except (ValueError, TypeError, IndexError) as exc:  # a loss that wants every step
            raise ValueError(f"compare: task {task.name!r}: its loss cannot be split into "
                             f"per-step losses ({type(exc).__name__}: {exc})") from None
    if not abs(split - whole) <= 1e-9 * max(1.0, abs(whole)):
        raise ValueError(f"compare: task {task.name!r}: its loss is not a sum of per-step "
                         f"losses (split {split:.6g} vs whole {whole:.6g}); choose a task "
                         "whose loss reads every step or only the last")
    return step_loss


def format_table(results: Sequence[MethodResult]) -> str:
    """One row per method: cosine, relative norm and error, time, peak memory, and (for
    ``uoro:D``) the variance of one draw relative to ‖g_exact‖²."""
    header = ["method", "cosine", "|g|/|g_exact|", "|g-g_exact|/|g_exact|", "time [ms]",
              "peak memory [KiB]", "draw var/|g_exact|^2"]
    rows = [[r.method, f"{r.cosine:+.4f}", f"{r.relative_norm:.4f}",
             f"{r.relative_error:.3e}", f"{1e3 * r.seconds:.1f}",
             f"{r.peak_bytes / 1024:.1f}", "-" if r.variance is None else f"{r.variance:.3g}"]
            for r in results]
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths))
                     for row in [header] + rows)


def plot_comparison(panels: dict, path: str, title: str = "") -> str:
    """Bar charts of :func:`compare`'s results, a row of three panels (cosine, relative
    norm, time) per entry of ``panels`` (``{network name: results}``). Needs matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('plotting needs matplotlib: pip install "tinygrad-rnn[plot]" '
                          "(or pip install matplotlib)") from None
    fig = Figure(figsize=(13, 3.2 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 3, squeeze=False)
    for row, (name, results) in zip(axes, panels.items()):
        labels = [r.method for r in results]
        where = np.arange(len(labels))
        for ax, values, label in zip(row, (
                [r.cosine for r in results], [r.relative_norm for r in results],
                [1e3 * r.seconds for r in results]),
                ("cosine to exact gradient", "|g| / |g_exact|", "time [ms]")):
            ax.bar(where, values, color="tab:blue")
            ax.set_xticks(where, labels, rotation=45, ha="right", fontsize="small")
            ax.set(title=f"{name}: {label}")
            ax.grid(True, axis="y", alpha=0.3)
        row[0].set_ylim(min(-0.1, min(r.cosine for r in results) - 0.05), 1.05)
        row[1].axhline(1.0, color="gray", lw=0.8)
        row[2].set_yscale("log")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return path
