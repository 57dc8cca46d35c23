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
or at 0 when ``reverse``); or, with ``steps`` (a :class:`Steps`), the packed rows
``(Σ batch_sizes, H_in)`` and states in the same layout.

Packed sequences (``nn.utils.rnn.PackedSequence``) are a shrinking batch: sorted by length,
at step t only the first ``batch_sizes[t]`` sequences are still running. Both loops work on
the *packed layout*, as PyTorch's do: the rows of all steps one after the other (time-major,
``(Σ_t batch_sizes[t], ·)``), step t owning the ``batch_sizes[t]`` rows :class:`Steps` names.
Step t computes only its rows, so cost follows the number of real tokens. A padded batch is
the special case ``batch_sizes = [N] * T``, whose rows are ``x.reshape(T·N, ·)``: one code
path for both. Because the running sequences are always the first rows, a step's previous
state is a prefix of the step before (forward) or the step after (reverse, where sequences
that end later *start* later, from ``start``: the backward direction begins at each
sequence's own last step). The cells see each step's rows only (``n_t`` of them), at
``rows[t]`` of their own per-row buffers.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from .. import autograd, backend
from ..tensor import Tensor

#: ``watch(kind, t, value)``: ``kind`` is ``"state"`` (forward, ``value`` = ``h_t``, a Tensor
#: ``(N, P)``, part of the graph in the unrolled implementation) or ``"grad"`` (backward,
#: ``value`` = ``∂L/∂h_t``, a Tensor ``(N, P)`` without graph, valid during the call only).
Watch = Callable[[str, int, Tensor], None]


def time_steps(T: int, reverse: bool) -> range:
    """The order in which a direction visits the steps: 0 … T-1, or T-1 … 0 when reversed."""
    return range(T - 1, -1, -1) if reverse else range(T)


class Steps:
    """Where each step's rows are in the packed layout, and how steps hand states on.

    ``sizes[t]`` rows belong to step t (non-increasing: the running sequences, sorted by
    length, are the first ``sizes[t]`` of the batch), the ``rows[t]`` slice of the layout;
    ``batch = sizes[0]``, ``total = Σ sizes``. A padded ``(T, N, ·)`` batch is
    ``Steps([N] * T)`` (:meth:`padded`, made once per shape). A packed batch's are made once
    per forward call (they only read host integers). What they derive (:meth:`plan`,
    :meth:`previous_rows`, :meth:`last_rows`) is computed once, with whole-array NumPy
    operations, and shared by every layer and direction.
    """

    def __init__(self, sizes):
        np = backend.np
        sizes = np.asarray(sizes, dtype=np.int64)
        self.sizes = sizes.tolist()
        self.T, self.batch = len(self.sizes), self.sizes[0]
        ends = np.cumsum(sizes)
        self.total = int(ends[-1])
        firsts = ends - sizes
        self.rows = [slice(f, e) for f, e in zip(firsts.tolist(), ends.tolist())]
        self.uniform = self.sizes[0] == self.sizes[-1]
        self._sizes, self._firsts = sizes, firsts
        self._memo: dict = {}   # (what, reverse) -> the derived list or host index (shared)

    @classmethod
    def padded(cls, T: int, N: int) -> "Steps":
        """The steps of a padded ``(T, N, ·)`` batch: made once per shape and shared by every
        layer, direction and call of that shape (nobody writes them)."""
        return _padded_steps(T, N)

    def _once(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def plan(self, reverse: bool) -> list:
        """``(t, rows, n, kept, fed)`` for every step, in the direction's order: step t's
        ``n`` rows, of which the first ``kept`` start from the step run just before (the
        others, from ``start``), and the first ``fed`` are read by the step run just after."""
        return self._once(("plan", reverse), lambda: self._plan(reverse))

    def _plan(self, reverse: bool) -> list:
        sizes, rows = self.sizes, self.rows
        order = list(time_steps(self.T, reverse))
        ordered = [sizes[t] for t in order]
        # The first step run starts from start alone; then forward, step t continues all its
        # sizes[t] sequences from step t-1; reverse, the sizes[t+1] that ran at step t+1.
        kept = [0] + (ordered[:-1] if reverse else ordered[1:])
        fed = kept[1:] + [0]
        return [(t, rows[t], n, k, f) for t, n, k, f in zip(order, ordered, kept, fed)]

    def previous_rows(self, reverse: bool):
        """Host index ``(total,)``: for every row, the row its step started from, counting
        the rows of ``start`` after the ``total`` rows of the layout (``total + j``)."""
        return self._once(("previous", reverse),
                          lambda: _read_only(self._previous_rows(reverse)))

    def _previous_rows(self, reverse: bool):
        np = backend.np
        sizes, total, N = self._sizes, self.total, self.batch
        index = np.arange(total)
        if not reverse:   # row j of step t >= 1 starts from row j of step t-1
            index[N:] -= np.repeat(sizes[:-1], sizes[1:])
            index[:N] += total        # step 0: from start
            return index
        # Row j of step t starts from row j of step t+1 when that sequence ran there, else
        # (j >= sizes[t+1], a sequence whose last step is t) from start.
        slot = index - np.repeat(self._firsts, sizes)
        running_next = np.repeat(np.append(sizes[1:], 0), sizes)
        return np.where(slot < running_next, index + np.repeat(sizes, sizes), total + slot)

    def last_rows(self, reverse: bool):
        """Host index ``(batch,)``: the row of each sequence's final state: its own last
        step (forward), step 0 (reverse)."""
        return self._once(("last", reverse), lambda: _read_only(self._last_rows(reverse)))

    def _last_rows(self, reverse: bool):
        np = backend.np
        slot = np.arange(self.batch)
        if reverse:
            return slot
        # Sequence j runs while sizes[t] > j: its length is the count of those steps
        # (sizes is non-increasing, so a search in the reversed sizes finds it).
        lengths = self.T - np.searchsorted(self._sizes[::-1], slot, side="right")
        return self._firsts[lengths - 1] + slot


@functools.lru_cache(maxsize=64)
def _padded_steps(T: int, N: int) -> Steps:
    return Steps([N] * T)


def _read_only(index):
    """A host index that every layer and direction of a call shares: nobody may write it."""
    index.setflags(write=False)
    return index


def _before(xp, states, first, steps: Steps, reverse: bool):
    """The state every row of a packed batch started from, ``(total, ·)``, gathered from the
    layer's states and ``first`` (the initial state ``(batch, ·)``). (A padded batch needs
    no gather: see :func:`_previous_states`.)"""
    N = steps.batch
    index = xp.asarray(steps.previous_rows(reverse))
    if reverse:   # rows of every step may begin from start: index both, one after the other
        return xp.take(xp.concatenate([states, first], axis=0), index, axis=0)
    before = xp.empty((steps.total, states.shape[1]), dtype=states.dtype)
    before[:N] = first                     # forward, only step 0 begins from start
    xp.take(states, index[N:], axis=0, out=before[N:])
    return before


class Cell:
    """What the driver needs from a cell: its step equations and its state layout.

    A cell object is made for one run of one layer and direction (it may keep buffers and
    weights beyond ``W_ih, W_hh, b_ih, b_hh`` such as the LSTM's projection). The state tuple
    always starts with ``h`` (the output, ``(N, P)``).

    The rows a step runs are the rows of the arrays the driver passes (``len(a)``), and
    ``rows`` says where they are: in the forward pass, in the packed layout (a cell keeps its
    per-row buffers there, ``(total, ·)``, allocated in :meth:`begin_forward`, and reads a
    step's part as ``buf[rows]``); in the backward pass, within the current block of steps
    (:meth:`backward_block`). Scratch buffers have ``batch`` rows, of which a step uses the
    first ``len(a)``. So the driver alone decides which rows are active (packed sequences).

    Names used below: ``G·H`` the width of the pre-activations (all gate blocks side by side);
    the *input share* ``x_t W_ihᵀ + b`` and the *recurrent share* ``h_{t-1} W_hhᵀ``.
    """

    #: Name of the fused graph node (``_reverse`` is appended for the backward direction).
    name = "cell"
    #: True when ``b_hh`` must stay with the recurrent share (the GRU's reset gate multiplies
    #: it); otherwise both biases are added to the input share, once for all steps.
    hidden_bias_apart = False
    #: True when :meth:`backward_block` reads the previous states (``before``); a cell that
    #: does not spares the driver a gathered copy per state (packed batches).
    uses_previous_states = True

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

    def begin_forward(self, xp, a, batch: int) -> None:
        """Allocate what :meth:`forward_step` needs; ``a`` is the ``(rows, G·H)`` buffer of
        input shares (packed layout) the loop will pass step by step; no step has more than
        ``batch`` rows."""

    def forward_step(self, xp, rows: slice, a, rec, prev: tuple, new: tuple) -> None:
        """One step over arrays; ``rows`` says where its rows are in the packed layout (for
        the cell's own per-row buffers). ``a`` ``(n, G·H)`` holds the (scaled) input share and
        may be overwritten with what the backward pass needs (the gate values); ``rec`` the
        recurrent share (scaled, with ``b_hh`` when apart); ``prev`` the previous states;
        write the new states into the views ``new``."""
        raise NotImplementedError

    def begin_backward(self, xp, gates, block_rows: int, batch: int) -> None:
        """Allocate what :meth:`backward_block` and :meth:`backward_step` need: buffers for
        blocks of at most ``block_rows`` rows (``gates`` ``(rows, G·H)`` gives width and
        dtype); no step has more than ``batch`` rows."""

    def backward_block(self, xp, block: slice, gates, states: tuple, before: tuple | None,
                       d_a) -> None:
        """Prepare the backward steps of one block of consecutive steps, the rows ``block``
        of the layout, vectorised over all its rows: the factors that depend on the forward
        pass only. ``gates`` ``(rows, G·H)`` as :meth:`forward_step` left them, ``states`` and
        ``before`` (the state each row started from; None when :attr:`uses_previous_states`
        is False) ``(rows, ·)`` each, all the block's rows; ``d_a`` the block's rows of the
        buffer :meth:`backward_step` will fill step by step (a cell may park a factor there
        first and multiply it in place)."""

    def backward_step(self, xp, rows: slice, d_states: tuple, d_a, d_rec) -> tuple:
        """The BPTT step of the ``rows`` (counted from the start of the block last given to
        :meth:`backward_block`). ``d_states``: the total gradient of every state there (the
        cell may overwrite them). Write the gradient of the input share into ``d_a``
        ``(n, G·H)`` and, when :attr:`hidden_bias_apart`, of the recurrent share into
        ``d_rec`` (else ``d_rec is d_a``). Return, per state, the gradient flowing to the
        previous step other than through ``W_hh`` (None where there is none)."""
        raise NotImplementedError

    def parameter_grads(self, xp, delta_h) -> tuple:
        """Gradients of :meth:`parameters`, from ``δh`` ``(rows, P)`` of every row."""
        return ()


# ---------------------------------------------------------------------- unrolled (autograd)

def run_unrolled(cell: Cell, x: Tensor, start: Sequence[Tensor], weights: Sequence,
                 reverse: bool = False, watch: Watch | None = None,
                 steps: Steps | None = None) -> tuple:
    """The recurrence as a per-time-step graph of primitive ops (see the module docstring).
    ``x`` is ``(T, N, H_in)``, or the packed rows ``(Σ batch_sizes, H_in)`` with ``steps``;
    the states come back in the same layout."""
    w_ih, w_hh, b_ih, b_hh = weights
    packed = steps is not None
    steps = steps or Steps.padded(x.shape[0], x.shape[1])
    x_rows = x if packed else x.reshape(steps.total, x.shape[-1])
    # The input's share does not depend on h: one matmul for all steps.
    x_share = x_rows @ w_ih.T                                 # (rows, G·H)
    if b_ih is not None:  # in place (autograd records it): no second (rows, G·H) array
        x_share += b_ih if cell.hidden_bias_apart else b_ih + b_hh
    w_hh_t = w_hh.T
    per_step: list = [None] * steps.T
    states = tuple(start)
    # One contiguous copy of W_hhᵀ for the T products by it (autograd.reused_layout): BLAS
    # multiplies by the strided view ``w_hh.T`` about twice as slowly.
    with autograd.reused_layouts():
        for t, rows, n, kept, _ in steps.plan(reverse):
            if kept < n:                      # some (or all) sequences begin here, at start
                head = tuple(s[:n] for s in start) if n < steps.batch else tuple(start)
                states = head if kept == 0 else tuple(
                    Tensor.cat([s, s0[kept:n]], axis=0) for s, s0 in zip(states, start))
            elif states[0].shape[0] > n:      # forward: the sequences still running
                states = tuple(s[:n] for s in states)
            h_share = states[0] @ w_hh_t
            if cell.hidden_bias_apart and b_hh is not None:
                h_share = h_share + b_hh
            states = cell.step(x_share[rows], h_share, states)
            per_step[t] = states
            if watch is not None:
                _watch_unrolled(watch, t, states[0])
    join = Tensor.cat if packed else Tensor.stack
    return tuple(join([s[k] for s in per_step], axis=0) for k in range(len(start)))


def _watch_unrolled(watch: Watch, t: int, h_t: Tensor) -> None:
    """Report ``h_t`` now and, through a tensor hook, its complete gradient (from the output
    at t and from ``h_{t+1}``) when autograd reaches it."""
    watch("state", t, h_t)
    if h_t.requires_grad:
        h_t.register_hook(lambda grad: watch("grad", t, grad))


# ---------------------------------------------------------------- fused (hand-written BPTT)

def run_fused(cell: Cell, x: Tensor, start: Sequence[Tensor], weights: Sequence,
              reverse: bool = False, watch: Watch | None = None,
              steps: Steps | None = None) -> tuple:
    r"""The recurrence as one graph node with hand-written BPTT.

    ``x`` ``(T, N, H_in)``, or the packed rows ``(Σ batch_sizes, H_in)`` with ``steps``;
    the states come back in the same layout. Inside, everything is in the packed layout
    (module docstring), where step t owns the ``n_t = batch_sizes[t]`` rows ``rows[t]``.

    Forward: the input shares of all rows are one matmul into ``a`` ``(rows, G·H)``; the loop
    adds the recurrent share ``h_{t-1} W_hhᵀ`` of the ``n_t`` running rows only (``W_hhᵀ``
    copied once to a contiguous array: a strided view makes every small matmul about twice as
    slow) and calls the cell, which writes the new states into their rows of one output
    buffer: ``h`` of every row, then ``c`` of every row (each state contiguous, so the
    cell's elementwise calls run on contiguous memory).

    Backward, walking the steps in the reverse of the forward order, with ``g_t`` the
    gradient arriving from outside at step t::

        δh_t = g^h_t + δr_{t'} W_hh (+ the cell's own path from t')        (n_t rows)
        δa_t, δr_t = cell.backward_step(δh_t, δc_t, …)

    where t' is the step that ran after t (t + 1, or t - 1 in reverse), ``δa_t`` the
    gradient of the input share and ``δr_t`` of the recurrent share (the same array unless
    the cell keeps ``b_hh`` apart). The shrinking batch enters only through which rows
    receive ``δr_{t'} W_hh``: the ``n_{t'}`` rows that step t' read. Forward, those are the
    first ``n_{t+1}`` rows of step t; the others are sequences whose last step is t and get
    nothing from the future. In reverse, step t - 1 read all ``n_t`` rows of step t, and the
    rows of step t that did not come from step t + 1 (the sequences that begin at t) send
    their ``δr_t W_hh`` to ``∂L/∂start`` instead. Then the sums over all rows, one matmul
    each, exactly as for a padded batch (every row is a real step)::

        ∂L/∂W_ih = Σ δa_tᵀ x_t        ∂L/∂W_hh = Σ δr_tᵀ h_{t-1}   (h_{t-1}: the row's own
        ∂L/∂b_ih = Σ δa_t             ∂L/∂b_hh = Σ δr_t              previous state)
        ∂L/∂x_t  = δa_t W_ih

    The factors of the BPTT step that depend on the forward pass only (``1 - h_t²``, the
    gates' slopes) are computed by the cell for a *block* of consecutive steps at once
    (:meth:`Cell.backward_block`): few calls per step when steps are small, and blocks small
    enough (:data:`BLOCK_ELEMENTS`) to stay in the CPU's cache when they are large.

    Cost: the loops make no Python objects but array views and allocate nothing: every step
    writes into buffers made before the loop; a reverse step whose batch grows copies its
    previous states into one ``(N, ·)`` buffer.
    """
    xp = x.xp
    w_ih, w_hh, b_ih, b_hh = weights
    packed = steps is not None
    steps = steps or Steps.padded(x.shape[0], x.shape[1])
    plan = steps.plan(reverse)
    X, W_ih, W_hh = x.data, w_ih.data, w_hh.data
    N, G = steps.batch, W_hh.shape[0]
    widths = [s.shape[-1] for s in start]

    # ---- forward
    # x_t W_ihᵀ for every row at once. A batch_first x arrives as a transposed view, which
    # reshape copies; the backward pass reuses those rows for ∂L/∂W_ih.
    x_rows = X.reshape(steps.total, -1)
    a = xp.empty((steps.total, G), dtype=X.dtype)
    xp.matmul(x_rows, W_ih.T, out=a)
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
    if hidden_bias is not None:   # one row per batch row: no broadcasting inside the loop
        hidden_bias = xp.ascontiguousarray(xp.broadcast_to(hidden_bias, (N, G)))
    out = xp.empty(steps.total * sum(widths), dtype=X.dtype)  # h of every row, then c
    states = _split_states(out, steps.total, widths)
    rec = xp.empty((N, G), dtype=X.dtype)
    joined = [xp.empty((N, w), dtype=X.dtype) for w in widths]   # reverse, growing batch
    cell.begin_forward(xp, a, N)
    step, dot = cell.forward_step, xp.dot
    # Each step's views (its rows of a, of every state and of rec), made once.
    first_rows = _Prefixes(rec)
    views = [(t, rows, n, kept, a[rows], new, first_rows(n)[0])
             for (t, rows, n, kept, _), new in zip(plan, _views(states, [p[1] for p in plan]))]
    prev = tuple(s.data for s in start)
    for t, rows, n, kept, a_t, new, r in views:
        if kept < n:                          # some (or all) sequences begin here, at start
            prev = _with_start(prev, start, joined, kept, n)
        elif prev[0].shape[0] > n:            # forward: the sequences still running
            prev = tuple(p[:n] for p in prev)
        dot(prev[0], W_hh_T, out=r)                          # h_{t-1} W_hhᵀ
        if hidden_bias is not None:
            r += hidden_bias[:n]
        step(xp, rows, a_t, r, prev, new)
        prev = new
        if watch is not None:
            watch("state", t, Tensor._wrap(new[0]))

    has_bias = b_ih is not None
    parents = (x, *start, w_ih, w_hh) + ((b_ih, b_hh) if has_bias else ()) + cell.parameters()

    def backward(grad):
        d_a = xp.empty_like(a)
        d_rec = xp.empty_like(a) if cell.hidden_bias_apart else d_a
        previous, h_before = _previous_states(xp, states, start, steps, reverse,
                                              cell.uses_previous_states)
        # δh of every row when someone needs them all (the hook, a projection's gradient);
        # else one (N, P) buffer serves every step.
        keep_all = watch is not None or bool(cell.parameters())
        delta_h = xp.empty((steps.total if keep_all else N, widths[0]), dtype=X.dtype)
        d_others = tuple(xp.empty((N, w), dtype=X.dtype) for w in widths[1:])
        carries: tuple = (None,) * len(widths)               # the cell's own paths back
        through_w_hh = xp.zeros((N, widths[0]), dtype=X.dtype)  # δr_{t'} W_hh
        grad_start = [xp.zeros((N, w), dtype=X.dtype) for w in widths]
        grads_out = _split_states(grad.reshape(-1), steps.total, widths)
        # A step's δ buffers of its states: the first rows of (N, ·) buffers (δh too, unless
        # kept for every row), and the rows of δr W_hh it writes.
        d_other_rows, through_rows = _Prefixes(*d_others), _Prefixes(through_w_hh)
        d_state_rows = _Prefixes(delta_h, *d_others)
        step = cell.backward_step
        blocks = _blocks_of_steps(plan[::-1], G, BLOCK_ELEMENTS if xp is backend.np else None)
        cell.begin_backward(xp, a, max(b.stop - b.start for b, _ in blocks), N)
        for block, block_plan in blocks:
            cell.backward_block(xp, block, a[block], tuple(s[block] for s in states),
                                previous(block), d_a[block])
            # Each step's views: its rows (in the layout, and in the block), the δ buffers of
            # its states (δh, δc), the outside gradients, δa, δr and the part of δr W_hh it
            # writes.
            lo, block_rows = block.start, [p[1] for p in block_plan]
            d_a_rows = [d_a[rows] for rows in block_rows]
            d_rec_rows = d_a_rows if d_rec is d_a else [d_rec[rows] for rows in block_rows]
            views = [(t, slice(rows.start - lo, rows.stop - lo), n, kept, fed,
                      (delta_h[rows],) + d_other_rows(n) if keep_all else d_state_rows(n),
                      outside, d_a_t, d_rec_t, through_rows(n)[0])
                     for (t, rows, n, kept, fed), outside, d_a_t, d_rec_t in zip(
                         block_plan, _views(grads_out, block_rows), d_a_rows, d_rec_rows)]
            for t, local, n, kept, fed, d_states, outside, d_a_t, d_rec_t, through in views:
                # δh_t = outside + δr_{t'} W_hh (+ the cell's own path), δc_t = outside + …
                _add_incoming(xp, outside, (through_w_hh,) + carries[1:], fed, d_states)
                if watch is not None:
                    watch("grad", t, Tensor._wrap(d_states[0]))
                carries = step(xp, local, d_states, d_a_t, d_rec_t)
                dot(d_rec_t, W_hh, out=through)
                if carries[0] is not None:           # the cell's own path to h (GRU: z ⊙ δh)
                    through += carries[0]
                if kept < n:                      # rows that began from start: ∂L/∂start
                    grad_start[0][kept:n] = through[kept:n]
                    for k, c in enumerate(carries[1:], start=1):
                        if c is not None:
                            grad_start[k][kept:n] += c[kept:n]
        starts = tuple(g if s.requires_grad else None for g, s in zip(grad_start, start))
        grad_x = _input_grad(x, W_ih, d_a)
        grads = _weight_grads(x_rows, d_a, d_rec, states[0], start[0].data, h_before, steps,
                              reverse, has_bias)
        return (grad_x,) + starts + grads + cell.parameter_grads(xp, delta_h)

    op = cell.name + ("_reverse" if reverse else "")
    node = Tensor._make(out, parents, backward, op)
    layout = (steps.total, -1) if packed else (steps.T, N, -1)
    if len(widths) == 1:
        return (node.reshape(layout),)
    ends = [steps.total * sum(widths[:k]) for k in range(len(widths) + 1)]
    return tuple(node[ends[k]:ends[k + 1]].reshape(layout) for k in range(len(widths)))


#: The most ``rows × G·H`` elements of one block of steps (:meth:`Cell.backward_block`) on
#: the CPU: 64 Ki elements, 256 KiB of float32 per array, so a block's gates, factors and
#: gradients stay in the L2 cache while its steps use them. On a GPU, one block: every step.
BLOCK_ELEMENTS = 1 << 16


def _blocks_of_steps(plan: list, width: int, budget: int | None) -> list:
    """Cut ``plan`` (in the order the steps run) into blocks of consecutive steps with at
    most ``budget`` elements of width ``width`` (at least one step each; one block when
    ``budget`` is None). Returns ``(rows, steps)`` per block: the block's rows in the layout
    (consecutive steps own consecutive rows) and its part of the plan."""
    blocks: list = []
    current: list = []
    count = 0
    for entry in plan:
        n = entry[2]
        if current and budget is not None and (count + n) * width > budget:
            blocks.append(current)
            current, count = [], 0
        current.append(entry)
        count += n
    blocks.append(current)
    # Consecutive steps own consecutive rows, in either direction: a block's rows run from
    # its first step's to its last step's.
    return [(slice(min(b[0][1].start, b[-1][1].start), max(b[0][1].stop, b[-1][1].stop)), b)
            for b in blocks]


class _Prefixes:
    """``prefixes(n)``: the first ``n`` rows of each of ``arrays`` (views, made once per n):
    a padded batch has one n for every step, a packed one a few."""

    def __init__(self, *arrays):
        self.arrays, self.made = arrays, {}

    def __call__(self, n: int) -> tuple:
        views = self.made.get(n)
        if views is None:
            views = self.made[n] = tuple(array[:n] for array in self.arrays)
        return views


def _split_states(flat, total: int, widths: list) -> tuple:
    """The states' ``(total, width)`` arrays, one after the other in the 1-D ``flat``."""
    ends = [total * sum(widths[:k]) for k in range(len(widths) + 1)]
    return tuple(flat[ends[k]:ends[k + 1]].reshape(total, w) for k, w in enumerate(widths))


def _previous_states(xp, states: tuple, start, steps: Steps, reverse: bool,
                     needed: bool) -> tuple:
    """``(previous, h_before)``: ``previous(block)`` gives, per state, the state every row of
    ``block`` started from (None when the cell does not read them: ``needed`` False), and
    ``h_before`` the previous ``h`` of every row for ``∂L/∂W_hh`` (None for a padded batch,
    whose weight gradient reads shifted views instead).

    A padded batch needs no copies: a block's previous states are the rows one step before
    (after, in reverse), joined with ``start`` only for the block holding the first step.
    A packed batch gathers every row's previous state once (:func:`_before`)."""
    firsts = tuple(s.data for s in start)
    if not steps.uniform:
        whole = tuple(_before(xp, s, s0, steps, reverse)
                      for s, s0 in zip(states if needed else states[:1], firsts))
        return (lambda block: tuple(w[block] for w in whole) if needed else None), whole[0]
    N, total = steps.batch, steps.total

    def previous(block: slice) -> tuple | None:
        lo, hi = block.start, block.stop
        if not needed:
            return None
        if reverse:
            return tuple(s[lo + N:hi + N] if hi + N <= total else
                         xp.concatenate([s[lo + N:], s0], axis=0)
                         for s, s0 in zip(states, firsts))
        return tuple(s[lo - N:hi - N] if lo >= N else xp.concatenate([s0, s[:hi - N]], axis=0)
                     for s, s0 in zip(states, firsts))
    return previous, None


def _views(arrays: Sequence, rows: list) -> list:
    """For every entry of ``rows`` (slices), the tuple of each array's view there."""
    if not arrays:
        return [()] * len(rows)
    return list(zip(*[[array[r] for r in rows] for array in arrays]))


def _with_start(prev: tuple, start, joined: list, kept: int, n: int) -> tuple:
    """Step ``n``'s previous states when its rows ``kept:n`` begin from ``start`` (every row
    at the first step; in reverse, the sequences whose last step this is): the first ``kept``
    rows of ``prev`` joined with those of ``start``, in the buffers ``joined``."""
    if kept == 0:
        return tuple(s.data[:n] for s in start)
    for buffer, p, s0 in zip(joined, prev, start):
        buffer[:kept] = p
        buffer[kept:n] = s0.data[kept:n]
    return tuple(buffer[:n] for buffer in joined)


def _add_incoming(xp, outside: tuple, backs: tuple, fed: int, targets: tuple) -> None:
    """Per state: ``target = outside``, plus ``back`` (when not None) on the first ``fed``
    rows: the gradient from outside at this step and what the step that ran after it sent
    back to the rows it read."""
    everyone = fed == targets[0].shape[0]
    for out, back, target in zip(outside, backs, targets):
        if back is not None and everyone:
            xp.add(out, back[:fed], out=target)
            continue
        target[...] = out
        if back is not None and fed:
            target[:fed] += back[:fed]


def _input_grad(x: Tensor, W_ih, d_a):
    """``∂L/∂x = δa W_ih`` for every row, one matmul (None if x needs no gradient)."""
    if not x.requires_grad:
        return None
    return (d_a @ W_ih).reshape(x.shape)


def _weight_grads(x_rows, d_a, d_rec, hs, h0, h_before, steps: Steps, reverse: bool,
                  has_bias: bool) -> tuple:
    """The BPTT sums over every row, one matmul (or sum) each: ``∂L/∂W_ih``, ``∂L/∂W_hh``
    and, with biases, ``∂L/∂b_ih``, ``∂L/∂b_hh``. ``Σ δr_tᵀ h_{t-1}`` takes each row's own
    previous state ``h_before`` when given; without it (a padded batch), h_{t-1} is the
    previous row block of ``hs`` (the next one in reverse), and ``h0`` at the direction's
    first step: no shifted copy of hs is made."""
    if h_before is not None:
        grad_w_hh = d_rec.T @ h_before
    else:
        N = steps.batch
        first, rest, previous = (slice(-N, None), slice(0, -N), slice(N, None)) if reverse \
            else (slice(0, N), slice(N, None), slice(0, -N))
        grad_w_hh = d_rec[rest].T @ hs[previous]
        grad_w_hh += d_rec[first].T @ h0
    grads: tuple = (d_a.T @ x_rows, grad_w_hh)
    if has_bias:
        grad_b_ih = d_a.sum(axis=0)
        grads += (grad_b_ih, grad_b_ih if d_rec is d_a else d_rec.sum(axis=0))
    return grads


def run(cell: Cell, x: Tensor, start: Sequence[Tensor], weights: Sequence,
        reverse: bool = False, unroll: bool = False, watch: Watch | None = None,
        steps: Steps | None = None) -> tuple:
    """Run ``cell`` over ``x`` with the unrolled (``unroll=True``) or the fused
    implementation; arguments and result as in the module docstring (``steps``: the packed
    layout's :class:`Steps`, or None for a padded ``(T, N, ·)`` x)."""
    implementation = run_unrolled if unroll else run_fused
    return implementation(cell, x, start, weights, reverse=reverse, watch=watch, steps=steps)
