r"""Tools to study backpropagation through time (BPTT).

An Elman layer computes ``h_t = f(a_t)`` with ``a_t = x_t W_ihᵀ + b + h_{t-1} W_hhᵀ``. The
gradient of a loss reaching ``h_t`` is, by the chain rule, the gradient from the output at
step t plus everything that flows back from the future through ``h_{t+1}``::

    ∂L/∂h_t = g_t + ∂L/∂h_{t+1} · ∂h_{t+1}/∂h_t,      ∂h_{t+1}/∂h_t = diag(f'(a_{t+1})) W_hh

So a gradient that enters at step T and travels back to step t is multiplied by the product of
T - t per-step Jacobians. When their norms stay below 1 it shrinks geometrically (vanishing
gradients); above 1 it grows (exploding gradients). This module lets you watch that happen:

* :func:`trace` records every hidden state ``h_t`` of an :class:`~tinygrad_rnn.nn.RNN` (or an
  ``nn.LSTM``, ``nn.GRU``) in the forward pass and, after ``backward()``, its gradient
  ``∂L/∂h_t``;
* :func:`jacobian_norms` computes ``‖∂h_T/∂h_t‖`` directly, by multiplying the per-step
  Jacobians; :func:`spectral_radius` tells whether ``W_hh`` alone expands or contracts;
* :func:`chunks` cuts a long sequence into pieces for truncated BPTT.

Truncated BPTT (k1 = k2 = k) in five lines: run the model on ``k`` steps, back-propagate the
loss of those steps, update, and carry the final hidden state into the next chunk *detached*,
so the next backward stops at the chunk boundary instead of walking into a graph that the
previous ``backward()`` already freed::

    h = None
    for x_k, y_k in zip(bptt.chunks(x, k), bptt.chunks(y, k)):
        out, h = rnn(x_k, h)
        loss = F.mse_loss(head(out), y_k)
        opt.zero_grad(); loss.backward(); opt.step()
        h = h.detach()          # keep the value, forget the graph
"""
from __future__ import annotations

import inspect
import numbers
from typing import Any, Iterator

from . import backend
from .autograd import enable_grad, no_grad
from .errors import ShapeError
from .nn.checks import is_int
from .nn.module import Module
from .nn.rnn import RNN
from .nn.rnn_base import RNNBase, StateEvent
from .nn.utils.rnn import PackedSequence, unpack_sequence
from .tensor import RemovableHandle, Tensor

np = backend.np  # host NumPy: the results are small tables for printing and plotting

#: The traces entered on each layer (by id), innermost last.
_ACTIVE: dict[int, list] = {}

__all__ = ["trace", "Trace", "jacobian_norms", "spectral_radius", "chunks",
           "scale_recurrent_weights_"]


# ------------------------------------------------------------------------------- tracing

class _Record:
    """What a trace saw of one layer and direction in one forward call.

    ``states``: ``t -> h_t`` ``(N, H)`` (detached copies); ``grads``: ``t -> ∂L/∂h_t``, summed
    over backward calls (empty until a gradient arrives).
    """
    __slots__ = ("states", "grads")

    def __init__(self):
        self.states: dict = {}
        self.grads: dict = {}

    def add(self, kind: str, t: int, value) -> None:
        if kind == "state":
            self.states[t] = value.copy()
        elif t in self.grads:
            self.grads[t] = self.grads[t] + value
        else:
            self.grads[t] = value.copy()


class Trace:
    """Hidden states and their gradients of every layer and direction of one RNN.

    Made by :func:`trace`; use it as a context manager. Rows are ordered as PyTorch orders
    ``h_n``: layer 0 forward, layer 0 reverse (if bidirectional), layer 1 forward, …; the time
    axis is always the input's time order (also for the reverse direction, and also with
    ``batch_first=True``). Unbatched input counts as a batch of one (N = 1).

    Several forward calls inside one ``with`` block (the chunks of truncated BPTT) are joined
    along the time axis in call order. Gradients from several ``backward()`` calls add up, as
    ``.grad`` does. Built on the layer's public state hook
    (:meth:`~tinygrad_rnn.nn.RNNBase.register_state_hook`).
    """

    def __init__(self, rnn: RNNBase):
        self.rnn = rnn
        self.rows = rnn.num_layers * rnn.num_directions
        self._calls: dict[int, list[_Record]] = {}   # forward call -> one record per row
        self._handle: RemovableHandle | None = None

    # -------------------------------------------------------------- context management
    def __enter__(self) -> "Trace":
        _ACTIVE.setdefault(id(self.rnn), []).append(self)
        self._handle = self.rnn.register_state_hook(self._see)
        return self

    def __exit__(self, *exc) -> None:
        # Only new forward calls stop being recorded: a backward pass after the block still
        # reports the gradients of the calls made inside it.
        active = _ACTIVE[id(self.rnn)]
        active.remove(self)
        if not active:
            del _ACTIVE[id(self.rnn)]
        if self._handle is not None:
            self._handle.remove()

    def _see(self, event: StateEvent) -> None:
        """The state hook: file each ``h_t`` and ``∂L/∂h_t`` under its forward call and row.
        Of nested traces of one layer, the innermost records a forward call."""
        if event.call not in self._calls:
            innermost = _ACTIVE.get(id(self.rnn), [None])[-1] is self
            if event.kind != "state" or not innermost:
                return
            self._calls[event.call] = [_Record() for _ in range(self.rows)]
        self._calls[event.call][event.row].add(event.kind, event.t, event.value.data)

    # ------------------------------------------------------------------------ results
    @property
    def states(self) -> np.ndarray:
        """Host array ``(num_layers*D, T, N, H)``: the hidden state ``h_t`` of every row and
        step (``h_0`` not included)."""
        return backend.to_host(self._joined("states"))

    @property
    def grads(self) -> np.ndarray:
        """Host array ``(num_layers*D, T, N, H)``: ``∂L/∂h_t``, the total gradient reaching
        each hidden state (zero where none arrived). Raises if no backward has run."""
        return backend.to_host(self._joined("grads"))

    def grad_norms(self) -> np.ndarray:
        """Host array ``(num_layers*D, T)``: ``‖∂L/∂h_t‖``, the Euclidean (Frobenius) norm
        over the batch and the hidden units together, ``sqrt(Σ_n Σ_j (∂L/∂h_t[n, j])²)``."""
        grads = self._joined("grads")
        xp = backend.module_of(grads)
        return backend.to_host(xp.sqrt((grads.astype("float64") ** 2).sum(axis=(2, 3))))

    def state_norms(self) -> np.ndarray:
        """Host array ``(num_layers*D, T)``: ``‖h_t‖`` over batch and hidden units."""
        states = self._joined("states")
        xp = backend.module_of(states)
        return backend.to_host(xp.sqrt((states.astype("float64") ** 2).sum(axis=(2, 3))))

    def _state_arrays(self) -> list:
        """Backend arrays ``(T, N, H)``, one per row (for :func:`jacobian_norms`)."""
        return list(self._joined("states"))

    def _joined(self, what: str):
        """``states`` or ``grads`` of all rows, joined over forward calls along time:
        a backend array ``(rows, T, N, H)``."""
        # (a forward that raised half-way leaves an incomplete call: skipped)
        calls = [c for c in self._calls.values() if all(r.states for r in c)
                 and len({len(r.states) for r in c}) == 1]
        if not calls:
            raise RuntimeError("bptt.trace recorded nothing: run the RNN's forward pass inside "
                               "`with bptt.trace(rnn) as tr:` (backward may come after it)")
        if what == "grads" and not any(r.grads for call in calls for r in call):
            raise RuntimeError("bptt.trace has no gradients yet: call backward() on a loss "
                               "computed from the traced forward pass (outside no_grad())")
        rows = []
        for row in range(self.rows):
            pieces = [self._piece(call[row], what) for call in calls]
            shapes = {p.shape[1:] for p in pieces}
            if len(shapes) > 1:
                raise RuntimeError(f"bptt.trace: the forward calls used different batch or "
                                   f"hidden shapes {sorted(shapes)}; they cannot be joined "
                                   "along time; use one trace per call")
            xp = backend.module_of(pieces[0])
            rows.append(xp.concatenate(pieces, axis=0))
        return xp.stack(rows, axis=0)

    @staticmethod
    def _piece(record: _Record, what: str):
        """One row of one forward call, ``(T, N, H)``: its states, or its gradients (zero
        where none arrived)."""
        steps = range(len(record.states))
        states = [record.states[t] for t in steps]
        xp = backend.module_of(states[0])
        if what == "states":
            return xp.stack(states, axis=0)
        return xp.stack([record.grads[t] if t in record.grads else xp.zeros_like(states[t])
                         for t in steps], axis=0)

    def __repr__(self) -> str:
        return f"<bptt.Trace of {self.rows} row(s), {len(self._calls)} forward call(s)>"


def trace(model: Module) -> Trace:
    """Record the hidden states of an RNN and, after ``backward()``, their gradients::

        with bptt.trace(rnn) as tr:
            out, h_n = rnn(x)
            loss = (out[-1] ** 2).sum()
        loss.backward()                 # inside or after the block
        tr.grad_norms()                 # (num_layers*D, T): ‖∂L/∂h_t‖ for every step

    ``model``: an :class:`~tinygrad_rnn.nn.RNN`, :class:`~tinygrad_rnn.nn.LSTM` or
    :class:`~tinygrad_rnn.nn.GRU`, or a module that contains exactly one (e.g. a model with an
    ``rnn`` attribute). For an LSTM the traced state is the hidden state ``h_t`` (the output),
    not the cell state. Works with both implementations (``unroll=False``: the
    fused layer reports its BPTT deltas; ``unroll=True``: a hook on every ``h_t``), any number
    of layers, bidirectional, ``batch_first`` and unbatched input. See :class:`Trace` for the
    shapes and the row order. A ``PackedSequence`` input is traced in the caller's batch
    order, with T the longest length: a sequence's states and gradients are zero after its
    end, so the norms of step t are over the sequences running at t.
    """
    return Trace(_find_rnn(model, "bptt.trace"))


def _find_rnn(model, owner: str) -> RNNBase:
    """``model`` itself if it is an ``nn.RNN``/``LSTM``/``GRU``, else the one inside it."""
    if isinstance(model, RNNBase):
        return model
    if not isinstance(model, Module):
        raise TypeError(f"{owner}: expected an nn.RNN, nn.LSTM or nn.GRU (or a module "
                        f"containing one), got {type(model).__name__}")
    found: list[RNNBase] = [m for m in model.modules() if isinstance(m, RNNBase)]
    if len(found) != 1:
        raise ValueError(f"{owner}: expected exactly one nn.RNN, nn.LSTM or nn.GRU inside "
                         f"{type(model).__name__}, found {len(found)}; pass the RNN itself")
    return found[0]


# ----------------------------------------------------------------------------- Jacobians

def jacobian_norms(rnn: Module, x: Tensor | PackedSequence,
                   h0: Tensor | None = None) -> np.ndarray:
    r"""``‖∂h_T/∂h_t‖`` for every step t: how much a change of ``h_t`` still moves the final
    state, the factor by which a gradient is scaled on its way from T back to t.

    Returns a host array ``(num_layers*D, T)`` in the row order of :class:`Trace` (PyTorch's
    ``h_n`` order) and input time order. Row r holds ``‖∂h_n[r]/∂h_t‖``: the derivative of that
    row's final state (``h_T`` for a forward direction, ``h_1`` for a reverse one) with respect
    to the same layer and direction's state at step t. The last entry of a forward row (first
    of a reverse row) is ``‖I‖ = 1``.

    * Norm: the **spectral norm** (largest singular value), the largest factor by which the
      Jacobian can stretch any perturbation; it is what bounds gradient growth.
    * Batch: the Jacobian differs per sample (through ``f'(a_t)``); the result is the **mean
      over the batch of the per-sample spectral norms**. Unbatched input counts as N = 1.
    * Method: the chain of per-step Jacobians ``∂h_t/∂h_{t-1} = diag(f'(a_t)) W_hh``, multiplied
      from T backwards, one ``(N, H, H)`` product per step, in float64. ``f'`` is read from the
      stored states: ``1 - h_t²`` for tanh, ``[h_t > 0]`` for ReLU.
    * A product that overflows float64 gives ``inf`` (exploding); NaN states (a NaN in the
      input or the weights) give ``NaN``, never a false "exploding".
    * The layer runs in evaluation mode (dropout between layers off, then restored): the
      Jacobians of the recurrence, not of one random dropout mask.
    * Variable-length sequences (``x`` a ``PackedSequence``, ``h0`` in the caller's batch
      order): each sequence's norms are taken from its *own* last state and stop at its end
      (T is then the longest length); the mean at step t is over the sequences running at t.
    * LSTM and GRU (``h0`` is then ``(h0, c0)`` for an LSTM, or None): their per-step Jacobian
      runs through the gates, so it is not written out here; instead each row's recurrence is
      rebuilt as an unrolled graph (float64) and autograd gives row j of every
      ``∂h_T/∂h_t`` from one backward pass started at unit j of ``h_T`` (H_out passes per row).
      For an LSTM this is the derivative with respect to ``h_t`` with the cell state ``c_t``
      held fixed; the cell path still carries it forward from step t + 1 on.
    """
    rnn = _find_rnn(rnn, "bptt.jacobian_norms")
    if isinstance(x, PackedSequence):
        return _packed_jacobian_norms(rnn, x, h0)
    if not isinstance(rnn, RNN):
        return _gated_jacobian_norms(rnn, x, h0)
    training = rnn.training
    try:
        with no_grad(), trace(rnn.eval()) as tr:
            rnn(x, h0)
    finally:
        rnn.train(training)
    norms = []
    for row, states in enumerate(tr._state_arrays()):
        layer, direction = divmod(row, rnn.num_directions)
        w_hh = rnn.layer_weights(layer, direction)[1].data
        norms.append(_chain_norms(states, w_hh, rnn.nonlinearity, reverse=direction == 1))
    return np.stack(norms, axis=0)


def _packed_jacobian_norms(rnn: RNNBase, x: PackedSequence, h0) -> np.ndarray:
    """:func:`jacobian_norms` of variable-length sequences: each sequence on its own (as an
    unbatched input, with its column of ``h0``), so that its norms are taken from *its* last
    state and stop at its end; step t then averages the sequences still running at t."""
    sequences = unpack_sequence(x)
    rows = rnn.num_layers * rnn.num_directions
    total, running = np.zeros((rows, len(x.batch_sizes))), np.zeros(len(x.batch_sizes))
    for n, sequence in enumerate(sequences):
        own_h0: Any = None if h0 is None else \
            tuple(h[:, n] for h in h0) if isinstance(h0, (tuple, list)) else h0[:, n]
        length = sequence.shape[0]
        total[:, :length] += jacobian_norms(rnn, sequence, own_h0)
        running[:length] += 1
    return total / running


def _gated_jacobian_norms(rnn: RNNBase, x: Tensor, h0) -> np.ndarray:
    """:func:`jacobian_norms` by autograd, for layers whose step Jacobian goes through gates.

    A float64 twin of the layer runs unrolled (a graph of primitive ops) with a state hook
    that keeps every ``h_t`` tensor; for each row and each unit j of its last state, one
    backward pass from ``h_last[:, j]`` gives row j of ``∂h_last/∂h_t`` for every t and every
    sample at once (samples do not interact, so the sum that seeds the pass keeps them apart;
    the other rows' states are not on the path from this row's ``h_t`` to its ``h_last``)."""
    twin = _unrolled_float64_twin(rnn)
    states: dict = {}                                    # (row, t) -> h_t, a graph tensor

    def keep(event: StateEvent) -> None:
        if event.kind == "state":
            states[event.row, event.t] = event.value
    handle = twin.register_state_hook(keep)
    try:
        with enable_grad():
            twin(_float64(x), _float64(h0))
    finally:
        handle.remove()
    T = max(t for _, t in states) + 1
    return np.stack([_autograd_chain_norms([states[row, t] for t in range(T)],
                                           reverse=row % rnn.num_directions == 1)
                     for row in range(rnn.num_layers * rnn.num_directions)], axis=0)


def _unrolled_float64_twin(rnn: RNNBase) -> RNNBase:
    """A copy of ``rnn`` in float64 with ``unroll=True``, in evaluation mode, built from its
    public constructor arguments (its attributes of the same names) and parameters."""
    arguments = [name for name in inspect.signature(type(rnn).__init__).parameters
                 if name not in ("self", "dtype", "unroll")]
    twin = type(rnn)(**{name: getattr(rnn, name) for name in arguments}, unroll=True,
                     dtype="float64")
    mine = dict(rnn.named_parameters())
    for name, param in twin.named_parameters():
        param.data = mine[name].data.astype("float64")
    twin.eval()
    return twin


def _float64(value):
    """``value`` (a Tensor, a tuple of them, or None) detached, as float64."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return type(value)(_float64(v) for v in value)
    return value.detach().astype("float64") if isinstance(value, Tensor) else value


def _autograd_chain_norms(states: list, reverse: bool) -> np.ndarray:
    """``‖∂h_last/∂h_t‖₂`` (batch mean) of one row from its graph states ``h_t`` ``(N, P)``
    (input time order): host array ``(T,)``, one backward pass per unit of ``h_last``."""
    T = len(states)
    last = states[0] if reverse else states[-1]
    N, P = last.shape
    xp = last.xp
    jacobians = xp.zeros((T, N, P, P))                          # ∂h_last/∂h_t per sample
    unit = [0]                                                  # the j of the current pass

    def catch(t):
        def hook(grad):                                         # grad: ∂h_last[:, j]/∂h_t
            jacobians[t, :, unit[0], :] = grad.data
        return hook
    handles = [h_t.register_hook(catch(t)) for t, h_t in enumerate(states)]
    for j in range(P):
        unit[0] = j
        last[:, j].sum().backward(retain_graph=True)   # the rows share one graph
    for handle in handles:
        handle.remove()
    host = backend.to_host(jacobians)
    finite = np.isfinite(host).all(axis=(2, 3))                 # (T, N): overflowed → inf
    norms = np.linalg.norm(np.where(finite[..., None, None], host, 0.0), ord=2, axis=(2, 3))
    return np.where(finite, norms, _unbounded(xp.stack([h.data for h in states]))).mean(axis=1)


def _unbounded(states) -> float:
    """What a non-finite Jacobian norm is reported as: NaN when the states hold a NaN (a NaN
    in the input or the weights), else inf (the product overflowed: exploding)."""
    return np.nan if bool(backend.module_of(states).isnan(states).any()) else np.inf


def _chain_norms(states, w_hh, nonlinearity: str, reverse: bool) -> np.ndarray:
    """``‖∂h_last/∂h_t‖₂`` (batch mean) for one layer and direction: host array ``(T,)``.

    ``states``: backend array ``(T, N, H)`` in input time order; ``w_hh``: ``(H, H)``.
    """
    xp = backend.module_of(states)
    h = states.astype("float64")
    if reverse:                      # walk the direction's own order: its "T" is input step 1
        h = h[::-1]
    T, N, H = h.shape
    deriv = 1 - h * h if nonlinearity == "tanh" else (h > 0).astype("float64")  # f'(a_t)
    w = w_hh.astype("float64")
    product = xp.broadcast_to(xp.eye(H), (N, H, H)).copy()     # ∂h_T/∂h_T = I, per sample
    norms = np.full(T, _unbounded(h))
    for t in range(T - 1, -1, -1):
        if not bool(xp.isfinite(product).all()):
            break                    # exploded past float64 (or NaN): earlier steps too
        norms[t] = np.linalg.norm(backend.to_host(product), ord=2, axis=(1, 2)).mean()
        # ∂h_T/∂h_{t-1} = ∂h_T/∂h_t · diag(f'(a_t)) W_hh: scale the columns, then multiply.
        with np.errstate(over="ignore", invalid="ignore"):     # overflow: caught above
            product = (product * deriv[t][:, None, :]) @ w
    return norms[::-1] if reverse else norms


def spectral_radius(w_hh) -> float:
    """The largest absolute eigenvalue of a square matrix (a Tensor or array), e.g.
    ``rnn.weight_hh_l0``.

    It decides what repeated multiplication by ``W_hh`` alone does in the long run: the powers
    ``W_hh^k`` shrink to zero below 1 and grow above 1, so it predicts vanishing or exploding
    gradients for a linear RNN. Between the factors of a real RNN sit ``diag(f'(a_t))`` with
    ``0 ≤ f' ≤ 1`` (tanh, ReLU), which can only help the shrinking; :func:`jacobian_norms`
    measures the actual product.
    """
    matrix = backend.to_host(w_hh.data if isinstance(w_hh, Tensor) else w_hh)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ShapeError(f"spectral_radius: expected a square 2-D matrix such as W_hh, got "
                         f"shape {tuple(matrix.shape)}")
    return float(np.abs(np.linalg.eigvals(matrix.astype("float64"))).max())


def scale_recurrent_weights_(model: Module, factor: float) -> Module:
    """Multiply every ``weight_hh*`` of the RNN in ``model`` by ``factor``, in place (this
    scales its spectral radius by ``factor``): the knob that moves an RNN from vanishing
    (small) to exploding (large) gradients. Returns ``model``."""
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not factor > 0:
        raise ValueError(f"scale_recurrent_weights_: factor must be a positive number, got "
                         f"{factor!r}")
    rnn = _find_rnn(model, "scale_recurrent_weights_")
    with no_grad():
        for name, param in rnn.named_parameters():
            if name.startswith("weight_hh"):
                param.data = param.data * param.data.dtype.type(factor)
    return model


# ------------------------------------------------------------------------- truncated BPTT

def chunks(x: Tensor, k: int, batch_first: bool = False) -> Iterator[Tensor]:
    """Cut a sequence into consecutive pieces of ``k`` time steps (the last may be shorter),
    for truncated BPTT with k1 = k2 = k.

    ``x``: ``(L, N, *)`` (or ``(N, L, *)`` with ``batch_first=True``), or unbatched ``(L, *)``
    with ``batch_first=False`` → yields ``x[i:i+k]`` along the time axis. Chunk the targets the
    same way (``zip(chunks(x, k), chunks(y, k))``) and carry the RNN's final state from one
    chunk to the next with ``.detach()`` (see the module docstring).
    """
    if not is_int(k) or k < 1:
        raise ValueError(f"bptt.chunks: k (steps per chunk) must be a positive integer, got "
                         f"{k!r}")
    if not isinstance(x, Tensor):
        raise TypeError(f"bptt.chunks: expected a Tensor, got {type(x).__name__}")
    axis = 1 if batch_first else 0
    if x.ndim <= axis:
        raise ShapeError(f"bptt.chunks: x of shape {x.shape} has no time axis {axis} "
                         f"(batch_first={batch_first}); expected (L, N, ...) or (N, L, ...)")
    length = x.shape[axis]
    for start in range(0, length, int(k)):
        window = slice(start, min(start + int(k), length))
        yield x[window] if axis == 0 else x[:, window]


# ------------------------------------------------------------------- the BPTT lab
# Gradient algorithms and analyses that live in their own modules, exposed here so that
# ``bptt.rtrl``, ``bptt.uoro`` … sit next to the tools above.
from .compare import compare  # noqa: E402
from .lyapunov import lyapunov_spectrum  # noqa: E402
from .online import rtrl, uoro, uoro_samples  # noqa: E402

__all__ += ["rtrl", "uoro", "uoro_samples", "lyapunov_spectrum", "compare"]
