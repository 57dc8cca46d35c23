"""``nn.LayerNorm``: normalise each sample over its last axes (Ba, Kiros & Hinton, 2016).

Unlike batch normalisation it needs no batch statistics, so it behaves the same in training
and evaluation and at every time step, which is why recurrent models use it.
"""
from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter


class LayerNorm(Module):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last
    ``len(normalized_shape)`` axes (population variance); ``weight`` starts at 1 and
    ``bias`` at 0, both of shape ``normalized_shape``."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) \
            else tuple(normalized_shape)
        if not shape or any(not isinstance(n, int) or n <= 0 for n in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be a positive integer or a "
                             f"non-empty tuple of them, got {normalized_shape!r}")
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        self.register_parameter(
            "weight", Parameter(Tensor.ones(*shape, dtype=dtype)) if elementwise_affine else None)
        self.register_parameter(
            "bias", Parameter(Tensor.zeros(*shape, dtype=dtype))
            if elementwise_affine and bias else None)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")
