"""The array backend: the one place that talks to NumPy or CuPy directly.

Every other module does its array math through ``backend.xp`` (the active array module) or
through the small helpers below, so that the same code runs on the CPU (NumPy) and on an
NVIDIA GPU (CuPy). Which one is active is decided once, when ``tinygrad_rnn`` is imported, by
the environment variable ``TINYGRAD_RNN_BACKEND`` (``numpy`` by default), and can be changed
before any tensor is made with :func:`use`::

    TINYGRAD_RNN_BACKEND=cupy python train.py        # or, in Python:
    tinygrad_rnn.backend.use("cupy")

Random numbers are always drawn on the host from one NumPy generator (seeded by
:func:`manual_seed`) and then moved to the device, so one seed gives the same weights on
NumPy and on CuPy.

A bad ``TINYGRAD_RNN_BACKEND`` (an unknown name, or ``cupy`` without CuPy or a GPU) does not
stop ``import tinygrad_rnn``: :data:`xp` then stands for the missing module and raises the
reason at the first array operation, so ``python -m tinygrad_rnn --help`` still works and
``use("numpy")`` (``train --backend numpy``) recovers.

NumPy's BLAS runs on :func:`get_num_threads` threads (1 by default) inside the package's own
work (module calls, training, the command line), whatever the import order
(see :func:`blas_threads`); outside it NumPy keeps its own setting unless you call
:func:`set_num_threads`.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, NoReturn

import numpy

#: Host NumPy. Use it for work that is host-side by nature (data generation, file I/O,
#: printing); array math on tensors goes through :data:`xp`.
np = numpy
#: NumPy's scalar type: arithmetic on 0-d arrays returns these, and tensors keep arrays.
HOST_SCALAR = numpy.generic

ENV_VAR = "TINYGRAD_RNN_BACKEND"
CHOICES = ("numpy", "cupy")
CUDA_HINT = 'pip install "tinygrad-rnn[cuda]"'

#: Name of the active backend: ``"numpy"`` or ``"cupy"``.
name: str = "numpy"
#: The active array module (``numpy`` or ``cupy``).
xp: Any = numpy

_cupy: Any = None  # the cupy module, once it has been imported successfully


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here (CuPy missing, or no GPU)."""


def _import_cupy():
    """Import CuPy and make sure a GPU answers; raise a helpful error otherwise."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install raising on import
        raise BackendUnavailableError(
            f"backend 'cupy' was requested but CuPy could not be imported ({exc}). "
            f"Install it with: {CUDA_HINT}") from None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device found")
    except Exception as exc:
        raise BackendUnavailableError(
            f"backend 'cupy' was requested but no usable GPU was found ({exc}). "
            f"CuPy needs an NVIDIA GPU with a working driver; see {CUDA_HINT}") from None
    _cupy = cupy
    return cupy


def module_for(backend_name: str, source: str = "backend.use()"):
    """The array module for ``backend_name``; ``source`` names where the name came from."""
    if backend_name == "numpy":
        return numpy
    if backend_name == "cupy":
        return _import_cupy()
    raise ValueError(
        f"{source}: unknown backend {backend_name!r}; valid choices are "
        + ", ".join(repr(c) for c in CHOICES))


def use(backend_name: str) -> None:
    """Switch the active backend (``"numpy"`` or ``"cupy"``). Do it before making tensors:
    existing tensors keep their arrays; move them with ``Tensor.to`` / ``Module.to``."""
    global name, xp
    xp = module_for(backend_name)
    name = backend_name


class _Unavailable:
    """Stands in for the array module when ``TINYGRAD_RNN_BACKEND`` names one that cannot be
    used: any use raises the reason (an error of the type the failed choice raised)."""

    def __init__(self, error: Exception):
        self._error = error

    def __getattr__(self, attribute: str):
        self.raise_reason()

    def raise_reason(self) -> NoReturn:
        raise type(self._error)(str(self._error))

    def __repr__(self) -> str:
        return f"<unavailable array module: {self._error}>"


def _init_from_env() -> None:
    value = os.environ.get(ENV_VAR, "numpy").strip().lower() or "numpy"
    global name, xp
    try:
        xp = module_for(value, source=f"environment variable {ENV_VAR}={value!r}")
    except (ValueError, BackendUnavailableError) as exc:
        xp = _Unavailable(exc)   # raised when an array is first needed, not on import
    name = value


def check_available() -> None:
    """Raise the reason why the active backend cannot run, if it cannot."""
    if isinstance(xp, _Unavailable):
        xp.raise_reason()


# --------------------------------------------------------------------------------- arrays

def name_of(array) -> str:
    """``"numpy"`` or ``"cupy"``: where ``array`` lives."""
    return "numpy" if isinstance(array, (numpy.ndarray, numpy.generic)) else "cupy"


def module_of(array):
    """The array module that owns ``array`` (NumPy for host arrays)."""
    return numpy if isinstance(array, (numpy.ndarray, numpy.generic)) else _import_cupy()


def to_host(array) -> numpy.ndarray:
    """A NumPy copy (or the array itself) of a NumPy or CuPy array."""
    if isinstance(array, (numpy.ndarray, numpy.generic)):
        return numpy.asarray(array)
    return array.get()


#: Host arrays at least this large go to the GPU through a page-locked (pinned) staging
#: buffer: the copy then runs at full bus speed, which pays for the extra host copy only
#: for large arrays (a checkpoint's weights, a data set), not for a batch of a toy task.
PINNED_MIN_BYTES = 1 << 20


def to_backend(array, backend_name: str | None = None):
    """Move a host or device array to ``backend_name`` (default: the active backend)."""
    target = module_for(backend_name) if backend_name else xp
    if target is numpy:
        return to_host(array)
    if isinstance(array, numpy.ndarray) and array.nbytes >= PINNED_MIN_BYTES:
        return _upload_pinned(target, array)
    return target.asarray(array)


def _upload_pinned(cupy_module, array: numpy.ndarray):
    """Copy a large host array to the GPU through a pinned staging buffer."""
    import cupyx
    staging = cupyx.empty_pinned(array.shape, dtype=array.dtype)
    staging[...] = array
    return cupy_module.asarray(staging)


def is_array(obj) -> bool:
    """Whether ``obj`` is a NumPy or CuPy array."""
    if isinstance(obj, numpy.ndarray):
        return True
    return _cupy is not None and isinstance(obj, _cupy.ndarray)


def scatter_add(target, index, values) -> None:
    """``target[index] += values`` with repeated indices accumulating (unbuffered add).

    ``add.at`` on the array's own module: NumPy's, or CuPy's (``cupyx.scatter_add`` is
    deprecated in CuPy in favour of ``cupy.add.at``)."""
    module_of(target).add.at(target, index, values)


_kernels: dict = {}


def elementwise_kernel(xp, name: str, in_params: str, out_params: str, body: str):
    """One fused elementwise kernel under CuPy, or ``None`` under NumPy.

    A recurrent cell's per-step work is a dozen small elementwise operations; on a GPU each
    one is a kernel launch, and the launches cost more than the arithmetic. Under CuPy the
    cells run their step as one ``cupy.ElementwiseKernel`` (``body`` is CUDA C, one element
    per thread, written next to the NumPy version it replaces), compiled once and cached.
    NumPy has no such thing (and needs none): the cell then runs its NumPy code. The CuPy
    stand-in of the test suite runs ``body`` translated to NumPy, so both paths are tested
    on the CPU."""
    key = (id(xp), name)
    if key not in _kernels:   # once per kernel: NumPy's missing attribute is slow to look up
        factory = getattr(xp, "ElementwiseKernel", None)
        _kernels[key] = None if factory is None else \
            factory(in_params, out_params, body, f"tinygrad_rnn_{name}")
    return _kernels[key]


# --------------------------------------------------------------------------------- dtypes

_default_dtype = numpy.dtype(numpy.float32)
FLOAT_DTYPES = (numpy.dtype(numpy.float16), numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def as_dtype(dtype) -> numpy.dtype:
    """Normalise ``"float32"``, ``numpy.float64`` etc. to a NumPy dtype, with a clear error."""
    try:
        return numpy.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}; expected e.g. 'float32' or 'float64'") from None


def set_default_dtype(dtype) -> None:
    """Set the dtype of new floating tensors and parameters (``"float32"`` or ``"float64"``)."""
    global _default_dtype
    dt = as_dtype(dtype)
    if dt not in (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64)):
        raise TypeError(f"set_default_dtype: only 'float32' and 'float64' are supported, got {dt}")
    _default_dtype = dt


def get_default_dtype() -> numpy.dtype:
    """The dtype of new floating tensors (``float32`` unless changed)."""
    return _default_dtype


def is_floating(dtype) -> bool:
    return numpy.dtype(dtype).kind == "f"


def is_integer(dtype) -> bool:
    return numpy.dtype(dtype).kind in "iu"


def host_array(data, dtype=None) -> numpy.ndarray:
    """Turn Python data (numbers, nested lists) into a host array; floats get the default
    dtype and integers int64, as ``torch.tensor`` does."""
    refuse_torch(data, "Tensor()")
    try:
        arr = numpy.asarray(data)
    except ValueError:  # NumPy's "inhomogeneous shape" for ragged nested lists
        raise ValueError("cannot make a tensor from a ragged nested list: every row must have "
                         "the same length (the data must be rectangular)") from None
    if dtype is not None:
        return arr.astype(as_dtype(dtype), copy=False)
    from_numpy = isinstance(data, (numpy.ndarray, numpy.generic))  # keeps its dtype
    if arr.dtype.kind == "f" and not from_numpy:
        return arr.astype(_default_dtype, copy=False)
    if arr.dtype.kind == "b":
        return arr
    if arr.dtype.kind in "iu":
        return arr if from_numpy else arr.astype(numpy.int64, copy=False)
    if arr.dtype.kind not in "f":
        raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype}; "
                        "expected numbers (int or float)")
    return arr


def refuse_torch(obj, where: str) -> None:
    """A ``TypeError`` saying how to convert, when ``obj`` is a PyTorch tensor: NumPy would
    convert one silently (losing its dtype and ``requires_grad``), or fail obscurely."""
    if type(obj).__module__.split(".")[0] == "torch":
        raise TypeError(
            f"{where}: got a {type(obj).__module__}.{type(obj).__name__} from PyTorch; "
            "tinygrad_rnn does not read torch tensors directly: convert it to a NumPy array "
            "first, e.g. tinygrad_rnn.Tensor(t.detach().cpu().numpy())")


# --------------------------------------------------------------------------------- random

_rng = numpy.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Seed the host generator that every random initialisation and sample draws from."""
    global _rng
    if not isinstance(seed, (int, numpy.integer)) or seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative integer seed, got {seed!r}")
    _rng = numpy.random.default_rng(int(seed))


def rng() -> numpy.random.Generator:
    """The host random generator (seeded by :func:`manual_seed`)."""
    return _rng


#: Elements drawn per chunk by :func:`uniform` (512 KiB of float64).
UNIFORM_CHUNK = 1 << 16


def uniform(shape: tuple, low: float, high: float, dtype=None):
    """Samples of U(low, high) with ``shape`` in ``dtype`` (default dtype if None), drawn on
    the host and moved to the active backend.

    The numbers are exactly ``rng().uniform(low, high, shape).astype(dtype)``'s, so one seed
    gives the same weights on NumPy and CuPy, in every release. But they are drawn in chunks
    of :data:`UNIFORM_CHUNK` straight into an array of ``dtype``: casting one whole float64
    draw would need three times the memory of a float32 result at its peak.
    """
    dt = _default_dtype if dtype is None else as_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"uniform: expected a floating dtype, got {dt}")
    out = numpy.empty(shape, dtype=dt)
    flat = out.reshape(-1)               # a view: filling it fills ``out``
    for start in range(0, flat.size, UNIFORM_CHUNK):
        stop = min(start + UNIFORM_CHUNK, flat.size)
        flat[start:stop] = _rng.uniform(low, high, stop - start)
    return to_backend(out)


# ---------------------------------------------------------------------------- BLAS threads

_num_threads: int | None = 1
_blas_depth = 0           # how many blas_threads() blocks are open (only the outermost sets)
_controller: Any = None   # threadpoolctl's ThreadpoolController, made on first use


def _threadpools():
    """threadpoolctl's view of the thread pools loaded in this process (BLAS, OpenMP)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController  # scans the loaded libraries once
        _controller = ThreadpoolController()
    return _controller


def set_num_threads(threads: int | None) -> None:
    """Use ``threads`` BLAS/OpenMP threads, like ``torch.set_num_threads``: from now on, in
    the whole process (your own NumPy code included), and inside tinygrad_rnn's own work.

    Without this call, only tinygrad_rnn's own work (module calls, training, the command
    line; see :func:`blas_threads`) runs on one thread, and your NumPy code keeps
    NumPy's default. One thread is fastest for RNNs: they multiply small matrices thousands
    of times, where threaded BLAS spends more waking its threads than it saves. ``None``:
    tinygrad_rnn leaves the threads as they are.
    """
    global _num_threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"set_num_threads: expected a positive integer or None, got "
                         f"{threads!r}")
    _num_threads = threads
    if threads is not None:
        _threadpools().limit(limits=threads)    # applied now, and kept


def get_num_threads() -> int | None:
    """The BLAS threads used inside tinygrad_rnn's own work (see :func:`set_num_threads`)."""
    return _num_threads


@contextlib.contextmanager
def blas_threads() -> Iterator[None]:
    """Within the block, NumPy's BLAS (OpenBLAS, MKL, BLIS) and OpenMP use
    :func:`get_num_threads` threads; on exit they get their previous setting back.

    Uses ``threadpoolctl``, which changes the limit of the libraries already loaded, so it
    works whatever was imported first (environment variables such as
    ``OPENBLAS_NUM_THREADS`` only work if set before NumPy is imported). Every module call
    (``Module.__call__``) and training loop runs inside such a block; nested blocks cost
    nothing.
    """
    global _blas_depth
    if _num_threads is None or _blas_depth:    # nested (a layer inside a model): already set
        _blas_depth += 1
        try:
            yield
        finally:
            _blas_depth -= 1
        return
    # Each library's count read and, only where it differs, set and later restored: about
    # 2 µs (threadpoolctl's ``limit()`` re-inspects every library: about 8 µs), once per
    # outermost block, that is per module call and per backward pass.
    changed = []
    for library in _threadpools().lib_controllers:
        threads = library.get_num_threads()
        if threads is not None and threads != _num_threads:
            library.set_num_threads(_num_threads)
            changed.append((library, threads))
    _blas_depth = 1
    try:
        yield
    finally:
        _blas_depth = 0
        for library, threads in changed:
            library.set_num_threads(threads)


_init_from_env()
