"""Reverse-mode automatic differentiation: the graph, its modes, and the backward pass.

Every differentiable operation on a :class:`~tinygrad_rnn.Tensor` that needs a gradient
records one :class:`Node`: the op's name, the tensors it read (``parents``) and a ``backward``
function that turns the gradient of the op's output into gradients for its parents (vector-
Jacobian products): a closure, or a shared function plus the values it reads (``ctx``). The
op's forward and its backward are written side by side in ``tensor.py``; this file only
knows how to walk the graph.

``backward(root)`` does what the chain rule says, walking the graph once from ``root`` back
to the leaves. A tensor's gradient is complete once every op that read it has sent its
contribution, and all those ops were recorded *after* it. So every node gets a sequence
number when it is recorded (``Node.sequence``), and the sweep keeps the tensors whose
gradient has started to arrive in a heap, always taking the most recently recorded one
next: when its turn comes its gradient is complete, and its node's ``backward`` is called
exactly once. (PyTorch's engine orders its ready queue by sequence number the same way.)
No recursion, no separate pass to sort the graph: a graph of any depth (a 100,000-step chain,
an RNN unrolled over 10,000 time steps) works with Python's default recursion limit, and
tensors are released as soon as their turn is over. Gradients reaching a leaf are
accumulated into its ``.grad`` (across calls too, as in PyTorch) after every node has run.

The sweep costs time about linear in the size of the graph (the heap adds a logarithm, a few
compare operations per node): when a tensor feeds several ops, their
contributions are summed in place into one buffer the sweep owns (:func:`_add_grad`), and the
gradient of a slice ``x[index]`` arrives as an :class:`IndexedGrad` that is added into that
buffer at ``index``, never as a full-size array of zeros.

After its turn each node drops its backward, its ``ctx`` and its parents, so the saved arrays
and the intermediate tensors are freed at once, unless ``retain_graph=True``. The graph holds
no reference cycles (a node points only at the tensors it read, never at its output), so
plain reference counting frees it; the cyclic garbage collector only has to *scan* it, and
the fewer objects a node makes, the less that costs (see :class:`Node`). Walking a freed node
again raises the same ``RuntimeError`` PyTorch raises.

**Version counters.** A backward closure reads the arrays its op saved, so an in-place change
to one of them between the forward and ``backward()`` (``optimizer.step()`` in between, say)
would silently give the gradient of a different function. As in PyTorch, every in-place op
bumps the modified tensor's :class:`VersionCounter`, and the sweep refuses to run a node whose
saved tensors were modified after it was recorded. To keep this free for the thousands of
nodes an unrolled RNN records, a node stores no versions: it stores the value of a global
clock that ticks at every in-place op (``_Mode.clock``), and a counter remembers the clock
value of its last change. A node only has to look at its saved tensors when the clock has
moved since it was recorded, and a saved tensor was modified after the node iff its counter's
``clock`` is later than the node's.
"""
from __future__ import annotations

import contextlib
import functools
import heapq
import inspect
import itertools
import weakref
from typing import Callable

from . import backend

FREED_GRAPH_MESSAGE = (
    "Trying to backward through the graph a second time (or to use a tensor whose graph was "
    "already freed by backward()). Saved intermediate values of the graph are freed when you "
    "call .backward(). Specify retain_graph=True if you need to backward through the graph a "
    "second time, or call .detach() on tensors you carry from one graph to the next (e.g. the "
    "hidden state in truncated BPTT).")


MODIFIED_SAVED_MESSAGE = (
    "one of the variables needed for gradient computation has been modified by an inplace "
    "operation: {what}, saved by '{op}' for its backward, is at version {version}: the "
    "in-place '{by}' changed it after '{op}' ran. Hint: do the in-place update after "
    "backward() (e.g. optimizer.step() after loss.backward()), or use the out-of-place form "
    "(y = y + x) so the saved value survives.")


class _Mode:
    """Global switches, read on every op (a class attribute lookup is cheap)."""
    grad_enabled = True
    anomaly = False
    clock = 0  # ticks at every in-place op; see "Version counters" above
    layouts: dict | None = None  # in a sweep or a recurrence: see :func:`reused_layout`


class VersionCounter:
    """How often a tensor's memory was changed in place (``version``), by which op last, and
    at what tick of ``_Mode.clock``. A tensor and its views share one counter, since they
    share memory. Tensors get one lazily: at their first in-place change, when a view of
    them is taken, or when an op saves its own output (``exp``: the closure reads it)."""
    __slots__ = ("version", "clock", "op")

    def __init__(self):
        self.version = 0
        self.clock = 0
        self.op = ""

    def bump(self, op: str) -> None:
        _Mode.clock += 1
        self.version += 1
        self.clock = _Mode.clock
        self.op = op


#: Numbers the nodes in the order they are recorded (see "Order" in the module docstring).
_node_sequence = itertools.count()


class Node:
    """How one tensor was computed: ``backward(grad_out, *ctx) -> grads of parents`` (None
    where a parent needs no gradient). ``op`` names the operation in errors and graph drawings.

    ``backward`` is either a closure over what it needs (``ctx`` empty), or, for the ops an
    unrolled RNN records at every time step, a plain function shared by every node of that
    op, handed the arrays and flags it needs in ``ctx``. Both read the same; the second makes
    no new Python objects per node beyond the tuple: a closure is a function object plus one
    cell per captured variable, all of which the cyclic garbage collector tracks and scans
    (see ``benchmarks/unrolled_gc.py``).

    ``saved`` lists the positions of the parents whose values ``backward`` reads (None: all
    of them), ``saves_output`` says that it reads the output too, and ``clock`` is the clock
    when the node was recorded: together they let the sweep detect saved values that were
    changed in place afterwards. The output's counter (``out_version``) is attached when the
    output gets one (``Tensor._version_counter``): until then it cannot have been changed.
    ``sequence`` numbers the nodes in the order they were recorded (see the module
    docstring)."""
    __slots__ = ("op", "parents", "backward", "ctx", "saved", "saves_output", "out_version",
                 "clock", "sequence")

    def __init__(self, op: str, parents: tuple, backward: Callable, saved: tuple | None = None,
                 saves_output: bool = False, ctx: tuple = ()):
        self.op = op
        self.parents = parents
        self.backward = backward
        self.ctx = ctx
        self.saved = saved
        self.saves_output = saves_output
        self.out_version: VersionCounter | None = None
        self.clock = _Mode.clock
        self.sequence = next(_node_sequence)

    def check_saved_versions(self) -> None:
        """Raise PyTorch's error if a value this node saved was modified in place since."""
        parents = self.parents
        positions = range(len(parents)) if self.saved is None else self.saved
        for i in positions:
            counter = getattr(parents[i], "_version", None)  # None: never changed or viewed
            if counter is not None and counter.clock > self.clock:
                self._raise_modified(counter, _describe_tensor(parents[i], f"input {i}"))
        counter = self.out_version
        if counter is not None and counter.clock > self.clock:
            self._raise_modified(counter, "its output")

    def _raise_modified(self, counter: VersionCounter, what: str):
        raise RuntimeError(MODIFIED_SAVED_MESSAGE.format(
            what=what, op=self.op, version=counter.version, by=counter.op))

    def free(self) -> None:
        """Drop the saved arrays and the links to the inputs; keep the name for messages."""
        self.parents = ()
        self.ctx = ()
        # The ignore keeps ``backward`` typed as callable for the sweeps that call it: they
        # refuse a freed graph (``freed``, below) before they reach any node of it.
        self.backward = None  # type: ignore[assignment]

    @property
    def freed(self) -> bool:
        return self.backward is None

    def __repr__(self) -> str:
        return f"<{self.op}>" if not self.freed else f"<{self.op} (freed)>"


def _describe_tensor(tensor, role: str) -> str:
    return f"{role} (a tensor of shape {tuple(tensor.shape)} and dtype {tensor.dtype})"


# ----------------------------------------------------------------------------- grad modes

def is_grad_enabled() -> bool:
    return _Mode.grad_enabled


class _ModeSwitch(contextlib.ContextDecorator):
    """Context manager and decorator that sets one flag of :class:`_Mode` for its block and
    restores the previous value on exit (so blocks nest)."""

    def __init__(self, flag: str, enabled: bool):
        self.flag = flag
        self.enabled = enabled
        self._previous: list[bool] = []

    def __enter__(self):
        self._previous.append(getattr(_Mode, self.flag))
        setattr(_Mode, self.flag, self.enabled)
        return self

    def __exit__(self, *exc):
        setattr(_Mode, self.flag, self._previous.pop())
        return False

    def __call__(self, fn):
        """As a decorator. A generator function's body runs in the mode at every resumption
        (and its caller in its own mode between them), as PyTorch does: switching only while
        the generator object is created would leave the body in the caller's mode."""
        if inspect.isgeneratorfunction(fn):
            return self._decorate_generator(fn)
        return super().__call__(fn)

    def _decorate_generator(self, fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            inner = fn(*args, **kwargs)
            try:
                with self:
                    response = inner.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:         # closed by the caller: close the body
                        with self:
                            inner.close()
                        raise
                    except BaseException as exc:  # thrown in by the caller: pass it on
                        with self:
                            response = inner.throw(exc)
                    else:
                        with self:
                            response = inner.send(request)
            except StopIteration as stop:         # the body returned: so do we
                return stop.value
        return generator


def no_grad() -> _ModeSwitch:
    """``with no_grad():`` (or ``@no_grad()``): ops inside record no graph, as in PyTorch.
    Use it for evaluation and for in-place parameter updates."""
    return _ModeSwitch("grad_enabled", False)


def enable_grad() -> _ModeSwitch:
    """Re-enable graph recording inside a ``no_grad`` block."""
    return _ModeSwitch("grad_enabled", True)


class detect_anomaly(_ModeSwitch):
    """Raise at the first op whose forward result or backward gradient holds NaN or Inf,
    naming the op. Slower (every result is checked), so only switch it on to debug::

        with tinygrad_rnn.detect_anomaly():
            loss.backward()
    """

    def __init__(self, enabled: bool = True):
        super().__init__("anomaly", enabled)


def check_finite(array, op: str, where: str) -> None:
    """Raise if ``array`` holds NaN/Inf; used by :class:`detect_anomaly`."""
    xp = backend.module_of(array)
    if not bool(xp.isfinite(array).all()):
        kind = "NaN" if bool(xp.isnan(array).any()) else "Inf"
        raise RuntimeError(f"detect_anomaly: op '{op}' produced {kind} values in its {where}")


# --------------------------------------------------------- matrices used in many products

def reused_layout(matrix, transpose: bool = False):
    """``matrix`` (or ``matrix.T``) for a matrix product, in C order if it is used more than
    once within the current scope (:func:`reused_layouts`).

    An unrolled RNN multiplies by the same weight at every time step: ``h_{t-1} @ W_hhᵀ``
    forward, ``g_t @ W_hh`` backward, T times each, and one of the two is a strided view of
    ``W_hh`` (its transpose). OpenBLAS multiplies by a strided view about twice as slowly as
    by a contiguous matrix at these shapes; so the second time a scope sees the same strided
    matrix it copies it once, and every later product reuses the copy. Outside a scope, and
    for a matrix seen once, nothing is copied. NumPy only: cuBLAS multiplies by a transposed
    matrix at full speed.
    """
    view = matrix.T if transpose else matrix
    cache = _Mode.layouts
    if cache is None or view.flags.c_contiguous or view.ndim != 2 \
            or backend.name_of(matrix) != "numpy":
        return view
    key = (id(matrix), transpose)
    seen = cache.get(key)
    if seen is None or seen[0]() is not matrix:   # first sighting (or an id reused since)
        cache[key] = (weakref.ref(matrix), None)
        return view
    if seen[1] is None:
        seen = cache[key] = (seen[0], backend.np.ascontiguousarray(view))
    return seen[1]


@contextlib.contextmanager
def reused_layouts():
    """A scope for :func:`reused_layout`: one backward sweep, or one run of a recurrence.
    Its copies die with it, so a copy can never outlive the matrix's values: the weights are
    only changed in place *between* scopes (an optimizer step); within a sweep, the version
    counters refuse any change to a value a node saved. (Restores the enclosing scope on exit:
    a hook may run a sweep of its own.)"""
    previous, _Mode.layouts = _Mode.layouts, {}
    try:
        yield
    finally:
        _Mode.layouts = previous


# ------------------------------------------------------------------------------- backward

def topological_order(root) -> list:
    """Tensors that need a gradient, each listed after all tensors it was computed from.
    :func:`grad` uses it to find the part of the graph that leads to its inputs before its
    sweep; :func:`backward` needs no such pass.

    Iterative post-order depth-first search: an entry ``(t, True)`` on the stack means "all of
    t's inputs are done, emit t".
    """
    order: list = []
    seen: set[int] = set()
    stack = [(root, False)]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        stack.append((tensor, True))
        node = tensor._node
        if node is None:
            continue
        if node.freed:
            raise RuntimeError(FREED_GRAPH_MESSAGE)
        for parent in node.parents:
            if parent.requires_grad and id(parent) not in seen:
                stack.append((parent, False))
    return order


def backward(root, grad=None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into every leaf's ``.grad``; see the module docstring."""
    if not root.requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                           "grad_fn: nothing to differentiate (did you forget "
                           "requires_grad=True, or compute it under no_grad()?)")
    grads = {root: _initial_grad(root, grad)}
    owned: set = set()  # tensors whose gradient is a buffer this sweep allocated itself
    leaves: list = []   # leaves reached, accumulated once every node has run
    # The tensors whose gradient has started to arrive, latest-created first: a max-heap on
    # the node's sequence number (``heapq`` is a min-heap, hence the minus sign).
    ready: list = []
    _schedule(root, ready, leaves)
    anomaly = _Mode.anomaly
    # Hooks and backward closures must not record graphs themselves; BLAS runs on the
    # package's thread setting (one thread by default: the products of BPTT are small).
    with no_grad(), backend.blas_threads(), reused_layouts():
        while ready:
            # Each tensor leaves the heap (and, with its node freed, memory) once done.
            tensor = heapq.heappop(ready)[1]
            node = tensor._node
            if node.freed:
                raise RuntimeError(FREED_GRAPH_MESSAGE)
            g, is_owned = _take_grad(grads, owned, tensor)
            if tensor._hooks:
                g, is_owned = _run_hooks(tensor, g, is_owned)
                if anomaly:
                    check_finite(g, "a hook registered with register_hook", "returned gradient")
            if tensor._retains_grad:
                tensor._accumulate_grad(g)
            if node.clock != _Mode.clock:  # something was changed in place since: look closer
                node.check_saved_versions()
            for parent, pg in zip(node.parents, node.backward(g, *node.ctx)):
                if pg is None or not parent.requires_grad:
                    continue
                if anomaly:
                    check_finite(pg.values if type(pg) is IndexedGrad else pg, node.op,
                                 "backward (gradient)")
                if _add_grad(grads, owned, parent, pg):  # its first contribution:
                    _schedule(parent, ready, leaves)     # it will need a turn
            if not retain_graph:
                node.free()
        for leaf in leaves:
            g, is_owned = _take_grad(grads, owned, leaf)
            if leaf._hooks:
                g, is_owned = _run_hooks(leaf, g, is_owned)
                if anomaly:
                    check_finite(g, "a hook registered with register_hook", "returned gradient")
            leaf._accumulate_grad(g, owned=is_owned)


def _schedule(tensor, ready: list, leaves: list) -> None:
    """Give ``tensor`` its turn in the sweep: a node's output waits in the heap ``ready``
    ordered by creation (see the module docstring), a leaf waits until the end."""
    node = tensor._node
    if node is None:
        leaves.append(tensor)
    else:
        heapq.heappush(ready, (-node.sequence, tensor))


def _take_grad(grads: dict, owned: set, tensor) -> tuple:
    """Remove ``tensor``'s complete gradient from ``grads``: ``(array, owned by the sweep)``."""
    if tensor in owned:
        owned.discard(tensor)
        return grads.pop(tensor), True
    return grads.pop(tensor), False


class IndexedGrad:
    """The gradient that ``y = x[index]`` sends back to ``x``: ``values`` at ``index``, zero
    everywhere else. getitem's backward returns this instead of a dense array of zeros, and
    the sweep adds it into x's gradient in place: an unrolled RNN reads ``x[t]`` at each of T
    steps, and T dense ``(T, N, H)`` arrays would make its backward O(T²)."""
    __slots__ = ("index", "values", "advanced")

    def __init__(self, index, values, advanced: bool):
        self.index = index
        self.values = values
        self.advanced = advanced  # integer-array index: repeated entries must accumulate

    def add_into(self, buffer) -> None:
        if self.advanced:
            backend.scatter_add(buffer, self.index, self.values)
        else:
            buffer[self.index] += self.values


def _add_grad(grads: dict, owned: set, parent, pg) -> bool:
    """Add one contribution ``pg`` to the gradient of ``parent`` gathered in ``grads``;
    return whether it was the first.

    A gradient a node returned may be a view or be shared with another parent, so it is
    stored as is but never written to; the second contribution creates a new buffer, which
    the sweep owns (``owned``) and adds every later contribution into in place. An owned
    buffer reaching a leaf becomes its ``.grad`` without a copy.
    """
    current = grads.get(parent)
    first = current is None
    if type(pg) is IndexedGrad:
        if parent not in owned:
            current = parent.xp.zeros(parent.data.shape, dtype=parent.data.dtype) \
                if current is None else current.astype(parent.data.dtype, copy=True)
            grads[parent] = current
            owned.add(parent)
        pg.add_into(current)
    elif first:
        grads[parent] = pg
    elif parent in owned:
        current += pg
    else:
        # asarray: for 0-d operands NumPy returns a scalar, which ``+=`` above would not update
        grads[parent] = parent.xp.asarray(current + pg)
        owned.add(parent)
    return first


def _initial_grad(root, grad):
    """The seed gradient d(root)/d(root): ones for a scalar, else it must be given."""
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs; this tensor has shape "
                f"{tuple(root.shape)}: call .sum() (or .mean()) first, or pass gradient=")
        return root.xp.ones_like(root.data)
    data = grad.data if hasattr(grad, "_node") else root.xp.asarray(grad)
    if tuple(data.shape) != tuple(root.shape):
        raise RuntimeError(f"backward: grad has shape {tuple(data.shape)} but the tensor has "
                           f"shape {tuple(root.shape)}; they must match")
    return data.astype(root.data.dtype, copy=False)


def _run_hooks(tensor, g, owned: bool):
    """Pass ``g`` through ``tensor``'s hooks; return the gradient and whether the sweep owns it.

    A hook may modify its argument in place, so it gets a private copy unless the sweep owns
    ``g`` (a gradient a node returned may be shared: ``a + b`` sends one array to both). What
    a hook returns must be a Tensor of the same shape and dtype, as PyTorch checks."""
    from .tensor import Tensor
    if not owned:
        g, owned = g.copy(), True
    for hook in tensor._hooks:
        result = hook(Tensor._wrap(g))
        if result is None:
            continue
        name = getattr(hook, "__name__", type(hook).__name__)
        if not isinstance(result, Tensor):
            raise TypeError(f"expected Variable, but hook returned '{type(result).__name__}' "
                            f"(hook '{name}' must return a Tensor or None)")
        if result.shape != tuple(g.shape):
            raise RuntimeError(f"hook '{name}' has changed the size of value (was "
                               f"{tuple(g.shape)}, got {result.shape})")
        if result.dtype != g.dtype:
            raise RuntimeError(f"hook '{name}' has changed the type of value (was {g.dtype} "
                               f"got {result.dtype})")
        g, owned = result.data, False  # the hook's caller may still hold that tensor
    return g, owned



# ------------------------------------------------------------ PyTorch's functional interface

class set_grad_enabled(_ModeSwitch):
    """Switch graph recording on or off, as ``torch.set_grad_enabled``: called as a function
    it takes effect at once; as ``with set_grad_enabled(mode):`` it also restores the
    previous mode after the block; as a decorator it switches only during each call."""

    def __init__(self, mode: bool):
        super().__init__("grad_enabled", bool(mode))
        self._previous.append(_Mode.grad_enabled)  # what leaving a ``with`` block restores
        _Mode.grad_enabled = self.enabled

    def __enter__(self):
        return self  # the mode was already set when the object was made

    def __call__(self, fn):
        _Mode.grad_enabled = self._previous.pop()  # decorating must not switch anything now
        return _ModeSwitch("grad_enabled", self.enabled)(fn)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused=None, materialize_grads: bool = False) -> tuple:
    """The gradients of ``outputs`` with respect to ``inputs``, as ``torch.autograd.grad``
    (first order only): a tuple with one Tensor per input, computed without touching any
    ``.grad`` attribute.

    ``grad_outputs`` are the vectors of the vector-Jacobian products (one per output; needed
    for outputs with more than one element). An input the outputs do not depend on is an
    error unless ``allow_unused=True`` (its gradient is then None, or zeros with
    ``materialize_grads=True``). The graph is freed unless ``retain_graph=True``.
    """
    from .tensor import Tensor
    if create_graph:
        raise NotImplementedError("grad(create_graph=True): only first-order gradients are "
                                  "supported (the gradients are not recorded in a graph)")
    outputs, inputs = _as_tensor_tuple(outputs, "outputs"), _as_tensor_tuple(inputs, "inputs")
    grad_outputs = (None,) * len(outputs) if grad_outputs is None else \
        _as_tensor_tuple(grad_outputs, "grad_outputs", allow_none=True)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad requires one grad_output per output: got "
                           f"{len(grad_outputs)} grad_outputs but {len(outputs)} outputs")
    allow_unused = materialize_grads if allow_unused is None else allow_unused
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not "
                               "have a grad_fn")
    if not all(t.requires_grad for t in inputs):
        raise RuntimeError("One of the differentiated Tensors does not require grad")
    seeds = tuple(_initial_grad(o, g) for o, g in zip(outputs, grad_outputs))
    # One artificial root whose "backward" hands each output its seed gradient, so that the
    # outputs are swept together, in one topological order.
    root = Tensor._wrap(outputs[0].data)
    root.requires_grad = True
    root._node = Node("grad", outputs, lambda _: seeds)
    found = _sweep_to_inputs(root, inputs, bool(retain_graph))
    results = []
    for t, g in zip(inputs, found):
        if g is None and not allow_unused:
            raise RuntimeError("One of the differentiated Tensors appears to not have been "
                               "used in the graph. Set allow_unused=True if this is the "
                               "desired behavior.")
        if g is None and materialize_grads:
            g = t.xp.zeros_like(t.data)
        results.append(None if g is None else Tensor._wrap(g))
    return tuple(results)


def _sweep_to_inputs(root, inputs, retain_graph: bool) -> list:
    """The backward sweep of :func:`backward`, delivering gradients to ``inputs`` (returned,
    copied) instead of accumulating them into leaves. Only the part of the graph between the
    root and the inputs is walked."""
    wanted: dict[int, list] = {}  # id -> positions in ``inputs`` (a tensor may repeat)
    for k, t in enumerate(inputs):
        wanted.setdefault(id(t), []).append(k)
    order = topological_order(root)
    leads_to_input: set[int] = set()  # tensors with an input among them and their ancestors
    for tensor in order:  # parents come first
        node = tensor._node
        if id(tensor) in wanted or node is not None and any(
                id(p) in leads_to_input for p in node.parents):
            leads_to_input.add(id(tensor))
    found: list = [None] * len(inputs)
    grads = {root: root.data}
    owned: set = set()
    with no_grad(), backend.blas_threads(), reused_layouts():
        while order:
            tensor = order.pop()
            if tensor not in grads or id(tensor) not in leads_to_input:
                continue
            g, is_owned = _take_grad(grads, owned, tensor)
            if tensor._hooks:
                g, is_owned = _run_hooks(tensor, g, is_owned)
            for k in wanted.get(id(tensor), ()):
                found[k] = g.astype(tensor.data.dtype, copy=True)
            node = tensor._node
            if node is None:
                continue
            if node.clock != _Mode.clock:  # something was changed in place since: look closer
                node.check_saved_versions()
            for parent, pg in zip(node.parents, node.backward(g, *node.ctx)):
                if pg is not None and parent.requires_grad:
                    if _Mode.anomaly:
                        check_finite(pg.values if type(pg) is IndexedGrad else pg, node.op,
                                     "backward (gradient)")
                    _add_grad(grads, owned, parent, pg)
            if not retain_graph:
                node.free()
    return found


def _as_tensor_tuple(value, name: str, allow_none: bool = False) -> tuple:
    """One Tensor or a sequence of Tensors as a tuple (None entries where allowed)."""
    from .tensor import Tensor
    items = (value,) if isinstance(value, Tensor) else tuple(value)
    for item in items:
        if not (isinstance(item, Tensor) or allow_none and item is None):
            raise TypeError(f"grad(): {name} must be a Tensor or a sequence of Tensors, got "
                            f"{type(item).__name__}")
    return items
