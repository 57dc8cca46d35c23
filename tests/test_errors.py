"""Every user-facing error: one row of ``docs/errors.md`` is one case here.

Each :class:`Case` triggers one mistake a student can make (a shape that does not fit, an
integer tensor where floats are needed, a second ``backward``, a damaged checkpoint, a bad
command line...) and states what must come out: the exception type and the parts of the
message that make it useful (both shapes, the op's name, the way out). The expected parts are
written from the inputs of the case, never pasted from the output.

``docs/errors.md`` shows the message each case produces *verbatim*; a test below compares the
document with what the code raises today, so the two cannot drift apart. After changing a
message, regenerate the table with::

    python tests/test_errors.py > errors_table.md    # then paste it into docs/errors.md

Cases that need CuPy and a GPU (mixing backends) are skipped elsewhere. Command-line cases run
``python -m tinygrad_rnn`` in a subprocess and expect a non-zero exit status and a one-line
error on stderr, never a traceback.
"""
from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend, nn, optim
from tinygrad_rnn.errors import ShapeError
from tinygrad_rnn.nn import functional as F, utils as nn_utils

# NumPy's own RuntimeWarnings (overflow in exp...) come with the anomaly cases; not the subject.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "errors.md"


class CommandFailed(Exception):
    """A CLI run that exited non-zero: ``str()`` is the last line it printed on stderr."""

    def __init__(self, returncode: int, stderr: str):
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        super().__init__(lines[-1] if lines else "")
        self.returncode, self.stderr = returncode, stderr


@dataclass
class Case:
    id: str                       # stable name, used in docs/errors.md
    group: str                    # section of the table
    situation: str                # what the user did
    fn: Callable[[Path], Any]     # does it; gets a temporary directory
    exc: type                     # expected exception type
    match: str                    # regex that must be found in the message
    needs: Optional[str] = None   # "gpu": needs CuPy and a GPU; "no-gpu": needs its absence
    status: Optional[int] = None  # command-line cases: the expected exit status
    doc: Optional[str] = None     # the message, for the table, where the case can't run


# ------------------------------------------------------------------------------ helpers

def f32(*shape) -> Tensor:
    return Tensor(np.ones(shape, dtype=np.float32))


def f64(*shape) -> Tensor:
    return Tensor(np.ones(shape, dtype=np.float64))


def i64(*shape) -> Tensor:
    return Tensor(np.ones(shape, dtype=np.int64))


def rnn(**kw) -> nn.RNN:
    return nn.RNN(3, 4, **kw)


def run_python(*args: str, env: Optional[dict] = None, cwd: Optional[Path] = None,
               timeout: float = 60) -> str:
    """Run ``python args...`` (in ``cwd``, else a fresh temporary directory, so that nothing
    is written into the repository); raise CommandFailed on failure."""
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryDirectory() as scratch:
        proc = subprocess.run([sys.executable, *args], cwd=cwd or scratch, env=full_env,
                              capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise CommandFailed(proc.returncode, proc.stderr)
    return proc.stdout


def cli(*args: str, cwd: Optional[Path] = None) -> str:
    return run_python("-m", "tinygrad_rnn", *args, cwd=cwd)


def backward_twice(_):
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()


def truncated_bptt_without_detach(_):
    """The classic truncated-BPTT mistake: carry h into the next chunk without .detach()."""
    model = rnn()
    h = None
    for _chunk in range(2):
        out, h = model(f32(5, 2, 3), h)
        out.sum().backward()


def backward_of_no_grad_result(_):
    x = Tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        y = (x * x).sum()
    y.backward()


def anomaly(fn):
    def run(_):
        with tg.detect_anomaly():
            return fn()
    return run


def sqrt_at_zero_backward():
    x = Tensor([0.0, 1.0], requires_grad=True)
    (x ** 0.5).sum().backward()


def nonfinite_clip(_):
    p = nn.Parameter(Tensor([1.0, 2.0]))
    p.grad = Tensor([float("inf"), 1.0])
    nn_utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


class _NoCupy:
    """An import hook that behaves as if CuPy were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "cupy" or name.startswith("cupy."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


def cupy_missing(_):
    """backend.use('cupy') on a machine without CuPy (simulated even where it is installed)."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] == "cupy"}
    saved_cached, hook = backend._cupy, _NoCupy()
    backend._cupy = None
    sys.meta_path.insert(0, hook)
    try:
        backend.use("cupy")
    finally:
        sys.meta_path.remove(hook)
        sys.modules.update(saved)
        backend._cupy = saved_cached


def mixed_backends(_):
    a = Tensor(np.ones(3, dtype=np.float32)).to("numpy")
    return a + a.to("cupy").detach()


def linear_sd():
    return nn.Linear(3, 2).state_dict()


def load_into_linear(sd):
    def run(_):
        nn.Linear(3, 2).load_state_dict(sd() if callable(sd) else sd)
    return run


def bad_gradient_op(_):
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)

    def wrong_double(t):  # forward 2x, backward claims 3x
        return Tensor._make(t.data * 2, (t,), lambda g: (g * 3,), "wrong_double")
    tg.gradcheck(lambda t: wrong_double(t).sum(), [x])


# --------------------------------------------------------------- checkpoint files (serialization)

def _save_load():
    from tinygrad_rnn import serialization
    return serialization.save, serialization.load


def write_checkpoint(path: Path) -> Path:
    save, _ = _save_load()
    save(nn.Linear(3, 2).state_dict(), path)
    return path


def load_file(make: Callable[[Path], Path]):
    def run(tmp):
        _, load = _save_load()
        return load(make(tmp))
    return run


def truncated_file(tmp):
    data = write_checkpoint(tmp / "good.npz").read_bytes()
    (tmp / "cut.npz").write_bytes(data[: len(data) // 2])
    return tmp / "cut.npz"


def corrupted_file(tmp):
    data = bytearray(write_checkpoint(tmp / "good.npz").read_bytes())
    start = data.index(b"\x93NUMPY") + 128  # inside the first array's bytes
    data[start:start + 16] = b"\xff" * 16
    (tmp / "bad.npz").write_bytes(bytes(data))
    return tmp / "bad.npz"


def pickle_file(tmp):
    (tmp / "model.pkl").write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    return tmp / "model.pkl"


def torch_save_like_file(tmp):
    """What torch.save writes: a zip archive holding data.pkl."""
    with zipfile.ZipFile(tmp / "model.pt", "w") as zf:
        zf.writestr("model/data.pkl", pickle.dumps({"weight": 1}))
    return tmp / "model.pt"


def object_array_file(tmp):
    np.savez(tmp / "obj.npz", weight=np.array([{"a": 1}], dtype=object))
    return tmp / "obj.npz"


def npy_file(tmp):
    np.save(tmp / "weight.npy", np.ones(3))
    return tmp / "weight.npy"


def empty_file(tmp):
    (tmp / "empty.npz").write_bytes(b"")
    return tmp / "empty.npz"


def save_to(obj, name):
    def run(tmp):
        save, _ = _save_load()
        save(obj() if callable(obj) else obj, tmp / name)
    return run


# ---------------------------------------------------------------------------- command line


def training_checkpoint(tmp: Path, task: str = "sine") -> Path:
    """A real checkpoint of `train` (step 0 of a tiny model), written in-process."""
    from tinygrad_rnn.train import TrainConfig, Trainer
    path = tmp / "run" / "checkpoint.npz"
    Trainer(TrainConfig(task, steps=1, hidden=4, batch_size=2, seq_len=5)).save(str(path))
    return path


def trained_checkpoint(tmp: Path) -> Path:
    """A checkpoint of `train` after 2 steps of a tiny model."""
    from tinygrad_rnn.train import TrainConfig, Trainer
    path = tmp / "run" / "checkpoint.npz"
    Trainer(TrainConfig("sine", steps=2, hidden=4, batch_size=2, seq_len=5)).run(
        checkpoint=str(path), quiet=True)
    return path


def truncated_training_checkpoint(tmp: Path) -> Path:
    path = training_checkpoint(tmp)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def state_dict_file(tmp: Path) -> Path:
    return write_checkpoint(tmp / "weights.npz")


def cli_with(make: Callable[[Path], Path], *args: str):
    """Run the CLI with ``{}`` in ``args`` replaced by the path ``make(tmp)`` returns."""
    def run(tmp):
        path = str(make(tmp))
        return cli(*(a.replace("{}", path) for a in args), cwd=tmp)
    return run


def cli_args(*args: str):
    return lambda tmp: cli(*(a.replace("{tmp}", str(tmp)) for a in args), cwd=tmp)


# ------------------------------------------------------------------------------- the table

SHAPES = [
    Case("add-broadcast", "shapes", "`a + b` with shapes (2, 3) and (2, 4)",
         lambda _: f32(2, 3) + f32(2, 4), RuntimeError,
         r"The size of tensor a \(3\) must match the size of tensor b \(4\) at non-singleton "
         r"dimension 1 \(add: shapes \(2, 3\) and \(2, 4\)"),
    Case("sub-broadcast-array", "shapes", "`t - array` with shapes (2, 3) and (4,)",
         lambda _: f32(2, 3) - np.ones(4, dtype=np.float32), RuntimeError,
         r"tensor a \(3\) must match the size of tensor b \(4\) at non-singleton dimension 1 "
         r"\(sub: shapes \(2, 3\) and \(4,\)"),
    Case("mul-broadcast-3d", "shapes", "`a * b` with shapes (3, 1, 5) and (2, 4, 5)",
         lambda _: f32(3, 1, 5) * f32(2, 4, 5), RuntimeError,
         r"tensor a \(3\) must match the size of tensor b \(2\) at non-singleton dimension 0 "
         r"\(mul: shapes \(3, 1, 5\) and \(2, 4, 5\)"),
    Case("div-broadcast", "shapes", "`a / b` with shapes (5,) and (2, 3)",
         lambda _: f32(5) / f32(2, 3), RuntimeError,
         r"tensor a \(5\) must match the size of tensor b \(3\) at non-singleton dimension 1 "
         r"\(div: shapes \(5,\) and \(2, 3\)"),
    Case("pow-broadcast", "shapes", "`a ** b` with shapes (2, 3) and (3, 2)",
         lambda _: f32(2, 3) ** f32(3, 2), RuntimeError,
         r"tensor a \(3\) must match the size of tensor b \(2\) at non-singleton dimension 1 "
         r"\(pow: shapes \(2, 3\) and \(3, 2\)"),
    Case("matmul-inner", "shapes", "`a @ b` with shapes (2, 3) and (4, 5)",
         lambda _: f32(2, 3) @ f32(4, 5), RuntimeError,
         r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"),
    Case("matmul-vector", "shapes", "`a @ b` with vectors of lengths 3 and 4",
         lambda _: f32(3) @ f32(4), RuntimeError,
         r"shapes cannot be multiplied \(3 and 4\)"),
    Case("matmul-batch", "shapes", "batched `a @ b` with shapes (2, 3, 4) and (3, 4, 5)",
         lambda _: f32(2, 3, 4) @ f32(3, 4, 5), RuntimeError,
         r"matmul: the batch dimensions \(2,\) and \(3,\) of shapes \(2, 3, 4\) and "
         r"\(3, 4, 5\) cannot be broadcast"),
    Case("mm-not-matrix", "shapes", "`a.mm(b)` with b of shape (3,)",
         lambda _: f32(2, 3).mm(f32(3)), RuntimeError, r"mat2 must be a matrix"),
    Case("matmul-0d", "shapes", "`a @ b` with a 0-d tensor",
         lambda _: Tensor(2.0) @ f32(3), RuntimeError,
         r"at least 1-dimensional, got shapes \(\) and \(3,\)"),
    Case("reshape", "shapes", "`reshape(4, 2)` of a tensor with 6 elements",
         lambda _: f32(2, 3).reshape(4, 2), RuntimeError,
         r"shape '\[4, 2\]' is invalid for input of size 6"),
    Case("cat-sizes", "shapes", "`Tensor.cat` of (2, 3) and (2, 4) along axis 0",
         lambda _: Tensor.cat([f32(2, 3), f32(2, 4)], axis=0), RuntimeError,
         r"sizes of tensors must match except in dimension 0; got shapes "
         r"\[\(2, 3\), \(2, 4\)\]"),
    Case("cat-axis", "shapes", "`Tensor.cat` of 2-D tensors along axis 2",
         lambda _: Tensor.cat([f32(2, 3), f32(2, 3)], axis=2), IndexError,
         r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"),
    Case("cat-empty", "shapes", "`Tensor.cat([])`",
         lambda _: Tensor.cat([]), ValueError, r"cat\(\): expected a non-empty list"),
    Case("stack-shapes", "shapes", "`Tensor.stack` of (2, 3) and (3, 2)",
         lambda _: Tensor.stack([f32(2, 3), f32(3, 2)]), RuntimeError,
         r"stack expects each tensor to be equal size, but got shapes \[\(2, 3\), \(3, 2\)\]"),
    Case("stack-axis", "shapes", "`Tensor.stack` of 2-D tensors along axis 4",
         lambda _: Tensor.stack([f32(2, 3), f32(2, 3)], axis=4), IndexError,
         r"Dimension out of range \(expected to be in range of \[-3, 2\], but got 4\)"),
    Case("sum-axis", "shapes", "`sum(axis=2)` of a 2-D tensor",
         lambda _: f32(2, 3).sum(axis=2), IndexError,
         r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"),
    Case("sum-axis-twice", "shapes", "`sum(axis=(1, -1))` of a 2-D tensor",
         lambda _: f32(2, 3).sum(axis=(1, -1)), RuntimeError,
         r"dim 1 appears multiple times in the list of dims"),
    Case("transpose-axis", "shapes", "`transpose(0, 3)` of a 2-D tensor",
         lambda _: f32(2, 3).transpose(0, 3), IndexError,
         r"Dimension out of range .* but got 3\)"),
    Case("permute", "shapes", "`permute(0, 0)` of a 2-D tensor",
         lambda _: f32(2, 3).permute(0, 0), RuntimeError,
         r"dims \(0, 0\) are not a permutation of the 2 axes of a tensor of shape \(2, 3\)"),
    Case("unsqueeze-axis", "shapes", "`unsqueeze(5)` of a 2-D tensor",
         lambda _: f32(2, 3).unsqueeze(5), IndexError,
         r"Dimension out of range \(expected to be in range of \[-3, 2\], but got 5\)"),
    Case("squeeze-axis", "shapes", "`squeeze(4)` of a 2-D tensor",
         lambda _: f32(2, 3).squeeze(4), IndexError,
         r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 4\)"),
    Case("index-range", "shapes", "`t[5]` of a tensor of shape (2, 3)",
         lambda _: f32(2, 3)[5], IndexError,
         r"index 5 is invalid for a tensor of shape \(2, 3\)"),
    Case("index-float", "shapes", "indexing with a float tensor",
         lambda _: f32(2, 3)[Tensor([0.5])], IndexError,
         r"tensors used as indices must be long, int or bool, got dtype float32"),
    Case("linear-features", "shapes", "`nn.Linear(3, 2)` on input of shape (4, 5)",
         lambda _: nn.Linear(3, 2)(f32(4, 5)), ShapeError,
         r"Linear: expected input with last dimension 3 \(in_features\), got shape \(4, 5\)"),
    Case("linear-not-tensor", "shapes", "`nn.Linear` called on a NumPy array",
         lambda _: nn.Linear(3, 2)(np.ones((4, 3))), TypeError,
         r"Linear: expected a Tensor input, got ndarray"),
    Case("rnn-input-size", "shapes", "`nn.RNN(3, 4)` on input of shape (5, 2, 7)",
         lambda _: rnn()(f32(5, 2, 7)), tg.errors.ShapeError,
         r"input.size\(-1\) must be equal to input_size. Expected 3, got 7"),
    Case("rnn-input-ndim", "shapes", "`nn.RNN` on a 4-D input",
         lambda _: rnn()(f32(5, 2, 1, 3)), tg.errors.ShapeError,
         r"Expected input to be 2D \(L, H_in\) or 3D \(L, N, H_in\), got 4D tensor of shape "
         r"\(5, 2, 1, 3\)"),
    Case("rnn-h0-shape", "shapes", "`nn.RNN(3, 4)` with h0 of shape (1, 3, 4) for a batch of 2",
         lambda _: rnn()(f32(5, 2, 3), f32(1, 3, 4)), tg.errors.ShapeError,
         r"Expected hidden size \(1, 2, 4\), got \(1, 3, 4\)"),
    Case("rnn-h0-layers", "shapes", "`nn.RNN(3, 4, num_layers=2)` with h0 for one layer",
         lambda _: rnn(num_layers=2)(f32(5, 2, 3), f32(1, 2, 4)), tg.errors.ShapeError,
         r"Expected hidden size \(2, 2, 4\), got \(1, 2, 4\)"),
    Case("rnn-h0-ndim", "shapes", "`nn.RNN` with a 2-D h0 for batched 3-D input",
         lambda _: rnn()(f32(5, 2, 3), f32(2, 4)), tg.errors.ShapeError,
         r"for batched 3-D input, h0 should be 3-D but got 2-D tensor of shape \(2, 4\)"),
    Case("rnn-not-tensor", "shapes", "`nn.RNN` called on a NumPy array",
         lambda _: rnn()(np.ones((5, 2, 3))), TypeError,
         r"RNN: expected input to be a Tensor, got ndarray"),
    Case("rnncell-hidden", "shapes", "`nn.RNNCell(3, 4)` with hx of shape (2, 5)",
         lambda _: nn.RNNCell(3, 4)(f32(2, 3), f32(2, 5)), tg.errors.ShapeError,
         r"RNNCell: Expected hidden size \(2, 4\), got \(2, 5\)"),
    Case("mse-shapes", "shapes", "`mse_loss` of shapes (4, 1) and (4,)",
         lambda _: F.mse_loss(f32(4, 1), f32(4)), ShapeError,
         r"input shape \(4, 1\) and target shape \(4,\) must be the same"),
    Case("ce-target-shape", "shapes", "`cross_entropy` of logits (2, 3) and 3 targets",
         lambda _: F.cross_entropy(f32(2, 3), Tensor([0, 1, 1])), ShapeError,
         r"expected target of shape \(2,\) for input of shape \(2, 3\) \(N, C, \.\.\.\), got "
         r"\(3,\)"),
    Case("ce-target-range", "shapes", "`cross_entropy` with class 3 for 3 classes",
         lambda _: F.cross_entropy(f32(2, 3), Tensor([0, 3])), IndexError,
         r"Target 3 is out of bounds for 3 classes"),
    Case("loss-reduction", "shapes", "`nn.MSELoss(reduction='avg')`",
         lambda _: nn.MSELoss(reduction="avg"), ValueError,
         r"avg is not a valid value for reduction; expected one of mean, sum, none"),
]

DTYPES = [
    Case("exp-int", "dtypes", "`exp()` of an integer tensor",
         lambda _: i64(3).exp(), TypeError,
         r"exp\(\): expected a floating point tensor, got dtype int64; convert it first with "
         r"\.float\(\)"),
    Case("tanh-int", "dtypes", "`tanh()` of an integer tensor",
         lambda _: i64(3).tanh(), TypeError, r"tanh\(\): expected a floating point tensor"),
    Case("mean-int", "dtypes", "`mean()` of an integer tensor",
         lambda _: i64(3).mean(), TypeError, r"mean\(\): expected a floating point tensor"),
    Case("softmax-int", "dtypes", "`F.softmax` of an integer tensor",
         lambda _: F.softmax(i64(2, 3)), TypeError,
         r"log_softmax: expected a floating point tensor, got dtype int64"),
    Case("requires-grad-int", "dtypes", "`Tensor([1, 2], requires_grad=True)`",
         lambda _: Tensor([1, 2], requires_grad=True), RuntimeError,
         r"only Tensors of floating point dtype can require gradients, got dtype int64"),
    Case("linear-int", "dtypes", "`nn.Linear` on an integer tensor",
         lambda _: nn.Linear(3, 2)(i64(4, 3)), TypeError,
         r"Linear: input dtype int64 does not match the parameters' dtype float32"),
    Case("linear-float64", "dtypes", "float64 input into a float32 `nn.Linear`",
         lambda _: nn.Linear(3, 2)(f64(4, 3)), TypeError,
         r"Linear: input dtype float64 does not match the parameters' dtype float32; convert"),
    Case("rnn-int", "dtypes", "`nn.RNN` on an integer tensor",
         lambda _: rnn()(i64(5, 2, 3)), TypeError,
         r"RNN: expected a floating point input, got dtype int64; convert it with \.float\(\)"),
    Case("rnn-float64", "dtypes", "float64 input into a float32 `nn.RNN`",
         lambda _: rnn()(f64(5, 2, 3)), TypeError,
         r"RNN: input dtype float64 does not match the parameters' dtype float32"),
    Case("rnn-h0-dtype", "dtypes", "float64 h0 with float32 input",
         lambda _: rnn()(f32(5, 2, 3), f64(1, 2, 4)), TypeError,
         r"RNN: h0 dtype float64 does not match input dtype float32"),
    Case("rnncell-int", "dtypes", "`nn.RNNCell` on an integer tensor",
         lambda _: nn.RNNCell(3, 4)(i64(2, 3)), TypeError,
         r"RNNCell: input dtype int64 does not match the parameters' dtype float32"),
    Case("mse-int", "dtypes", "`mse_loss` of integer tensors",
         lambda _: F.mse_loss(i64(3), i64(3)), TypeError,
         r"mse_loss: expected a floating point tensor, got dtype int64"),
    Case("mse-list", "dtypes", "`mse_loss` of a Python list and a tensor",
         lambda _: F.mse_loss([1.0, 2.0], f32(2)), TypeError,
         r"mse_loss: expected a Tensor, got list"),
    Case("ce-float-target", "dtypes", "`cross_entropy` with float targets",
         lambda _: F.cross_entropy(f32(2, 3), Tensor([0.0, 1.0])), TypeError,
         r"expected target of integer dtype \(class indices\), got float32"),
    Case("ce-int-logits", "dtypes", "`cross_entropy` with integer logits",
         lambda _: F.cross_entropy(i64(2, 3), Tensor([0, 1])), TypeError,
         r"cross_entropy: expected a floating point tensor, got dtype int64"),
    Case("tensor-strings", "dtypes", "`Tensor(['a', 'b'])`",
         lambda _: Tensor(["a", "b"]), TypeError,
         r"cannot make a tensor from data of dtype <U1; expected numbers"),
    Case("tensor-ragged", "dtypes", "`Tensor([[1, 2], [3]])` (ragged list)",
         lambda _: Tensor([[1.0, 2.0], [3.0]]), ValueError,
         r"cannot make a tensor from a ragged nested list: every row must have the same "
         r"length"),
    Case("unknown-dtype", "dtypes", "`Tensor([1.0], dtype='floaty')`, a misspelt dtype",
         lambda _: Tensor([1.0], dtype="floaty"), TypeError,
         r"unknown dtype 'floaty'; expected e.g. 'float32' or 'float64'"),
    Case("default-dtype-int", "dtypes", "`set_default_dtype('int32')`",
         lambda _: tg.set_default_dtype("int32"), TypeError,
         r"only 'float32' and 'float64' are supported, got int32"),
]

EMPTY = [
    Case("max-empty", "empty", "`max()` of an empty tensor",
         lambda _: f32(0, 3).max(), RuntimeError, r"max\(\): expected a non-empty tensor"),
    Case("item-many", "empty", "`item()` of a tensor with 6 elements",
         lambda _: f32(2, 3).item(), tg.errors.ShapeError,
         r"a Tensor with 6 elements cannot be converted to Scalar"),
    Case("rnn-empty-sequence", "empty", "`nn.RNN` on a sequence of length 0, shape (0, 2, 3)",
         lambda _: rnn()(f32(0, 2, 3)), tg.errors.ShapeError,
         r"RNN: expected a sequence of length >= 1, got input of shape \(0, 2, 3\)"),
    Case("rnn-empty-sequence-bf", "empty", "`nn.RNN(batch_first=True)` on shape (2, 0, 3)",
         lambda _: rnn(batch_first=True)(f32(2, 0, 3)), tg.errors.ShapeError,
         r"RNN: expected a sequence of length >= 1, got input of shape \(2, 0, 3\)"),
    Case("rnn-empty-batch", "empty", "`nn.RNN` on an empty batch, shape (5, 0, 3)",
         lambda _: rnn()(f32(5, 0, 3)), tg.errors.ShapeError,
         r"RNN: expected a batch of at least one sequence, got input of shape \(5, 0, 3\)"),
]

ANOMALY = [
    Case("anomaly-exp-overflow", "nan-inf", "`exp(1000)` under `detect_anomaly()`",
         anomaly(lambda: Tensor([1000.0], requires_grad=True).exp()), RuntimeError,
         r"detect_anomaly: op 'exp' produced Inf values in its forward \(output\)"),
    Case("anomaly-log-zero", "nan-inf", "`log(0)` under `detect_anomaly()`",
         anomaly(lambda: Tensor([0.0, 1.0]).log()), RuntimeError,
         r"op 'log' produced Inf values in its forward"),
    Case("anomaly-zero-div-zero", "nan-inf", "`0 / 0` under `detect_anomaly()`",
         anomaly(lambda: Tensor([0.0]) / Tensor([0.0])), RuntimeError,
         r"op 'div' produced NaN values in its forward"),
    Case("anomaly-backward", "nan-inf", "backward of `sqrt` at 0 under `detect_anomaly()`",
         anomaly(sqrt_at_zero_backward), RuntimeError,
         r"op 'pow\(0.5\)' produced Inf values in its backward \(gradient\)"),
    Case("anomaly-rnn-nan-input", "nan-inf", "NaN in the input of `nn.RNN` (fused) under "
         "`detect_anomaly()`",
         anomaly(lambda: rnn()(Tensor(np.full((5, 2, 3), np.nan, dtype=np.float32)))),
         RuntimeError, r"op 'rnn_tanh' produced NaN values in its forward"),
    Case("clip-nonfinite", "nan-inf", "`clip_grad_norm_(..., error_if_nonfinite=True)` with an "
         "Inf gradient", nonfinite_clip, RuntimeError,
         r"total norm of order 2.0 for gradients from `parameters` is non-finite"),
    Case("gradcheck-wrong", "nan-inf", "`gradcheck` of an op whose backward is wrong",
         bad_gradient_op, tg.GradcheckError, r"gradcheck failed for input 0 at index"),
]

BACKWARD = [
    Case("backward-twice", "backward", "`loss.backward()` twice", backward_twice, RuntimeError,
         r"Trying to backward through the graph a second time.*Specify retain_graph=True"),
    Case("tbptt-no-detach", "backward", "truncated BPTT carrying `h` without `.detach()`",
         truncated_bptt_without_detach, RuntimeError,
         r"retain_graph=True.*call \.detach\(\) on tensors you carry from one graph to the "
         r"next"),
    Case("backward-non-scalar", "backward", "`y.backward()` for y of shape (2, 3)",
         lambda _: (Tensor(np.ones((2, 3)), requires_grad=True) * 2).backward(), RuntimeError,
         r"grad can be implicitly created only for scalar outputs; this tensor has shape "
         r"\(2, 3\)"),
    Case("backward-no-grad", "backward", "`backward()` of a tensor that needs no gradient",
         lambda _: Tensor([1.0, 2.0]).sum().backward(), RuntimeError,
         r"does not require grad and does not have a grad_fn"),
    Case("backward-under-no-grad", "backward", "`backward()` of a result computed under "
         "`no_grad()`", backward_of_no_grad_result, RuntimeError,
         r"does not require grad.*no_grad\(\)"),
    Case("backward-grad-shape", "backward", "`y.backward(grad)` with grad of the wrong shape",
         lambda _: (Tensor(np.ones((2, 3)), requires_grad=True) * 2).backward(np.ones(3)),
         RuntimeError, r"grad has shape \(3,\) but the tensor has shape \(2, 3\)"),
    Case("requires-grad-non-leaf", "backward", "`requires_grad_()` on a computed tensor",
         lambda _: (Tensor([1.0], requires_grad=True) * 2).requires_grad_(False), RuntimeError,
         r"you can only change requires_grad flags of leaf tensors"),
    Case("retain-grad-no-grad", "backward", "`retain_grad()` on a tensor without grad",
         lambda _: Tensor([1.0]).retain_grad(), RuntimeError,
         r"can't retain_grad on a Tensor that has requires_grad=False"),
]

BACKENDS = [
    Case("backend-unknown", "backend", "`backend.use('torch')`",
         lambda _: backend.use("torch"), ValueError,
         r"backend.use\(\): unknown backend 'torch'; valid choices are 'numpy', 'cupy'"),
    Case("backend-env", "backend", "`TINYGRAD_RNN_BACKEND=torch`, then the first tensor "
         "(`import tinygrad_rnn` itself works)",
         lambda _: run_python("-c", "import tinygrad_rnn as tg; tg.Tensor([1.0])",
                              env={"TINYGRAD_RNN_BACKEND": "torch"}),
         CommandFailed,
         r"ValueError: environment variable TINYGRAD_RNN_BACKEND='torch': unknown backend "
         r"'torch'; valid choices are 'numpy', 'cupy'"),
    Case("tensor-to-unknown", "backend", "`t.to('gpu')`",
         lambda _: f32(2).to("gpu"), ValueError,
         r"Tensor.to\(\): unknown backend 'gpu'; valid choices"),
    Case("module-to-unknown", "backend", "`model.to('cuda')`",
         lambda _: nn.Linear(3, 2).to("cuda"), ValueError,
         r"Module.to\(\): unknown backend 'cuda'; valid choices"),
    Case("cupy-missing", "backend", "`backend.use('cupy')` without CuPy installed",
         cupy_missing, backend.BackendUnavailableError,
         r"backend 'cupy' was requested but CuPy could not be imported .*Install it with: "
         r"pip install \"tinygrad-rnn\[cuda\]\""),
    Case("mixed-backends", "backend", "`a + b` with a on NumPy and b on CuPy",
         mixed_backends, RuntimeError,
         r"Expected all tensors to be on the same backend, but found tensors on 'numpy' and "
         r"'cupy'", needs="gpu",
         doc="Expected all tensors to be on the same backend, but found tensors on 'numpy' and "
             "'cupy'; move one with .to('numpy')"),
]

STATE_DICTS = [
    Case("sd-missing", "state_dict", "`load_state_dict` without `bias`",
         load_into_linear(lambda: {"weight": linear_sd()["weight"]}), RuntimeError,
         r"Error\(s\) in loading state_dict for Linear:\n\tMissing key\(s\) in state_dict: "
         r"\"bias\"\."),
    Case("sd-unexpected", "state_dict", "`load_state_dict` with an extra key",
         load_into_linear(lambda: {**linear_sd(), "scale": Tensor([1.0])}), RuntimeError,
         r"Unexpected key\(s\) in state_dict: \"scale\"\."),
    Case("sd-shape", "state_dict", "`load_state_dict` with `weight` of shape (2, 4)",
         load_into_linear(lambda: {**linear_sd(), "weight": f32(2, 4)}), RuntimeError,
         r"size mismatch for weight: copying a param with shape \(2, 4\) from checkpoint, the "
         r"shape in current model is \(2, 3\)"),
    Case("sd-dtype", "state_dict", "`load_state_dict` with an integer `bias`",
         load_into_linear(lambda: {**linear_sd(), "bias": i64(2)}), RuntimeError,
         r"dtype mismatch for bias: expected a floating point array, got int64"),
    Case("sd-value-type", "state_dict", "`load_state_dict` with a list as value",
         load_into_linear(lambda: {**linear_sd(), "bias": [0.0, 0.0]}), RuntimeError,
         r"value for bias has type list; expected a Tensor or an array"),
    Case("sd-all-problems", "state_dict", "missing, unexpected and mis-shaped keys at once",
         load_into_linear(lambda: {"weight": f32(3, 3), "w": f32(1)}), RuntimeError,
         r"Missing key\(s\) in state_dict: \"bias\"\.\n\tUnexpected key\(s\) in state_dict: "
         r"\"w\"\.\n\tsize mismatch for weight"),
    Case("sd-not-mapping", "state_dict", "`load_state_dict(list_of_tensors)`",
         load_into_linear(lambda: list(linear_sd().values())), TypeError,
         r"Expected state_dict to be dict-like \(name -> tensor\), got list"),
    Case("optim-sd-wrong", "state_dict", "`Adam.load_state_dict(model.state_dict())`",
         lambda _: optim.Adam(nn.Linear(3, 2).parameters()).load_state_dict(linear_sd()),
         ValueError,
         r"expected an optimizer state dict with keys 'param_groups' and 'state', got "
         r"\['bias', 'weight'\]"),
    Case("optim-sd-other-optimizer", "state_dict", "loading an SGD state into Adam",
         lambda _: optim.Adam(nn.Linear(3, 2).parameters()).load_state_dict(
             optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1).state_dict()),
         ValueError, r"was it saved from a different optimizer\?"),
]

OPTIM = [
    Case("optim-lr", "optim", "`SGD(params, lr=-0.1)`",
         lambda _: optim.SGD(nn.Linear(3, 2).parameters(), lr=-0.1), ValueError,
         r"Invalid learning rate: -0.1"),
    Case("optim-tensor", "optim", "`SGD(model.weight, lr=0.1)` (a Tensor, not a list)",
         lambda _: optim.SGD(nn.Linear(3, 2).weight, lr=0.1), TypeError,
         r"should be an iterable of Tensors or dicts, but got a Tensor"),
    Case("optim-empty", "optim", "an optimizer over no parameters",
         lambda _: optim.SGD([], lr=0.1), ValueError, r"optimizer got an empty parameter list"),
    Case("optim-non-leaf", "optim", "optimizing a computed tensor",
         lambda _: optim.SGD([nn.Linear(3, 2).weight * 2], lr=0.1), ValueError,
         r"can't optimize a non-leaf Tensor"),
]

def _graph_tensor() -> Tensor:
    return Tensor(np.ones(3, np.float32), requires_grad=True) * 2


def _modified_after_forward(_):
    w = Tensor(np.ones(3, np.float32), requires_grad=True)
    loss = (w * w * w).sum()
    with tg.no_grad():
        w -= 1
    loss.backward()


def _view_made_under_no_grad(_):
    w = Tensor(np.ones(3, np.float32), requires_grad=True)
    with tg.no_grad():
        v = w[0:2]
    v += 1


def _hooked(hook):
    def run(_):
        x = _graph_tensor()
        x.register_hook(hook)
        x.sum().backward()
    return run


def _add_in_place(target, value):
    target += value


def _read_then_add_in_place(_):
    y = _graph_tensor()
    y * 3                      # a recorded op reads y ...
    y += 1                     # ... so y's history can no longer be rewritten


def _view_then_write_graph_value(_):
    buf = Tensor.zeros(3)
    buf[1:]                    # a view reads buf's memory ...
    buf[0] = _graph_tensor()[0]  # ... so a value that needs a gradient cannot be recorded


INPLACE = [
    Case("inplace-leaf", "in-place and hooks", "`w += 1` on a parameter, grad mode on",
         lambda _: _add_in_place(Tensor(np.ones(3, np.float32), requires_grad=True), 1),
         RuntimeError, r"a leaf Variable that requires grad is being used in an in-place "
                       r"operation.*no_grad\(\)"),
    Case("inplace-in-graph", "in-place and hooks",
         "`y += 1` where `y = w * 2` was already read by `y * 3`",
         _read_then_add_in_place, RuntimeError,
         r"add_: this in-place operation cannot be recorded in the graph.*y = y \+ x"),
    Case("inplace-grad-value", "in-place and hooks",
         "`buf[0] = y` (`y` requires grad) after a view of `buf` was taken",
         _view_then_write_graph_value, RuntimeError,
         r"setitem: .*the value written into this tensor requires grad"),
    Case("inplace-no-grad-view", "in-place and hooks",
         "a view taken under `no_grad` changed in place outside it",
         _view_made_under_no_grad, RuntimeError,
         r"A view was created in no_grad mode and is being modified inplace with grad mode "
         r"enabled"),
    Case("inplace-modified-saved", "in-place and hooks",
         "`loss = (w*w*w).sum()`, then `w -= 1` under `no_grad`, then `loss.backward()`",
         _modified_after_forward, RuntimeError,
         r"one of the variables needed for gradient computation has been modified by an "
         r"inplace operation: .*saved by 'mul'.*'sub_'"),
    Case("inplace-cast", "in-place and hooks", "`int_tensor += 0.5`",
         lambda _: _add_in_place(i64(3), 0.5), RuntimeError,
         r"result type Float can't be cast to the desired output type Long"),
    Case("inplace-broadcast", "in-place and hooks", "`a += b` with a (3,) and b (2, 3)",
         lambda _: _add_in_place(f32(3), f32(2, 3)), tg.errors.ShapeError,
         r"output with shape \[3\] doesn't match the broadcast shape \[2, 3\]"),
    Case("inplace-overlap", "in-place and hooks", "`x -= x[0]` (reads what it writes)",
         lambda _: (lambda x: x.__isub__(x[0]))(f32(2, 3)), RuntimeError,
         r"some elements of the input tensor and the written-to tensor refer to a single "
         r"memory location"),
    Case("setitem-shape", "in-place and hooks", "`x[0:2] = ones(3)`",
         lambda _: f32(3).__setitem__(slice(0, 2), f32(3)), tg.errors.ShapeError,
         r"shape mismatch: value tensor of shape \[3\] cannot be broadcast to indexing "
         r"result of shape \[2\]"),
    Case("fill-nan-int", "in-place and hooks", "`int_tensor.fill_(nan)`",
         lambda _: i64(3).fill_(float("nan")), RuntimeError,
         r"value cannot be converted to type int64 without overflow"),
    Case("hook-size", "in-place and hooks", "a hook returning `g.sum()`",
         _hooked(lambda g: g.sum()), RuntimeError,
         r"hook '<lambda>' has changed the size of value \(was \(3,\), got \(\)\)"),
    Case("hook-type", "in-place and hooks", "a hook returning `g.double()`",
         _hooked(lambda g: g.double()), RuntimeError,
         r"hook '<lambda>' has changed the type of value \(was float32 got float64\)"),
    Case("hook-not-tensor", "in-place and hooks", "a hook returning a float",
         _hooked(lambda g: 1.0), TypeError, r"expected Variable, but hook returned 'float'"),
    Case("matmul-dtypes", "in-place and hooks", "float32 `@` float64",
         lambda _: f32(2, 3) @ f64(3, 2), RuntimeError,
         r"expected m1 and m2 to have the same dtype, but got: float32 != float64"),
    Case("int-negative-power", "in-place and hooks", "`int_tensor ** -1`",
         lambda _: i64(3) ** -1, RuntimeError,
         r"Integers to negative integer powers are not allowed"),
    Case("iter-0d", "in-place and hooks", "`list(Tensor(1.0))`",
         lambda _: list(Tensor(1.0)), TypeError, r"iteration over a 0-d tensor"),
    Case("float-many", "in-place and hooks", "`float(t)` of a tensor with 2 elements",
         lambda _: float(f32(2)), ValueError,
         r"only one element tensors can be converted to Python scalars"),
    Case("format-1d", "in-place and hooks", "`f\"{t:.4f}\"` of a tensor of shape (1,)",
         lambda _: format(f32(1), ".4f"), TypeError,
         r"unsupported format string passed to Tensor.__format__"),
]

NN_EXTRAS = [   # issue 11: the PyTorch vocabulary (nn layers and losses, init, schedulers)
    Case("init-gain", "nn, init, schedules", "`nn.init.calculate_gain('swish')`",
         lambda _: nn.init.calculate_gain("swish"), ValueError, r"Unsupported nonlinearity swish"),
    Case("init-fan-1d", "nn, init, schedules", "`nn.init.xavier_uniform_` of a 1-D tensor",
         lambda _: nn.init.xavier_uniform_(Tensor(np.zeros(3))), ValueError,
         r"fewer than 2 dimensions"),
    Case("embedding-max-norm", "nn, init, schedules", "`nn.Embedding(10, 4, max_norm=1.0)`",
         lambda _: nn.Embedding(10, 4, max_norm=1.0), NotImplementedError, r"max_norm"),
    Case("embedding-index", "nn, init, schedules", "`nn.Embedding(5, 3)` given index 5",
         lambda _: nn.Embedding(5, 3)(Tensor(np.array([5]))), IndexError,
         r"index out of range in self"),
    Case("ce-weight-shape", "nn, init, schedules", "`cross_entropy` with 2 weights for 3 classes",
         lambda _: F.cross_entropy(f32(2, 3), Tensor([0, 1]), weight=Tensor(np.ones(2))),
         ShapeError, r"weight tensor should be defined either for all 3 classes"),
    Case("ce-positional-reduction", "nn, init, schedules",
         "`cross_entropy(x, t, 'sum')` (the third argument is weight)",
         lambda _: F.cross_entropy(f32(2, 3), Tensor([0, 1]), "sum"), TypeError,
         r"pass the reduction by keyword"),
    Case("bce-range", "nn, init, schedules", "`binary_cross_entropy` of logits, not probabilities",
         lambda _: F.binary_cross_entropy(Tensor([1.5]), Tensor([1.0])), RuntimeError,
         r"all elements of input should be between 0 and 1"),
    Case("layer-norm-shape", "nn, init, schedules", "`nn.LayerNorm(3)` of a (2, 4) input",
         lambda _: nn.LayerNorm(3)(f32(2, 4)), ShapeError,
         r"Given normalized_shape=\[3\], expected input with shape \[\*, 3\]"),
    Case("rmsprop-alpha", "nn, init, schedules", "`RMSprop(params, alpha=-0.1)`",
         lambda _: optim.RMSprop(nn.Linear(3, 2).parameters(), alpha=-0.1), ValueError,
         r"Invalid alpha value: -0.1"),
    Case("onecycle-overstep", "nn, init, schedules", "`OneCycleLR` stepped past total_steps",
         lambda _: _overstep_one_cycle(), ValueError,
         r"Tried to step 3 times. The specified number of total steps is 2"),
    Case("sched-state-other", "nn, init, schedules", "a StepLR state loaded into ExponentialLR",
         lambda _: _load_other_scheduler_state(), ValueError,
         r"was it saved from a different scheduler\?"),
]


def _overstep_one_cycle():
    opt = optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=2)
    opt.step()
    for _ in range(3):
        sched.step()


def _load_other_scheduler_state():
    opt = optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1)
    state = optim.lr_scheduler.StepLR(opt, step_size=2).state_dict()
    optim.lr_scheduler.ExponentialLR(opt, gamma=0.5).load_state_dict(state)


CHECKPOINTS = [
    Case("ckpt-missing", "checkpoint", "`load('nope.npz')`, no such file",
         load_file(lambda tmp: tmp / "nope.npz"), FileNotFoundError,
         r"No such file or directory .*nope\.npz"),
    Case("ckpt-truncated", "checkpoint", "`load` of a checkpoint cut in half",
         load_file(truncated_file), ValueError,
         r"cut\.npz' is not a valid tinygrad_rnn checkpoint \(\.npz\): .*probably truncated or "
         r"damaged"),
    Case("ckpt-corrupted", "checkpoint", "`load` of a checkpoint with damaged bytes",
         load_file(corrupted_file), ValueError,
         r"bad\.npz' is not a valid tinygrad_rnn checkpoint .*could not be read"),
    Case("ckpt-empty", "checkpoint", "`load` of an empty file",
         load_file(empty_file), ValueError, r"not a valid tinygrad_rnn checkpoint.*empty"),
    Case("ckpt-pickle", "checkpoint", "`load` of a pickle file",
         load_file(pickle_file), ValueError,
         r"model\.pkl' is not a valid tinygrad_rnn checkpoint .*looks like a pickle.*never "
         r"loads pickles"),
    Case("ckpt-torch-save", "checkpoint", "`load` of a file written by `torch.save`",
         load_file(torch_save_like_file), ValueError,
         r"holds pickled data \(a file written by torch.save\?\).*numpy.savez"),
    Case("ckpt-object-array", "checkpoint", "`load` of an .npz holding an object array",
         load_file(object_array_file), ValueError,
         r"holds a pickled object array \(dtype object\); tinygrad_rnn refuses to load it"),
    Case("ckpt-npy", "checkpoint", "`load` of a single .npy file",
         load_file(npy_file), ValueError,
         r"it is a single \.npy array, not an \.npz archive"),
    Case("save-object", "checkpoint", "`save({'f': print}, path)`",
         save_to({"f": print}, "x.npz"), TypeError,
         r"save: cannot save a builtin_function_or_method at 'f'"),
    Case("save-no-dir", "checkpoint", "`save(sd, 'no/such/dir/x.npz')`",
         save_to(linear_sd, "no/such/dir/x.npz"), FileNotFoundError,
         r"save: no such directory"),
]

MISC = [
    Case("rnn-hidden-size", "constructors", "`nn.RNN(3, 0)`", lambda _: nn.RNN(3, 0),
         ValueError, r"RNN: hidden_size must be a positive integer, got 0"),
    Case("rnn-nonlinearity", "constructors", "`nn.RNN(3, 4, nonlinearity='sigmoid')`",
         lambda _: nn.RNN(3, 4, nonlinearity="sigmoid"), ValueError,
         r"Unknown nonlinearity 'sigmoid'. Select from 'tanh' or 'relu'"),
    Case("rnn-dropout", "constructors", "`nn.RNN(3, 4, dropout=1.5)`",
         lambda _: nn.RNN(3, 4, dropout=1.5), ValueError,
         r"dropout should be a number in range \[0, 1\].*got 1.5"),
    Case("linear-features-zero", "constructors", "`nn.Linear(0, 2)`",
         lambda _: nn.Linear(0, 2), ValueError,
         r"Linear: in_features must be a positive integer, got 0"),
    Case("module-no-super-init", "constructors", "a Module subclass that forgets "
         "`super().__init__()`",
         lambda _: type("Net", (nn.Module,), {"__init__": lambda self: setattr(
             self, "fc", nn.Linear(2, 2))})(), AttributeError,
         r"cannot assign 'fc' before Module.__init__\(\) call \(call super\(\).__init__\(\) "
         r"first in Net\)"),
]

COMMAND_LINE = [
    Case("cli-unknown-command", "command line", "`python -m tinygrad_rnn frobnicate`",
         cli_args("frobnicate"), CommandFailed,
         r"^tinygrad_rnn: error: argument COMMAND: invalid choice: 'frobnicate' \(choose "
         r"from 'train', 'bptt', 'check', 'evaluate', 'sample', 'sweep', 'reproduce'\)", status=2),
    Case("cli-no-task", "command line", "`python -m tinygrad_rnn train` (no task)",
         cli_args("train"), CommandFailed,
         r"^tinygrad_rnn: error: the following arguments are required: TASK \(see "
         r"`python -m tinygrad_rnn train --help`\)", status=2),
    Case("cli-unknown-task", "command line", "`train nosuchtask`",
         cli_args("train", "nosuchtask"), CommandFailed,
         r"^tinygrad_rnn: error: unknown task 'nosuchtask'; valid tasks are: .*sine", status=1),
    Case("cli-steps-not-int", "command line", "`train sine --steps abc`",
         cli_args("train", "sine", "--steps", "abc"), CommandFailed,
         r"^tinygrad_rnn: error: argument --steps: invalid int value: 'abc'", status=2),
    Case("cli-steps-negative", "command line", "`train sine --steps -5`",
         cli_args("train", "sine", "--steps", "-5"), CommandFailed,
         r"^tinygrad_rnn: error: --steps must be a positive integer, got -5$", status=1),
    Case("cli-lr-zero", "command line", "`train sine --lr 0`",
         cli_args("train", "sine", "--lr", "0"), CommandFailed,
         r"^tinygrad_rnn: error: --lr must be a positive number, got 0", status=1),
    Case("cli-bad-choice", "command line", "`train sine --nonlinearity sigmoid`",
         cli_args("train", "sine", "--nonlinearity", "sigmoid"), CommandFailed,
         r"argument --nonlinearity: invalid choice: 'sigmoid' \(choose from 'tanh', 'relu'\)",
         status=2),
    Case("cli-steps-and-epochs", "command line", "`train sine --steps 5 --epochs 2`",
         cli_args("train", "sine", "--steps", "5", "--epochs", "2"), CommandFailed,
         r"^tinygrad_rnn: error: give --steps or --epochs, not both$", status=1),
    Case("cli-epochs-no-dataset", "command line", "`train sine --epochs 2` (sine has no "
         "finite data set)", cli_args("train", "sine", "--epochs", "2"), CommandFailed,
         r"task 'sine' draws fresh data at every step, so it has no epochs; use --steps",
         status=1),
    Case("cli-check-bad-option", "command line", "`check --bogus`",
         cli_args("check", "--bogus"), CommandFailed,
         r"^tinygrad_rnn: error: unrecognized arguments: --bogus", status=2),
    Case("cli-out-unusable", "command line", "`train sine --out` a path that cannot be "
         "created (fails before training)",
         cli_with(lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "run",
                  "train", "sine", "--steps", "1", "--out", "{}"), CommandFailed,
         r"^tinygrad_rnn: error: cannot write the checkpoint: '.*file' is an existing file, not "
         r"a directory \(choose another --out\): '.*file/run/checkpoint.npz'$", status=1),
    Case("cli-backend-missing", "command line", "`train sine --backend cupy` without CuPy",
         cli_args("train", "sine", "--backend", "cupy"), CommandFailed,
         r"^tinygrad_rnn: error: backend 'cupy' was requested but CuPy could not be imported .*"
         r"pip install \"tinygrad-rnn\[cuda\]\"", needs="no-gpu", status=1),
    Case("cli-resume-missing", "command line", "`train sine --resume nope.npz`",
         cli_args("train", "sine", "--resume", "{tmp}/nope.npz"), CommandFailed,
         r"^tinygrad_rnn: error: checkpoint '.*nope\.npz' does not exist$", status=1),
    Case("cli-resume-truncated", "command line", "`train sine --resume` a truncated checkpoint",
         cli_with(truncated_training_checkpoint, "train", "sine", "--resume", "{}"),
         CommandFailed,
         r"^tinygrad_rnn: error: '.*checkpoint\.npz' is not a valid tinygrad_rnn checkpoint "
         r"\(\.npz\): .*truncated or damaged", status=1),
    Case("cli-resume-state-dict", "command line", "`train sine --resume` a model state dict",
         cli_with(state_dict_file, "train", "sine", "--resume", "{}"), CommandFailed,
         r"weights\.npz' is not a training checkpoint \(one written by `python -m "
         r"tinygrad_rnn train`\)", status=1),
    Case("cli-resume-other-task", "command line", "`train adding --resume` a sine checkpoint",
         cli_with(training_checkpoint, "train", "adding", "--resume", "{}"), CommandFailed,
         r"checkpoint '.*checkpoint\.npz' is for task 'sine', not 'adding'$", status=1),
    Case("cli-resume-conflict", "command line", "`--resume` with a different `--hidden`",
         cli_with(training_checkpoint, "train", "sine", "--resume", "{}", "--hidden", "16"),
         CommandFailed,
         r"--hidden 16 conflicts with checkpoint '.*', which was trained with hidden=4; leave "
         r"it out to resume$", status=1),
    Case("cli-out-of-memory", "command line", "`train sine --hidden 10000000` (364 TiB of "
         "weights)", cli_args("train", "sine", "--hidden", "10000000", "--steps", "1"),
         CommandFailed, r"out of memory \(Unable to allocate .*\); try fewer hidden units, a "
         r"smaller batch or shorter sequences$", status=1),
    Case("cli-resume-fewer-steps", "command line", "`--resume` a run at step 2 with `--steps 1`",
         cli_with(trained_checkpoint, "train", "sine", "--resume", "{}", "--steps", "1"),
         CommandFailed,
         r"checkpoint '.*' is already at step 2; --steps 1 asks for fewer \(--steps and --epochs "
         r"are totals\): give a larger total to train longer$", status=1),
]

# ---------------------------------------------- runs and checkpoints that must not be lost

#: Stands in for ``torch.Tensor`` (same module and name), so the cases run without torch.
TorchLikeTensor = type("Tensor", (), {"__module__": "torch"})


def huge_header_file(tmp):
    """An .npz whose one entry claims 10**12 float64 elements but holds 64 bytes."""
    import struct
    import zipfile
    header = repr({"descr": "<f8", "fortran_order": False, "shape": (10 ** 12,)}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    with zipfile.ZipFile(tmp / "huge.npz", "w") as zf:
        zf.writestr("w.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
                    + bytes(64))
    return tmp / "huge.npz"


def deep_record_file(tmp):
    """A checkpoint whose structure record nests lists 600 deep."""
    node = '{"list": [' * 600 + '{"value": 1}' + "]}" * 600
    record = '{"format": "tinygrad_rnn.checkpoint", "version": 1, "root": ' + node + "}"
    np.savez(tmp / "deep.npz", __tinygrad_rnn__=np.array(record))
    return tmp / "deep.npz"


def damaged_step_checkpoint(tmp: Path) -> Path:
    save, load = _save_load()
    path = trained_checkpoint(tmp)
    state = load(path)
    state["step"] = -1
    save(state, path)
    return path


def locked_out(tmp: Path) -> Path:
    """An output directory whose lock is held by a live process (process 1, init, which
    always runs; a fixed pid keeps the documented message the same)."""
    (tmp / "run").mkdir()
    (tmp / "run" / "checkpoint.npz.lock").write_text("1\n")
    return tmp / "run"


def charlm_checkpoint_then_new_text(tmp: Path) -> Path:
    from tinygrad_rnn.train import TrainConfig, Trainer
    text = tmp / "t.txt"
    text.write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    path = tmp / "run" / "checkpoint.npz"
    Trainer(TrainConfig("charlm", steps=1, hidden=4, batch_size=2, seq_len=5,
                        text=str(text))).run(checkpoint=str(path), quiet=True)
    text.write_text("the cat sat on the hat. " * 40, encoding="utf-8")
    return path


RUN_CHECKPOINTS = [
    Case("save-key-nul", "checkpoint", "`save({'a\\x00b': w}, path)`, a key with a NUL byte",
         save_to(lambda: {"a\x00b": np.ones(2)}, "x.npz"), ValueError,
         r"save: the key 'a\\x00b' contains a NUL byte"),
    Case("save-torch", "checkpoint", "`save({'w': t}, path)` with a PyTorch tensor `t`",
         save_to(lambda: {"w": TorchLikeTensor()}, "x.npz"), TypeError,
         r"got a torch.Tensor from PyTorch.*\.numpy\(\)"),
    Case("tensor-torch", "checkpoint", "`Tensor(t)` with a PyTorch tensor `t`",
         lambda _: Tensor(TorchLikeTensor()), TypeError,
         r"Tensor\(\): got a torch.Tensor from PyTorch.*\.numpy\(\)"),
    Case("ckpt-huge-header", "checkpoint", "`load` of an .npz whose header claims 10¹² elements",
         load_file(huge_header_file), ValueError, r"claims shape \(1000000000000,\)"),
    Case("ckpt-deep", "checkpoint", "`load` of a checkpoint nesting 600 levels deep",
         load_file(deep_record_file), ValueError, r"nests deeper than 64 levels"),
    Case("ckpt-directory", "checkpoint", "`load` of a directory",
         load_file(lambda tmp: tmp), IsADirectoryError, r"Is a directory, not a checkpoint"),
    Case("ckpt-device", "checkpoint", "`load('/dev/zero')`",
         load_file(lambda tmp: Path("/dev/zero")), ValueError, r"is not a regular file",
         needs="posix"),
]

RUN_COMMAND_LINE = [
    Case("cli-out-file", "command line", "`train sine --out` an existing file",
         cli_with(lambda tmp: (tmp / "notes.txt").write_text("x") and tmp / "notes.txt",
                  "train", "sine", "--steps", "1", "--out", "{}"), CommandFailed,
         r"notes.txt' is an existing file, not a directory", status=1),
    Case("cli-out-holds-a-run", "command line", "`train sine` again into a directory that "
         "holds a run (nothing is overwritten without `--overwrite`)",
         cli_with(lambda tmp: training_checkpoint(tmp).parent,
                  "train", "sine", "--steps", "1", "--out", "{}"), CommandFailed,
         r"run/checkpoint.npz holds a sine run saved at step 0; continue it with --resume "
         r".*run/checkpoint.npz, write this run elsewhere with --out DIR, or replace it with "
         r"--overwrite$", status=1),
    Case("cli-out-locked", "command line", "`train sine --out DIR` while another run writes "
         "into DIR", cli_with(locked_out, "train", "sine", "--steps", "1", "--out", "{}"),
         CommandFailed, r"another training run \(process \d+\) is writing this checkpoint",
         status=1),
    Case("cli-resume-directory", "command line", "`train sine --resume` a directory",
         cli_with(lambda tmp: tmp, "train", "sine", "--resume", "{}"), CommandFailed,
         r"--resume '.*' is a directory; expected a checkpoint file", status=1),
    Case("cli-resume-device", "command line", "`train sine --resume /dev/zero --out run`",
         cli_args("train", "sine", "--resume", "/dev/zero", "--out", "run"), CommandFailed,
         r"--resume '/dev/zero' is a character device", needs="posix", status=1),
    Case("cli-resume-damaged", "command line", "`--resume` a checkpoint whose step is -1",
         cli_with(damaged_step_checkpoint, "train", "sine", "--resume", "{}"), CommandFailed,
         r"is damaged: its step counter is -1, not an integer >= 0$", status=1),
    Case("cli-resume-new-text", "command line", "`train charlm --resume` after `--text` changed",
         cli_with(charlm_checkpoint_then_new_text, "train", "charlm", "--resume", "{}",
                  "--steps", "2"), CommandFailed,
         r"was trained on a different text \(SHA-256 .*restore that text", status=1),
    Case("cli-backend-env", "command line", "`TINYGRAD_RNN_BACKEND=bogus python -m "
         "tinygrad_rnn train sine` (`--help` and `--backend numpy` still work)",
         lambda _: run_python("-m", "tinygrad_rnn", "train", "sine", "--steps", "1",
                              env={"TINYGRAD_RNN_BACKEND": "bogus"}), CommandFailed,
         r"^tinygrad_rnn: error: environment variable TINYGRAD_RNN_BACKEND='bogus'", status=1),
]

CASES = SHAPES + DTYPES + EMPTY + ANOMALY + BACKWARD + BACKENDS + STATE_DICTS + OPTIM \
    + INPLACE + NN_EXTRAS + CHECKPOINTS + RUN_CHECKPOINTS + MISC + COMMAND_LINE \
    + RUN_COMMAND_LINE


# ------------------------------------------------------------------------------- running

def trigger(case: Case, tmp: Path) -> BaseException:
    """Run the case; return the exception it raised (fail if it raised nothing)."""
    try:
        case.fn(tmp)
    except BaseException as exc:  # noqa: BLE001 - we inspect it
        return exc
    pytest.fail(f"{case.id}: {case.situation} raised nothing")


def skip_unless_runnable(case: Case) -> None:
    from conftest import cupy_usable
    if case.needs == "gpu":
        pytest.importorskip("cupy")
        if not cupy_usable():
            pytest.skip("needs CuPy and an NVIDIA GPU")
    if case.needs == "no-gpu" and cupy_usable():
        pytest.skip("CuPy works here: the error cannot happen")
    if case.needs == "posix" and not os.path.exists("/dev/zero"):
        pytest.skip("needs /dev/zero")


#: ``{id: (exception name, table cell)}`` of the cases run so far (the document check reuses
#: them instead of running every case, subprocesses included, a second time).
PRODUCED: dict = {}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_error(case: Case, tmp_path):
    skip_unless_runnable(case)
    exc = trigger(case, tmp_path)
    assert type(exc) is case.exc, \
        f"{case.id}: expected {case.exc.__name__}, got {type(exc).__name__}: {exc}"
    assert re.search(case.match, str(exc), re.S), \
        f"{case.id}: message does not match {case.match!r}:\n{exc}"
    if isinstance(exc, CommandFailed):
        assert "Traceback" not in exc.stderr or case.id == "backend-env", exc.stderr
        if case.status is not None:
            assert exc.returncode == case.status, (exc.returncode, exc.stderr)
    else:
        assert "operands could not be broadcast" not in str(exc)
    PRODUCED[case.id] = (exception_name(exc), normalise(str(exc), tmp_path))


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


# ------------------------------------------------------------------- docs/errors.md in sync

def normalise(message: str, tmp: Path) -> str:
    """One table cell: the temporary directory shown as <tmp>, newlines as ⏎, pipes escaped."""
    message = message.replace(str(tmp), "<tmp>")
    message = " ⏎ ".join(line.strip() for line in message.strip().splitlines())
    return message.replace("|", "\\|")


def exception_name(exc: BaseException) -> str:
    if isinstance(exc, CommandFailed):
        return f"exit status {exc.returncode}"
    return type(exc).__name__


def table_rows(tmp: Path, documented_only: bool = False) -> list:
    """``(id, group, situation, exception, message)`` for every runnable case, and (with
    ``documented_only``) the documented message of those that cannot run here."""
    rows = []
    for case in CASES:
        try:
            skip_unless_runnable(case)
        except pytest.skip.Exception:
            if documented_only and case.doc:
                rows.append((case.id, case.group, case.situation, case.exc.__name__, case.doc))
            continue
        if case.id in PRODUCED:
            rows.append((case.id, case.group, case.situation) + PRODUCED[case.id])
            continue
        case_tmp = tmp / case.id
        case_tmp.mkdir(parents=True, exist_ok=True)
        tg.manual_seed(0)
        try:
            case.fn(case_tmp)
        except BaseException as exc:  # noqa: BLE001
            rows.append((case.id, case.group, case.situation, exception_name(exc),
                         normalise(str(exc), case_tmp)))
        finally:
            if backend.name != "numpy":
                backend.use("numpy")
    return rows


def doc_rows() -> dict:
    """``{id: (exception, message)}`` from the tables of docs/errors.md."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `([a-z0-9-]+)` \| .* \| (`?[\w ]+`?) \| (.*) \|$", line)
        if m:
            message = m.group(3).strip()
            if message.startswith("`") and message.endswith("`"):
                message = message.strip("`").strip()
            rows[m.group(1)] = (m.group(2).strip("`"), message)
    return rows


def test_every_case_is_documented_verbatim(tmp_path):
    if backend.name != "numpy":
        pytest.skip("docs/errors.md shows the messages on the NumPy backend")
    documented = doc_rows()
    for case_id, _group, _situation, exc_name, message in table_rows(tmp_path):
        assert case_id in documented, f"docs/errors.md has no row for `{case_id}`"
        doc_exc, doc_message = documented[case_id]
        assert doc_exc == exc_name, f"{case_id}: documented {doc_exc}, raised {exc_name}"
        assert doc_message == message, (
            f"docs/errors.md is out of date for `{case_id}`: it says\n  {doc_message}\nbut "
            f"the code says\n  {message}\n(regenerate with: python tests/test_errors.py)")


def markdown(tmp: Path) -> str:
    out, group = [], None
    for case_id, grp, situation, exc_name, message in table_rows(tmp, documented_only=True):
        if grp != group:
            out += ["", f"### {grp}", "", "| id | situation | exception | message |",
                    "|---|---|---|---|"]
            group = grp
        code = f"`` {message} ``" if "`" in message else f"`{message}`"
        out.append(f"| `{case_id}` | {situation} | `{exc_name}` | {code} |")
    return "\n".join(out[1:]) + "\n"


if __name__ == "__main__":  # print the tables of docs/errors.md
    with tempfile.TemporaryDirectory() as d:
        sys.stdout.write(markdown(Path(d)))
