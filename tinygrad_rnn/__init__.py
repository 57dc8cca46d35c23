"""tinygrad_rnn: a readable autograd framework for recurrent networks, on NumPy or CuPy.

    import tinygrad_rnn as tg
    x = tg.Tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()          # x.grad == 2 * x
"""
from . import backend
from .autograd import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from .backend import (get_default_dtype, get_num_threads, manual_seed, set_default_dtype,
                      set_num_threads)
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor
from . import bptt, nn, optim, viz
from .serialization import load, save

__version__ = "0.1.0"

__all__ = ["Tensor", "backend", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly",
           "manual_seed", "set_default_dtype", "get_default_dtype", "set_num_threads",
           "get_num_threads", "gradcheck",
           "GradcheckError", "nn", "optim", "bptt", "viz", "save", "load"]
