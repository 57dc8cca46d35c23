"""``nn.Linear``: ``y = x Wᵀ + b`` on the last axis; ``nn.Identity``: ``y = x``."""
from __future__ import annotations

import math

from .. import backend
from ..errors import ShapeError
from ..tensor import Tensor
from .checks import check_positive_int
from .module import Module, Parameter, check_input_dtype


def uniform_parameter(*shape: int, bound: float, dtype=None) -> Parameter:
    """A parameter drawn from U(-bound, bound) with the seeded host generator (PyTorch's
    default initialisation for Linear and RNN layers uses this distribution).

    Drawn in its own dtype and wrapped without a copy, so making a layer needs no more
    memory than its parameters (see :func:`tinygrad_rnn.backend.uniform`)."""
    parameter = Parameter._wrap(backend.uniform(shape, -bound, bound, dtype))
    parameter.requires_grad_(True)
    return parameter


class Linear(Module):
    """Applies ``y = x @ weight.T + bias`` to input of shape ``(*, in_features)``.

    ``weight``: ``(out_features, in_features)``; ``bias``: ``(out_features,)``; both drawn from
    U(-1/sqrt(in_features), 1/sqrt(in_features)) as in PyTorch.
    """

    bias: Parameter | None  # registered with register_parameter, so that it may be None

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        check_positive_int("Linear", "in_features", in_features)
        check_positive_int("Linear", "out_features", out_features)
        self.in_features = in_features
        self.out_features = out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = uniform_parameter(out_features, in_features, bound=bound, dtype=dtype)
        self.register_parameter(
            "bias", uniform_parameter(out_features, bound=bound, dtype=dtype) if bias else None)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(*, in_features)`` → ``(*, out_features)``."""
        if not isinstance(x, Tensor):
            backend.refuse_torch(x, "Linear")   # "got Tensor" would puzzle a PyTorch user
            raise TypeError(f"Linear: expected a Tensor input, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ShapeError(f"Linear: expected input with last dimension {self.in_features} "
                             f"(in_features), got shape {x.shape}")
        check_input_dtype("Linear", x, self.weight)
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """Returns its input unchanged (any arguments are accepted and ignored): a placeholder,
    e.g. to switch off a layer of a model without changing its code."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x

