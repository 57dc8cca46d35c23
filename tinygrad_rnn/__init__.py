"""tinygrad_rnn: a readable autograd framework for recurrent networks, on NumPy or CuPy.

    import tinygrad_rnn as tg
    x = tg.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()          # x.grad == 2 * x
"""
import types as _types

from . import autograd, backend, bptt, nn, optim, tensor as _tensor_module, viz
from .autograd import detect_anomaly, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import (
    get_default_dtype,
    get_num_threads,
    manual_seed,
    set_default_dtype,
    set_num_threads,
)
from .creation import (
    arange,
    cat,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    ones,
    ones_like,
    rand,
    rand_like,
    randn,
    randn_like,
    stack,
    tensor as _make_tensor,
    where,
    zeros,
    zeros_like,
)
from .dtypes import (  # noqa: A004  (torch's names)
    bool as bool,
    double,
    float as float,
    float16,
    float32,
    float64,
    half,
    int as int,
    int8,
    int16,
    int32,
    int64,
    long,
    short,
    uint8,
)
from .gradcheck import GradcheckError, gradcheck
from .serialization import load, save
from .tensor import Tensor

__version__ = "0.1.0"


class _CallableModule(_types.ModuleType):
    """``tg.tensor`` is two things: the module ``tinygrad_rnn/tensor.py`` (so that
    ``from tinygrad_rnn.tensor import Tensor`` and ``import tinygrad_rnn.tensor`` keep
    working) and, called, PyTorch's ``tensor(data, dtype=None, requires_grad=False)``.
    Python lets a module take a subclass of the module type; this one adds ``__call__``."""

    def __call__(self, data, dtype=None, requires_grad=False):
        return _make_tensor(data, dtype=dtype, requires_grad=requires_grad)


_tensor_module.__class__ = _CallableModule
tensor = _tensor_module

__all__ = ["Tensor", "tensor", "backend", "autograd", "no_grad", "enable_grad",
           "set_grad_enabled", "is_grad_enabled", "detect_anomaly", "manual_seed",
           "set_default_dtype", "get_default_dtype", "set_num_threads", "get_num_threads",
           "gradcheck", "GradcheckError", "nn",
           "optim", "bptt", "viz", "save", "load",
           "zeros", "ones", "full", "empty", "arange", "eye", "randn", "rand", "zeros_like",
           "ones_like", "full_like", "empty_like", "randn_like", "rand_like", "cat", "stack",
           "where",
           # (not bool, float and int: ``import *`` must not shadow Python's builtins)
           "float16", "float32", "float64", "half", "double", "int8", "int16", "int32",
           "int64", "short", "long", "uint8"]
