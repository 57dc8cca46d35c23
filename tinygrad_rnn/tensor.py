"""``Tensor``: an array that remembers how it was computed, so gradients can flow back.

Each differentiable op below is written as one method: it computes the result from the
backend arrays (``.data``) and defines, right next to it, a ``backward(g)`` closure that maps
the gradient ``g`` of the result to the gradients of its inputs. The ops an unrolled RNN
records at every time step (add, sub, mul, matmul, tanh, sigmoid, relu, getitem) define it
as a static method ``_<op>_backward(g, *ctx)`` right after the op instead, and pass what it
reads as ``ctx``: the same formula without a closure's objects for the garbage collector
(see :class:`~tinygrad_rnn.autograd.Node`). ``Tensor._make`` records the backward in a graph
node only when some input needs a gradient and grad mode is on; ``autograd.backward`` walks
the nodes. Array math goes through
the backend's array module (``self.xp``), so the same code runs on NumPy and CuPy.

Broadcasting follows NumPy. When an input was broadcast, its gradient is summed back over the
broadcast axes (``_reduce_to``), so every gradient has its input's shape and dtype.
"""
from __future__ import annotations

import builtins  # in the class body `float` is Tensor.float: annotations there say builtins.float
import math
import numbers
import operator
import warnings
from typing import Any, Callable, Iterable, NamedTuple, Sequence, TypeVar

from . import autograd, backend
from .autograd import IndexedGrad, Node, VersionCounter, _Mode
from .errors import ShapeError

Shape = tuple
_ndarray = backend.np.ndarray


def _power(xp, a, p):
    """``a ** p`` for a number ``p``, computed as PyTorch computes it: ``x ** ±0.5`` as
    (1 /) sqrt(x) (so -inf gives NaN where the IEEE pow gives inf or 0), and the powers
    2, 3, -1, -2 as products (which round differently from pow)."""
    if p == 0.5:
        return xp.sqrt(a)
    if p == -0.5:
        return 1 / xp.sqrt(a)
    if p == 2:
        return a * a
    if p == 3:
        return a * a * a
    if a.dtype.kind == "f" and p in (-1, -2):
        return 1 / a if p == -1 else 1 / (a * a)
    return a ** p


def _check_overlap(target, source, op: str) -> None:
    """Refuse an in-place op that reads memory it partly writes (``x -= x[0]``), as
    PyTorch does; the very same block read the same way (``x += x``) is fine. The same bytes
    laid out differently (``x *= x[0]`` for ``x`` of shape ``(1, 3)``: ``(3,)`` against
    ``(1, 3)``) is a partial overlap, as in PyTorch, which compares strides. (PyTorch only
    judges overlaps of two dense blocks and silently computes the others in its iteration
    order; NumPy would buffer them. Refusing them all is never wrong.)"""
    if not backend.module_of(target).may_share_memory(target, source):
        return
    if _address(source) == _address(target) and source.nbytes == target.nbytes and \
            source.strides == target.strides and source.itemsize == target.itemsize:
        return
    raise RuntimeError(
        "unsupported operation: some elements of the input tensor and the written-to "
        f"tensor refer to a single memory location ({op}). Please clone() the tensor "
        "before performing the operation.")


def _scaled(other, alpha):
    """``alpha * other`` for the ``alpha=`` of ``add``/``sub`` (``other`` as given when 1)."""
    return other if alpha == 1 else other * alpha


def _address(a) -> int:
    """Where ``a``'s first element lives (NumPy or CuPy)."""
    interface = getattr(a, "__array_interface__", None)
    return interface["data"][0] if interface is not None else a.data.ptr


def _reduce_to(grad, like):
    """Sum ``grad`` over the axes along which ``like`` (an array) was broadcast, and give it
    ``like``'s dtype, so that it can be accumulated into ``like``'s gradient."""
    shape = like.shape
    if grad.shape != shape:
        extra = grad.ndim - len(shape)
        axes = tuple(range(extra)) + tuple(
            extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
        grad = grad.sum(axis=axes, keepdims=True).reshape(shape)
    if grad.dtype != like.dtype:
        grad = grad.astype(like.dtype)
    return grad


def to_arguments(target, dtype, where: str) -> tuple:
    """``.to()``'s arguments as PyTorch takes them, as ``(backend name or None, dtype or
    None)``: a backend name and/or a dtype, the dtype positionally or as ``dtype=``."""
    if target is not None and not isinstance(target, str):   # .to(tg.float64)
        if dtype is not None:
            raise TypeError(f"{where}: got two dtypes, {target!r} and dtype={dtype!r}")
        target, dtype = None, target
    if target is None and dtype is None:
        raise TypeError(f"{where} needs a backend name ('numpy' or 'cupy') or a dtype")
    if target is not None and target not in backend.CHOICES and _names_a_dtype(target):
        raise ValueError(f"{where}: {target!r} is a dtype, and strings name backends (as "
                         f"devices in PyTorch); pass it as dtype={target!r}")
    return target, dtype


def _names_a_dtype(name: str) -> bool:
    try:
        backend.as_dtype(name)
    except (TypeError, ValueError):
        return False
    return True


def _broadcast(fn, a, b, op: str, dtype=None):
    """``fn(a, b)`` for arrays that must broadcast; NumPy's error becomes a PyTorch-style one.
    Both operands are first cast to PyTorch's result dtype (:func:`_result_dtype`). float16
    is computed in float32 and rounded once, as PyTorch does: so a scalar such as 1e30 (inf
    in float16) still gives ``0 * 1e30 = 0``. ``dtype`` overrides the result dtype."""
    if dtype is None and a.dtype == b.dtype and a.dtype != _FLOAT16:  # the common case
        return _apply(fn, a, b, op)
    if dtype is None:
        dtype = a.dtype if a.dtype == b.dtype else _result_dtype(a, b)
    compute = _FLOAT32 if dtype == _FLOAT16 else dtype
    out = _apply(fn, a.astype(compute, copy=False), b.astype(compute, copy=False), op)
    return out if compute == dtype or out.dtype.kind == "b" else out.astype(dtype)


def _apply(fn, a, b, op: str):
    try:
        return fn(a, b)
    except ValueError as exc:
        error = _broadcast_error(a.shape, b.shape, op, exc)
        raise (RuntimeError(str(exc)) if error is exc else error) from None


_FLOAT16, _FLOAT32 = backend.np.dtype("float16"), backend.np.dtype("float32")
_FLOAT16_MAX = 65504.0


def _result_dtype(a, b):
    """The dtype of ``a op b`` by PyTorch's rules, which differ from NumPy's in two ways.

    * Categories: bool < integer < float. An integer meeting a float takes the float's dtype
      (``int64 * float32`` is float32; NumPy would widen it to float64).
    * 0-d operands are "weak", like Python numbers: they decide the dtype only when they are
      of a higher category than the operands with dimensions. ``t32 * np.array(2.0)`` stays
      float32, ``int32_t * np.array(2.0)`` is float64. (Python numbers reach this function
      already as 0-d arrays in the dtype PyTorch gives them, see ``Tensor._operand``.)
    """
    if (a.ndim == 0) == (b.ndim == 0):
        return _promote(a.dtype, b.dtype)
    dim, zero = (a.dtype, b.dtype) if b.ndim == 0 else (b.dtype, a.dtype)
    if dim.kind == "f":
        return dim
    if dim.kind == "b" or zero.kind == "f":
        return _promote(dim, zero)
    return dim  # an integer tensor keeps its dtype against a 0-d integer or bool


def _promote(d1, d2):
    """PyTorch's ``promote_types``: within one category the wider type (NumPy's rule),
    across categories the dtype of the higher one."""
    k1, k2 = d1.kind == "f", d2.kind == "f"
    if k1 != k2:
        return d1 if k1 else d2
    return backend.np.promote_types(d1, d2)


#: PyTorch's names for dtypes in its casting errors ("result type Float can't be cast ...").
_TORCH_TYPE_NAMES = {"float16": "Half", "float32": "Float", "float64": "Double",
                     "int8": "Char", "int16": "Short", "int32": "Int", "int64": "Long",
                     "uint8": "Byte", "bool": "Bool"}


def _can_cast(source, target) -> bool:
    """PyTorch's ``can_cast`` for in-place results: never float to integer or bool, never
    an integer to bool."""
    if source.kind == "f":
        return target.kind == "f"
    return target.kind != "b" or source.kind == "b"


def _torch_type_name(dtype) -> str:
    return _TORCH_TYPE_NAMES.get(str(dtype), str(dtype))


def _broadcast_error(a_shape, b_shape, op: str, exc: Exception) -> Exception:
    """PyTorch's message for operands that do not broadcast, naming the rightmost clash and
    both shapes (NumPy's "operands could not be broadcast" never reaches the user). ``exc``
    (NumPy's error) is returned as is when the shapes do broadcast (it was about something
    else, e.g. integers to negative integer powers)."""
    ndim = max(len(a_shape), len(b_shape))
    a_full = (1,) * (ndim - len(a_shape)) + tuple(a_shape)
    b_full = (1,) * (ndim - len(b_shape)) + tuple(b_shape)
    clashes = [i for i, (m, n) in enumerate(zip(a_full, b_full)) if m != n and 1 not in (m, n)]
    if not clashes:
        return exc
    dim = clashes[-1]
    return RuntimeError(f"The size of tensor a ({a_full[dim]}) must match the size of tensor b "
                        f"({b_full[dim]}) at non-singleton dimension {dim} ({op}: shapes "
                        f"{tuple(a_shape)} and {tuple(b_shape)} cannot be broadcast together)")


def _axis_arg(axis, dim):
    """Accept PyTorch's ``dim=`` as an alias of ``axis=``."""
    if dim is not None:
        if axis is not None:
            raise TypeError("pass either axis= or dim=, not both")
        return dim
    return axis


def _normalize_axes(axis, ndim: int) -> tuple:
    """``axis`` (None, int or tuple) as a sorted tuple of non-negative axes. An empty tuple
    means all axes, as ``dim=()`` does in PyTorch's reductions (NumPy would reduce none)."""
    axes = () if axis is None else (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    if not axes:
        return tuple(range(ndim))
    out, n = [], max(ndim, 1)  # a 0-d tensor accepts axis 0 and -1, as in PyTorch
    for a in axes:
        if not -n <= a < n:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-n}, {n - 1}], but got {a})")
        if a % n in out:
            raise RuntimeError(f"dim {a % n} appears multiple times in the list of dims")
        out.append(a % n)
    return tuple(sorted(out))


def _require_float(tensor: "Tensor", op: str) -> None:
    if tensor.data.dtype.kind != "f":
        raise TypeError(f"{op}(): expected a floating point tensor, got dtype {tensor.dtype}; "
                        "convert it first with .float() or .double()")


_T = TypeVar("_T", bound="Tensor")  # a Tensor subclass (Parameter), for _wrap

class Tensor:
    """A multi-dimensional array with reverse-mode autograd.

    ``Tensor(data, requires_grad=False, dtype=None)``: ``data`` is a number, a (nested) list,
    a NumPy/CuPy array or a Tensor; it is copied onto the active backend. Python floats get the
    default dtype (``float32`` unless :func:`tinygrad_rnn.set_default_dtype` changed it),
    Python ints ``int64``; arrays keep their dtype unless ``dtype`` is given.
    """
    # ``_version`` (a VersionCounter) and ``_base`` (the tensor a view looks into) are left
    # unset on most tensors, and read with getattr(t, name, None): ops stay as cheap as before.
    __slots__ = ("data", "grad", "requires_grad", "_node", "_hooks", "_retains_grad",
                 "_version", "_base", "_consumed", "__weakref__")
    __array_priority__ = 1000  # so that ``ndarray * Tensor`` calls Tensor.__rmul__
    data: Any  # the backend's array
    _consumed: bool  # set (on tensors a view or an in-place record read) by the ops below

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if backend.is_array(data):
            array = backend.to_backend(data)
            array = array.astype(backend.as_dtype(dtype)) if dtype is not None else array.copy()
        else:
            array = backend.to_backend(backend.host_array(data, dtype))
        self.data = array
        self.grad: Tensor | None = None
        self._node: Node | None = None
        self._hooks: list | None = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def _wrap(cls: type[_T], array) -> _T:
        """A tensor around an existing backend array (no copy, no checks, no graph)."""
        t = object.__new__(cls)
        t.data = array
        t.grad = None
        t.requires_grad = False
        t._node = None
        t._hooks = None
        t._retains_grad = False
        return t

    @classmethod
    def _make(cls, array, parents: tuple, backward: Callable, op: str, *,
              saved: tuple | None = None, saves_output: bool = False,
              view_of: "Tensor | None" = None, ctx: tuple = ()) -> "Tensor":
        """The result of an op: records a graph node if grad mode is on and an input needs a
        gradient. This is the only place graph nodes are created.

        ``saved``: positions of the parents whose values ``backward`` reads (default: all),
        ``saves_output``: ``backward`` reads the result; both are checked against in-place
        changes before ``backward`` runs. ``view_of``: the result shares ``view_of``'s memory
        (a NumPy view), so it shares its version counter too. ``ctx``: extra arguments for
        ``backward`` (``backward(g, *ctx)``), for the ops whose backward is a shared function
        rather than a closure (see :class:`~tinygrad_rnn.autograd.Node`)."""
        if isinstance(array, backend.HOST_SCALAR):  # NumPy turns 0-d results into scalars
            array = backend.np.asarray(array)
        t = object.__new__(cls)
        t.data = array
        t.grad = None
        t._hooks = None
        t._retains_grad = False
        t.requires_grad = False
        t._node = None
        if _Mode.grad_enabled:
            for p in parents:  # a plain loop: this runs for every op, any() costs more
                if p.requires_grad:
                    t.requires_grad = True
                    t._node = Node(op, parents, backward, saved, saves_output, ctx)
                    for q in parents:  # read by a node: in-place changes can't be recorded
                        q._consumed = True
                    break
        if view_of is not None:
            t._become_view_of(view_of)
        if _Mode.anomaly:
            autograd.check_finite(array, op, "forward (output)")
        return t

    def _operand(self, other, exact_scalar: bool = False) -> "Tensor":
        """``other`` as a Tensor on the same backend as ``self`` (numbers take our dtype).
        ``exact_scalar``: a number beyond float16's range stays float32 next to a float16
        tensor (PyTorch multiplies and divides float16 by a float32 scalar, but adds a
        float16 one: ``x + 1e30`` is ``x + inf``, ``0 * 1e30`` is 0)."""
        if isinstance(other, Tensor):
            if type(other.data) is not type(self.data):
                raise RuntimeError(
                    f"Expected all tensors to be on the same backend, but found tensors on "
                    f"{backend.name_of(self.data)!r} and {backend.name_of(other.data)!r}; move "
                    f"one with .to({backend.name_of(self.data)!r})")
            return other
        if isinstance(other, numbers.Number) and not isinstance(other, bool):
            # A Python (or NumPy) number is weak: it takes our dtype if it fits our category.
            kind = self.data.dtype.kind
            if isinstance(other, numbers.Integral):
                dtype = self.data.dtype if kind != "b" else backend.np.dtype("int64")
            else:
                dtype = self.data.dtype if kind == "f" else backend.get_default_dtype()
            # (the ignore: numbers.Number declares no __abs__, though every number has one)
            if (exact_scalar and dtype == _FLOAT16
                    and _FLOAT16_MAX < abs(other) < float("inf")):  # type: ignore[arg-type]
                dtype = _FLOAT32
            return Tensor._wrap(self.xp.asarray(other, dtype=dtype))
        if backend.is_array(other) or isinstance(other, (list, tuple)):
            return Tensor(other)
        raise TypeError(f"unsupported operand type for a Tensor op: {type(other).__name__}")

    # ---------------------------------------------------------------------------- properties
    @property
    def xp(self):
        """The array module (numpy or cupy) that owns this tensor's data."""
        if type(self.data) is _ndarray:  # the common case first: every op asks
            return backend.np
        return backend.module_of(self.data)

    @property
    def shape(self) -> Shape:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (inputs, parameters)."""
        return self._node is None

    @property
    def grad_fn(self) -> Node | None:
        """The graph node that produced this tensor (None for leaves)."""
        return self._node

    @property
    def backend(self) -> str:
        """``"numpy"`` or ``"cupy"``: where this tensor's data lives."""
        return backend.name_of(self.data)

    def numel(self) -> int:
        return int(self.data.size)

    # ------------------------------------------------------------------- Python protocols
    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.data.size} values is "
                               "ambiguous; use .sum(), .max() or compare .item()")
        return bool(self.data)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        """The rows ``self[0], self[1], ...`` (Python would otherwise index a 0-d tensor
        until IndexError and make ``list(Tensor(1.0))`` an empty list)."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def _python_scalar(self):
        if self.data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars "
                             f"(this one has shape {self.shape})")
        return self.data.item()

    def __float__(self) -> float:
        return float(self._python_scalar())

    def __int__(self) -> int:
        return int(self._python_scalar())

    def __index__(self) -> int:
        """Integer tensors with one element can index Python sequences, as in PyTorch."""
        if self.data.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors of a single element can be converted to an "
                            f"index, got dtype {self.dtype}")
        return int(self._python_scalar())

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats the number of a 0-d tensor (as in PyTorch)."""
        if self.ndim == 0:
            return format(self.data.item(), spec)
        if spec:
            raise TypeError(f"unsupported format string passed to Tensor.__format__ (only 0-d "
                            f"tensors take a format spec; this one has shape {self.shape}: "
                            "use .item())")
        return str(self)

    def __repr__(self) -> str:
        body = backend.np.array2string(self.numpy(), separator=", ", precision=4,
                                       prefix="Tensor(")
        extras = []
        if self.data.dtype != backend.get_default_dtype() and self.data.dtype.kind == "f" \
                or self.data.dtype.kind != "f":
            extras.append(f"dtype={self.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.op}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.backend != "numpy":
            extras.append(f"backend='{self.backend}'")
        return "Tensor(" + body + "".join(", " + e for e in extras) + ")"

    # ------------------------------------------------------------------- conversion, autograd
    def numpy(self):
        """The data as a host NumPy array (copied from the GPU under CuPy)."""
        return backend.to_host(self.data)

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)`` (NumPy calls this): the host array, as PyTorch gives it. Without
        it NumPy builds an object array of 0-d Tensors, element by element."""
        array = self.numpy()
        return array if dtype is None else array.astype(dtype, copy=False)

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ShapeError(f"a Tensor with {self.data.size} elements cannot be converted to "
                             "Scalar; only one-element tensors can")
        return self.data.item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (no gradient flows through it). It shares memory
        and the version counter with ``self``, as in PyTorch: changing one in place changes
        the other, and is seen by the graphs that saved either."""
        t = Tensor._wrap(self.data)
        t._version = self._version_counter()
        return t

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set whether gradients are accumulated into this (leaf) tensor's ``.grad``."""
        if not self.is_leaf:
            raise RuntimeError("you can only change requires_grad flags of leaf tensors; use "
                               ".detach() to get a leaf from a computed tensor")
        if requires_grad and self.data.dtype.kind != "f":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, "
                               f"got dtype {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> "Tensor":
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on a Tensor that has requires_grad=False")
        self._retains_grad = not self.is_leaf
        return self

    def register_hook(self, hook: Callable[["Tensor"], "Tensor | None"]) -> "RemovableHandle":
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor
        replaces the gradient. Returns a handle: ``handle.remove()`` (or ``handle()``)
        removes the hook."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require "
                               "gradient")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return RemovableHandle(self._hooks, hook)

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor: accumulate d(self)/d(leaf) into each leaf's
        ``.grad``. ``gradient`` (PyTorch's name; same shape as self) is required unless self
        has one element."""
        autograd.backward(self, gradient, retain_graph)

    def _accumulate_grad(self, g, owned: bool = False) -> None:
        """Add ``g`` into ``.grad``. The first gradient is copied so ``.grad`` owns its memory,
        unless ``owned`` says that nothing else refers to ``g`` (a buffer the backward sweep
        allocated), in which case it is adopted as is."""
        if self.grad is None:
            if owned and g.dtype == self.data.dtype and g.shape == self.data.shape:
                self.grad = Tensor._wrap(g)
            else:
                self.grad = Tensor._wrap(self.xp.array(g, dtype=self.data.dtype, copy=True))
        else:
            self.grad.data += g

    def to(self, target=None, dtype=None) -> "Tensor":
        """This tensor on another backend (``"numpy"`` or ``"cupy"``) and/or with another
        dtype: ``x.to("cupy")``, ``x.to(tg.float64)``, ``x.to(dtype=tg.float16)``,
        ``x.to("numpy", tg.float64)``; strings name backends, as devices in PyTorch.
        Differentiable, like ``torch.Tensor.to``: the result of moving a leaf is not a leaf;
        move a model's parameters with ``Module.to``, which keeps them leaves."""
        target, dtype = to_arguments(target, dtype, "Tensor.to()")
        moved = self if target is None else self._to_backend(target)
        return moved if dtype is None else moved.astype(dtype)

    def _to_backend(self, target: str) -> "Tensor":
        target_module = backend.module_for(target, "Tensor.to()")
        if target_module is self.xp:
            return self
        source = self.backend

        def backward(g):
            return (backend.to_backend(g, source),)
        return Tensor._make(backend.to_backend(self.data, target), (self,), backward, "to",
                            saved=())

    def astype(self, dtype) -> "Tensor":
        """A copy with another dtype (differentiable for float dtypes)."""
        dtype = backend.as_dtype(dtype)
        if dtype == self.data.dtype:
            return self
        if dtype.kind != "f":  # integer/bool results carry no gradient, as in PyTorch
            return Tensor._wrap(self.data.astype(dtype))
        source = self.data.dtype

        def backward(g):
            return (g.astype(source),)
        return Tensor._make(self.data.astype(dtype), (self,), backward, "astype", saved=())

    def float(self) -> "Tensor":
        return self.astype("float32")

    def double(self) -> "Tensor":
        return self.astype("float64")

    # ------------------------------------------------------------------ elementwise binary ops
    # The backward of add, sub, mul, matmul, tanh, sigmoid, relu and getitem (the ops an
    # unrolled RNN records at every time step) is a static function of ``ctx`` rather than a
    # closure: see ``Node``. ``ctx`` holds the arrays and whether each input needs a gradient.
    def __add__(self, other) -> "Tensor":
        other = self._operand(other)
        a, b = self.data, other.data
        out = _broadcast(operator.add, a, b, "add")
        return Tensor._make(out, (self, other), Tensor._add_backward, "add", saved=(),
                            ctx=(a, b, self.requires_grad, other.requires_grad))

    @staticmethod
    def _add_backward(g, a, b, a_needs_grad: bool, b_needs_grad: bool) -> tuple:
        return (_reduce_to(g, a) if a_needs_grad else None,
                _reduce_to(g, b) if b_needs_grad else None)

    def __sub__(self, other) -> "Tensor":
        other = self._operand(other)
        a, b = self.data, other.data
        out = _broadcast(operator.sub, a, b, "sub")
        return Tensor._make(out, (self, other), Tensor._sub_backward, "sub", saved=(),
                            ctx=(a, b, self.requires_grad, other.requires_grad))

    @staticmethod
    def _sub_backward(g, a, b, a_needs_grad: bool, b_needs_grad: bool) -> tuple:
        return (_reduce_to(g, a) if a_needs_grad else None,
                _reduce_to(-g, b) if b_needs_grad else None)

    def __mul__(self, other) -> "Tensor":
        dtype = _FLOAT16 if not isinstance(other, Tensor) and self.data.dtype == _FLOAT16 else None
        other = self._operand(other, exact_scalar=True)
        a, b = self.data, other.data
        out = _broadcast(operator.mul, a, b, "mul", dtype)
        return Tensor._make(out, (self, other), Tensor._mul_backward, "mul",
                            saved=_cross_saved(self, other),
                            ctx=(a, b, self.requires_grad, other.requires_grad))

    @staticmethod
    def _mul_backward(g, a, b, a_needs_grad: bool, b_needs_grad: bool) -> tuple:
        return (_reduce_to(g * b, a) if a_needs_grad else None,
                _reduce_to(g * a, b) if b_needs_grad else None)

    def __truediv__(self, other) -> "Tensor":
        dtype = _FLOAT16 if not isinstance(other, Tensor) and self.data.dtype == _FLOAT16 else None
        other = self._operand(other, exact_scalar=True)
        a, b = self.data, other.data

        def backward(g):
            return (_reduce_to(g / b, a) if self.requires_grad else None,
                    _reduce_to(-g * (a / b / b), b) if other.requires_grad else None)
        if a.dtype.kind != "f" and b.dtype.kind != "f":  # int / int is a float, as in PyTorch
            a = a.astype(backend.get_default_dtype())
        out = _broadcast(operator.truediv, a, b, "div", dtype)
        return Tensor._make(out, (self, other), backward, "div",
                            saved=(0, 1) if other.requires_grad else (1,))

    def __pow__(self, exponent) -> "Tensor":
        if isinstance(exponent, numbers.Number) and not isinstance(exponent, bool):
            return self._pow_scalar(exponent)
        exponent = self._operand(exponent)
        a, b = self.data, exponent.data
        out = _broadcast(operator.pow, a, b, "pow")

        def backward(g):
            # As torch.pow at a = 0: d/da = 0 where b == 0 and d/db = 0 where b >= 0 (the
            # limits), instead of the formulas' 0 * inf = NaN.
            # The masked entries are computed from harmless stand-ins (exponent 1, log 1), so
            # no division-by-zero warning is raised for values that are thrown away.
            xp = self.xp
            ga = gb = None
            if self.requires_grad:
                b_is_0 = b == 0
                ga = _reduce_to(xp.where(b_is_0, 0, g * b * a ** xp.where(b_is_0, 1, b - 1)), a)
            if exponent.requires_grad:
                limit = (a == 0) & (b >= 0)
                gb = _reduce_to(xp.where(limit, 0, g * out * xp.log(xp.where(limit, 1, a))), b)
            return ga, gb
        return Tensor._make(out, (self, exponent), backward, "pow",
                            saves_output=exponent.requires_grad)

    def _pow_scalar(self, p) -> "Tensor":
        if isinstance(p, backend.HOST_SCALAR):  # a NumPy scalar is weak, like a Python number
            p = p.item()
        a = self.data
        if a.dtype.kind != "f" and isinstance(p, float):  # int ** 0.5 is a float32 tensor
            a = a.astype(backend.get_default_dtype())
        elif a.dtype.kind in "iu" and p < 0:
            raise RuntimeError("Integers to negative integer powers are not allowed.")

        def backward(g):
            if p == 0:  # d/dx x**0 = 0, also at x = 0 (where a ** -1 is inf)
                return (self.xp.zeros_like(g),)
            return (g * (p * _power(self.xp, a, p - 1)),)
        return Tensor._make(_power(self.xp, a, p), (self,), backward, f"pow({p:g})")

    def __rpow__(self, base) -> "Tensor":
        """``base ** self`` for a number or array ``base``."""
        return self._operand(base) ** self

    def __radd__(self, other) -> "Tensor":
        return self._operand(other) + self

    def __rsub__(self, other) -> "Tensor":
        return self._operand(other) - self

    def __rmul__(self, other) -> "Tensor":
        return self * other if isinstance(other, numbers.Number) else self._operand(other) * self

    def __rtruediv__(self, other) -> "Tensor":
        return self._operand(other) / self

    def __neg__(self) -> "Tensor":
        return Tensor._make(-self.data, (self,), lambda g: (-g,), "neg", saved=())

    # ------------------------------------------------------------------ method forms
    # PyTorch's method names for the operators: ``x.add(y)`` is ``x + y``, ``x.pow(2)`` is
    # ``x ** 2``, with the same graph; ``alpha`` scales ``other`` first, as in PyTorch.
    def add(self, other, *, alpha=1) -> "Tensor":
        return self + _scaled(other, alpha)

    def sub(self, other, *, alpha=1) -> "Tensor":
        return self - _scaled(other, alpha)

    def mul(self, other) -> "Tensor":
        return self * other

    def div(self, other) -> "Tensor":
        return self / other

    def pow(self, exponent) -> "Tensor":
        return self ** exponent

    def neg(self) -> "Tensor":
        return -self

    def mm(self, other) -> "Tensor":
        """``self @ other`` for two matrices only, as ``torch.mm``."""
        for name, t in (("self", self), ("mat2", other)):
            if getattr(t, "ndim", None) != 2:
                raise RuntimeError(f"{name} must be a matrix")
        return self @ other

    def contiguous(self) -> "Tensor":
        """``self`` if its memory is one C-ordered block, else a copy (in the graph), as in
        PyTorch."""
        return self if self.data.flags.c_contiguous else self.clone()

    # --------------------------------------------------------------------------- comparisons
    # Elementwise, with broadcasting and dtype promotion like the arithmetic ops; the result
    # is a bool tensor that records no graph (as in PyTorch). Defining ``__eq__`` would make
    # Tensors unhashable; they stay hashable *by identity* (``__hash__`` below), so sets and
    # dicts of parameters keep working. Package code compares tensors with ``is``/``id()``.
    def _compare(self, other, fn, op: str):
        try:
            other = self._operand(other)
        except TypeError:
            return NotImplemented  # ``t == None`` is False, ``t < None`` a TypeError
        return Tensor._wrap(self.xp.asarray(_broadcast(fn, self.data, other.data, op)))

    def __eq__(self, other):
        return self._compare(other, operator.eq, "eq")

    def __ne__(self, other):
        return self._compare(other, operator.ne, "ne")

    def __lt__(self, other):
        return self._compare(other, operator.lt, "lt")

    def __le__(self, other):
        return self._compare(other, operator.le, "le")

    def __gt__(self, other):
        return self._compare(other, operator.gt, "gt")

    def __ge__(self, other):
        return self._compare(other, operator.ge, "ge")

    # PyTorch's method names for the comparisons.
    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    __hash__ = object.__hash__

    # ------------------------------------------------------------------------ in-place ops
    # ``x += y``, ``x.add_(y)``, ``x[i] = v``, ... change x's memory (and that of the views
    # that share it) and bump its version counter, with PyTorch's rules:
    #
    # * under ``no_grad()``, or when no tensor involved requires a gradient, they just run
    #   (``with no_grad(): p -= lr * p.grad`` is how parameters are updated by hand);
    # * on a leaf that requires grad, with grad mode on, they raise PyTorch's error;
    # * on a tensor that takes part in a graph (or when the value written requires grad),
    #   the op is recorded in the graph, as PyTorch does: the tensor's history becomes
    #   "what it was" → op (:meth:`_record_inplace`), so ``loss += step_loss`` and
    #   ``outputs[t] = h`` work. A graph node points at its input *tensors*, so this is only
    #   possible while no recorded op has read the tensor yet (``_consumed``); otherwise
    #   rewriting its history would reroute the gradients of those ops, and the op raises a
    #   clear error asking for the out-of-place form (``y = y + x``).
    #
    # Views (basic indexing, reshape, transpose, detach) share memory with their base as in
    # PyTorch, and therefore share its version counter: a graph that saved the base notices
    # an in-place change made through a view, and the other way round.
    def __iadd__(self, other) -> "Tensor":
        return self.add_(other)

    def __isub__(self, other) -> "Tensor":
        return self.sub_(other)

    def __imul__(self, other) -> "Tensor":
        return self.mul_(other)

    def __itruediv__(self, other) -> "Tensor":
        return self.div_(other)

    def add_(self, other, *, alpha=1) -> "Tensor":
        return self._inplace_binary(self.xp.add, _scaled(other, alpha), "add_")

    def sub_(self, other, *, alpha=1) -> "Tensor":
        return self._inplace_binary(self.xp.subtract, _scaled(other, alpha), "sub_")

    def mul_(self, other) -> "Tensor":
        return self._inplace_binary(self.xp.multiply, other, "mul_")

    def div_(self, other) -> "Tensor":
        return self._inplace_binary(self.xp.true_divide, other, "div_")

    def clamp_(self, min=None, max=None) -> "Tensor":
        """Clamp to ``[min, max]`` in place (see :meth:`clip`)."""
        self._check_inplace("clamp_")
        a, min, max = self._clip_arguments(min, max)
        self._check_cast(a.dtype, "clamp_")
        self.xp.clip(self.data, min, max, out=self.data)
        return self._bump_version("clamp_")

    clip_ = clamp_

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def fill_(self, value) -> "Tensor":
        """Set every element to ``value`` (a number or a 0-d tensor), cast to our dtype."""
        op = "fill_" if not isinstance(value, numbers.Number) or value != 0 else "zero_"
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise ShapeError(f"fill_ only supports 0-dimension value tensor but got tensor "
                                 f"with {value.ndim} dimensions.")
            record = self._check_inplace(op, value)
            operands: tuple = (value,)
            value = value.data
        else:
            record, operands = self._check_inplace(op), ()
        try:
            self.data[...] = value
        except (ValueError, OverflowError):  # NaN or 1e30 into an integer tensor
            raise RuntimeError(f"value cannot be converted to type {self.dtype} without "
                               f"overflow ({op}({value}))") from None
        self._bump_version(op)
        if record:  # the old values are gone (a zero gradient, as in PyTorch); a 0-d value
            xp = self.xp  # gets the sum of g
            self._record_inplace(op, operands, lambda g: (xp.zeros_like(g),) + tuple(
                g.sum().astype(v.dtype) for v in operands))
        return self

    def copy_(self, src) -> "Tensor":
        """Copy ``src`` (broadcast to our shape, cast to our dtype) into this tensor."""
        src = self._operand(src)
        record = self._check_inplace("copy_", src)
        try:
            fits = backend.np.broadcast_shapes(src.shape, self.shape) == self.shape
        except ValueError:
            fits = False
        if not fits:  # NumPy would also drop leading 1s of src: (1, 3) into (3,)
            raise ShapeError(f"output with shape {list(self.shape)} doesn't match the "
                             f"broadcast shape {list(src.shape)} (copy_: the source must "
                             "broadcast to the shape of the tensor copied into)")
        self._assign(..., src.data, "copy_")
        self._bump_version("copy_")
        if record:  # the old values are overwritten (a zero gradient): all of g goes to src
            xp = self.xp
            self._record_inplace("copy_", (src,),
                                 lambda g: (xp.zeros_like(g), _reduce_to(g, src.data)))
        return self

    def __setitem__(self, index, value) -> None:
        """``x[index] = value``: the indexing of :meth:`__getitem__`; ``value`` is
        broadcast to the indexed shape and cast to our dtype."""
        value = self._operand(value)
        index, advanced = _backend_index(_list_as_tuple(index), self.xp)
        if advanced:
            index = _integers_first(index, self)
        self._indexed(index)  # a bad index is reported first, as in PyTorch
        record = self._check_inplace("setitem", value)
        values, target_ndim = value.data, self.data[index].ndim
        while values.ndim > target_ndim and values.shape[0] == 1:  # leading 1s go, as in PyTorch
            values = values[0]
        self._assign(index, values, "setitem")
        self._bump_version("setitem")
        if record:
            self._record_inplace("setitem", (value,), _setitem_backward(index, value.data))

    def _inplace_binary(self, ufunc, other, op: str) -> "Tensor":
        """``self = self <ufunc> other`` in place, with the out-of-place op's result dtype
        (PyTorch computes in that dtype and casts back) and broadcasting to our shape only."""
        if not isinstance(other, Tensor):
            # An array is used at once and not kept, so it need not be copied as _operand does.
            if backend.is_array(other):
                other = Tensor._wrap(backend.to_backend(other, self.backend))
            else:
                other = self._operand(other)
        record = self._check_inplace(op, other)
        other = self._operand(other)
        a, b = self.data, other.data
        dtype = _result_dtype(a, b)
        if op == "div_" and dtype.kind != "f":  # int / int is a float, as in PyTorch
            dtype = backend.get_default_dtype()
        self._check_cast(dtype, op)
        try:
            shape = backend.np.broadcast_shapes(a.shape, b.shape)
        except ValueError as exc:
            raise _broadcast_error(a.shape, b.shape, op, exc) from None
        if shape != a.shape:
            raise ShapeError(f"output with shape {list(a.shape)} doesn't match the broadcast "
                             f"shape {list(shape)} ({op}: an in-place op cannot change the "
                             "shape of the tensor it writes to)")
        _check_overlap(a, b, op)
        before = None
        if record and op in ("mul_", "div_"):
            if other is self:  # x *= x: PyTorch's backward finds x changed, and refuses
                raise RuntimeError(_INPLACE_IN_GRAPH_MESSAGE.format(op=op, what="this tensor"))
            if self.xp.may_share_memory(a, b):  # x *= x.detach(): keep the factor's old values
                b = b.copy()
            if other.requires_grad:  # its gradient reads our old values
                before = a.copy()
        if dtype == a.dtype == b.dtype and dtype != _FLOAT16:
            ufunc(a, b, out=a)  # the common case (an optimizer step): no temporary array
        else:  # e.g. float16 += float32 tensor: compute as the out-of-place op, store back
            a[...] = _broadcast(ufunc, a, b, op)
        self._bump_version(op)
        if record:
            # The backward reads ``other`` (then changing it later must be refused): div_'s
            # always, mul_'s only for the gradient of our old values, if they need one (as
            # PyTorch saves it).
            reads_other = op == "div_" or op == "mul_" and self.requires_grad
            self._record_inplace(op, (other,), _inplace_binary_backward(op, a, b, before),
                                 saved=(1,) if reads_other else ())
        return self

    def _indexed(self, index, shown=None):
        """``self.data[index]``, with NumPy's IndexError reworded to name our shape (and the
        index as the user wrote it, ``shown``)."""
        try:
            return self.data[index]
        except IndexError as exc:
            shown = index if shown is None else shown
            raise IndexError(f"index {_describe_index(shown)} is invalid for a tensor of shape "
                             f"{self.shape}: {exc}") from None

    def _check_cast(self, result_dtype, op: str) -> None:
        if not _can_cast(result_dtype, self.data.dtype):
            raise RuntimeError(f"result type {_torch_type_name(result_dtype)} can't be cast to "
                               f"the desired output type {_torch_type_name(self.dtype)} ({op})")

    def _assign(self, index, values, op: str) -> None:
        # A value that overlaps the memory it is written to (x[1] = x[0] on views) is read
        # first, as NumPy does; PyTorch may refuse some of these. No partial overwrite.
        try:
            self.data[index] = values
        except ValueError:
            target = self.data[index].shape if index is not ... else self.shape
            raise ShapeError(f"shape mismatch: value tensor of shape {list(values.shape)} "
                             f"cannot be broadcast to indexing result of shape {list(target)} "
                             f"({op})") from None

    def _check_inplace(self, op: str, *operands: "Tensor") -> bool:
        """Raise if an in-place ``op`` on this tensor would corrupt a graph (see above);
        return whether the op must be recorded in the graph (:meth:`_record_inplace`)."""
        a = self.data  # a view made by expand(): elements sharing memory, read-only
        if not getattr(a.flags, "writeable", True) or (0 in a.strides and any(
                stride == 0 and n > 1 for stride, n in zip(a.strides, a.shape))):
            raise RuntimeError("unsupported operation: more than one element of the written-"
                               "to tensor refers to a single memory location. Please clone() "
                               f"the tensor before performing the operation ({op} on a view "
                               "made by expand(), which is read-only here)")
        if not _Mode.grad_enabled:
            return False
        base = getattr(self, "_base", None)
        if self.requires_grad:
            if self._node is None:
                raise RuntimeError("a leaf Variable that requires grad is being used in an "
                                   f"in-place operation. ({op}: wrap the update in no_grad())")
            if base is not None and base.requires_grad and base._node is None:
                raise RuntimeError("a view of a leaf Variable that requires grad is being "
                                   f"used in an in-place operation. ({op}: wrap the update in "
                                   "no_grad())")
            self._check_recordable(op, "this tensor")
            return True
        if base is not None and base.requires_grad:
            raise RuntimeError("A view was created in no_grad mode and is being modified "
                               f"inplace with grad mode enabled ({op}). Modify the base "
                               "tensor under no_grad() instead, or take the view outside "
                               "no_grad()")
        for other in operands:
            if isinstance(other, Tensor) and other.requires_grad:
                self._check_recordable(op, "the value written into this tensor")
                return True
        return False

    def _check_recordable(self, op: str, what: str) -> None:
        """An in-place op can join the graph only if no recorded op has read this tensor
        (nor a view of it), the tensor is not itself a view, and no hook watches it."""
        if (op not in _RECORDABLE_INPLACE or getattr(self, "_consumed", False)
                or getattr(self, "_base", None) is not None or self._hooks
                or self._retains_grad):
            raise RuntimeError(_INPLACE_IN_GRAPH_MESSAGE.format(op=op, what=what))

    def _record_inplace(self, op: str, operands: tuple, backward: Callable,
                        saved: tuple = ()) -> "Tensor":
        """Make the in-place ``op`` just done part of the graph: this tensor's history
        becomes ``before → op``, where ``before`` is a new graph vertex that takes over the
        history it had. ``backward(g)`` returns the gradients of ``(before, *operands)``;
        ``saved`` lists the positions among those whose values it reads (checked against
        later in-place changes, as for every op)."""
        before = Tensor._wrap(self.data)
        before.requires_grad, before._node, before._consumed = self.requires_grad, self._node, True
        # ``x += x``, ``x[0] = x``: the operand is this tensor as it was, i.e. ``before``
        operands = tuple(before if operand is self else operand for operand in operands)
        for operand in operands:
            operand._consumed = True
        self._node = Node(op, (before,) + operands, backward, saved, False)
        self.requires_grad = True
        return self

    def _version_counter(self) -> VersionCounter:
        """This tensor's version counter, created on first use."""
        counter = getattr(self, "_version", None)
        if counter is None:
            counter = self._version = VersionCounter()
            node = self._node
            if node is not None and node.saves_output:  # backward reads this tensor's values
                node.out_version = counter
        return counter

    def _bump_version(self, op: str) -> "Tensor":
        self._version_counter().bump(op)
        return self

    def _become_view_of(self, base: "Tensor") -> None:
        """Share ``base``'s memory bookkeeping: its version counter, and its own base (the
        tensor that owns the memory) for the in-place rules on views."""
        root = getattr(base, "_base", None)
        self._base = base if root is None else root
        self._version = base._version_counter()
        base._consumed = True  # the view reads its memory: no in-place op may be recorded

    # ------------------------------------------------------------------------------- matmul
    def matmul(self, other) -> "Tensor":
        """Matrix product with NumPy's rules: 1-D operands are promoted to a row (left) or a
        column (right) and the extra axis removed; leading (batch) axes broadcast. Both
        tensors must have one dtype, as in PyTorch; an array or list takes ours."""
        other = self._operand(other) if isinstance(other, Tensor) else \
            self._operand(Tensor(other, dtype=self.dtype))
        a, b = self.data, other.data
        if a.ndim == 0 or b.ndim == 0:
            raise RuntimeError("matmul: both arguments must be at least 1-dimensional, got "
                               f"shapes {self.shape} and {other.shape}")
        if a.dtype != b.dtype:  # as in PyTorch; NumPy would promote silently
            raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {a.dtype} "
                               f"!= {b.dtype} (matmul: convert one with .float() or .double())")
        if a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
            raise RuntimeError(
                f"mat1 and mat2 shapes cannot be multiplied ({'x'.join(map(str, a.shape))} "
                f"and {'x'.join(map(str, b.shape))})")
        if a.ndim > 2 and b.ndim == 2:
            return self._rows_matmul(other)
        try:
            out = a @ autograd.reused_layout(b)
        except ValueError:  # batch (leading) axes that do not broadcast
            raise RuntimeError(f"matmul: the batch dimensions {a.shape[:-2]} and {b.shape[:-2]} "
                               f"of shapes {self.shape} and {other.shape} cannot be broadcast "
                               "together") from None

        return Tensor._make(out, (self, other), Tensor._matmul_backward, "matmul",
                            saved=_cross_saved(self, other),
                            ctx=(a, b, self.requires_grad, other.requires_grad))

    __matmul__ = matmul

    @staticmethod
    def _matmul_backward(g, a, b, a_needs_grad: bool, b_needs_grad: bool) -> tuple:
        if a.ndim == 2 and b.ndim == 2:  # the common case (a layer, an RNN step) first
            return (_reduce_to(g @ autograd.reused_layout(b, transpose=True), a)
                    if a_needs_grad else None,
                    _reduce_to(a.T @ g, b) if b_needs_grad else None)
        # Work with 2-D+ views: a row for a 1-D left operand, a column for a 1-D right one.
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        batch = backend.np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        g2 = g.reshape(batch + (a2.shape[-2], b2.shape[-1]))
        ga = gb = None
        if a_needs_grad:
            ga = _reduce_to(g2 @ b2.swapaxes(-1, -2), a2).reshape(a.shape)
        if b_needs_grad:
            gb = _reduce_to(a2.swapaxes(-1, -2) @ g2, b2).reshape(b.shape)
        return ga, gb

    def _rows_matmul(self, other) -> "Tensor":
        """``a @ b`` for a stack of rows ``a`` ``(..., k)`` and a matrix ``b`` ``(k, n)`` (a
        Linear layer on a sequence), as one 2-D product over all rows, forward and backward::

            out = a b,     ∂L/∂a = g bᵀ,     ∂L/∂b = Σ_rows aᵀ g

        The rows are taken in the order ``a`` lies in memory, so that the (N, T, H) transposed
        view a batch_first RNN returns is not copied; the result has the same layout.
        """
        a, b = self.data, other.data
        perm = _memory_order(a)
        inverse = tuple(sorted(range(a.ndim), key=perm.__getitem__))
        a_perm = a.transpose(perm)
        rows = a_perm.reshape(-1, a.shape[-1])       # a view unless a is laid out oddly
        out = (rows @ b).reshape(a_perm.shape[:-1] + (b.shape[1],)).transpose(inverse)

        def backward(g):
            g_rows = g.transpose(perm).reshape(-1, b.shape[1])
            ga = gb = None
            if self.requires_grad:
                ga = _reduce_to((g_rows @ b.T).reshape(a_perm.shape).transpose(inverse), a)
            if other.requires_grad:
                gb = _reduce_to(rows.T @ g_rows, b)
            return ga, gb
        return Tensor._make(out, (self, other), backward, "matmul",
                            saved=_cross_saved(self, other))

    def __rmatmul__(self, other) -> "Tensor":
        return Tensor(other, dtype=self.dtype).matmul(self)  # other: an array or a list

    # ---------------------------------------------------------------------------- reductions
    def sum(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> "Tensor":
        """Sum over ``axis`` (None: all; int or tuple). ``dim=``/``keepdim=`` are accepted as
        in PyTorch."""
        keepdims = _keepdim_arg(keepdims, keepdim)
        axes = _normalize_axes(_axis_arg(axis, dim), self.ndim)
        axes = axes if self.ndim else ()  # a 0-d tensor reduces over no axis
        a_shape = self.data.shape

        def backward(g):
            if not keepdims:
                g = g.reshape(_kept_shape(a_shape, axes))
            return (self.xp.broadcast_to(g, a_shape),)
        return Tensor._make(self._sum_array(axes, keepdims), (self,), backward, "sum", saved=())

    def _sum_array(self, axes: tuple, keepdims: bool, scale: builtins.float = 1.0):
        """``data.sum(axes) * scale`` as an array. float16 is summed (and scaled) in float32
        and cast back, as PyTorch does: 100,000 halves summed in float16 would reach inf."""
        a = self.data
        if a.dtype == backend.np.float16:
            total = a.sum(axis=axes, keepdims=keepdims, dtype=backend.np.float32)
            return self.xp.asarray(total * backend.np.float32(scale)).astype(a.dtype)
        total = self.xp.asarray(a.sum(axis=axes, keepdims=keepdims))
        return total if scale == 1.0 else self.xp.asarray(total * scale)

    def mean(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> "Tensor":
        """Mean over ``axis`` (None: all elements)."""
        keepdims = _keepdim_arg(keepdims, keepdim)
        _require_float(self, "mean")
        axes = _normalize_axes(_axis_arg(axis, dim), self.ndim)
        axes = axes if self.ndim else ()  # a 0-d tensor reduces over no axis
        count = 1
        for ax in axes:
            count *= self.data.shape[ax]
        # The mean of no elements is NaN (0/0), as in NumPy and PyTorch, never a silent 0.
        scale = 1.0 / count if count else float("nan")
        a_shape = self.data.shape

        def backward(g):
            if not keepdims:
                g = g.reshape(_kept_shape(a_shape, axes))
            return (self.xp.broadcast_to(g * scale, a_shape),)
        return Tensor._make(self._sum_array(axes, keepdims, scale), (self,), backward, "mean",
                            saved=())

    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """PyTorch's three ``max``: ``x.max()`` the largest value (tied maxima share the
        gradient equally); ``x.max(dim)`` the named tuple ``(values, indices)`` along ``dim``
        (the gradient goes to the index returned); ``x.max(other)`` is
        :meth:`maximum`. The NumPy spelling ``x.max(axis=..., keepdims=...)`` gives the values
        alone, like :meth:`amax`."""
        return self._max_or_min("max", dim, keepdim, axis, keepdims)

    def argmax(self, axis=None, keepdim: bool = False, *, dim=None, keepdims=None) -> "Tensor":
        """Indices of the largest values (not differentiable); the index into the flattened
        tensor when no ``dim`` is given, as in PyTorch."""
        return self._arg_extreme("argmax", _axis_arg(axis, dim), _keepdim_arg(keepdim, keepdims))

    # ---------------------------------------------------------------------- elementwise unary
    def exp(self) -> "Tensor":
        _require_float(self, "exp")
        out = self.xp.exp(self.data)
        return Tensor._make(out, (self,), lambda g: (g * out,), "exp", saved=(),
                            saves_output=True)

    def log(self) -> "Tensor":
        _require_float(self, "log")
        a = self.data
        return Tensor._make(self.xp.log(a), (self,), lambda g: (g / a,), "log")

    def tanh(self) -> "Tensor":
        _require_float(self, "tanh")
        out = self.xp.tanh(self.data)
        return Tensor._make(out, (self,), Tensor._tanh_backward, "tanh", saved=(),
                            saves_output=True, ctx=(out,))

    @staticmethod
    def _tanh_backward(g, out) -> tuple:
        return (g * (1 - out * out),)

    def sigmoid(self) -> "Tensor":
        _require_float(self, "sigmoid")
        # 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) for x < 0: e = e^-|x| never overflows, and
        # tiny results keep their relative precision (log(sigmoid(-40)) is -40, not -inf).
        x = self.data
        e = self.xp.exp(-self.xp.abs(x))
        d = 1 + e
        out = self.xp.where(x >= 0, 1 / d, e / d)
        return Tensor._make(out, (self,), Tensor._sigmoid_backward, "sigmoid", saved=(),
                            saves_output=True, ctx=(out,))

    @staticmethod
    def _sigmoid_backward(g, out) -> tuple:
        return (g * out * (1 - out),)

    def relu(self) -> "Tensor":
        # As PyTorch's threshold_backward: the gradient is 0 where the output is <= 0 and
        # passes unchanged elsewhere, NaN outputs included. ``where`` rather than a product
        # with the mask, so an inf gradient reaching an inactive unit gives 0, not inf*0=NaN.
        out = self.xp.maximum(self.data, 0)
        return Tensor._make(out, (self,), Tensor._relu_backward, "relu", saved=(),
                            saves_output=True, ctx=(out,))

    @staticmethod
    def _relu_backward(g, out) -> tuple:
        return (backend.module_of(out).where(out <= 0, 0, g),)

    def clip(self, min=None, max=None) -> "Tensor":
        """Clamp to ``[min, max]``; the gradient passes where ``min <= x <= max`` (so not at
        NaN inputs) and is 0 elsewhere, as in PyTorch. An integer tensor clipped to float
        bounds becomes a float tensor, as in PyTorch."""
        a, min, max = self._clip_arguments(min, max)
        inside = self.xp.ones(a.shape, dtype=bool)
        if min is not None:
            inside &= a >= min
        if max is not None:
            inside &= a <= max
        return Tensor._make(self.xp.clip(a, min, max), (self,),
                            lambda g: (self.xp.where(inside, g, 0),), "clip")

    def _clip_arguments(self, min, max) -> tuple:
        """The data in the dtype of the result, and the bounds as Python numbers (a NumPy
        scalar bound would be "strong" and turn a float32 result into float64)."""
        if min is None and max is None:
            raise ValueError("clip: at least one of min and max must be given")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            raise TypeError("clamp(): min and max must be numbers here, got a Tensor; pass "
                            "bound.item() for a 0-d bound, or use torch.where(x < low, low, x) "
                            "for element-wise bounds")
        min, max = (b.item() if isinstance(b, backend.HOST_SCALAR) else b for b in (min, max))
        a = self.data
        if a.dtype.kind != "f" and any(isinstance(b, float) for b in (min, max)):
            a = a.astype(backend.get_default_dtype())
        return a, min, max

    clamp = clip

    # ------------------------------------------------------------------------- shape changes
    def reshape(self, *shape) -> "Tensor":
        """A tensor with the same data and a new shape (one entry may be -1)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        a_shape = self.data.shape
        try:
            out = self.data.reshape(shape)
        except ValueError:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size "
                               f"{self.data.size}") from None
        return Tensor._make(out, (self,), lambda g: (g.reshape(a_shape),), "reshape", saved=(),
                            view_of=self if _shares_memory(out, self.data) else None)

    view = reshape

    def transpose(self, dim0: int = -2, dim1: int = -1) -> "Tensor":
        """Swap two axes (PyTorch's ``transpose(dim0, dim1)``)."""
        if self.ndim < 2 and (dim0, dim1) == (-2, -1):
            return self  # the default call is the matrix transpose, a no-op on vectors (.t())
        (dim0,), (dim1,) = _normalize_axes(dim0, self.ndim), _normalize_axes(dim1, self.ndim)
        if self.ndim < 2:
            return self
        return Tensor._make(self.data.swapaxes(dim0, dim1), (self,),
                            lambda g: (g.swapaxes(dim0, dim1),), "transpose", saved=(),
                            view_of=self)

    def permute(self, *dims) -> "Tensor":
        """Reorder the axes: ``out.shape[i] == self.shape[dims[i]]``."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        dims = tuple(_normalize_axes(d, self.ndim)[0] for d in dims)  # IndexError if out of range
        if sorted(dims) != list(range(self.ndim)):
            raise RuntimeError(f"permute(): dims {dims} are not a permutation of the "
                               f"{self.ndim} axes of a tensor of shape {self.shape}")
        inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))  # argsort(dims)
        return Tensor._make(self.data.transpose(dims), (self,),
                            lambda g: (g.transpose(inverse),), "permute", saved=(), view_of=self)

    @property
    def T(self) -> "Tensor":
        """All axes reversed (the matrix transpose for 2-D tensors)."""
        # Reversing the axes is valid for any shape and is its own inverse: no checks needed,
        # and ``weight.T`` runs in every Linear forward.
        return Tensor._make(self.data.T, (self,), lambda g: (g.T,), "permute", saved=(),
                            view_of=self)

    def unsqueeze(self, dim: int) -> "Tensor":
        """Insert an axis of size 1 at ``dim``."""
        (dim,) = _normalize_axes(dim, self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim: int | tuple[int, ...] | list[int] | None = None) -> "Tensor":
        """Remove axes of size 1 (only those of ``dim``, an int or a tuple, if given)."""
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        if isinstance(dim, (tuple, list)) and not dim:  # squeeze(()) squeezes nothing
            return self
        axes = _normalize_axes(dim, self.ndim)
        shape = tuple(n for i, n in enumerate(self.shape) if n != 1 or i not in axes)
        return self if shape == self.shape else self.reshape(shape)

    def flip(self, *args, dims=None, axis=None) -> "Tensor":
        """Reverse the order of elements along each of ``dims``, as PyTorch's ``x.flip(0)``,
        ``x.flip(0, 1)``, ``x.flip([0, 1])`` or ``x.flip(dims=(0,))`` (``axis=`` is NumPy's
        spelling)."""
        axes = _normalize_axes(_dims_arg(args, dims, axis, "flip"), self.ndim)
        if self.ndim == 0:  # nothing to reverse
            return Tensor._make(self.data.copy(), (self,), lambda g: (g,), "flip", saved=())
        # A copy, as in PyTorch: NumPy's flip is a view, which an in-place op on the result
        # would write through into self.
        return Tensor._make(self.xp.flip(self.data, axes).copy(), (self,),
                            lambda g: (self.xp.flip(g, axes),), "flip", saved=())

    # ------------------------------------------------------------------------------ indexing
    def __getitem__(self, index) -> "Tensor":
        """PyTorch's indexing: ints, slices, ``None``, ``...``, integer/boolean arrays or
        tensors, as NumPy reads them except where PyTorch differs: integers go first
        (``x[0, :, [1, 2]]`` is ``x[0][:, [1, 2]]``), a short list of index lists is a tuple
        (``x[[rows, cols]]``), and a uint8 index is refused. The gradient is scattered back;
        repeated integer indices accumulate."""
        index, advanced = _backend_index(_list_as_tuple(index), self.xp)
        if advanced:
            index = _integers_first(index, self)
        # Basic indexing gives a view, as in PyTorch; the appended ``...`` makes an
        # all-integer index give a 0-d view rather than a NumPy scalar (a copy).
        out = self._indexed(index if advanced else _with_ellipsis(index), shown=index)
        return Tensor._make(self.xp.asarray(out), (self,), Tensor._getitem_backward, "getitem",
                            saved=(), view_of=None if advanced else self, ctx=(index, advanced))

    @staticmethod
    def _getitem_backward(g, index, advanced: bool) -> tuple:
        # g at ``index``, zero elsewhere: autograd adds it into self's gradient in place.
        return (IndexedGrad(index, g, advanced),)

    # ------------------------------------------------------------------- joining tensors
    @staticmethod
    def cat(tensors: Sequence["Tensor"], axis: int = 0, *, dim=None) -> "Tensor":
        """Join tensors along an existing axis."""
        tensors = _same_backend(tensors, "cat")
        axis = axis if dim is None else dim
        _normalize_axes(axis, tensors[0].ndim)  # IndexError if out of range
        xp = tensors[0].xp
        try:
            out = xp.concatenate(_promoted(tensors), axis=axis)
        except ValueError:
            raise RuntimeError(f"cat(): sizes of tensors must match except in dimension "
                               f"{axis}; got shapes {[t.shape for t in tensors]}") from None
        ends = backend.np.cumsum([t.shape[axis] for t in tensors])
        ax = axis % out.ndim

        def backward(g):
            starts = [0] + list(ends[:-1])
            return tuple(_reduce_to(g[(slice(None),) * ax + (slice(int(s), int(e)),)], t.data)
                         for t, s, e in zip(tensors, starts, ends))
        return Tensor._make(out, tuple(tensors), backward, "cat", saved=())

    @staticmethod
    def stack(tensors: Sequence["Tensor"], axis: int = 0, *, dim=None) -> "Tensor":
        """Join same-shaped tensors along a new axis."""
        tensors = _same_backend(tensors, "stack")
        axis = axis if dim is None else dim
        shapes = {t.shape for t in tensors}
        if len(shapes) != 1:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got shapes "
                               f"{[t.shape for t in tensors]}")
        _normalize_axes(axis, tensors[0].ndim + 1)  # IndexError if out of range
        xp = tensors[0].xp
        out = xp.stack(_promoted(tensors), axis=axis)
        ax = axis % out.ndim

        def backward(g):
            return tuple(_reduce_to(g[(slice(None),) * ax + (i,)], t.data)
                         for i, t in enumerate(tensors))
        return Tensor._make(out, tuple(tensors), backward, "stack", saved=())

    # ================================================================ PyTorch's everyday ops
    # The vocabulary a PyTorch user reaches for first (issue 11), each with PyTorch's names,
    # defaults and gradients, including at kinks and ties (|x| at 0, sqrt at 0, tied maxima).
    # Integer inputs to the float functions (sqrt, sin, ...) are promoted to the default float
    # dtype first, as PyTorch does.

    def long(self) -> "Tensor":
        """As int64 (class indices; no gradient flows through an integer tensor)."""
        return self.astype("int64")

    def half(self) -> "Tensor":
        return self.astype("float16")

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    # ------------------------------------------------------------------ elementwise math
    def _float_data(self):
        """``self.data``, integers and bools cast to the default float dtype."""
        a = self.data
        return a if a.dtype.kind == "f" else a.astype(backend.get_default_dtype())

    def abs(self) -> "Tensor":
        """``|x|``; the gradient is ``sign(x)``, 0 at 0 (PyTorch's choice of subgradient)."""
        a = self.data
        return Tensor._make(self.xp.abs(a), (self,), lambda g: (g * self.xp.sign(a),), "abs")

    __abs__ = abs

    def sqrt(self) -> "Tensor":
        """``√x``; d/dx = 1 / (2√x): ``inf`` at 0, as in PyTorch."""
        out = self.xp.sqrt(self._float_data())
        return Tensor._make(out, (self,), lambda g: (g / (2 * out),), "sqrt", saved=(),
                            saves_output=True)

    def rsqrt(self) -> "Tensor":
        """``1 / √x``; d/dx = -(1/2) x^(-3/2), written with the output as PyTorch does."""
        out = 1 / self.xp.sqrt(self._float_data())
        return Tensor._make(out, (self,), lambda g: (-0.5 * g * out ** 3,), "rsqrt", saved=(),
                            saves_output=True)

    def log1p(self) -> "Tensor":
        """``log(1 + x)``, accurate for tiny ``x``; d/dx = 1 / (1 + x)."""
        a = self._float_data()
        return Tensor._make(self.xp.log1p(a), (self,), lambda g: (g / (1 + a),), "log1p")

    def expm1(self) -> "Tensor":
        """``exp(x) - 1``, accurate for tiny ``x``; d/dx = exp(x) = out + 1."""
        out = self.xp.expm1(self._float_data())
        return Tensor._make(out, (self,), lambda g: (g * (out + 1),), "expm1", saved=(),
                            saves_output=True)

    def sin(self) -> "Tensor":
        a = self._float_data()
        return Tensor._make(self.xp.sin(a), (self,), lambda g: (g * self.xp.cos(a),), "sin")

    def cos(self) -> "Tensor":
        a = self._float_data()
        return Tensor._make(self.xp.cos(a), (self,), lambda g: (-g * self.xp.sin(a),), "cos")

    # ------------------------------------------------------- elementwise choice of two
    def maximum(self, other) -> "Tensor":
        """Elementwise larger of ``self`` and ``other`` (broadcasting). At a tie each input
        gets half the gradient, as in PyTorch."""
        return self._pick("maximum", other)

    def minimum(self, other) -> "Tensor":
        """Elementwise smaller of ``self`` and ``other``; ties share the gradient."""
        return self._pick("minimum", other)

    def _pick(self, op: str, other) -> "Tensor":
        other = self._operand(other)
        a, b = self.data, other.data
        out = _broadcast(getattr(self.xp, op), a, b, op)

        def backward(g):
            wins = (a > b) if op == "maximum" else (a < b)
            share_a = wins + 0.5 * (a == b)            # 1 where a was chosen, 1/2 at a tie
            return (_reduce_to(g * share_a, a) if self.requires_grad else None,
                    _reduce_to(g * (1 - share_a), b) if other.requires_grad else None)
        return Tensor._make(out, (self, other), backward, op)

    def where(self, condition, other) -> "Tensor":
        """``self`` where ``condition`` holds, else ``other`` (PyTorch's ``x.where(c, y)``)."""
        return Tensor._where(condition, self, other)

    @staticmethod
    def _where(condition, x, y) -> "Tensor":
        """``torch.where(condition, x, y)``: ``x`` and ``y`` may be tensors or numbers; all
        three broadcast. Each gradient flows where its value was chosen."""
        condition = _bool_mask(condition, "where", "condition")
        anchor = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else None
        if anchor is None:  # two numbers: the dtype that Tensor([x, y]) infers for both
            pair = Tensor([x, y]).data
            x, y = Tensor._wrap(pair[0:1].reshape(())), Tensor._wrap(pair[1:2].reshape(()))
        else:
            x, y = anchor._operand(x), anchor._operand(y)
        c, a, b = condition.data, x.data, y.data
        _broadcast_shapes("where", c.shape, a.shape, b.shape)
        xp = x.xp
        out = _broadcast(lambda a, b: xp.where(c, a, b), a, b, "where")

        def backward(g):
            return (None,
                    _reduce_to(xp.where(c, g, 0), a) if x.requires_grad else None,
                    _reduce_to(xp.where(c, 0, g), b) if y.requires_grad else None)
        return Tensor._make(out, (condition, x, y), backward, "where", saved=(0,))

    def masked_fill(self, mask, value) -> "Tensor":
        """``value`` where ``mask`` (bool, broadcastable) is True, ``self`` elsewhere. ``value``
        is a number or a 0-d tensor (which then gets the gradient of the filled places)."""
        mask = _bool_mask(mask, "masked_fill", "mask", "masked_fill_ only supports boolean "
                          "masks")
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise ShapeError("masked_fill_ only supports a 0-dimensional value tensor, but "
                                 f"got tensor with {value.ndim} dimension(s).")
            value = value.astype(self.data.dtype)
        else:
            value = Tensor._wrap(self.xp.asarray(value, dtype=self.data.dtype))
        return Tensor._where(mask, value, self)

    # --------------------------------------------------------------------- reductions
    def min(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """PyTorch's three ``min``, mirroring :meth:`max`: ``x.min()``, ``x.min(dim)`` (named
        tuple ``(values, indices)``) and ``x.min(other)`` (:meth:`minimum`)."""
        return self._max_or_min("min", dim, keepdim, axis, keepdims)

    def _max_or_min(self, op: str, dim, keepdim, axis, keepdims):
        if isinstance(dim, Tensor):
            return self._pick("maximum" if op == "max" else "minimum", dim)
        if axis is not None or keepdims is not None:  # NumPy's spelling: the values only
            if dim is not None or keepdim:
                raise TypeError(f"{op}(): use dim=/keepdim= (PyTorch) or axis=/keepdims= "
                                "(NumPy), not a mix")
            return self._amax_amin(op, axis, bool(keepdims))
        if dim is None:
            if keepdim:
                raise TypeError(f"{op}(): keepdim=True needs a dim")
            return self._amax_amin(op, None, False)
        if not isinstance(dim, numbers.Integral):
            raise TypeError(f"{op}(dim) takes one int dim, got {dim!r}; use "
                            f"a{op}(dim=(...)) to reduce over several")
        dim = int(dim)
        indices = self._arg_extreme("arg" + op, dim, True)
        values = self.gather(dim, indices)
        if not keepdim:
            values, indices = values.squeeze(dim), indices.squeeze(dim)
        return ValuesIndices(values, indices)

    def amax(self, dim=(), keepdim: bool = False) -> "Tensor":
        """Largest values over ``dim`` (int or tuple; ``()``: all). Tied maxima share the
        gradient equally, as in ``torch.amax``."""
        return self._amax_amin("max", None if dim == () else dim, keepdim)

    def amin(self, dim=(), keepdim: bool = False) -> "Tensor":
        """Smallest values over ``dim``; tied minima share the gradient equally."""
        return self._amax_amin("min", None if dim == () else dim, keepdim)

    def _amax_amin(self, op: str, axis, keepdim: bool) -> "Tensor":
        axes = _normalize_axes(axis, self.ndim)
        axes = axes if self.ndim else ()  # a 0-d tensor reduces over no axis
        if self.data.size == 0:
            if axis is None:
                raise RuntimeError(f"{op}(): expected a non-empty tensor")
            for ax in axes:
                if self.data.shape[ax] == 0:
                    raise IndexError(f"a{op}(): Expected reduction dim {ax} to have non-zero "
                                     "size.")
        a = self.data
        kept = getattr(a, op)(axis=axes, keepdims=True)

        def backward(g):
            # (g / number of extremes) at the extremes, so a NaN in the input (no element
            # equals the NaN result) gives NaN gradients, as in PyTorch.
            g = g.reshape(kept.shape)
            chosen = a == kept
            return (_reduce_to(g / chosen.sum(axis=axes, keepdims=True) * chosen, a),)
        out = kept if keepdim else kept.reshape(_reduced_shape(a.shape, axes))  # stays an array
        return Tensor._make(out, (self,), backward, op, saves_output=True)

    def argmin(self, dim=None, keepdim: bool = False) -> "Tensor":
        """Indices of the smallest values (not differentiable)."""
        return self._arg_extreme("argmin", dim, keepdim)

    def _arg_extreme(self, op: str, dim, keepdim: bool) -> "Tensor":
        """``argmax``/``argmin``: the first index of the extreme value along ``dim`` (of the
        flattened tensor when ``dim`` is None), as int64."""
        if dim is not None:
            (dim,) = _normalize_axes(dim, self.ndim)
            if self.ndim and self.shape[dim] == 0:
                raise IndexError(f"{op}(): expected a non-empty dimension {dim}")
        elif self.data.size == 0:
            raise RuntimeError(f"{op}(): expected a non-empty tensor")
        a = self.data if self.ndim else self.data.reshape(1)
        out = getattr(a, op)(axis=dim if self.ndim else 0)
        if keepdim:
            out = self.xp.reshape(out, _kept_shape(self.shape, (dim,) if dim is not None
                                                   else tuple(range(self.ndim))))
        return Tensor._wrap(self.xp.asarray(out, dtype=backend.np.int64))

    def var(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None,
            axis=None, keepdims=None) -> "Tensor":
        """Variance over ``dim`` (None: all): ``Σ(x - mean)² / (N - correction)``.
        ``correction=1`` (the default, Bessel's) is ``unbiased=True``; ``correction=0`` the
        population variance. ``N - correction <= 0`` gives inf or NaN, with PyTorch's
        warning."""
        return self._var_std("var", dim, unbiased, keepdim, correction, axis, keepdims)

    def std(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None,
            axis=None, keepdims=None) -> "Tensor":
        """Standard deviation, the square root of :meth:`var` (same arguments). Its gradient
        is 0 where the deviation is 0 (PyTorch's choice; d√v/dv is infinite there)."""
        return self._var_std("std", dim, unbiased, keepdim, correction, axis, keepdims)

    def _var_std(self, op: str, dim, unbiased, keepdim, correction, axis, keepdims):
        if self.data.dtype == _FLOAT16:  # in float32, as PyTorch: squares of 256+ overflow
            return self.astype(_FLOAT32)._var_std(op, dim, unbiased, keepdim, correction,
                                                  axis, keepdims).astype(_FLOAT16)
        if isinstance(dim, bool):  # PyTorch's overload x.var(unbiased)
            dim, unbiased = None, dim
        correction = _correction_arg(unbiased, correction, op)
        keepdim = _keepdim_arg(keepdim, keepdims)
        _require_float(self, op)
        a = self.data
        dim = _axis_arg(axis, dim)
        axes = _normalize_axes(dim, self.ndim)
        axes = axes if self.ndim else ()
        count = math.prod(a.shape[ax] for ax in axes)
        dof = max(0, count - correction)
        if dof == 0:
            warnings.warn(f"{op}(): degrees of freedom is <= 0. Correction should be strictly "
                          "less than the reduction factor (input numel divided by output "
                          "numel).", UserWarning, stacklevel=3)
        deviation = a - a.mean(axis=axes, keepdims=True) if count else a
        with backend.np.errstate(divide="ignore", invalid="ignore"):  # dof = 0: inf or NaN
            var = (deviation * deviation).sum(axis=axes, keepdims=True) / dof
        kept = self.xp.sqrt(var) if op == "std" else var

        def backward(g):
            g = g.reshape(kept.shape)
            with backend.np.errstate(divide="ignore", invalid="ignore"):
                if op == "std":  # d std = d var / (2 std), set to 0 where std = 0
                    g = self.xp.where(kept == 0, 0, g / (2 * kept))
                # PyTorch's var_backward, also where N - correction <= 0: over all elements
                # (no dim) the gradient is NaN where x equals the mean and inf elsewhere; with
                # a dim it is the formula with the raw N - correction (2/0 = inf, or < 0).
                if (dim is None or self.ndim == 0) and count - correction <= 0:
                    return (_reduce_to(g * self.xp.where(deviation == 0, math.nan, math.inf),
                                       a),)
                scale = 2.0 / (count - correction) if count != correction else math.inf
                return (scale * g * deviation,)
        out = kept if keepdim else kept.reshape(_reduced_shape(a.shape, axes))
        # The backward reads the deviations (its own copy) and, for std, the result.
        return Tensor._make(out, (self,), backward, op, saved=(), saves_output=op == "std")

    def logsumexp(self, dim, keepdim: bool = False) -> "Tensor":
        """``log Σ exp(x)`` over ``dim``, computed stably: shifted by the maximum (by 0 where
        the maximum is infinite, as in PyTorch). d/dx = softmax(x) along ``dim``."""
        axes = _normalize_axes(dim, self.ndim)
        axes = axes if self.ndim else ()
        a = self._float_data()
        xp = self.xp
        shift = a.max(axis=axes, keepdims=True) if a.size else xp.zeros(
            _kept_shape(a.shape, axes), a.dtype)
        shift = xp.where(xp.isinf(shift), 0, shift)
        with backend.np.errstate(divide="ignore"):  # log(0) = -inf for an all -inf row
            kept = xp.log(xp.exp(a - shift).sum(axis=axes, keepdims=True)) + shift

        def backward(g):
            return (g.reshape(kept.shape) * xp.exp(a - kept),)
        out = kept if keepdim else kept.reshape(_reduced_shape(a.shape, axes))
        return Tensor._make(out, (self,), backward, "logsumexp", saves_output=True)

    def norm(self, p="fro", dim=None, keepdim: bool = False) -> "Tensor":
        """The vector ``p``-norm over ``dim`` (None: all elements; ``"fro"`` is p = 2):
        ``(Σ|x|^p)^(1/p)``, ``max|x|`` for ``inf``, ``min|x|`` for ``-inf``, the number of
        non-zeros for 0. Gradients as ``torch.linalg.vector_norm``: 0 where the norm is 0,
        tied maxima share for ``inf``."""
        if p == "fro":
            p = 2
        if isinstance(p, str) or not isinstance(p, numbers.Real):
            raise ValueError(f"norm(): only vector norms are supported (p a number or 'fro'), "
                             f"got p={p!r}")
        _require_float(self, "norm")
        if self.data.dtype == _FLOAT16:  # in float32, as PyTorch: squares of 256+ overflow
            return self.astype(_FLOAT32).norm(p, dim, keepdim).astype(_FLOAT16)
        p = float(p)
        axes = _normalize_axes(dim, self.ndim)
        axes = axes if self.ndim else ()
        a, xp = self.data, self.xp
        magnitude = xp.abs(a)
        if p == float("inf") or p == -float("inf"):
            kept = (magnitude.max if p > 0 else magnitude.min)(axis=axes, keepdims=True)
        elif p == 0:
            kept = (a != 0).sum(axis=axes, keepdims=True).astype(a.dtype)
        elif p == 1:
            kept = magnitude.sum(axis=axes, keepdims=True)
        elif p == 2:
            kept = xp.sqrt((a * a).sum(axis=axes, keepdims=True))
        else:
            kept = (magnitude ** p).sum(axis=axes, keepdims=True) ** (1.0 / p)

        def backward(g):
            return (_reduce_to(_norm_backward(xp, a, kept, p, g.reshape(kept.shape), axes), a),)
        out = kept if keepdim else kept.reshape(_reduced_shape(a.shape, axes))
        return Tensor._make(out, (self,), backward, f"norm(p={p:g})", saves_output=True)

    def cumsum(self, dim: int, *, dtype=None) -> "Tensor":
        """Running sums along ``dim``; integer and bool tensors give int64, as in PyTorch.
        The gradient is the running sum of ``g`` taken from the other end."""
        source = self.astype(dtype) if dtype is not None else self
        (axis,) = _normalize_axes(dim, self.ndim)
        a = source.data if self.ndim else source.data.reshape(1)
        out = self.xp.cumsum(a, axis=axis, dtype=backend.np.int64 if a.dtype.kind in "iub"
                             else None).reshape(self.shape)

        def backward(g):
            g = g if self.ndim else g.reshape(1)
            reverse = self.xp.flip(self.xp.cumsum(self.xp.flip(g, axis), axis=axis), axis)
            return (reverse.reshape(self.shape),)
        return Tensor._make(out, (source,), backward, "cumsum", saved=())

    def softmax(self, dim: int) -> "Tensor":
        """``exp(x) / Σ exp(x)`` along ``dim`` (via the stable :meth:`log_softmax`)."""
        return self.log_softmax(dim).exp()

    def log_softmax(self, dim: int) -> "Tensor":
        """``x - logsumexp(x)`` along ``dim``, shifted by the maximum so large logits do not
        overflow. Backward: with ``p = softmax(x)``, ``dx = g - p Σ g`` along ``dim``."""
        _require_float(self, "log_softmax")
        (axis,) = _normalize_axes(dim, self.ndim)
        xp = self.xp
        a = self.data
        if a.size == 0:  # nothing to normalise (no maximum to shift by): empty, as PyTorch
            out = a.copy()
        else:
            shifted = a - a.max(axis=axis, keepdims=True)
            out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))

        def backward(g):
            return (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),)
        return Tensor._make(out, (self,), backward, "log_softmax", saved=(), saves_output=True)

    # ------------------------------------------------------------- copies and shapes
    def clone(self) -> "Tensor":
        """A copy with its own memory that stays in the graph (the gradient passes as is)."""
        return Tensor._make(self.data.copy(), (self,), lambda g: (g,), "clone", saved=())

    def size(self, dim: int | None = None):
        """The shape as a tuple (PyTorch's ``torch.Size``), or the length of axis ``dim``."""
        if dim is None:
            return self.shape
        if self.ndim == 0:
            raise IndexError(f"dimension specified as {dim} but tensor has no dimensions")
        (dim,) = _normalize_axes(dim, self.ndim)
        return self.shape[dim]

    def dim(self) -> int:
        """The number of axes (``ndim``)."""
        return self.ndim

    def t(self) -> "Tensor":
        """The transpose of a matrix; vectors and 0-d tensors are returned as they are."""
        if self.ndim > 2:
            raise ShapeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                             f"{self.ndim}D")
        return self.transpose(0, 1) if self.ndim == 2 else self

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        """Merge axes ``start_dim..end_dim`` (inclusive) into one; a 0-d tensor becomes 1-d."""
        if self.ndim == 0:
            return self.reshape(1)
        (start,), (end,) = _normalize_axes(start_dim, self.ndim), _normalize_axes(end_dim,
                                                                                  self.ndim)
        if start > end:
            raise ShapeError("flatten() has invalid args: start_dim cannot come after end_dim")
        merged = math.prod(self.shape[start:end + 1])
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1:])

    def expand(self, *sizes) -> "Tensor":
        """A broadcast view with ``sizes`` (``-1`` keeps an axis; new axes may be added in
        front; only axes of size 1 can grow). No copy: the view is read-only. The gradient
        is summed back over the expanded axes."""
        if not sizes:
            raise TypeError("expand() missing 1 required positional argument: 'size'")
        sizes = _sizes_with_minus_one(sizes)
        if len(sizes) < self.ndim:
            raise ShapeError(f"expand: the number of sizes provided ({len(sizes)}) must be "
                             f"greater or equal to the number of dimensions in the tensor "
                             f"({self.ndim})")
        new = len(sizes) - self.ndim
        target = []
        for i, n in enumerate(sizes):
            if i < new:
                if n < 0:
                    raise ShapeError(f"The expanded size of the tensor ({n}) isn't allowed in a "
                                     f"leading, non-existing dimension {i}")
                target.append(n)
                continue
            old = self.shape[i - new]
            if n == -1:
                n = old
            if old != n and old != 1:
                raise ShapeError(f"The expanded size of the tensor ({n}) must match the "
                                 f"existing size ({old}) at non-singleton dimension {i}.  "
                                 f"Target sizes: {list(sizes)}.  Tensor sizes: "
                                 f"{list(self.shape)}")
            target.append(n)
        a = self.data
        return Tensor._make(self.xp.broadcast_to(a, tuple(target)), (self,),
                            lambda g: (_reduce_to(g, a),), "expand", saved=(), view_of=self)

    def expand_as(self, other: "Tensor") -> "Tensor":
        return self.expand(other.shape)

    def repeat(self, *sizes) -> "Tensor":
        """Tile the tensor ``sizes[i]`` times along axis ``i`` (extra leading sizes add axes).
        The gradient sums the copies."""
        sizes = _shape_arg(sizes)
        if len(sizes) < self.ndim:
            raise ShapeError("Number of dimensions of repeat dims can not be smaller than "
                             "number of dimensions of tensor")
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        a = self.data.reshape(shape)
        out = self.xp.tile(a, sizes)

        def backward(g):
            # out viewed as (r0, s0, r1, s1, ...): sum over every r_i.
            interleaved = tuple(x for pair in zip(sizes, shape) for x in pair)
            g = g.reshape(interleaved).sum(axis=tuple(range(0, 2 * len(shape), 2)))
            return (g.reshape(self.shape),)
        return Tensor._make(out, (self,), backward, "repeat", saved=())

    def split(self, split_size_or_sections, dim: int = 0) -> tuple:
        """Views of consecutive pieces along ``dim``: of ``split_size`` each (the last may be
        smaller), or of the sizes listed. Their gradients are scattered back."""
        (dim,) = _normalize_axes(dim, self.ndim)
        length = self.shape[dim]
        if isinstance(split_size_or_sections, numbers.Integral):
            size = int(split_size_or_sections)
            if size < 0 or size == 0 and length:
                raise ShapeError(f"split_size can only be 0 if dimension size is 0, but got "
                                 f"dimension size of {length}" if size == 0 else
                                 f"split expects split_size be non-negative, but got "
                                 f"split_size={size}")
            sections = [size] * (length // size) + ([length % size] if length % size else []) \
                if size else []
            sections = sections or [0]  # an empty axis still gives one (empty) piece
        else:
            sections = [int(n) for n in split_size_or_sections]
            if sum(sections) != length or any(n < 0 for n in sections):
                raise ShapeError(f"split_with_sizes expects split_sizes to sum exactly to "
                                 f"{length} (input tensor's size at dimension {dim}), but got "
                                 f"split_sizes={sections}")
        pieces, start = [], 0
        for n in sections:
            pieces.append(self[(slice(None),) * dim + (slice(start, start + n),)])
            start += n
        return tuple(pieces)

    def chunk(self, chunks: int, dim: int = 0) -> tuple:
        """At most ``chunks`` pieces along ``dim``, each ``ceil(size / chunks)`` long (the last
        may be smaller, and there may be fewer pieces), as in PyTorch."""
        if chunks <= 0:
            raise ShapeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        (axis,) = _normalize_axes(dim, self.ndim)
        length = self.shape[axis]
        return self.split(max(1, -(-length // chunks)) if length else 0, axis)

    def gather(self, dim: int, index) -> "Tensor":
        """``out[i][j][k] = self[index[i][j][k]][j][k]`` for ``dim = 0`` (and likewise for the
        other axes). ``index`` (integers) has self's number of axes and is no larger than
        self except along ``dim``. Repeated indices accumulate their gradients."""
        index = index.data if isinstance(index, Tensor) else self.xp.asarray(index)
        if index.dtype.kind not in "iu":
            raise TypeError(f"gather(): Expected dtype int64 for index, got {index.dtype}")
        if index.ndim != self.ndim:
            raise ShapeError("Index tensor must have the same number of dimensions as input "
                             f"tensor (index {tuple(index.shape)}, input {self.shape})")
        if self.ndim == 0:
            return self.reshape(1).gather(0, index.reshape(1)).reshape(())
        (dim,) = _normalize_axes(dim, self.ndim)
        for d, (n, m) in enumerate(zip(index.shape, self.shape)):
            if d != dim and n > m:
                raise ShapeError(f"Size does not match at dimension {d} expected index "
                                 f"{list(index.shape)} to be no larger than self "
                                 f"{list(self.shape)} apart from dimension {dim}")
        if index.size and (int(index.min()) < 0 or int(index.max()) >= self.shape[dim]):
            bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
            raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size "
                             f"{self.shape[dim]}")
        # An integer-array index picking out[i,j,k] = self[i, index[i,j,k], k] (dim = 1):
        # aranges along the other axes, shaped to broadcast against ``index``.
        aranges = [self.xp.arange(n).reshape((1,) * d + (n,) + (1,) * (index.ndim - d - 1))
                   for d, n in enumerate(index.shape)]
        aranges[dim] = index.copy()  # ours: the caller may change its index tensor later
        grid = tuple(aranges)
        return Tensor._make(self.data[grid], (self,),
                            lambda g: (IndexedGrad(grid, g, True),), "gather", saved=())

    # ---------------------------------------------------------------------------- factories
    @classmethod
    def zeros(cls, *shape, dtype=None, requires_grad: bool = False) -> "Tensor":
        return cls._factory(backend.xp.zeros, shape, dtype, requires_grad)

    @classmethod
    def ones(cls, *shape, dtype=None, requires_grad: bool = False) -> "Tensor":
        return cls._factory(backend.xp.ones, shape, dtype, requires_grad)

    @classmethod
    def randn(cls, *shape, dtype=None, requires_grad: bool = False) -> "Tensor":
        """Standard normal samples from the seeded host generator."""
        return cls._random(lambda s: backend.rng().standard_normal(s), shape, dtype,
                           requires_grad)

    @classmethod
    def rand(cls, *shape, dtype=None, requires_grad: bool = False) -> "Tensor":
        """Uniform samples on [0, 1) from the seeded host generator."""
        return cls._random(lambda s: backend.rng().random(s), shape, dtype, requires_grad)

    @classmethod
    def uniform(cls, *shape, low: builtins.float = 0.0, high: builtins.float = 1.0,
                dtype=None, requires_grad: bool = False) -> "Tensor":
        """Uniform samples on [low, high) from the seeded host generator."""
        return cls._random(lambda s: backend.rng().uniform(low, high, s), shape, dtype,
                           requires_grad)

    @classmethod
    def zeros_like(cls, t: "Tensor", **kw) -> "Tensor":
        return cls.zeros(*t.shape, dtype=kw.pop("dtype", t.dtype), **kw)

    @classmethod
    def ones_like(cls, t: "Tensor", **kw) -> "Tensor":
        return cls.ones(*t.shape, dtype=kw.pop("dtype", t.dtype), **kw)

    @classmethod
    def randn_like(cls, t: "Tensor", **kw) -> "Tensor":
        return cls.randn(*t.shape, dtype=kw.pop("dtype", t.dtype), **kw)

    @classmethod
    def rand_like(cls, t: "Tensor", **kw) -> "Tensor":
        return cls.rand(*t.shape, dtype=kw.pop("dtype", t.dtype), **kw)

    @classmethod
    def _factory(cls, fill, shape, dtype, requires_grad) -> "Tensor":
        t = cls._wrap(fill(_shape_arg(shape), dtype=_float_dtype(dtype)))
        return t.requires_grad_(requires_grad) if requires_grad else t

    @classmethod
    def _random(cls, sample, shape, dtype, requires_grad) -> "Tensor":
        host = sample(_shape_arg(shape)).astype(_float_dtype(dtype))
        t = cls._wrap(backend.to_backend(host))
        return t.requires_grad_(requires_grad) if requires_grad else t


# ------------------------------------------------- helpers of PyTorch's everyday ops

class ValuesIndices(NamedTuple):
    """What ``x.max(dim)`` and ``x.min(dim)`` return, as PyTorch's ``torch.return_types``:
    unpack it (``values, indices = x.max(1)``) or use the names."""
    values: Tensor
    indices: Tensor


def _keepdim_arg(value, alias) -> bool:
    """PyTorch's ``keepdim=`` and NumPy's ``keepdims=`` are the same switch; the one given
    by keyword (``alias``, None when absent) wins over the positional default."""
    return bool(value if alias is None else alias)


def _dims_arg(args: tuple, dims, axis, op: str):
    """The axes of ``x.flip(0, 1)``, ``x.flip([0, 1])``, ``x.flip(dims=...)`` or
    ``x.flip(axis=...)``: exactly one of the spellings must be used."""
    given = [v for v in (args or None, dims, axis) if v is not None]
    if len(given) != 1:
        raise TypeError(f"{op}() expects the dims once, e.g. {op}(0), {op}(0, 1) or "
                        f"{op}(dims=[0, 1])")
    value = given[0]
    if isinstance(value, tuple) and len(value) == 1 and isinstance(value[0], (list, tuple)):
        value = value[0]
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _correction_arg(unbiased, correction, op: str):
    """``var``/``std``'s divisor offset: ``correction``, or 1/0 for ``unbiased`` True/False."""
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}(): pass either unbiased= or correction=, not both")
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1


def _sizes_with_minus_one(sizes) -> tuple:
    """``expand``'s sizes: ints, one tuple or list of them; ``-1`` means "keep"."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if any(not isinstance(n, numbers.Integral) or n < -1 for n in sizes):
        raise ShapeError(f"expand: expected sizes of non-negative integers or -1, got {sizes}")
    return tuple(int(n) for n in sizes)


def _bool_mask(mask, op: str, name: str, wording: str = "") -> Tensor:
    """``mask`` (a Tensor, array or nested list of bools) as a bool Tensor."""
    mask = mask if isinstance(mask, Tensor) else Tensor(mask)
    if mask.data.dtype.kind != "b":
        wording = wording or f"{op} expected {name} to be a boolean tensor"
        raise TypeError(f"{wording}, but got {name} with dtype {mask.dtype}; compare first, "
                        f"e.g. {name} = x > 0")
    return mask


def _broadcast_shapes(op: str, *shapes) -> tuple:
    """The common shape of ``shapes``, or a ShapeError naming them."""
    try:
        return tuple(backend.np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"{op}(): shapes {', '.join(str(tuple(s)) for s in shapes)} cannot "
                         "be broadcast together") from None


def _norm_backward(xp, a, norm, p, g, axes):
    """The gradient of the vector ``p``-norm, as ``torch.linalg.vector_norm`` defines it
    (``norm`` and ``g`` with the reduced axes kept): zero where the norm is zero, ties of
    the largest (``inf``) or smallest (``-inf``) magnitude share the gradient equally."""
    with backend.np.errstate(divide="ignore", invalid="ignore"):
        if p == 0:
            return xp.zeros_like(a)
        if p == 1:
            return xp.sign(a) * g
        if p in (float("inf"), -float("inf")):
            chosen = xp.abs(a) == norm
            return xp.sign(a) * (g / chosen.sum(axis=axes, keepdims=True)) * chosen
        if p == 2:
            return a * xp.where(norm == 0, 0, g / norm)
        if p < 1:
            scaled = xp.sign(a) * xp.where(a == 0, 0, xp.abs(a) ** (p - 1))
            return scaled * g * norm ** (1 - p)
        scale = xp.where(norm == 0, 0, g / norm ** (p - 1))
        if p < 2:
            return xp.sign(a) * xp.abs(a) ** (p - 1) * scale
        return a * xp.abs(a) ** (p - 2) * scale


# ------------------------------------------------------------------------------- helpers

class RemovableHandle:
    """What ``register_hook`` returns: ``remove()`` (as in PyTorch) or calling it removes the
    hook; removing it again does nothing."""
    __slots__ = ("hooks", "hook")

    def __init__(self, hooks: list, hook: Callable):
        self.hooks = hooks
        self.hook = hook

    def remove(self) -> None:
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)

    __call__ = remove


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if any(not isinstance(n, numbers.Integral) or n < 0 for n in shape):
        raise ValueError(f"expected a shape of non-negative integers, got {shape}")
    return tuple(int(n) for n in shape)


def _float_dtype(dtype):
    return backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)


def _memory_order(a) -> tuple:
    """The axes of ``a`` with the leading ones sorted by decreasing stride (the last axis
    stays last): ``a.transpose(_memory_order(a))`` walks ``a``'s memory in order, so for a
    transposed view of a C-contiguous array it is C-contiguous again."""
    lead = sorted(range(a.ndim - 1), key=lambda i: -a.strides[i])
    return tuple(lead) + (a.ndim - 1,)


def _kept_shape(shape, axes) -> tuple:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _reduced_shape(shape, axes) -> tuple:
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _promoted(tensors: list) -> list:
    """The tensors' arrays in their common PyTorch dtype (NumPy would make float32 joined
    with int64 float64)."""
    dtype = tensors[0].data.dtype
    for t in tensors[1:]:
        dtype = _promote(dtype, t.data.dtype)
    return [t.data.astype(dtype, copy=False) for t in tensors]


def _same_backend(tensors: Iterable, op: str) -> list:
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}(): expected a non-empty list of Tensors")
    if not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"{op}(): expected a list of Tensors")
    kinds = {type(t.data) for t in tensors}
    if len(kinds) > 1:
        raise RuntimeError(f"{op}(): expected all tensors to be on the same backend")
    return tensors


def _list_as_tuple(index):
    """A short list holding index arrays, lists, slices, ``None`` or ``...`` means a tuple
    of indices in PyTorch (NumPy's old rule, which PyTorch keeps): ``x[[rows, cols]]`` is
    ``x[rows, cols]``, not one 2-D index array."""
    if type(index) is not list or len(index) >= 32 or set(map(type, index)) <= {int, bool}:
        return index  # (the common list of row numbers, checked at C speed)
    if any(isinstance(item, (Tensor, list, tuple, slice)) or backend.is_array(item)
           or item is None or item is Ellipsis for item in index):
        return tuple(index)
    return index


def _integers_first(index, tensor: "Tensor"):
    """``index`` with PyTorch's meaning where it mixes integers with index arrays.

    PyTorch applies the integers first (each a ``select``), then the arrays; NumPy counts an
    integer as one more index array, which moves the result's axes where a slice separates
    them: ``x[0, :, [1, 2]]`` of shape (A, B, C) is (B, 2) in PyTorch but (2, B) in NumPy.
    Such an index becomes one NumPy index of coordinate arrays, each taken from a broadcast
    (zero-copy) grid of its axis in PyTorch's two steps, so reading, writing and the
    gradient's scatter all use PyTorch's layout. Other indices are returned unchanged.
    ``index`` is an advanced one, as :func:`_backend_index` returns it (arrays, no Tensors)."""
    if type(index) is not tuple or not any(_is_index_array(i) for i in index) \
            or not any(_is_integer(i) for i in index):
        return index
    items = index
    first: list = []  # the integers (other axes kept whole), then the rest
    rest: list = []
    for item in items:
        if _is_integer(item):
            first.append(int(item))
        elif item is None or item is Ellipsis:
            first.append(item)
            rest.append(slice(None) if item is None else item)
        else:  # a slice or an index array: passed over by the integer step, applied after
            first.extend([slice(None)] * _axes_indexed(item))
            rest.append(item)
    xp, shape = tensor.xp, tensor.shape
    rest_index, _ = _backend_index(tuple(rest), xp)
    # grids[axis][i, j, k, ...] is the coordinate along ``axis`` (i, j or k), without copies
    grids = (xp.broadcast_to(xp.arange(n).reshape((n,) + (1,) * (len(shape) - axis - 1)), shape)
             for axis, n in enumerate(shape))
    try:
        return tuple(grid[tuple(first)][rest_index] for grid in grids)
    except IndexError:  # out of range either way: reported by the usual path
        return index


def _is_integer(item) -> bool:
    """A Python/NumPy integer, or a 0-d integer array (a 0-d tensor: an integer to PyTorch)."""
    if backend.is_array(item):
        return item.ndim == 0 and item.dtype.kind in "iu"
    return isinstance(item, numbers.Integral) and not isinstance(item, bool)


def _is_index_array(item) -> bool:
    return backend.is_array(item) and not _is_integer(item)


def _axes_indexed(item) -> int:
    """How many axes a slice or index array indexes: a boolean mask one per dimension."""
    return item.ndim if backend.is_array(item) and item.dtype.kind == "b" else 1


def _backend_index(index, xp):
    """Convert Tensors and lists inside an index to backend arrays; say whether it uses
    advanced (array) indexing, whose gradient needs an accumulating scatter."""
    if type(index) is slice or type(index) is int:  # x[t], x[a:b]: every unrolled step
        return index, False
    items = index if isinstance(index, tuple) else (index,)
    converted, advanced = [], False
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        elif isinstance(item, list):  # ([] selects nothing, as in PyTorch; NumPy: float64)
            item = xp.asarray(item) if item else xp.zeros(0, dtype=backend.np.int64)
        if backend.is_array(item):
            if item.dtype.kind not in "iub":
                raise IndexError("tensors used as indices must be long, int or bool, got "
                                 f"dtype {item.dtype}")
            if item.dtype.char == "B":  # uint8: PyTorch reads a (deprecated) mask, NumPy indices
                raise IndexError("indexing with dtype uint8 is ambiguous (PyTorch reads it "
                                 "as a mask, deprecated; NumPy as indices): index with a bool "
                                 "mask (mask != 0) or int64 indices instead")
            item = xp.asarray(item)
            advanced = True
        converted.append(item)
    return (tuple(converted) if isinstance(index, tuple) else converted[0]), advanced


def _inplace_binary_backward(op: str, a, b, before) -> Callable:
    """Backward of ``a <op>= b`` recorded in a graph: gradients of (a as it was, b).
    ``before``: a copy of a's old values (needed for b's gradient of mul_ and div_)."""
    def backward(g):
        if op == "add_":
            return g, _reduce_to(g, b)
        if op == "sub_":
            return g, _reduce_to(-g, b)
        if op == "mul_":
            grad_b = None if before is None else _reduce_to(g * before, b)
            return (g * b).astype(g.dtype, copy=False), grad_b
        grad_b = None if before is None else _reduce_to(-g * before / (b * b), b)   # div_
        return (g / b).astype(g.dtype, copy=False), grad_b
    return backward


def _setitem_backward(index, value) -> Callable:
    """Backward of ``x[index] = value`` recorded in a graph: the old x gets g with the
    overwritten part zeroed, the value gets g at ``index`` (summed over broadcasting)."""
    def backward(g):
        grad_before = g.copy()
        grad_before[index] = 0
        part = g[index]
        while part.ndim < value.ndim:  # the leading 1s dropped in the forward
            part = part[None]
        return grad_before, _reduce_to(part, value)
    return backward


#: The in-place ops that can be recorded in a graph (see the in-place section of Tensor).
_RECORDABLE_INPLACE = frozenset({"add_", "sub_", "mul_", "div_", "setitem", "copy_", "fill_",
                                 "zero_"})

_INPLACE_IN_GRAPH_MESSAGE = (
    "{op}: this in-place operation cannot be recorded in the graph ({what} requires grad, "
    "and the tensor was already read by a recorded op or a view, is a view, has a hook, or "
    "the op is not one of add_/sub_/mul_/div_/copy_/fill_/x[i] = v): the ops that read it "
    "would get the gradient of its new value. "
    "Use the out-of-place form (y = y + x instead of y += x, torch.where-style selection "
    "instead of y[i] = v), or wrap the update in no_grad() if no gradient should flow "
    "through it.")


def _with_ellipsis(index) -> tuple:
    """A basic index with ``...`` appended (a no-op unless it already holds one)."""
    items = index if isinstance(index, tuple) else (index,)
    # ``in`` compares with ``==`` too, which is safe here: a basic index holds no arrays.
    return items if Ellipsis in items else items + (Ellipsis,)


def _shares_memory(out, a) -> bool:
    """Whether the array ``out`` is a view of ``a``'s memory (both come from one owner)."""
    return (out.base if out.base is not None else out) is (a.base if a.base is not None else a)


def _cross_saved(a: "Tensor", b: "Tensor") -> tuple:
    """What ``a * b`` and ``a @ b`` save, as in PyTorch: each operand only when the *other*
    needs a gradient (d(ab)/da = b)."""
    return _CROSS_SAVED[a.requires_grad, b.requires_grad]


_CROSS_SAVED = {(False, False): (), (True, False): (1,), (False, True): (0,), (True, True): (0, 1)}


def _describe_index(index) -> str:
    return repr(index) if not backend.is_array(index) else f"array of shape {index.shape}"
