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

import numbers
from typing import Iterator

from . import backend
from .autograd import enable_grad, no_grad
from .nn.module import Module
from .nn.rnn import RNN
from .nn.rnn_base import RNNBase
from .tensor import Tensor

np = backend.np  # host NumPy: the results are small tables for printing and plotting

__all__ = ["trace", "Trace", "jacobian_norms", "spectral_radius", "chunks",
           "scale_recurrent_weights_"]


# ------------------------------------------------------------------------------- tracing

class _Record:
    """What a trace saw of one layer and direction in one forward call.

    ``states``: the hidden states ``(T, N, H)`` in input time order (detached);
    ``grads``: ``∂L/∂h_t`` for the same steps, summed over backward calls (None until a
    gradient arrives).
    """
    __slots__ = ("states", "grads")

    def __init__(self):
        self.states = None
        self.grads = None

    def add_grads(self, delta_h) -> None:
        """Fused path: the gradients of all steps at once, ``(T, N, H)``."""
        self.grads = delta_h.copy() if self.grads is None else self.grads + delta_h

    def add_grad_at(self, t: int, delta_h_t) -> None:
        """Unrolled path: the gradient of step ``t`` alone, ``(N, H)``."""
        if self.grads is None:
            self.grads = self.states.xp.zeros(self.states.shape, dtype=delta_h_t.dtype)
        self.grads[t] += delta_h_t


class Trace:
    """Hidden states and their gradients of every layer and direction of one RNN.

    Made by :func:`trace`; use it as a context manager. Rows are ordered as PyTorch orders
    ``h_n``: layer 0 forward, layer 0 reverse (if bidirectional), layer 1 forward, …; the time
    axis is always the input's time order (also for the reverse direction, and also with
    ``batch_first=True``). Unbatched input counts as a batch of one (N = 1).

    Several forward calls inside one ``with`` block (the chunks of truncated BPTT) are joined
    along the time axis in call order. Gradients from several ``backward()`` calls add up, as
    ``.grad`` does.
    """

    def __init__(self, rnn: RNN):
        self.rnn = rnn
        self.rows = rnn.num_layers * rnn.num_directions
        self._calls: list[list[_Record]] = []     # one list of `rows` records per forward
        self._previous = None

    # -------------------------------------------------------------- context management
    def __enter__(self) -> "Trace":
        self._previous = self.rnn._tracer        # nested traces: the innermost one records
        self.rnn._tracer = self
        return self

    def __exit__(self, *exc) -> bool:
        self.rnn._tracer = self._previous
        return False

    # ------------------------------------------------- called by RNN._run_direction
    def callbacks(self, index: int, unrolled: bool) -> dict:
        """Keyword arguments for the recurrence of row ``index``: the callback through which
        this trace sees each ``∂L/∂h_t`` during backward."""
        if index == 0:                            # row 0 runs first: a new forward call
            self._calls.append([_Record() for _ in range(self.rows)])
        record = self._calls[-1][index]
        if not unrolled:
            # The fused layer hands over all δh_t at once (its hand-written BPTT computes them).
            return {"on_state_grads": record.add_grads}

        def on_step(t: int, h_t: Tensor) -> None:
            # In the unrolled graph h_t is an ordinary tensor: autograd calls this hook with
            # its complete gradient (from the output at t and from h_{t+1}).
            if h_t.requires_grad:
                h_t.register_hook(lambda grad: record.add_grad_at(t, grad.data))
        return {"on_step": on_step}

    def record_states(self, index: int, states: Tensor) -> None:
        """Keep the hidden states ``(T, N, H)`` of row ``index`` from the current forward."""
        self._calls[-1][index].states = states.detach()

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
        calls = [c for c in self._calls if all(r.states is not None for r in c)]
        if not calls:   # (a forward that raised half-way leaves an incomplete call: skipped)
            raise RuntimeError("bptt.trace recorded nothing: run the RNN's forward pass inside "
                               "`with bptt.trace(rnn) as tr:` (backward may come after it)")
        if what == "grads" and all(r.grads is None for call in calls for r in call):
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
        """One row of one forward call: its states, or its gradients (zeros if none)."""
        if what == "states":
            return record.states.data
        if record.grads is None:          # no gradient reached this row in this call
            return record.states.xp.zeros_like(record.states.data)
        return record.grads

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
    shapes and the row order.
    """
    return Trace(_find_rnn(model, "bptt.trace"))


def _find_rnn(model, owner: str) -> RNNBase:
    """``model`` itself if it is an ``nn.RNN``/``LSTM``/``GRU``, else the one inside it."""
    if isinstance(model, RNNBase):
        return model
    if not isinstance(model, Module):
        raise TypeError(f"{owner}: expected an nn.RNN, nn.LSTM or nn.GRU (or a module "
                        f"containing one), got {type(model).__name__}")
    found = [m for m in model.modules() if isinstance(m, RNNBase)]
    if len(found) != 1:
        raise ValueError(f"{owner}: expected exactly one nn.RNN, nn.LSTM or nn.GRU inside "
                         f"{type(model).__name__}, found {len(found)}; pass the RNN itself")
    return found[0]


# ----------------------------------------------------------------------------- Jacobians

def jacobian_norms(rnn: Module, x: Tensor, h0: Tensor | None = None) -> np.ndarray:
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
    * Dropout between layers changes the states; call ``rnn.eval()`` first for a
      deterministic answer.
    * LSTM and GRU (``h0`` is then ``(h0, c0)`` for an LSTM, or None): their per-step Jacobian
      runs through the gates, so it is not written out here; instead each row's recurrence is
      rebuilt as an unrolled graph (float64) and autograd gives row j of every
      ``∂h_T/∂h_t`` from one backward pass started at unit j of ``h_T`` (H_out passes per row).
      For an LSTM this is the derivative with respect to ``h_t`` with the cell state ``c_t``
      held fixed; the cell path still carries it forward from step t + 1 on.
    """
    rnn = _find_rnn(rnn, "bptt.jacobian_norms")
    with no_grad(), trace(rnn) as tr:
        rnn(x, h0)
    if not isinstance(rnn, RNN):
        return _gated_jacobian_norms(rnn, x, h0, tr._state_arrays())
    norms = []
    for row, states in enumerate(tr._state_arrays()):
        layer, direction = divmod(row, rnn.num_directions)
        w_hh = rnn.layer_weights(layer, direction)[1].data
        norms.append(_chain_norms(states, w_hh, rnn.nonlinearity, reverse=direction == 1))
    return np.stack(norms, axis=0)


def _gated_jacobian_norms(rnn: RNNBase, x, h0, rows: list) -> np.ndarray:
    """:func:`jacobian_norms` by autograd, for layers whose step Jacobian goes through gates.

    ``rows``: the hidden states ``(T, N, H_out)`` of every layer and direction (from a traced
    forward pass), from which each layer's input is rebuilt."""
    layer_input, start_states, _ = rnn._canonical_inputs(x, h0)
    layer_input = layer_input.detach().astype("float64")
    D, norms = rnn.num_directions, []
    for row in range(len(rows)):
        layer, direction = divmod(row, D)
        if layer > 0 and direction == 0:    # the next layer reads both directions of this one
            below = rows[(layer - 1) * D:layer * D]
            xp = backend.module_of(below[0])
            layer_input = Tensor._wrap(xp.concatenate(below, axis=2)).astype("float64")
        start = tuple(s[row].detach().astype("float64") for s in start_states)
        weights = tuple(None if w is None else w.detach().astype("float64")
                        for w in rnn.layer_weights(layer, direction))
        norms.append(_autograd_chain_norms(rnn, layer_input, start, weights,
                                           reverse=direction == 1))
    return np.stack(norms, axis=0)


def _autograd_chain_norms(rnn: RNNBase, x: Tensor, start: tuple, weights: tuple,
                          reverse: bool) -> np.ndarray:
    """``‖∂h_last/∂h_t‖₂`` (batch mean) of one layer and direction: host array ``(T,)``.

    The unrolled recurrence is run from leaf copies of its initial state; a hook on every
    ``h_t`` catches the gradient of one backward pass per unit j of the last state, which is
    row j of ``∂h_last/∂h_t`` for every sample at once (samples do not interact, so the sum over
    the batch that seeds the pass keeps them apart)."""
    start = tuple(s.requires_grad_() for s in start)           # fresh leaves: a graph to walk
    states: dict = {}                                           # t -> h_t (a graph tensor)
    with enable_grad():
        rnn._recurrence(x, start, weights, reverse, unroll=True, on_step=states.__setitem__)
    T = x.shape[0]
    last = 0 if reverse else T - 1
    N, P = states[last].shape
    xp = x.xp
    jacobians = xp.zeros((T, N, P, P))                          # ∂h_last/∂h_t per sample
    unit = [0]                                                  # the j of the current pass

    def catch(t):
        def hook(grad):                                         # grad: ∂h_last[:, j]/∂h_t
            jacobians[t, :, unit[0], :] = grad.data
        return hook
    for t, h_t in states.items():
        h_t.register_hook(catch(t))
    for j in range(P):
        unit[0] = j
        states[last][:, j].sum().backward(retain_graph=j < P - 1)
    host = backend.to_host(jacobians)
    finite = np.isfinite(host).all(axis=(2, 3))                 # (T, N): overflowed → inf
    norms = np.linalg.norm(np.where(finite[..., None, None], host, 0.0), ord=2, axis=(2, 3))
    return np.where(finite, norms, np.inf).mean(axis=1)


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
    norms = np.full(T, np.inf)
    for t in range(T - 1, -1, -1):
        if not bool(xp.isfinite(product).all()):
            break                    # exploded past float64: earlier steps stay at inf
        norms[t] = np.linalg.norm(backend.to_host(product), ord=2, axis=(1, 2)).mean()
        # ∂h_T/∂h_{t-1} = ∂h_T/∂h_t · diag(f'(a_t)) W_hh: scale the columns, then multiply.
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
        raise ValueError(f"spectral_radius: expected a square 2-D matrix such as W_hh, got "
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
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"bptt.chunks: k (steps per chunk) must be a positive integer, got "
                         f"{k!r}")
    if not isinstance(x, Tensor):
        raise TypeError(f"bptt.chunks: expected a Tensor, got {type(x).__name__}")
    axis = 1 if batch_first else 0
    if x.ndim <= axis:
        raise ValueError(f"bptt.chunks: x of shape {x.shape} has no time axis {axis} "
                         f"(batch_first={batch_first}); expected (L, N, ...) or (N, L, ...)")
    length = x.shape[axis]
    for start in range(0, length, int(k)):
        window = slice(start, min(start + int(k), length))
        yield x[window] if axis == 0 else x[:, window]


# ------------------------------------------------------------------- the BPTT lab
# Gradient algorithms and analyses that live in their own modules, exposed here so that
# ``bptt.rtrl``, ``bptt.uoro`` … sit next to the tools above.
from .compare import compare
from .lyapunov import lyapunov_spectrum
from .online import rtrl, uoro, uoro_samples

__all__ += ["rtrl", "uoro", "uoro_samples", "lyapunov_spectrum", "compare"]
