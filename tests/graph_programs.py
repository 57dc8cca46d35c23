"""Small autograd programs that run on tinygrad_rnn and on PyTorch, step by step.

A *program* is plain JSON, so that it can be stored next to PyTorch's outcome and replayed
without torch::

    {"inputs": [{"values": [[1.0, NaN], ...], "dtype": "float32", "requires_grad": true}],
     "steps":  [{"op": "mul", "args": [0, 0]},                  # v1 = v0 * v0
                {"op": "isub", "args": [0, 1], "no_grad": true},  # with no_grad: v0 -= v1
                {"op": "sum", "args": [1], "params": {"dim": null, "keepdim": false}},
                {"op": "backward", "args": [2]}]}

Variables are numbered in order: the inputs first, then one per step (in-place steps, hooks
and ``backward`` give back their target, so a variable may alias an earlier one, as in
PyTorch). :func:`run` plays a program on one library (:class:`Ours` or :class:`Torch`) and
returns its *outcome*: every variable's final value and dtype, every leaf's gradient, and
the error (its type and the step that raised it) if a step failed. :func:`compare` says how
two outcomes differ. ``tests/fuzz_graphs.py`` generates random programs; the recorded
programs and PyTorch's outcomes are replayed by ``tests/test_fuzz.py``.
"""
from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

#: Steps that change their first argument in place (and give it back).
INPLACE = {"iadd", "isub", "imul", "idiv", "add_", "mul_", "zero_", "fill_", "clamp_",
           "setitem", "copy_"}
#: Each op: how to run it on a library ``L`` (Ours or Torch) with its arguments and params.
OPS = {
    "add": lambda L, a, b: a + b,
    "sub": lambda L, a, b: a - b,
    "mul": lambda L, a, b: a * b,
    "div": lambda L, a, b: a / b,
    "add_scalar": lambda L, a, scalar: a + L.scalar(scalar),
    "mul_scalar": lambda L, a, scalar: L.scalar(scalar) * a,
    "pow_scalar": lambda L, a, exponent: a ** L.scalar(exponent),
    "neg": lambda L, a: -a,
    "exp": lambda L, a: a.exp(),
    "log": lambda L, a: a.log(),
    "tanh": lambda L, a: a.tanh(),
    "sigmoid": lambda L, a: a.sigmoid(),
    "relu": lambda L, a: a.relu(),
    "clip": lambda L, a, lo, hi: L.clip(a, lo, hi),
    "sum": lambda L, a, dim, keepdim: L.reduce("sum", a, dim, keepdim),
    "mean": lambda L, a, dim, keepdim: L.reduce("mean", a, dim, keepdim),
    "amax": lambda L, a, dim, keepdim: L.reduce("amax", a, dim, keepdim),
    "reshape": lambda L, a, shape: a.reshape(tuple(shape)),
    "transpose": lambda L, a: a.transpose(0, 1),
    "getitem": lambda L, a, index: a[decode_index(index)],
    "matmul": lambda L, a, b: a @ b,
    "cat": lambda L, a, b: L.cat([a, b]),
    "stack": lambda L, a, b: L.stack([a, b]),
    "eq": lambda L, a, b: a == b,
    "lt": lambda L, a, b: a < b,
    "ne": lambda L, a, b: a != b,
    "le": lambda L, a, b: a <= b,
    "gt": lambda L, a, b: a > b,
    "ge_scalar": lambda L, a, scalar: a >= scalar,
    "double": lambda L, a: a.double(),
    "float": lambda L, a: a.float(),
    "detach": lambda L, a: a.detach(),
    # in place (Python's augmented assignment returns the target)
    "iadd": lambda L, a, b: _iop(a, b, "__iadd__"),
    "isub": lambda L, a, b: _iop(a, b, "__isub__"),
    "imul": lambda L, a, b: _iop(a, b, "__imul__"),
    "idiv": lambda L, a, b: _iop(a, b, "__itruediv__"),
    "add_": lambda L, a, b: a.add_(b),
    "mul_": lambda L, a, scalar: a.mul_(scalar),
    "zero_": lambda L, a: a.zero_(),
    "fill_": lambda L, a, value: a.fill_(value),
    "clamp_": lambda L, a, lo, hi: a.clamp_(lo, hi),
    "copy_": lambda L, a, b: a.copy_(b),
    "setitem": lambda L, a, b, index: _setitem(a, decode_index(index), b),
    # autograd
    "hook": lambda L, a, kind: L.hook(a, kind),
    "backward": lambda L, a: L.backward(a),
    "grad": lambda L, a: a.grad,
}


def _iop(a, b, name):
    result = getattr(a, name)(b)
    return a if result is NotImplemented else result


def _setitem(a, index, value):
    a[index] = value
    return a


def decode_index(index):
    """JSON index -> Python index: ints, ``[start, stop]`` slices and lists of them."""
    if isinstance(index, list) and index and isinstance(index[0], list):
        return tuple(slice(*i) if isinstance(i, list) else i for i in index)
    return slice(*index) if isinstance(index, list) else index


def decode_float(x):
    """JSON has no NaN/inf: they are stored as the strings "nan", "inf", "-inf"."""
    if isinstance(x, list):
        return [decode_float(v) for v in x]
    return float(x) if isinstance(x, str) else x


def encode_float(x):
    if isinstance(x, list):
        return [encode_float(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


# ---------------------------------------------------------------------------- libraries

class Ours:
    """tinygrad_rnn, seen through the few names where its API differs from PyTorch's."""
    name = "tinygrad_rnn"

    def __init__(self):
        import tinygrad_rnn
        self.tg = tinygrad_rnn
        self.Tensor = tinygrad_rnn.Tensor

    def tensor(self, values, dtype, requires_grad):
        return self.Tensor(np.array(decode_float(values), dtype=dtype),
                           requires_grad=requires_grad)

    def scalar(self, x):
        return decode_float(x)

    def no_grad(self):
        return self.tg.no_grad()

    def clip(self, a, lo, hi):
        return a.clip(lo, hi)

    def reduce(self, op, a, dim, keepdim):
        dim = tuple(dim) if isinstance(dim, list) else dim
        return getattr(a, op)(dim, keepdim)

    def cat(self, ts):
        return self.Tensor.cat(ts)

    def stack(self, ts):
        return self.Tensor.stack(ts)

    def hook(self, a, kind):
        a.register_hook(HOOKS[kind])
        return a

    def backward(self, a):
        a.backward()
        return a

    def numpy(self, t):
        return np.array(t.numpy())

    def dtype(self, t):
        return str(t.dtype)

    def grad(self, t):
        return None if t.grad is None else np.array(t.grad.numpy())

    def is_grad_leaf(self, t):
        try:
            return t.requires_grad and t.is_leaf
        except RuntimeError:  # PyTorch: a no_grad view modified in place refuses to answer
            return False


class Torch(Ours):
    """PyTorch (only imported when a live comparison or a recording asks for it)."""
    name = "torch"

    def __init__(self):
        import torch
        self.torch = torch

    def tensor(self, values, dtype, requires_grad):
        return self.torch.tensor(np.array(decode_float(values), dtype=dtype),
                                 requires_grad=requires_grad)

    def no_grad(self):
        return self.torch.no_grad()

    def clip(self, a, lo, hi):
        return a.clamp(lo, hi)

    def reduce(self, op, a, dim, keepdim):
        if dim is None:
            return getattr(self.torch, op)(a) if not keepdim else \
                getattr(self.torch, op)(a, dim=tuple(range(a.ndim)), keepdim=True)
        dim = tuple(dim) if isinstance(dim, list) else dim
        return getattr(self.torch, op)(a, dim=dim, keepdim=keepdim)

    def cat(self, ts):
        return self.torch.cat(ts)

    def stack(self, ts):
        return self.torch.stack(ts)

    def numpy(self, t):
        return t.detach().numpy().copy()

    def dtype(self, t):
        return str(t.dtype).replace("torch.", "")

    def grad(self, t):
        return None if t.grad is None else t.grad.numpy().copy()


#: Hooks a program can register: each maps the gradient the same way in both libraries.
HOOKS = {
    "double": lambda g: g * 2,
    "none": lambda g: None,
    "wrong_shape": lambda g: g.sum(),
    "wrong_dtype": lambda g: g.double() if str(g.dtype).endswith("float32") else g.float(),
    "not_a_tensor": lambda g: 1.0,
}


# ------------------------------------------------------------------------------ running

def run(program: dict, L) -> dict:
    """Play ``program`` on library ``L``; return its outcome (see the module docstring)."""
    vs, error = [], None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for spec in program["inputs"]:
            vs.append(L.tensor(spec["values"], spec["dtype"], spec.get("requires_grad", False)))
        for i, step in enumerate(program["steps"]):
            args = [vs[j] for j in step["args"]]
            params = {k: (decode_float(v) if k in ("scalar", "value", "lo", "hi") else v)
                      for k, v in step.get("params", {}).items()}
            try:
                with L.no_grad() if step.get("no_grad") else contextlib.nullcontext():
                    vs.append(OPS[step["op"]](L, *args, **params))
            except Exception as exc:  # noqa: BLE001  (the error *is* the outcome)
                error = {"step": i, "types": [c.__name__ for c in type(exc).__mro__],
                         "message": str(exc)}
                break
        return {"values": [L.numpy(v) for v in vs], "dtypes": [L.dtype(v) for v in vs],
                "grads": [L.grad(v) if L.is_grad_leaf(v) else None for v in vs],
                "requires_grad": [bool(v.requires_grad) for v in vs], "error": error}


def tolerance(dtype: str) -> dict:
    return {"float16": dict(rtol=1e-2, atol=1e-3), "float32": dict(rtol=2e-4, atol=1e-5)}.get(
        dtype, dict(rtol=1e-9, atol=1e-12))


def compare(ours: dict, theirs: dict) -> list[str]:
    """How ``ours`` differs from PyTorch's outcome ``theirs`` (empty: they agree).

    An error matches when PyTorch's exception type is one of ours' bases (our ShapeError is
    both a RuntimeError and a ValueError). When both fail at the same step, the values
    before it are compared; gradients only when neither failed."""
    diffs = []
    e1, e2 = ours["error"], theirs["error"]
    if (e1 is None) != (e2 is None) or (e1 and (e1["step"] != e2["step"]
                                                 or e2["types"][0] not in e1["types"])):
        return [f"error: ours {_describe_error(e1)}, torch {_describe_error(e2)}"]
    # Tolerance of the least precise dtype in the program: a float64 result computed from
    # float32 ones inherits their rounding.
    loosest = max(theirs["dtypes"], key=lambda d: tolerance(d)["rtol"])
    for i, (a, b) in enumerate(zip(ours["values"], theirs["values"])):
        if ours["dtypes"][i] != theirs["dtypes"][i]:
            diffs.append(f"v{i} dtype: ours {ours['dtypes'][i]}, torch {theirs['dtypes'][i]}")
        elif not _close(a, b, loosest):
            diffs.append(f"v{i} value: ours {a.tolist()}, torch {b.tolist()}")
    if e1 is None:
        for i, (a, b) in enumerate(zip(ours["grads"], theirs["grads"])):
            if (a is None) != (b is None) or (a is not None and not _close(a, b, loosest)):
                diffs.append(f"v{i} grad: ours {_list(a)}, torch {_list(b)}")
    return diffs


def _close(a, b, dtype: str) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "b" or b.dtype.kind == "b" or a.dtype.kind in "iu":
        return bool((a == b).all())
    return bool(np.allclose(a.astype(np.float64), b.astype(np.float64), equal_nan=True,
                            **tolerance(dtype)))


def _list(a):
    return None if a is None else a.tolist()


def _describe_error(e) -> str:
    return "no error" if e is None else f"{e['types'][0]} at step {e['step']}: {e['message'][:160]}"
