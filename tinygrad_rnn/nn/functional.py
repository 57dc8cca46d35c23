"""``tinygrad_rnn.nn.functional`` (``F``): activations, softmax and losses as functions.

Everything is built from the differentiable ops of :class:`~tinygrad_rnn.Tensor`
(``log_softmax`` is the fused ``Tensor.log_softmax``: composing it from ``exp``/``sum``/``log``
would overflow for large logits).
"""
from __future__ import annotations

from .. import backend
from ..tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def relu(x: Tensor) -> Tensor:
    return x.relu()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def log_softmax(x: Tensor, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """``x - logsumexp(x)`` along ``axis``, computed stably: the fused
    :meth:`Tensor.log_softmax` (its forward and backward are written there)."""
    _check_float(x, "log_softmax")
    return x.log_softmax(axis if dim is None else dim)


def softmax(x: Tensor, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis`` (via the stable ``log_softmax``)."""
    return log_softmax(x, axis, dim=dim).exp()


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)``, in training
    only. The mask comes from the seeded host generator."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = backend.rng().random(x.shape) >= p
    mask = backend.to_backend((keep / (1.0 - p)).astype(x.dtype), x.backend)
    return x * Tensor._wrap(mask)


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)²``, reduced by ``mean``, ``sum`` or ``none``."""
    _check_float(input, "mse_loss")
    target = _as_tensor(target, input, "mse_loss").astype(input.dtype)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape "
                         f"{target.shape} must be the same (no silent broadcasting)")
    diff = input - target
    return _reduce(diff * diff, reduction)


def cross_entropy(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of the class indices ``target`` under ``softmax(input)``.

    Shapes as in PyTorch: ``input (N, C)`` with ``target (N,)``; ``input (C,)`` with a 0-d
    target; or ``input (N, C, d1, ...)`` with ``target (N, d1, ...)``.
    """
    _check_float(input, "cross_entropy")
    target = _as_tensor(target, input, "cross_entropy")
    if not backend.is_integer(target.dtype):
        raise TypeError(f"cross_entropy: expected target of integer dtype (class indices), "
                        f"got {target.dtype}")
    logits, classes = _class_last(input, target)
    labels = target.data.reshape(-1)
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
        raise IndexError(f"Target {bad} is out of bounds for {classes} classes "
                         f"(expected 0 <= target < {classes})")
    logp = log_softmax(logits, axis=-1)
    picked = logp[logits.xp.arange(labels.shape[0]), labels]
    losses = -picked.reshape(target.shape)
    return _reduce(losses, reduction)


# ------------------------------------------------------------------------------- helpers

def _class_last(input: Tensor, target: Tensor) -> tuple[Tensor, int]:
    """Logits as ``(M, C)`` rows, one per target element, and the number of classes C."""
    if input.ndim == 1:
        if target.ndim != 0:
            raise ValueError(f"cross_entropy: for unbatched input of shape {input.shape} the "
                             f"target must be a 0-d class index, got shape {target.shape}")
        return input.reshape(1, -1), input.shape[0]
    if input.ndim < 1 or target.shape != input.shape[:1] + input.shape[2:]:
        raise ValueError(f"cross_entropy: expected target of shape "
                         f"{input.shape[:1] + input.shape[2:]} for input of shape "
                         f"{input.shape} (N, C, ...), got {target.shape}")
    classes = input.shape[1]
    if input.ndim > 2:  # (N, C, d1, ...) -> (N, d1, ..., C)
        input = input.permute((0,) + tuple(range(2, input.ndim)) + (1,))
    return input.reshape(-1, classes), classes


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"{reduction} is not a valid value for reduction; expected one of "
                     f"{', '.join(REDUCTIONS)}")


def _as_tensor(value, like: Tensor, op: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    try:
        return Tensor(value)
    except TypeError as exc:
        raise TypeError(f"{op}: target must be a Tensor or an array, got "
                        f"{type(value).__name__} ({exc})") from None


def _check_float(x: Tensor, op: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if not backend.is_floating(x.dtype):
        raise TypeError(f"{op}: expected a floating point tensor, got dtype {x.dtype}")
