"""``gradcheck``: compare autograd's gradients with central finite differences.

For a function ``f`` of tensors, pick a fixed random weighting ``v`` of its output and look at
the scalar ``s(x) = sum(v * f(x))``. Autograd gives ds/dx in one backward pass; the central
difference ``(s(x + eps e_i) - s(x - eps e_i)) / (2 eps)`` gives each component with an error
of order eps². Everything runs in float64 so that the comparison means something.
"""
from __future__ import annotations

from typing import Callable, Sequence

from . import backend
from .autograd import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when an analytic gradient disagrees with the numeric one."""


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0) -> bool:
    """Check ``fn``'s gradients w.r.t. every input that ``requires_grad``.

    ``fn(*inputs)`` must return one Tensor; ``inputs`` is a Tensor or a sequence of them, as
    in PyTorch. Inputs are copied to float64 first. Returns True, or raises
    :class:`GradcheckError` naming the input, the worst element, and both values (a NaN on
    either side is a failure, never a pass).
    """
    if not eps > 0:
        raise ValueError(f"gradcheck: eps (the finite-difference step) must be a positive "
                         f"number, got {eps!r}")
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    inputs = [_as_float64_leaf(x) for x in inputs]
    checked = [i for i, x in enumerate(inputs) if x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True; nothing to check")
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    host_rng = backend.np.random.default_rng(seed)
    weights = Tensor(host_rng.standard_normal(out.shape), dtype="float64")

    def scalar(*xs) -> float:
        return float((fn(*xs) * weights).sum().item())

    (out * weights).sum().backward()
    for i in checked:
        grad = inputs[i].grad
        analytic = backend.to_host(grad.data) if grad is not None \
            else backend.np.zeros(inputs[i].shape)
        numeric = _numeric_grad(scalar, inputs, i, eps)
        _compare(analytic, numeric, i, atol, rtol)
    return True


def _as_float64_leaf(x) -> Tensor:
    requires_grad = isinstance(x, Tensor) and x.requires_grad
    data = x.data if isinstance(x, Tensor) else x
    t = Tensor(data)
    if t.dtype.kind == "f":
        t = Tensor(t.data, dtype="float64")
    return t.requires_grad_(requires_grad)


def _numeric_grad(scalar, inputs, i, eps):
    """Central differences of ``scalar`` w.r.t. every element of ``inputs[i]``."""
    x = inputs[i]
    flat = x.data.reshape(-1)  # a view: perturbing it perturbs x
    grad = backend.np.zeros(flat.shape[0])
    with no_grad():
        for k in range(flat.shape[0]):
            original = flat[k].item()
            flat[k] = original + eps
            plus = scalar(*inputs)
            flat[k] = original - eps
            minus = scalar(*inputs)
            flat[k] = original
            grad[k] = (plus - minus) / (2 * eps)
    return grad.reshape(x.shape)


def _compare(analytic, numeric, i, atol, rtol):
    np = backend.np
    error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    error = np.where(np.isnan(error), np.inf, error)     # NaN compares as the worst error
    if error.size and error.max() > 0:
        worst = np.unravel_index(int(error.argmax()), error.shape)
        raise GradcheckError(
            f"gradcheck failed for input {i} at index {tuple(int(w) for w in worst)}: "
            f"analytic {analytic[worst]:.10g} vs numeric {numeric[worst]:.10g} "
            f"(atol={atol}, rtol={rtol})")
