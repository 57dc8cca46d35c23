"""Replay the PyTorch-recorded fixtures on the active backend and measure the differences.

This is the one fixture runner, shared by the test suite (``tests/test_nn_parity.py``,
``tests/test_packed.py``, ``tests/test_tensor_ops.py``) and by ``python -m tinygrad_rnn
check`` (the way to verify an install, e.g. on a GPU box). It needs NumPy only: the fixtures
are ``.npz`` files written by ``tests/fixtures/record.py`` and its ``record_<topic>.py``
files (whose docstrings are their schemas) and read with ``allow_pickle=False``.

Where the fixtures are (:func:`find_fixtures`), first match wins:

1. the directory passed in (``--fixtures DIR``);
2. ``$TINYGRAD_RNN_FIXTURES``;
3. ``tests/fixtures`` of the source checkout this package was imported from;
4. ``<sys.prefix>/share/tinygrad_rnn/fixtures``, where an installed wheel puts them.

What is compared (one :class:`Row` per compared quantity)::

    group       replayed as                                             implementations
    ops         the primitive Tensor op of meta["op"], then backward    -
    linear      nn.Linear with the recorded weights, then backward      -
    loss        F.mse_loss / F.cross_entropy, then backward             -
    rnn         nn.RNN with the recorded weights, then backward         fused, unrolled
    lstm        nn.LSTM with the recorded weights, then backward        fused, unrolled
    gru         nn.GRU with the recorded weights, then backward         fused, unrolled
    optim       10 steps of SGD/Adam (+ clip_grad_norm_) on RNN+Linear  fused, unrolled
    state_dict  tinygrad_rnn.load of a PyTorch state dict, RNN+Linear   fused, unrolled
    seeds       the seed notebooks' nn.RNN with their weights, forward  fused, unrolled
    tensor_ops  PyTorch's everyday Tensor methods, then backward        -
    packed      nn.utils.rnn's packing and padding, then backward;      -
                RNN/LSTM/GRU on a PackedSequence, then backward         fused, unrolled
    nn_extra    the other losses, embedding, layer_norm, one_hot        -
    optim_extra 25 steps of AdamW/RMSprop/Adagrad on RNN+Linear         fused, unrolled
    lr_scheduler  a scheduler's learning rates (and momenta), stepped   -
    init        nn.init.calculate_gain                                  -
    lab         RNN/LSTM/GRU + Linear head, a loss at every step        fused, unrolled

The gradient cases use the fixture's loss ``sum_o (o * w_o).sum()`` over the outputs ``o``.

Error measure and tolerances
----------------------------
For every quantity, ``error = max|actual - expected| / scale``:

* **float64**: ``scale = max(1, max|expected|)``, tolerance ``1e-10``: relative for arrays
  with entries above 1, absolute (1e-10) below. An array of small values (a gradient that
  almost cancels) carries the rounding of the O(1) terms that were summed into it, so
  dividing by its own size would measure that cancellation, not a bug. The two libraries
  differ only in the order of floating-point operations: measured worst 2e-15 (T=200).
* **float32**: ``scale = max|expected|`` (the largest entry of the expected array),
  tolerance ``1e-5``, about 80 float32 machine epsilons (1.2e-7) of the array's largest
  entry; measured worst 5e-7 for T <= 5.
  Exception: the T=200 cases (``rnn/long_f32``, ``lstm/long_f32``, ``gru/long_f32``) get
  ``3e-5``. Its gradients are sums over
  200 time steps of terms that each went through up to 200 recurrent matmuls, so float32
  rounding (~6e-8 per op, summed in a different order than PyTorch's kernels, and in yet
  another order by cuBLAS under CuPy) accumulates with T: on NumPy it measures 1e-6, five
  times the T<=5 cases (<= 5e-7). 3e-5 keeps a 30x margin for other BLAS libraries while a
  real bug (a wrong sign, an off-by-one step, a missing term) gives errors of 1e-3 or more.

Groups whose tests ask for more check it here too (:data:`GROUP_TOLERANCES`): float64
``1e-12`` for ``packed``, ``nn_extra``, ``lr_scheduler``, ``init`` and ``lab``, whose
computations are short (the measured worst is below 1e-14).

A dtype or shape that differs from PyTorch's counts as an infinite error: float32 in means
float32 gradients out. Integer results (``batch_sizes``, indices, lengths, ``one_hot``) must
be equal: any difference is an error of at least 1 / max|expected|, far above a tolerance.
"""
from __future__ import annotations

import json
import math
import os
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import backend, creation, nn
from .autograd import no_grad
from .nn import functional as F
from .tensor import Tensor

np = backend.np  # host NumPy, for reading the fixtures

#: Environment variable naming a fixtures directory.
ENV_VAR = "TINYGRAD_RNN_FIXTURES"
#: The fixture groups, in the order they are run and printed.
GROUPS = ("ops", "linear", "loss", "rnn", "lstm", "gru", "optim", "state_dict", "seeds",
          "tensor_ops", "packed", "nn_extra", "optim_extra", "lr_scheduler", "init", "lab")
#: Groups with an ``nn.RNN`` inside: run once per implementation (``packed``: its layer
#: cases, see :func:`implementations`).
RNN_GROUPS = ("rnn", "lstm", "gru", "optim", "state_dict", "seeds", "packed", "optim_extra",
              "lab")
#: Implementation name -> the ``unroll`` argument of ``nn.RNN``.
IMPLEMENTATIONS = {"fused": False, "unrolled": True}
#: Base tolerances by dtype (see the module docstring for the error measure).
TOLERANCES = {"float64": 1e-10, "float32": 1e-5}
#: Looser float32 tolerances for long sequences, by (group, case); see the module docstring.
LONG_SEQUENCE_TOLERANCES = {("rnn", "long_f32"): 3e-5, ("lstm", "long_f32"): 3e-5,
                            ("gru", "long_f32"): 3e-5}
#: Tighter tolerances of some groups (those their own tests use), by dtype.
GROUP_TOLERANCES = {"packed": {"float64": 1e-12, "float32": 1e-5},
                    "nn_extra": {"float64": 1e-12, "float32": 1e-5},
                    "lr_scheduler": {"float64": 1e-12}, "init": {"float64": 1e-12},
                    "lab": {"float64": 1e-12}}


class FixturesNotFoundError(FileNotFoundError):
    """No fixtures directory could be found (the message lists where it looked)."""


class FixturesDamagedError(ValueError):
    """A fixture file exists but cannot be read (truncated or damaged)."""


@dataclass(frozen=True)
class Row:
    """One compared quantity of one fixture case, run with one implementation."""
    group: str
    case: str            # the fixture file name without ``.npz``: "base_f64", "adam", ...
    implementation: str  # "fused" / "unrolled" for groups with an RNN, else "-"
    quantity: str        # the fixture key: "output", "grad.weight_ih_l0", "step3.fc.bias", ...
    error: float         # max|actual - expected| / scale (inf: wrong shape/dtype, or raised)
    tolerance: float
    dtype: str           # the fixture's dtype: "float64" or "float32"
    note: str = ""       # why the error is infinite, when it is

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance  # False for NaN


# ------------------------------------------------------------------------------ locating

def source_fixtures_dir() -> Path:
    """``tests/fixtures`` next to the package, in a source checkout."""
    return Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def installed_fixtures_dir() -> Path:
    """Where ``setup.cfg``'s ``data_files`` install the fixtures."""
    return Path(sys.prefix) / "share" / "tinygrad_rnn" / "fixtures"


def _has_fixtures(path: Path) -> bool:
    return path.is_dir() and any(any((path / g).glob("*.npz")) for g in GROUPS)


def find_fixtures(path=None) -> Path:
    """The fixtures directory (see the module docstring for the search order).

    A directory given explicitly (argument or environment variable) must hold fixtures; it
    is an error, not a reason to look elsewhere, when it does not.
    """
    explicit = [(path, "given directory")] if path is not None else []
    if os.environ.get(ENV_VAR):
        explicit.append((os.environ[ENV_VAR], f"${ENV_VAR}"))
    if explicit:
        where, source = explicit[0]
        where = Path(where).expanduser()
        if not _has_fixtures(where):
            raise FixturesNotFoundError(
                f"no PyTorch fixtures in {where} ({source}): expected sub-directories "
                f"{', '.join(GROUPS)} holding .npz files")
        return where
    candidates = [source_fixtures_dir(), installed_fixtures_dir()]
    for where in candidates:
        if _has_fixtures(where):
            return where
    raise FixturesNotFoundError(
        "no PyTorch fixtures found (looked in " + " and ".join(str(c) for c in candidates)
        + f"); pass --fixtures DIR or set {ENV_VAR}")


def load_fixture(path) -> Tuple[dict, Dict[str, "np.ndarray"]]:
    """``(meta, arrays)`` of one fixture file; ``meta`` is ``{}`` for files without one."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays.pop("meta").item()) if "meta" in arrays else {}
    return meta, arrays


def fixture_files(group: str, root=None) -> List[Path]:
    """The case files of ``group``, sorted (auxiliary files without ``meta``, such as the
    exported state dict read by the ``state_dict`` case, are not cases)."""
    if group not in GROUPS:
        raise ValueError(f"unknown fixture group {group!r}; expected one of {', '.join(GROUPS)}")
    directory = find_fixtures(root) / group
    files = []
    for path in sorted(directory.glob("*.npz")):
        try:   # (opened here: np.load leaves the file open when it cannot read it)
            with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as f:
                if "meta" in f.files:
                    files.append(path)
        except (OSError, ValueError, zipfile.BadZipFile) as exc:   # truncated or damaged
            raise FixturesDamagedError(
                f"fixture file {str(path)!r} cannot be read ({type(exc).__name__}: {exc}); "
                "reinstall the package, or re-record the fixtures with "
                "tests/fixtures/record.py") from None
    return files


def recorded_with(root=None) -> List[str]:
    """The PyTorch versions the fixtures under ``root`` were recorded with (usually one)."""
    root = find_fixtures(root)
    versions = set()
    for group in GROUPS:
        for path in fixture_files(group, root)[:1]:
            versions.add(load_fixture(path)[0].get("torch_version", "?"))
    return sorted(versions)


def implementations(group: str, meta: Optional[dict] = None) -> Tuple[str, ...]:
    """The implementation names a group is run with; given a case's ``meta``, those of that
    case (the ``packed`` group's packing utilities have no RNN: ``"-"``)."""
    if group == "packed" and meta is not None and meta.get("kind") != "layer":
        return ("-",)
    return tuple(IMPLEMENTATIONS) if group in RNN_GROUPS else ("-",)


# ----------------------------------------------------------------------------- comparing

def tolerance(group: str, case: str, dtype: str) -> float:
    if (group, case) in LONG_SEQUENCE_TOLERANCES:
        return LONG_SEQUENCE_TOLERANCES[(group, case)]
    return GROUP_TOLERANCES.get(group, {}).get(dtype, TOLERANCES[dtype])


def max_error(actual, expected) -> Tuple[float, str]:
    """``(error, note)`` of ``actual`` against ``expected`` (both host arrays); see the
    module docstring. A shape or dtype mismatch, or NaN, is an infinite error."""
    if actual is None:
        return math.inf, "missing (no gradient)"
    if isinstance(actual, str):
        return math.inf, actual
    if actual.shape != expected.shape:
        return math.inf, f"shape {actual.shape} != expected {expected.shape}"
    if actual.dtype != expected.dtype:
        return math.inf, f"dtype {actual.dtype} != expected {expected.dtype}"
    if expected.size == 0:
        return 0.0, ""
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    diff = float(np.max(np.abs(a - e)))
    if math.isnan(diff):
        return math.inf, "NaN in the result"
    biggest = float(np.max(np.abs(e)))
    if expected.dtype == np.float64:
        scale = max(1.0, biggest)
    else:
        scale = biggest if biggest > 0 else 1.0  # an all-zero expectation: absolute error
    return diff / scale, ""


def _host(value):
    """A Tensor (or array, or number) as a host NumPy array; None and notes stay as they are."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Tensor):
        return value.numpy()
    if backend.is_array(value):
        return backend.to_host(value)
    return np.asarray(value)


# ------------------------------------------------------------------------------ replaying
# Each runner returns [(quantity, actual, expected), ...]; actual may be a Tensor.
Comparison = List[Tuple[str, object, "np.ndarray"]]


def _leaf(array) -> Tensor:
    """A fixture input as a leaf tensor on the active backend, same dtype, needing grad."""
    return Tensor(array, requires_grad=True)


def _weighted_backward(outputs: Dict[str, Tensor], arrays: dict) -> None:
    """``sum_o (o * w_o).sum()`` backward: the fixtures' way of seeding gradients."""
    loss = None
    for key, out in outputs.items():
        term = (out * Tensor(arrays[f"w_{key}"])).sum()
        loss = term if loss is None else loss + term
    assert loss is not None, "a fixture case has at least one output"
    loss.backward()


def _decode_index(entries):
    """The ``getitem`` index encoding of record.py (host int64 arrays for lists)."""
    def one(e):
        if isinstance(e, dict):
            return slice(*e["slice"])
        if isinstance(e, list):
            return np.array(e, dtype=np.int64)
        return e
    return tuple(one(e) for e in entries)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


#: ops fixture ``meta["op"]`` -> ``fn(inputs, meta)`` with our Tensor ops.
OPS: Dict[str, Callable] = {
    "add": lambda t, m: t[0] + t[1],
    "sub": lambda t, m: t[0] - t[1],
    "mul": lambda t, m: t[0] * t[1],
    "div": lambda t, m: t[0] / t[1],
    "add_scalar": lambda t, m: t[0] + m["scalar"],
    "sub_scalar": lambda t, m: t[0] - m["scalar"],
    "mul_scalar": lambda t, m: t[0] * m["scalar"],
    "div_scalar": lambda t, m: t[0] / m["scalar"],
    "radd_scalar": lambda t, m: m["scalar"] + t[0],
    "rsub_scalar": lambda t, m: m["scalar"] - t[0],
    "rmul_scalar": lambda t, m: m["scalar"] * t[0],
    "rdiv_scalar": lambda t, m: m["scalar"] / t[0],
    "neg": lambda t, m: -t[0],
    "pow_scalar": lambda t, m: t[0] ** m["exponent"],
    "pow_tensor": lambda t, m: t[0] ** t[1],
    "rpow_scalar": lambda t, m: m["scalar"] ** t[0],
    "matmul": lambda t, m: t[0] @ t[1],
    "sum": lambda t, m: t[0].sum(_axis(m["axis"]), keepdims=m["keepdims"]),
    "mean": lambda t, m: t[0].mean(_axis(m["axis"]), keepdims=m["keepdims"]),
    "max": lambda t, m: t[0].amax(() if m["axis"] is None else _axis(m["axis"]),
                                  keepdim=m["keepdims"]),
    "exp": lambda t, m: t[0].exp(),
    "log": lambda t, m: t[0].log(),
    "tanh": lambda t, m: t[0].tanh(),
    "relu": lambda t, m: t[0].relu(),
    "sigmoid": lambda t, m: t[0].sigmoid(),
    "reshape": lambda t, m: t[0].reshape(m["shape"]),
    "transpose": lambda t, m: t[0].transpose(m["dim0"], m["dim1"]),
    "permute": lambda t, m: t[0].permute(m["dims"]),
    "T": lambda t, m: t[0].T,
    "getitem": lambda t, m: t[0][_decode_index(m["index"])],
    "cat": lambda t, m: Tensor.cat(t, axis=m["axis"]),
    "stack": lambda t, m: Tensor.stack(t, axis=m["axis"]),
    "clip": lambda t, m: t[0].clip(m["min"], m["max"]),
    "softmax": lambda t, m: F.softmax(t[0], axis=m["axis"]),
    "log_softmax": lambda t, m: F.log_softmax(t[0], axis=m["axis"]),
}


def _run_ops(meta, arrays, root, unroll) -> Comparison:
    letters = [c for c in "abc" if f"in_{c}" in arrays]
    inputs = [_leaf(arrays[f"in_{c}"]) for c in letters]
    out = OPS[meta["op"]](inputs, meta)
    _weighted_backward({"out": out}, arrays)
    return [("out", out, arrays["out"])] + [
        (f"grad_{c}", t.grad, arrays[f"grad_{c}"]) for c, t in zip(letters, inputs)]


def _kw(meta, *names) -> dict:
    """The PyTorch keyword arguments of a ``tensor_ops`` case (lists of dims as tuples)."""
    return {k: _axis(meta[k]) for k in names if k in meta}


def _method(name: str) -> Callable:
    """The ``TENSOR_OPS`` entry for a method without arguments: ``a.<name>()``."""
    return lambda a, b, x, k: {"out": getattr(a, name)()}


#: tensor_ops fixture ``meta["op"]`` -> ``fn(a, b, extra, meta)`` returning the named outputs;
#: the same calls record_ops11.py made in PyTorch (``extra``: the ``mask``/``index`` tensors).
TENSOR_OPS: Dict[str, Callable] = {
    **{op: _method(op)
       for op in ("abs", "sqrt", "rsqrt", "log1p", "expm1", "sin", "cos", "clone", "t")},
    "max_all": lambda a, b, x, k: {"out": a.max()},
    "min_all": lambda a, b, x, k: {"out": a.min()},
    "max_dim": lambda a, b, x, k: dict(zip(("values", "indices"),
                                           a.max(k["dim"], keepdim=k["keepdim"]))),
    "min_dim": lambda a, b, x, k: dict(zip(("values", "indices"),
                                           a.min(k["dim"], keepdim=k["keepdim"]))),
    "amax": lambda a, b, x, k: {"out": a.amax(**_kw(k, "dim", "keepdim"))},
    "amin": lambda a, b, x, k: {"out": a.amin(**_kw(k, "dim", "keepdim"))},
    "maximum": lambda a, b, x, k: {"out": a.maximum(b)},
    "minimum": lambda a, b, x, k: {"out": a.minimum(b)},
    "where": lambda a, b, x, k: {"out": creation.where(x["mask"], a, b)},
    "where_scalar": lambda a, b, x, k: {"out": creation.where(x["mask"], a, k["other"])},
    "masked_fill": lambda a, b, x, k: {"out": a.masked_fill(x["mask"], k["value"])},
    "var": lambda a, b, x, k: {"out": a.var(**_kw(k, "dim", "keepdim", "correction",
                                                  "unbiased"))},
    "std": lambda a, b, x, k: {"out": a.std(**_kw(k, "dim", "keepdim", "correction",
                                                  "unbiased"))},
    "logsumexp": lambda a, b, x, k: {"out": a.logsumexp(**_kw(k, "dim", "keepdim"))},
    "norm": lambda a, b, x, k: {"out": a.norm(**_kw(k, "p", "dim", "keepdim"))},
    "softmax": lambda a, b, x, k: {"out": a.softmax(k["dim"])},
    "log_softmax": lambda a, b, x, k: {"out": a.log_softmax(k["dim"])},
    "sum": lambda a, b, x, k: {"out": a.sum(**_kw(k, "dim", "keepdim"))},
    "mean": lambda a, b, x, k: {"out": a.mean(**_kw(k, "dim", "keepdim"))},
    "flatten": lambda a, b, x, k: {"out": a.flatten(**_kw(k, "start_dim", "end_dim"))},
    "expand": lambda a, b, x, k: {"out": a.expand(*k["sizes"])},
    "repeat": lambda a, b, x, k: {"out": a.repeat(*k["sizes"])},
    "split": lambda a, b, x, k: {f"out_{i}": t for i, t in enumerate(
        a.split(k["split_size_or_sections"], k["dim"]))},
    "chunk": lambda a, b, x, k: {f"out_{i}": t for i, t in enumerate(
        a.chunk(k["chunks"], k["dim"]))},
    "gather": lambda a, b, x, k: {"out": a.gather(k["dim"], x["index"])},
    "cumsum": lambda a, b, x, k: {"out": a.cumsum(k["dim"])},
    "flip": lambda a, b, x, k: {"out": a.flip(_axis(k["dims"]))},
    "arange": lambda a, b, x, k: {"out": creation.arange(
        k["start"], k["end"], k["step"], dtype=k["dtype"] if k["float"] else None)},
    "eye": lambda a, b, x, k: {"out": creation.eye(k["n"], k["m"], dtype=k["dtype"])},
}


def _run_tensor_ops(meta, arrays, root, unroll) -> Comparison:
    letters = [c for c in "ab" if f"in_{c}" in arrays]
    inputs = [_leaf(arrays[f"in_{c}"]) for c in letters]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # The kink cases (sqrt at 0, var of one value) warn, as NumPy and PyTorch do; here
        # those values are expected.
        warnings.simplefilter("ignore")
        return _replay_tensor_op(meta, arrays, letters, inputs)


def _replay_tensor_op(meta, arrays, letters, inputs) -> Comparison:
    extra = {k: Tensor(arrays[k]) for k in ("mask", "index") if k in arrays}
    outputs = TENSOR_OPS[meta["op"]](*(inputs + [None, None])[:2], extra, meta)
    recorded = {k for k in arrays if not k.startswith(("in_", "w_", "grad_"))} - set(extra)
    if set(outputs) != recorded:
        return [("outputs", f"outputs {sorted(outputs)} != PyTorch's {sorted(recorded)}",
                 np.zeros(0))]
    if inputs:  # the factories (arange, eye) have none, and no gradients
        _weighted_backward({k: o for k, o in outputs.items() if f"w_{k}" in arrays}, arrays)
    rows = [(key, out, arrays[key]) for key, out in outputs.items()]
    rows += [(f"grad_{c}", t.grad, arrays[f"grad_{c}"])
             for c, t in zip(letters, inputs) if f"grad_{c}" in arrays]
    return [(q, *_finite_part(actual, expected)) for q, actual, expected in rows]


def _finite_part(actual, expected):
    """Expectations recorded at kinks may hold inf or NaN (``sqrt``'s gradient at 0): the
    replay must give the same non-finite values at the same places, and the rest is
    compared as usual."""
    actual = _host(actual)
    if not isinstance(actual, np.ndarray) or actual.shape != expected.shape \
            or np.isfinite(expected).all():
        return actual, expected
    special = ~np.isfinite(expected)
    if not np.array_equal(actual[special], expected[special], equal_nan=True) \
            or not np.isfinite(actual[~special]).all():
        return "inf/NaN at other places or of other signs than PyTorch's", expected
    return np.where(special, 0, actual), np.where(special, 0, expected)


def _run_linear(meta, arrays, root, unroll) -> Comparison:
    layer = nn.Linear(meta["in_features"], meta["out_features"], bias=meta["bias"],
                      dtype=meta["dtype"])
    layer.load_state_dict({k: arrays[k] for k in ("weight", "bias") if k in arrays})
    x = _leaf(arrays["x"])
    out = layer(x)
    _weighted_backward({"out": out}, arrays)
    rows = [("out", out, arrays["out"]), ("grad_x", x.grad, arrays["grad_x"]),
            ("grad_weight", layer.weight.grad, arrays["grad_weight"])]
    if layer.bias is not None:  # built with bias=meta["bias"]
        rows.append(("grad_bias", layer.bias.grad, arrays["grad_bias"]))
    return rows


def _run_loss(meta, arrays, root, unroll) -> Comparison:
    losses: Dict[str, Callable[..., Tensor]] = {"mse_loss": F.mse_loss,
                                                "cross_entropy": F.cross_entropy}
    fn = losses[meta["loss"]]
    x = _leaf(arrays["input"])
    out = fn(x, Tensor(arrays["target"]), reduction=meta["reduction"])
    _weighted_backward({"out": out}, arrays)
    return [("out", out, arrays["out"]), ("grad_input", x.grad, arrays["grad_input"])]


def _rnn_from_meta(meta, unroll: bool) -> "nn.RNN":
    return nn.RNN(meta["input_size"], meta["hidden_size"], num_layers=meta["num_layers"],
                  nonlinearity=meta["nonlinearity"], bias=meta["bias"],
                  batch_first=meta["batch_first"], dropout=meta["dropout"],
                  bidirectional=meta["bidirectional"], unroll=unroll, dtype=meta["dtype"])


def _load_prefixed(module, arrays, prefix: str) -> List[str]:
    """Load every ``<prefix><name>`` array into ``module`` (strict); returns the names in
    the fixture's order."""
    names = [k[len(prefix):] for k in arrays if k.startswith(prefix)]
    module.load_state_dict({n: arrays[prefix + n] for n in names})
    return names


def _names_row(ours: Sequence[str], theirs: Sequence[str]):
    """A comparison of the parameter names and order: error 0, or infinite if they differ
    (an ``actual`` that is a string is the note of a failed structural check)."""
    same = list(ours) == list(theirs)
    return ("param_names", np.zeros(0) if same else f"names {list(ours)} != {list(theirs)}",
            np.zeros(0))


def _run_rnn(meta, arrays, root, unroll) -> Comparison:
    rnn = _rnn_from_meta(meta, unroll)
    _load_prefixed(rnn, arrays, "param.")
    rnn.train(meta["train_mode"])
    x = _leaf(arrays["x"])
    h0 = _leaf(arrays["h0"]) if meta["h0_given"] else None
    output, h_n = rnn(x, h0)
    _weighted_backward({"output": output, "h_n": h_n}, arrays)
    rows = [_names_row([n for n, _ in rnn.named_parameters()], meta["param_names"]),
            ("output", output, arrays["output"]), ("h_n", h_n, arrays["h_n"]),
            ("grad.x", x.grad, arrays["grad.x"])]
    if h0 is not None:
        rows.append(("grad.h0", h0.grad, arrays["grad.h0"]))
    rows += [(f"grad.{n}", p.grad, arrays[f"grad.{n}"]) for n, p in rnn.named_parameters()]
    return rows


def _gated_from_meta(meta, unroll: bool) -> "nn.RNNBase":
    """The ``nn.LSTM`` / ``nn.GRU`` of an ``lstm``/``gru`` fixture."""
    kwargs = dict(num_layers=meta["num_layers"], bias=meta["bias"],
                  batch_first=meta["batch_first"], dropout=meta["dropout"],
                  bidirectional=meta["bidirectional"], unroll=unroll, dtype=meta["dtype"])
    if meta["mode"] == "LSTM":
        kwargs["proj_size"] = meta["proj_size"]
    return getattr(nn, meta["mode"])(meta["input_size"], meta["hidden_size"], **kwargs)


def _run_gated(meta, arrays, root, unroll) -> Comparison:
    """``lstm``/``gru``: like ``rnn``, with the LSTM's ``(h0, c0)`` in and ``(h_n, c_n)`` out."""
    layer = _gated_from_meta(meta, unroll)
    _load_prefixed(layer, arrays, "param.")
    layer.train(meta["train_mode"])
    lstm = meta["mode"] == "LSTM"
    x = _leaf(arrays["x"])
    initial = {}
    if meta["h0_given"]:
        initial = {"h0": _leaf(arrays["h0"])}
        if lstm:
            initial["c0"] = _leaf(arrays["c0"])
    hx = tuple(initial.values()) if lstm and initial else initial.get("h0")
    output, state = layer(x, hx)
    finals = {"h_n": state[0], "c_n": state[1]} if lstm else {"h_n": state}
    _weighted_backward({"output": output, **finals}, arrays)
    rows = [_names_row([n for n, _ in layer.named_parameters()], meta["param_names"]),
            ("output", output, arrays["output"])]
    rows += [(key, value, arrays[key]) for key, value in finals.items()]
    rows.append(("grad.x", x.grad, arrays["grad.x"]))
    rows += [(f"grad.{key}", t.grad, arrays[f"grad.{key}"]) for key, t in initial.items()]
    rows += [(f"grad.{n}", p.grad, arrays[f"grad.{n}"]) for n, p in layer.named_parameters()]
    return rows


class _RNNHead(nn.Module):
    """``fc(rnn(x)[0])``: the model of the optim and state_dict fixtures."""

    def __init__(self, rnn: "nn.RNN", fc: "nn.Linear"):
        super().__init__()
        self.rnn = rnn
        self.fc = fc

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.rnn(x)[0])


def _run_optim(meta, arrays, root, unroll) -> Comparison:
    from . import optim
    from .nn import utils

    model = _RNNHead(nn.RNN(3, 8, batch_first=True, unroll=unroll, dtype="float64"),
                     nn.Linear(8, 1, dtype="float64"))
    names = _load_prefixed(model, arrays, "init.")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["kwargs"].items()}
    opt = getattr(optim, meta["optimizer"])(model.parameters(), **kwargs)
    x, target = Tensor(arrays["x"]), Tensor(arrays["target"])
    params = dict(model.named_parameters())
    losses, norms, rows = [], [], [_names_row(list(params), meta["param_names"])]
    for k in range(1, meta["steps"] + 1):
        opt.zero_grad()
        loss = F.mse_loss(model(x), target)
        loss.backward()
        if meta["clip_max_norm"] is not None:
            norms.append(_host(utils.clip_grad_norm_(model.parameters(),
                                                     meta["clip_max_norm"])))
        opt.step()
        losses.append(_host(loss))
        for n in names:
            # Copies: the optimizer updates the arrays in place at the next step.
            rows.append((f"grad{k}.{n}", _host(params[n].grad).copy(), arrays[f"grad{k}.{n}"]))
            rows.append((f"step{k}.{n}", _host(params[n]).copy(), arrays[f"step{k}.{n}"]))
    rows.append(("loss", np.stack(losses), arrays["loss"]))
    if meta["clip_max_norm"] is not None:
        rows.append(("clip_norm", np.stack(norms), arrays["clip_norm"]))
    return rows


def _run_state_dict(meta, arrays, root, unroll) -> Comparison:
    r, f = meta["rnn"], meta["fc"]
    model = _RNNHead(nn.RNN(r["input_size"], r["hidden_size"], num_layers=r["num_layers"],
                            bidirectional=r["bidirectional"], batch_first=r["batch_first"],
                            unroll=unroll, dtype=meta["dtype"]),
                     nn.Linear(f["in_features"], f["out_features"], dtype=meta["dtype"]))
    from .serialization import load

    # What a user does with a state dict exported from PyTorch with np.savez.
    state = load(Path(root) / "state_dict" / meta["state_file"])
    model.load_state_dict(state)  # strict: every PyTorch key must have its match here
    with no_grad():
        rnn_output, rnn_h_n = model.rnn(Tensor(arrays["x"]))
        fc_output = model.fc(rnn_output)
    return [_names_row(list(model.state_dict()), meta["state_keys"]),
            ("rnn_output", rnn_output, arrays["rnn_output"]),
            ("rnn_h_n", rnn_h_n, arrays["rnn_h_n"]),
            ("fc_output", fc_output, arrays["fc_output"])]


def _run_seeds(meta, arrays, root, unroll) -> Comparison:
    rnn = _rnn_from_meta(meta, unroll)
    _load_prefixed(rnn, arrays, "param.")
    with no_grad():
        output, h_n = rnn(Tensor(arrays["x"]),
                          Tensor(arrays["h0"]) if meta["h0_given"] else None)
    return [("output", output, arrays["output"]), ("h_n", h_n, arrays["h_n"])]


# ------------------------------------------------------------------- packed sequences

def _packed_indices(packed, arrays) -> Comparison:
    """``batch_sizes`` and the sort indices of a PackedSequence, which must be PyTorch's
    (an index PyTorch has as None, because the batch was sorted, must be None here too)."""
    rows: Comparison = []
    for key in ("batch_sizes", "sorted_indices", "unsorted_indices"):
        value = getattr(packed, key)
        if key in arrays:
            rows.append((key, "None, PyTorch's is not" if value is None else value,
                         arrays[key]))
        else:
            rows.append((key, np.zeros(0, np.int64) if value is None
                         else "not None, PyTorch's is None", np.zeros(0, np.int64)))
    return rows


def _run_packing(meta, arrays, root, unroll) -> Comparison:
    """One ``nn.utils.rnn`` call of ``meta["kind"]`` (record_packed.py), then backward."""
    from .nn.utils import rnn as rnn_utils

    kind = meta["kind"]
    if "x" in arrays:
        leaves = {"x": _leaf(arrays["x"])}
    else:
        leaves = {f"seq{i}": _leaf(arrays[f"seq{i}"])
                  for i in range(len(meta["sequence_lengths"]))}
    seqs = list(leaves.values())
    rows: Comparison = []
    if kind in ("pack_padded_sequence", "pack_sequence", "pad_packed_sequence"):
        if kind == "pack_sequence":
            p = rnn_utils.pack_sequence(seqs, enforce_sorted=meta["enforce_sorted"])
        else:
            p = rnn_utils.pack_padded_sequence(leaves["x"], arrays["lengths"].tolist(),
                                               meta["batch_first"], meta["enforce_sorted"])
        if kind == "pad_packed_sequence":
            padded, lengths = rnn_utils.pad_packed_sequence(
                p, meta["pad_batch_first"], meta["padding_value"], meta["total_length"])
            outputs = {"padded": padded}
            rows.append(("padded_lengths", lengths, arrays["padded_lengths"]))
        else:
            outputs = {"data": p.data}
            rows += _packed_indices(p, arrays)
    elif kind == "pad_sequence":
        outputs = {"padded": rnn_utils.pad_sequence(seqs, meta["batch_first"],
                                                    meta["padding_value"],
                                                    meta["padding_side"])}
    elif kind == "unpack_sequence":
        outputs = {f"out{i}": o for i, o in enumerate(
            rnn_utils.unpack_sequence(rnn_utils.pack_sequence(seqs, enforce_sorted=False)))}
    else:  # unpad_sequence
        outputs = {f"out{i}": o for i, o in enumerate(rnn_utils.unpad_sequence(
            leaves["x"], Tensor(arrays["lengths"]), meta["batch_first"]))}
    _weighted_backward(outputs, arrays)
    rows += [(key, out, arrays[key]) for key, out in outputs.items()]
    return rows + [(f"grad.{k}", t.grad, arrays[f"grad.{k}"]) for k, t in leaves.items()]


def _packed_layer_from_meta(meta, unroll: bool) -> "nn.RNNBase":
    kwargs = dict(num_layers=meta["num_layers"], batch_first=meta["batch_first"],
                  bidirectional=meta["bidirectional"], unroll=unroll, dtype=meta["dtype"])
    mode = meta["mode"]
    if mode.startswith("RNN_"):
        return nn.RNN(meta["input_size"], meta["hidden_size"],
                      nonlinearity=mode[4:].lower(), **kwargs)
    if mode == "LSTM":
        kwargs["proj_size"] = meta["proj_size"]
    return getattr(nn, mode)(meta["input_size"], meta["hidden_size"], **kwargs)


def _run_packed_layer(meta, arrays, root, unroll) -> Comparison:
    """A layer on ``pack_padded_sequence(x, lengths, …)`` with ``(h0[, c0])`` when given:
    the output rows, each sequence's own ``h_n``/``c_n`` and every gradient."""
    from .nn.utils import rnn as rnn_utils

    layer = _packed_layer_from_meta(meta, unroll)
    _load_prefixed(layer, arrays, "param.")
    x = _leaf(arrays["x"])
    p = rnn_utils.pack_padded_sequence(x, arrays["lengths"].tolist(), meta["batch_first"],
                                       meta["enforce_sorted"])
    initial = {k: _leaf(arrays[k]) for k in ("h0", "c0") if k in arrays}
    lstm = meta["mode"] == "LSTM"
    hx = tuple(initial.values()) if lstm and initial else initial.get("h0")
    output, state = layer(p, hx)
    if not isinstance(output, rnn_utils.PackedSequence):
        return [("output", f"a {type(output).__name__}, not a PackedSequence",
                 arrays["output"])]
    finals = {"h_n": state[0], "c_n": state[1]} if lstm else {"h_n": state}
    _weighted_backward({"output": output.data, **finals}, arrays)
    rows = [_names_row([n for n, _ in layer.named_parameters()], meta["param_names"]),
            ("output", output.data, arrays["output"])]
    rows += [(key, value, arrays[key]) for key, value in finals.items()]
    rows.append(("output_padded", rnn_utils.pad_packed_sequence(output, meta["batch_first"])[0],
                 arrays["output_padded"]))
    rows += _packed_indices(output, arrays)
    rows.append(("grad.x", x.grad, arrays["grad.x"]))
    rows += [(f"grad.{key}", t.grad, arrays[f"grad.{key}"]) for key, t in initial.items()]
    rows += [(f"grad.{n}", q.grad, arrays[f"grad.{n}"]) for n, q in layer.named_parameters()]
    return rows


def _run_packed(meta, arrays, root, unroll) -> Comparison:
    runner = _run_packed_layer if meta["kind"] == "layer" else _run_packing
    return runner(meta, arrays, root, unroll)


# ------------------------------------------------------- the rest of nn, optim, the lab

def _run_nn_extra(meta, arrays, root, unroll) -> Comparison:
    """``F.<meta["fn"]>`` with the recorded tensors and keyword arguments, then backward."""
    if meta["fn"] == "one_hot":   # integers in and out: no gradient
        return [("out", F.one_hot(Tensor(arrays["in_input"]), meta["num_classes"]),
                 arrays["out"])]
    names = meta["tensors"] + meta["tensor_kwargs"]
    t = {n: Tensor(arrays[f"in_{n}"], requires_grad=n in meta["grads"]) for n in names}
    out = getattr(F, meta["fn"])(*[t[n] for n in meta["tensors"]],
                                 **{n: t[n] for n in meta["tensor_kwargs"]}, **meta["kwargs"])
    _weighted_backward({"out": out}, arrays)
    return [("out", out, arrays["out"])] + [
        (f"grad_{n}", t[n].grad, arrays[f"grad_{n}"]) for n in meta["grads"]]


#: The functions an ``lr_scheduler`` fixture names in ``meta["lambdas"]`` (record_nn11.py's).
LR_LAMBDAS: Dict[str, Callable[[int], float]] = {
    "exp95": lambda epoch: 0.95 ** epoch,
    "warmup5": lambda epoch: min(1.0, (epoch + 1) / 5),
}


def _run_lr_scheduler(meta, arrays, root, unroll) -> Comparison:
    """The recorded scheduler on a two-group optimizer, stepped ``meta["steps"]`` times:
    every learning rate (and momentum or ``betas[0]``) after construction and each step."""
    from . import optim
    from .optim import lr_scheduler

    params = [Tensor(np.zeros(2), requires_grad=True) for _ in meta["groups"]]
    opt = getattr(optim, meta["optimizer"])(
        [{"params": [p], **g} for p, g in zip(params, meta["groups"])])
    kwargs = {k: tuple(v) if isinstance(v, list) and k not in ("milestones", "min_lr") else v
              for k, v in meta["kwargs"].items()}
    if meta["scheduler"] == "LambdaLR":
        fns = [LR_LAMBDAS[name] for name in meta["lambdas"]]
        kwargs["lr_lambda"] = fns if len(fns) > 1 else fns[0]
    scheduler = getattr(lr_scheduler, meta["scheduler"])(opt, **kwargs)
    lrs, last_lrs, momenta = [], [], []
    for k in range(meta["steps"] + 1):
        if k:
            opt.step()
            scheduler.step(*([arrays["metrics"][k - 1]] if "metrics" in arrays else []))
        lrs.append([g["lr"] for g in opt.param_groups])
        last_lrs.append(scheduler.get_last_lr())
        momenta.append([g["betas"][0] if "betas" in g else g.get("momentum", 0.0)
                        for g in opt.param_groups])
    return [("lr", np.array(lrs, dtype=np.float64), arrays["lr"]),
            ("get_last_lr", np.array(last_lrs, dtype=np.float64), arrays["lr"]),
            ("momentum", np.array(momenta, dtype=np.float64), arrays["momentum"])]


def _run_init(meta, arrays, root, unroll) -> Comparison:
    gains = [nn.init.calculate_gain(name, param) for name, param in meta["calls"]]
    return [("gain", np.array(gains, dtype=np.float64), arrays["gain"])]


def _run_lab(meta, arrays, root, unroll) -> Comparison:
    """The BPTT lab's model: the layer, a Linear head on every step's output and the loss
    ``Σ_t step_weight[t] · mse(head(out_t), y[t])``, then backward (record_lab.py)."""
    kwargs = {k: meta[k] for k in ("num_layers", "batch_first")}
    if meta["mode"] == "RNN":
        kwargs["nonlinearity"] = meta["nonlinearity"]
    layer = getattr(nn, meta["mode"])(meta["input_size"], meta["hidden_size"], unroll=unroll,
                                      dtype="float64", **kwargs)
    _load_prefixed(layer, arrays, "param.")
    head = nn.Linear(meta["hidden_size"], meta["head_size"], dtype="float64")
    _load_prefixed(head, arrays, "head.")
    x, y = Tensor(arrays["x"]), Tensor(arrays["y"])
    h0 = Tensor(arrays["h0"])
    output, _ = layer(x, (h0, Tensor(arrays["c0"])) if meta["mode"] == "LSTM" else h0)
    if meta["batch_first"] and not meta["unbatched"]:
        output = output.transpose(0, 1)
    step_losses = [F.mse_loss(head(output[t]), y[t]) * float(w)
                   for t, w in enumerate(arrays["step_weight"].tolist())]
    total = step_losses[0]
    for loss in step_losses[1:]:
        total = total + loss
    total.backward()
    rows = [_names_row([n for n, _ in layer.named_parameters()], meta["param_names"]),
            ("step_loss", Tensor.stack(step_losses), arrays["step_loss"]),
            ("total_loss", total, arrays["total_loss"])]
    rows += [(f"grad.{n}", p.grad, arrays[f"grad.{n}"]) for n, p in layer.named_parameters()]
    return rows + [(f"grad.head.{n}", p.grad, arrays[f"grad.head.{n}"])
                   for n, p in head.named_parameters()]


RUNNERS = {"ops": _run_ops, "tensor_ops": _run_tensor_ops, "linear": _run_linear,
           "loss": _run_loss, "rnn": _run_rnn, "lstm": _run_gated, "gru": _run_gated,
           "optim": _run_optim, "state_dict": _run_state_dict, "seeds": _run_seeds,
           "packed": _run_packed, "nn_extra": _run_nn_extra, "optim_extra": _run_optim,
           "lr_scheduler": _run_lr_scheduler, "init": _run_init, "lab": _run_lab}


def run_file(path, implementation: str = "-", catch: bool = False) -> List[Row]:
    """Replay one fixture file with one implementation (``"fused"``/``"unrolled"`` for
    groups with an RNN, ``"-"`` otherwise) on the active backend.

    With ``catch=True`` an exception becomes a single failing row that names it (what
    ``check`` wants: report and go on); otherwise it propagates (what tests want).
    """
    path = Path(path)
    group, case = path.parent.name, path.stem
    meta, arrays = load_fixture(path)
    if implementation not in implementations(group, meta):
        raise ValueError(f"{group}/{case} runs with {implementations(group, meta)}, "
                         f"not {implementation!r}")
    tol = tolerance(group, case, meta["dtype"])
    try:
        comparisons = RUNNERS[group](meta, arrays, path.parent.parent,
                                     IMPLEMENTATIONS.get(implementation, False))
    except Exception as exc:
        if not catch:
            raise
        return [Row(group, case, implementation, "(raised)", math.inf, tol, meta["dtype"],
                    f"{type(exc).__name__}: {exc}".splitlines()[0])]
    rows = []
    for quantity, actual, expected in comparisons:
        error, note = max_error(_host(actual), expected)
        rows.append(Row(group, case, implementation, quantity, error, tol, meta["dtype"], note))
    return rows


def run(root=None, groups: Optional[Iterable[str]] = None, catch: bool = True) -> List[Row]:
    """Replay every fixture of ``groups`` (default: all) with every implementation."""
    root = find_fixtures(root)
    rows: List[Row] = []
    for group in (GROUPS if groups is None else tuple(groups)):
        for path in fixture_files(group, root):
            for implementation in implementations(group, load_fixture(path)[0]):
                rows += run_file(path, implementation, catch=catch)
    return rows


@dataclass(frozen=True)
class CaseResult:
    """The worst row of one (group, case, implementation)."""
    group: str
    case: str
    implementation: str
    worst: Row
    rows: Tuple[Row, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)


def by_case(rows: Iterable[Row]) -> List[CaseResult]:
    """Group rows by (group, case, implementation), keeping their order, each with its
    worst row (the largest error relative to its tolerance)."""
    grouped: Dict[Tuple[str, str, str], List[Row]] = {}
    for row in rows:
        grouped.setdefault((row.group, row.case, row.implementation), []).append(row)

    return [CaseResult(group, case, implementation,
                       max(rs, key=lambda r: r.error / r.tolerance), tuple(rs))
            for (group, case, implementation), rs in grouped.items()]
