"""Gradient clipping, as in ``torch.nn.utils``: the usual cure for exploding gradients in
backpropagation through time. Call it between ``loss.backward()`` and ``optimizer.step()``::

    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step()

Both functions change the gradients (``p.grad``) in place and skip parameters whose gradient
is None.
"""
from __future__ import annotations

from typing import Iterable, List, Union

from ... import backend
from ...tensor import Tensor

Params = Union[Tensor, Iterable[Tensor]]


def clip_grad_norm_(parameters: Params, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    r"""Scale all gradients together so that their joint norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of the vector of all gradient entries,
    computed (as PyTorch does) as the norm of the per-gradient norms::

        total = ‖(‖g_1‖_p, …, ‖g_n‖_p)‖_p          (p = inf: the largest |entry|)
        coef  = min(1, max_norm / (total + 1e-6))
        g_i  ← coef · g_i

    The ``1e-6`` keeps the division finite when every gradient is zero, and means a gradient
    clipped to ``max_norm`` ends up very slightly below it. Returns the total norm *before*
    clipping as a 0-d Tensor (0.0 when no parameter has a gradient). With
    ``error_if_nonfinite=True`` a NaN/Inf total norm raises instead of spreading NaN into
    every gradient.
    """
    grads = _grads(parameters, "clip_grad_norm_")
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return Tensor(0.0)
    xp = backend.module_of(grads[0])
    norms = xp.stack([_vector_norm(xp, g, norm_type) for g in grads])
    total = xp.asarray(_vector_norm(xp, norms, norm_type))  # NumPy reductions give scalars
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            f"non-finite, so it cannot be clipped. To disable this error and scale the "
            f"gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
    with backend.np.errstate(over="ignore"):  # float16: 1e9 / 500 is inf, then 1.0
        coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        # Multiplying by exactly 1.0 leaves an unclipped gradient bit-for-bit unchanged.
        g *= coef.astype(g.dtype)
    return Tensor._wrap(total)  # a fresh 0-d array: no copy needed


def clip_grad_value_(parameters: Params, clip_value: float) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]``, in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters, "clip_grad_value_"):
        backend.module_of(g).clip(g, -clip_value, clip_value, out=g)


def _grads(parameters: Params, fn: str) -> List:
    """The gradient arrays (not copies: they are clipped in place) of the parameters that
    have one; checks that they live on one backend."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: expected Tensors (parameters), got {type(p).__name__}")
        if p.grad is not None:
            grads.append(p.grad.data)
    if len({backend.name_of(g) for g in grads}) > 1:
        raise RuntimeError(f"{fn}: expected all gradients on the same backend, but found "
                           "both 'numpy' and 'cupy'; move the model with .to(...) first")
    return grads


def _vector_norm(xp, x, p: float):
    """``‖x‖_p`` over all entries, as a 0-d array in ``x``'s dtype (``torch.linalg.vector_norm``
    semantics: p = inf → max |x|, -inf → min |x|, 0 → number of non-zeros)."""
    if x.dtype.itemsize < 4:
        # float16 squares overflow past 256 (a norm of inf would zero every gradient):
        # accumulate in float32 and round the norm back, as PyTorch does.
        return _vector_norm(xp, x.astype(xp.float32), p).astype(x.dtype)
    a = xp.abs(x)
    if p == float("inf"):
        return a.max() if a.size else xp.zeros((), a.dtype)
    if p == float("-inf"):
        return a.min()
    if p == 0:
        return (a != 0).sum().astype(a.dtype)
    if p == 2:
        return xp.sqrt((a * a).sum())  # the common case, without a pow per entry
    return (a ** p).sum() ** (1.0 / p)
