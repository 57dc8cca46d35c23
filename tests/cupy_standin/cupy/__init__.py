"""A strict CuPy stand-in for the test suite: NumPy underneath, CuPy's host/device rules on top.

**This is not a GPU test.** It emulates the rules that make code written for NumPy break (or
crawl) under CuPy, so that the CPU-only CI catches those bugs:

* a device array is *not* a NumPy array: ``numpy.asarray(a)`` (``__array__``) raises
  ``TypeError`` with CuPy's message, and so does any NumPy function or ufunc called on it
  (``numpy.tanh(a)``, ``numpy.add.at(a, ...)``);
* mixing a host ``numpy.ndarray`` into a device op (``a + host``, ``cupy.matmul(a, host)``,
  ``a[i] = host``) raises ``TypeError``, as CuPy does ("Unsupported type");
* the only ways to the host are explicit: ``a.get()``, ``cupy.asnumpy(a)``, and the
  conversions that synchronise (``a.item()``, ``a.tolist()``, ``float(a)``, ``int(a)``,
  ``bool(a)``, ``format(a)``, ``repr(a)``). Each one **counts as a device→host transfer**
  (:data:`transfers`), so a test can assert that a training step makes none it did not ask for;
* reductions return 0-d device arrays (never host scalars); arrays are unhashable;
* ``cupyx.scatter_add`` (deprecated by CuPy in favour of ``cupy.add.at``) raises.

It is put on ``sys.path`` by ``tests/conftest.py`` only when the real CuPy is not installed,
and is never installed with the package. ``cupy.STANDIN`` is ``True`` so code and tests can
tell it from the real thing.
"""
from __future__ import annotations

import numbers
import weakref
from typing import Any

import numpy as _np

STANDIN = True
__version__ = "0.0-standin"

#: Device→host transfers made so far (see :func:`reset_transfers`).
transfers = 0
#: Host→device copies made so far (``cupy.asarray``/``cupy.array`` of host data).
uploads = 0

IMPLICIT_CONVERSION = ("Implicit conversion to a NumPy array is not allowed. Please use "
                       "`.get()` to construct a NumPy array explicitly.")


def reset_transfers() -> None:
    global transfers, uploads
    transfers = 0
    uploads = 0


def _count_transfer() -> None:
    global transfers
    transfers += 1


# ------------------------------------------------------------------------ wrap and unwrap

#: The live device array around each NumPy buffer object, so that wrapping the same buffer
#: twice gives the same object: CuPy's ``view.base`` *is* the array the view was taken from.
_live: dict = {}


def _wrap(value):
    """NumPy results become device arrays (0-d for scalars, as CuPy's reductions return)."""
    if isinstance(value, _np.ndarray):
        ref = _live.get(id(value))
        known = ref() if ref is not None else None
        if known is not None and known._a is value:
            return known
        out = object.__new__(ndarray)
        out._a = value
        key = id(value)
        _live[key] = weakref.ref(out, lambda r, key=key: _live.pop(key, None)
                                 if _live.get(key) is r else None)
        return out
    if isinstance(value, _np.generic):
        return _wrap(_np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _unwrap(value, where: str):
    """Device arrays to their NumPy storage; host arrays are refused (CuPy's rule)."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, _np.ndarray):
        raise TypeError(f"Unsupported type {type(value)} in {where}: a host numpy.ndarray "
                        "cannot be mixed into a device op (move it with cupy.asarray first)")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, where) for k, v in value.items()}
    return value


def _unwrap_index(index):
    """Indices may hold device arrays; host integer arrays are accepted (CuPy uploads them)."""
    if isinstance(index, tuple):
        return tuple(_unwrap_index(i) for i in index)
    if isinstance(index, ndarray):
        return index._a
    return index


def _call(fn, where: str, args, kwargs):
    return _wrap(fn(*_unwrap(args, where), **_unwrap(kwargs, where)))


# ------------------------------------------------------------------------------- ndarray

#: NumPy array attributes that CuPy's ndarray does not have, or that would let NumPy read the
#: memory directly (which is exactly what cannot happen with device memory).
_NO_SUCH_ATTRIBUTE = frozenset({
    "__array_interface__", "__array_struct__", "tobytes", "tostring", "tofile", "dump",
    "dumps", "ctypes", "__array_priority__"})


class ndarray:
    """A device array: NumPy storage behind CuPy's rules (see the module docstring)."""
    __slots__ = ("_a", "__weakref__")
    __hash__ = None  # type: ignore[assignment]  # CuPy arrays are unhashable, like NumPy's
    __array_ufunc__ = None  # NumPy ufuncs refuse us, and binary ops defer to our methods

    def __init__(self, shape, dtype=float, order="C"):
        self._a = _np.empty(shape, dtype=dtype, order=order)

    # -- the host boundary
    def __array__(self, *args, **kwargs):
        raise TypeError(IMPLICIT_CONVERSION)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__}() was called on a cupy.ndarray; use the cupy "
                        f"function (the array module of the data), or .get() first. "
                        + IMPLICIT_CONVERSION)

    def get(self, stream=None, order="C", out=None):
        _count_transfer()
        return _np.array(self._a, order=order)

    def item(self):
        _count_transfer()
        return self._a.item()

    def tolist(self):
        _count_transfer()
        return self._a.tolist()

    def __float__(self):
        _count_transfer()
        return float(self._a)

    def __int__(self):
        _count_transfer()
        return int(self._a)

    def __index__(self):
        _count_transfer()
        return self._a.__index__()

    def __bool__(self):
        if self._a.size != 1:
            raise ValueError("The truth value of an array with more than one element is "
                             "ambiguous. Use a.any() or a.all()")
        _count_transfer()
        return bool(self._a)

    def __format__(self, spec):
        _count_transfer()
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __repr__(self):
        _count_transfer()
        return repr(self._a).replace("array(", "array(", 1)

    def __str__(self):
        _count_transfer()
        return str(self._a)

    # -- shape and type
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: _wrap(self._a.T))

    @property
    def base(self):
        return None if self._a.base is None else _wrap(self._a.base)

    @property
    def data(self):
        """CuPy's ``MemoryPointer``: here only its ``ptr`` (the first element's address)."""
        return _MemoryPointer(self._a.__array_interface__["data"][0])

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    # -- indexing
    def __getitem__(self, index):
        return _wrap(self._a[_unwrap_index(index)])

    def __setitem__(self, index, value):
        self._a[_unwrap_index(index)] = _unwrap(value, "__setitem__")

    # -- every other method (sum, reshape, astype, ...) as NumPy's, on device arrays
    def __getattr__(self, name: str) -> Any:
        if name in _NO_SUCH_ATTRIBUTE:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            return _call(attr, f"cupy.ndarray.{name}", args, kwargs)
        method.__name__ = name
        return method

    def __copy__(self):
        return _wrap(self._a.copy())

    def __deepcopy__(self, memo):
        return _wrap(self._a.copy())

    def __reduce__(self):
        raise TypeError("the CuPy stand-in does not pickle device arrays")


def _binary(name: str):
    numpy_method = getattr(_np.ndarray, name)

    def op(self, other):
        if isinstance(other, _np.ndarray):
            raise TypeError(f"Unsupported type {type(other)}: a host numpy.ndarray cannot be "
                            f"mixed into a device op ({name})")
        if not isinstance(other, (ndarray, numbers.Number, _np.generic)):
            return NotImplemented
        result = numpy_method(self._a, _unwrap(other, name))
        if result is NotImplemented:
            return result
        if name.startswith("__i"):
            return self
        return _wrap(result)
    op.__name__ = name
    return op


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
              "xor", "lshift", "rshift"):
    for _form in (f"__{_name}__", f"__r{_name}__", f"__i{_name}__"):
        if hasattr(_np.ndarray, _form):
            setattr(ndarray, _form, _binary(_form))
for _form in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"):
    setattr(ndarray, _form, _binary(_form))
for _form in ("__neg__", "__pos__", "__abs__", "__invert__"):
    setattr(ndarray, _form, (lambda f: lambda self: _wrap(getattr(self._a, f)()))(_form))


class _MemoryPointer:
    __slots__ = ("ptr",)

    def __init__(self, ptr: int):
        self.ptr = ptr


# ---------------------------------------------------------------------------- the module

class ufunc:
    """A CuPy ufunc: callable, with ``out=``, and ``.at`` (``cupy.add.at``), on device arrays."""

    def __init__(self, numpy_ufunc):
        self._u = numpy_ufunc
        self.__name__ = numpy_ufunc.__name__

    def __call__(self, *args, **kwargs):
        out = kwargs.get("out")
        result = _call(self._u, f"cupy.{self.__name__}", args, kwargs)
        if isinstance(out, ndarray):
            return out
        if isinstance(out, tuple) and len(out) == 1:
            return out[0]
        return result

    def at(self, a, indices, b=None):
        if not isinstance(a, ndarray):
            raise TypeError(f"cupy.{self.__name__}.at: the target must be a cupy.ndarray")
        args = (a._a, _unwrap_index(indices)) + (() if b is None else
                                                 (_unwrap(b, f"cupy.{self.__name__}.at"),))
        self._u.at(*args)

    def reduce(self, *args, **kwargs):
        return _call(self._u.reduce, f"cupy.{self.__name__}.reduce", args, kwargs)

    def __repr__(self):
        return f"<cupy stand-in ufunc '{self.__name__}'>"


def asarray(a, dtype=None, order=None):
    """Host data → device (counted as an upload); device arrays pass through."""
    global uploads
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == _np.dtype(dtype) else a.astype(dtype)
    uploads += 1
    host = _unwrap(a, "cupy.asarray") if isinstance(a, (list, tuple)) else a
    return _wrap(_np.array(host, dtype=dtype, order=order or "K"))


def array(obj, dtype=None, copy=True, order="K", ndmin=0):
    global uploads
    if isinstance(obj, ndarray):
        return _wrap(_np.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    uploads += 1
    return _wrap(_np.array(obj, dtype=dtype, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None):
    if isinstance(a, ndarray):
        return a.get(order=order)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    import sys
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else _np


#: NumPy names CuPy does not have, or that the stand-in refuses to offer because using them
#: from device code is a bug (host random numbers, printing, error-state switches).
_NOT_IN_CUPY = frozenset({"random", "errstate", "seterr", "geterr", "set_printoptions",
                          "get_printoptions", "array2string", "printoptions", "save", "savez",
                          "load", "fromfile", "frombuffer", "lib", "ma", "ctypeslib", "testing",
                          "char", "rec", "polynomial", "emath"})


def __getattr__(name: str) -> Any:
    """Every other name is NumPy's, on device arrays (CuPy mirrors NumPy's namespace)."""
    if name in _NOT_IN_CUPY or name.startswith("_"):
        raise AttributeError(f"module 'cupy' (stand-in) has no attribute {name!r}")
    attr = getattr(_np, name)
    if isinstance(attr, _np.ufunc):
        return ufunc(attr)
    if isinstance(attr, type) or not callable(attr):
        return attr  # dtypes (cupy.float32 is numpy.float32), constants (pi, inf, newaxis)

    def function(*args, **kwargs):
        return _call(attr, f"cupy.{name}", args, kwargs)
    function.__name__ = name
    return function


class _Runtime:
    @staticmethod
    def getDeviceCount() -> int:
        return 1


class _Device:
    def __init__(self, device=0):
        self.id = device

    def synchronize(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Stream:
    def synchronize(self) -> None:
        pass


class cuda:  # noqa: N801  (a namespace, named as CuPy's)
    """``cupy.cuda``: the few calls the package and the benchmarks make."""
    runtime = _Runtime
    Device = _Device
    Stream = type("Stream", (), {"null": _Stream()})

    @staticmethod
    def alloc_pinned_memory(nbytes):
        return bytearray(nbytes)


def fuse(*args, **kwargs):
    raise NotImplementedError("cupy.fuse compiles CUDA kernels; the stand-in cannot run it "
                              "(guard fused-kernel paths with cupy.STANDIN)")


class ElementwiseKernel:
    """``cupy.ElementwiseKernel``, run by translating its CUDA body to NumPy.

    The real one compiles ``operation`` (CUDA C, executed once per element) into one GPU
    kernel. The stand-in accepts the small subset of C that an elementwise kernel of this
    package is written in, and runs it statement by statement on whole arrays, which computes
    the same numbers (every statement is elementwise, so the order of elements does not
    matter): declarations ``T name = expr;`` (``T`` or a C float type), assignments to output
    parameters ``out = expr;``, the operators ``+ - * /`` and parentheses, and the functions
    ``exp``, ``tanh``, ``log``, ``sqrt``, ``abs``/``fabs``, ``max``/``fmax``, ``min``/``fmin``.
    Anything else (``if``, ``?:``, loops, ``raw`` parameters) is refused, so a kernel the
    stand-in cannot check fails loudly instead of passing untested.
    """

    _FUNCTIONS = {"exp": "_np.exp", "tanh": "_np.tanh", "log": "_np.log", "sqrt": "_np.sqrt",
                  "abs": "_np.abs", "fabs": "_np.abs", "max": "_np.maximum",
                  "fmax": "_np.maximum", "min": "_np.minimum", "fmin": "_np.minimum"}

    def __init__(self, in_params: str, out_params: str, operation: str, name: str = "kernel",
                 **kwargs):
        self.name = name
        self.inputs = self._names(in_params)
        self.outputs = self._names(out_params)
        self.program = compile(self._translate(operation), f"<kernel {name}>", "exec")

    @staticmethod
    def _names(params: str) -> list:
        names = []
        for param in params.split(","):
            words = param.split()
            if not words:
                continue
            if "raw" in words or len(words) != 2:
                raise NotImplementedError(f"stand-in ElementwiseKernel: parameter {param!r} "
                                          "is not of the form 'T name'")
            names.append(words[1])
        return names

    def _translate(self, operation: str) -> str:
        import re
        lines = []
        for statement in operation.split(";"):
            statement = " ".join(statement.split())
            if not statement:
                continue
            if re.search(r"\b(if|else|for|while|return)\b|\?|\{|\}", statement):
                raise NotImplementedError(f"stand-in ElementwiseKernel {self.name}: cannot "
                                          f"translate {statement!r}")
            statement = re.sub(r"^(const\s+)?(T|float|double)\s+", "", statement)
            target, _, expression = statement.partition("=")
            target = target.strip()
            if not re.fullmatch(r"[A-Za-z_]\w*", target) or not expression:
                raise NotImplementedError(f"stand-in ElementwiseKernel {self.name}: cannot "
                                          f"translate {statement!r}")
            for c_name, numpy_name in self._FUNCTIONS.items():
                expression = re.sub(rf"\b{c_name}\s*\(", numpy_name + "(", expression)
            expression = re.sub(r"(\d+\.\d*|\d+)f\b", r"\1", expression)  # 1.0f → 1.0
            if target in self.outputs:
                lines.append(f"{target}[...] = {expression.strip()}")
            else:
                lines.append(f"{target} = {expression.strip()}")
        return "\n".join(lines)

    def __call__(self, *args):
        if len(args) != len(self.inputs) + len(self.outputs):
            raise TypeError(f"kernel {self.name}: expected {len(self.inputs)} inputs and "
                            f"{len(self.outputs)} outputs, got {len(args)} arguments")
        if not all(isinstance(a, ndarray) for a in args[len(self.inputs):]):
            raise TypeError(f"kernel {self.name}: outputs must be cupy.ndarray")
        scope = {"_np": _np}
        for name, value in zip(self.inputs + self.outputs, args):
            scope[name] = _unwrap(value, f"kernel {self.name}")
        with _np.errstate(over="ignore"):
            exec(self.program, scope)
        outs = args[len(self.inputs):]
        return outs[0] if len(outs) == 1 else outs
