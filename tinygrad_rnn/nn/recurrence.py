r"""One recurrence driver for every cell: Elman, LSTM and GRU are only their step equations.

A recurrent layer runs one *cell* over a sequence, once per layer and direction. What changes
from cell to cell is small: the step equations (forward, and the BPTT step backward) and the
state layout (``(h,)`` or ``(h, c)``). Everything else is the same for every cell and lives
here, once (Chainer's ``n_step_rnn_impl`` is built the same way):

* the time order (``reverse=True`` runs t = T … 1, the backward direction of a bidirectional
  layer), the states kept for every step, and the final state;
* the input's share of the pre-activations of every step, ``x_t W_ihᵀ + b``, as **one**
  matmul over all ``T·N`` rows (it does not depend on ``h``), and the recurrent share
  ``h_{t-1} W_hhᵀ`` inside the loop;
* the shift ``h_{t-1}`` (the state each step started from; ``h_0`` at the first step);
* the state hook (``watch``): every ``h_t`` in the forward pass, every ``∂L/∂h_t`` backward;
* the sums over time of BPTT (``∂L/∂W_ih``, ``∂L/∂W_hh``, the biases, ``∂L/∂x``), one
  matmul each, once every step's pre-activation gradient is known.

Two implementations, one per function, drive the same cell:

* :func:`run_unrolled` builds the loop from primitive :class:`Tensor` ops (the cell's
  :meth:`Cell.step`): one small graph per time step, and autograd does BPTT by itself;
* :func:`run_fused` runs the loop over raw backend arrays (:meth:`Cell.forward_step`) and
  records **one** graph node for the whole sequence, whose backward is BPTT written out by hand:
  the driver walks t = T … 1 carrying ``δa_{t+1} W_hh`` back to ``h_t``, the cell turns the
  state gradients of step t into pre-activation gradients (:meth:`Cell.backward_step`).

Both take ``x`` ``(T, N, H_in)`` (time-major), the initial states ``start`` (``(N, P)`` for
``h_0``, then ``(N, H)`` for ``c_0`` in an LSTM) and ``weights`` ``(W_ih (G·H, H_in),
W_hh (G·H, P), b_ih, b_hh (G·H,) or None)``, G = the cell's gate blocks; they return one
``(T, N, ·)`` tensor per state, in time order (the direction's final state is at ``T - 1``,
or at 0 when ``reverse``).

Packed sequences (a shrinking batch, as PyTorch's ``PackedSequence``: at step t only the first
``batch_sizes[t]`` rows are active) belong here and nowhere else: in both loops the driver
would slice the active rows, ``n = batch_sizes[t]``, of the step's input share, of the
previous states and of the recurrent share before calling the cell, and keep the rows past
``n`` at their last state (in the backward loop: pass their gradient through unchanged). The
cells never see the batch size change. The places are marked ``# packed:`` below.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..tensor import Tensor

#: ``watch(kind, t, value)``: ``kind`` is ``"state"`` (forward, ``value`` = ``h_t``, a Tensor
#: ``(N, P)``, part of the graph in the unrolled implementation) or ``"grad"`` (backward,
#: ``value`` = ``∂L/∂h_t``, a Tensor ``(N, P)`` without graph, valid during the call only).
Watch = Callable[[str, int, Tensor], None]


def time_steps(T: int, reverse: bool) -> range:
    """The order in which a direction visits the steps: 0 … T-1, or T-1 … 0 when reversed."""
    return range(T - 1, -1, -1) if reverse else range(T)


def previous_states(xp, states, first, reverse: bool):
    """The state each step started from, in time order: ``states`` ``(T, N, K)`` shifted by
    one step, with ``first`` (the initial state ``(N, K)``) where the direction begins."""
    if reverse:
        return xp.concatenate([states[1:], first[None]], axis=0)
    return xp.concatenate([first[None], states[:-1]], axis=0)


class Cell:
    """What the driver needs from a cell: its step equations and its state layout.

    A cell object is made for one run of one layer and direction (it may keep buffers and
    weights beyond ``W_ih, W_hh, b_ih, b_hh`` such as the LSTM's projection). The state tuple
    always starts with ``h`` (the output, ``(N, P)``).

    The rows a step runs are the rows of the arrays the driver passes (``len(a)``): a cell
    reads its own per-step buffers as ``buf[t, :len(a)]``, never assuming all N rows, so that
    the driver alone decides which rows are active (packed sequences).

    Names used below: ``G·H`` the width of the pre-activations (all gate blocks side by side);
    the *input share* ``x_t W_ihᵀ + b`` and the *recurrent share* ``h_{t-1} W_hhᵀ``.
    """

    #: Name of the fused graph node (``_reverse`` is appended for the backward direction).
    name = "cell"
    #: True when ``b_hh`` must stay with the recurrent share (the GRU's reset gate multiplies
    #: it); otherwise both biases are added to the input share, once for all steps.
    hidden_bias_apart = False

    # ------------------------------------------------------------- unrolled (autograd)
    def step(self, x_share: Tensor, h_share: Tensor, states: tuple) -> tuple:
        """One step as primitive ops: the input share ``(N, G·H)``, the recurrent share
        (with ``b_hh`` when :attr:`hidden_bias_apart`) and the previous states → the new
        states."""
        raise NotImplementedError

    def parameters(self) -> tuple:
        """Tensors the fused node depends on beyond ``W_ih, W_hh, b_ih, b_hh``."""
        return ()

    # ----------------------------------------------------------- fused (hand-written BPTT)
    def gate_scale(self, xp, width: int, dtype) -> Any:
        """A ``(G·H,)`` factor the driver applies to both shares before the loop (None: none).
        A cell whose gates are sigmoids asks for ½ there: σ(a) = ½(1 + tanh(a/2)), so one
        tanh call computes every gate; scaling by ½ is exact in floating point."""
        return None

    def begin_forward(self, xp, a) -> None:
        """Allocate what :meth:`forward_step` needs; ``a`` is the ``(T, N, G·H)`` buffer of
        input shares the loop will pass step by step."""

    def forward_step(self, xp, t: int, a, rec, prev: tuple, new: tuple) -> None:
        """Step t over arrays: ``a`` ``(N, G·H)`` holds the (scaled) input share and may be
        overwritten with what the backward pass needs (the gate values); ``rec`` the
        recurrent share (scaled, with ``b_hh`` when apart); ``prev`` the previous states;
        write the new states into the views ``new``."""
        raise NotImplementedError

    def begin_backward(self, xp, gates, states: tuple, before: tuple) -> None:
        """Prepare the backward sweep from the whole forward pass at once (vectorised over
        time): ``gates`` ``(T, N, G·H)`` as :meth:`forward_step` left it, ``states`` and
        ``before`` (the states shifted by one step) ``(T, N, ·)`` each."""

    def backward_step(self, xp, t: int, d_states: tuple, d_a, d_rec) -> tuple:
        """The BPTT step t. ``d_states``: the total gradient of every state at t (the cell
        may overwrite them). Write the gradient of the input share into ``d_a`` ``(N, G·H)``
        and, when :attr:`hidden_bias_apart`, of the recurrent share into ``d_rec`` (else
        ``d_rec is d_a``). Return, per state, the gradient flowing to the previous step
        other than through ``W_hh`` (None where there is none)."""
        raise NotImplementedError

    def parameter_grads(self, xp, delta_h) -> tuple:
        """Gradients of :meth:`parameters`, from ``δh`` ``(T, N, P)`` of every step."""
        return ()


# ---------------------------------------------------------------------- unrolled (autograd)

def run_unrolled(cell: Cell, x: Tensor, start: Sequence[Tensor], weights: Sequence,
                 reverse: bool = False, watch: Watch | None = None) -> tuple:
    """The recurrence as a per-time-step graph of primitive ops (see the module docstring)."""
    w_ih, w_hh, b_ih, b_hh = weights
    # The input's share does not depend on h: one matmul for all steps.
    x_share = x @ w_ih.T                                      # (T, N, G·H)
    if b_ih is not None:
        x_share = x_share + (b_ih if cell.hidden_bias_apart else b_ih + b_hh)
    w_hh_t = w_hh.T
    T = x.shape[0]
    states = tuple(start)
    per_step: list = [None] * T
    for t in time_steps(T, reverse):
        # packed: slice the active rows of x_share[t] and of states here
        h_share = states[0] @ w_hh_t
        if cell.hidden_bias_apart and b_hh is not None:
            h_share = h_share + b_hh
        states = cell.step(x_share[t], h_share, states)
        per_step[t] = states
        if watch is not None:
            _watch_unrolled(watch, t, states[0])
    return tuple(Tensor.stack([s[k] for s in per_step], axis=0) for k in range(len(start)))


def _watch_unrolled(watch: Watch, t: int, h_t: Tensor) -> None:
    """Report ``h_t`` now and, through a tensor hook, its complete gradient (from the output
    at t and from ``h_{t+1}``) when autograd reaches it."""
    watch("state", t, h_t)
    if h_t.requires_grad:
        h_t.register_hook(lambda grad: watch("grad", t, grad))


# ---------------------------------------------------------------- fused (hand-written BPTT)

def run_fused(cell: Cell, x: Tensor, start: Sequence[Tensor], weights: Sequence,
              reverse: bool = False, watch: Watch | None = None) -> tuple:
    r"""The recurrence as one graph node with hand-written BPTT.

    Forward: the input shares of all steps are one matmul into ``a`` ``(T, N, G·H)``; the loop
    adds the recurrent share ``h_{t-1} W_hhᵀ`` (``W_hhᵀ`` copied once to a contiguous array:
    a strided view makes every small matmul about twice as slow) and calls the cell, which
    writes the new states into one output buffer ``(T, N, P [+ H])`` (``[h_t | c_t]``).

    Backward, walking t = T … 1 with ``g_t`` the gradient arriving from outside at step t::

        δh_t = g^h_t + δr_{t+1} W_hh (+ the cell's own path from step t+1)   (δr_{T+1} = 0)
        δa_t, δr_t = cell.backward_step(δh_t, δc_t, …)

    where ``δa_t`` is the gradient of the input share and ``δr_t`` of the recurrent share
    (the same array unless the cell keeps ``b_hh`` apart). Then the sums over time, one
    matmul each over all ``T·N`` rows::

        ∂L/∂W_ih = Σ_t δa_tᵀ x_t      ∂L/∂W_hh = Σ_t δr_tᵀ h_{t-1}
        ∂L/∂b_ih = Σ_t Σ_n δa_t       ∂L/∂b_hh = Σ_t Σ_n δr_t
        ∂L/∂x_t  = δa_t W_ih           ∂L/∂h_0 = δr_1 W_hh (+ the cell's own path)

    Cost: the loops make no Python objects but array views and allocate nothing: every step
    writes into buffers made before the loop.
    """
    xp = x.xp
    w_ih, w_hh, b_ih, b_hh = weights
    X, W_ih, W_hh = x.data, w_ih.data, w_hh.data
    T, N, G = X.shape[0], X.shape[1], W_hh.shape[0]
    widths = [s.shape[-1] for s in start]
    order = time_steps(T, reverse)

    # ---- forward
    # x_t W_ihᵀ for every t at once. A batch_first x arrives as a transposed view, which
    # reshape copies; the backward pass reuses those rows for ∂L/∂W_ih.
    x_rows = X.reshape(T * N, -1)
    a = xp.empty((T, N, G), dtype=X.dtype)
    xp.matmul(x_rows, W_ih.T, out=a.reshape(T * N, G))
    hidden_bias = None
    if b_ih is not None:
        if cell.hidden_bias_apart:
            a += b_ih.data
            hidden_bias = b_hh.data
        else:
            a += b_ih.data + b_hh.data
    scale = cell.gate_scale(xp, G, X.dtype)
    W_hh_T = xp.ascontiguousarray(W_hh.T if scale is None else W_hh.T * scale)
    if scale is not None:
        a *= scale
        hidden_bias = None if hidden_bias is None else hidden_bias * scale
    out = xp.empty((T, N, sum(widths)), dtype=X.dtype)        # [h_t | c_t] for every t
    offsets = [sum(widths[:k]) for k in range(len(widths) + 1)]
    states = tuple(out[:, :, offsets[k]:offsets[k + 1]] for k in range(len(widths)))
    rec = xp.empty((N, G), dtype=X.dtype)
    cell.begin_forward(xp, a)
    prev = tuple(s.data for s in start)
    for t in order:
        # packed: slice the active rows of a[t], prev and rec here
        xp.matmul(prev[0], W_hh_T, out=rec)                  # h_{t-1} W_hhᵀ
        if hidden_bias is not None:
            rec += hidden_bias
        new = tuple(s[t] for s in states)
        cell.forward_step(xp, t, a[t], rec, prev, new)
        prev = new
        if watch is not None:
            watch("state", t, Tensor._wrap(new[0]))

    has_bias = b_ih is not None
    parents = (x, *start, w_ih, w_hh) + ((b_ih, b_hh) if has_bias else ()) + cell.parameters()

    def backward(grad):
        before = tuple(previous_states(xp, s, s0.data, reverse) for s, s0 in zip(states, start))
        cell.begin_backward(xp, a, states, before)
        d_a = xp.empty_like(a)
        d_rec = xp.empty_like(a) if cell.hidden_bias_apart else d_a
        delta_h = xp.empty((T, N, widths[0]), dtype=X.dtype)  # δh_t of every step
        d_others = [xp.empty((N, w), dtype=X.dtype) for w in widths[1:]]
        carries: list = [None] * len(widths)                  # the cell's own paths to t-1
        through_w_hh = xp.zeros((N, widths[0]), dtype=X.dtype)  # δr_{t+1} W_hh
        grads_out = [grad[:, :, offsets[k]:offsets[k + 1]] for k in range(len(widths))]
        for t in reversed(order):
            # packed: slice the active rows here; the rest pass their gradient through
            d_h = delta_h[t]
            xp.add(grads_out[0][t], through_w_hh, out=d_h)   # δh_t
            if carries[0] is not None:
                d_h += carries[0]
            for k, d in enumerate(d_others, start=1):
                if carries[k] is None:
                    d[...] = grads_out[k][t]
                else:
                    xp.add(grads_out[k][t], carries[k], out=d)
            if watch is not None:
                watch("grad", t, Tensor._wrap(d_h))
            carries = list(cell.backward_step(xp, t, (d_h, *d_others), d_a[t], d_rec[t]))
            xp.matmul(d_rec[t], W_hh, out=through_w_hh)
        grad_start = [through_w_hh if carries[0] is None else through_w_hh + carries[0]]
        grad_start += [c if c is not None else xp.zeros_like(s.data)
                       for c, s in zip(carries[1:], start[1:])]
        starts = tuple(g if s.requires_grad else None for g, s in zip(grad_start, start))
        grad_x = _input_grad(x, W_ih, d_a)
        return (grad_x,) + starts + _weight_grads(x_rows, d_a, d_rec, before[0], has_bias) \
            + cell.parameter_grads(xp, delta_h)

    op = cell.name + ("_reverse" if reverse else "")
    node = Tensor._make(out, parents, backward, op)
    if len(widths) == 1:
        return (node,)
    return tuple(node[:, :, offsets[k]:offsets[k + 1]] for k in range(len(widths)))


def _input_grad(x: Tensor, W_ih, d_a):
    """``∂L/∂x_t = δa_t W_ih`` for every step, one matmul (None if x needs no gradient)."""
    if not x.requires_grad:
        return None
    T, N, G = d_a.shape
    return (d_a.reshape(T * N, G) @ W_ih).reshape(x.shape)


def _weight_grads(x_rows, d_a, d_rec, h_before, has_bias: bool) -> tuple:
    """The BPTT sums over time, one matmul (or sum) each over all ``T·N`` rows:
    ``∂L/∂W_ih``, ``∂L/∂W_hh`` and, with biases, ``∂L/∂b_ih``, ``∂L/∂b_hh``."""
    T, N, G = d_a.shape
    flat_a = d_a.reshape(T * N, G)
    flat_rec = flat_a if d_rec is d_a else d_rec.reshape(T * N, G)
    grads: tuple = (flat_a.T @ x_rows, flat_rec.T @ h_before.reshape(T * N, -1))
    if has_bias:
        grad_b_ih = flat_a.sum(axis=0)
        grads += (grad_b_ih, grad_b_ih if flat_rec is flat_a else flat_rec.sum(axis=0))
    return grads


def run(cell: Cell, x: Tensor, start: Sequence[Tensor], weights: Sequence,
        reverse: bool = False, unroll: bool = False, watch: Watch | None = None) -> tuple:
    """Run ``cell`` over ``x`` with the unrolled (``unroll=True``) or the fused
    implementation; arguments and result as in the module docstring."""
    implementation = run_unrolled if unroll else run_fused
    return implementation(cell, x, start, weights, reverse=reverse, watch=watch)
