"""``optim.SGD``: stochastic gradient descent with PyTorch's momentum formulation."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _check_non_negative


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum (PyTorch's formulation).

    With gradient :math:`g_t`, learning rate :math:`\gamma`, weight decay :math:`\lambda`,
    momentum :math:`\mu` and dampening :math:`\tau`, one step is::

        g  = g_t + λ θ                            (weight_decay != 0)
        b  = g                                    (first step)
        b  = μ b + (1 - τ) g                      (later steps; momentum != 0)
        g  = g + μ b  if nesterov  else  b        (momentum != 0)
        θ  = θ - γ g

    Note that, as in PyTorch (and unlike Sutskever et al.), the learning rate multiplies the
    whole velocity, and the first step copies the gradient into the buffer undampened.
    """
    _array_state = ("momentum_buffer",)

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False):
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    def _check_options(self, options: Dict[str, Any]) -> None:
        _check_non_negative(options, "lr", "learning rate")
        _check_non_negative(options, "momentum", "momentum value")
        _check_non_negative(options, "weight_decay", "weight_decay value")
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _state_keys(self, group: Dict[str, Any]) -> Tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _update(self, p: Tensor, grad, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        momentum = group["momentum"]
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # A copy: grad may be p.grad.data itself, and the buffer is updated in place.
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.sub_(group["lr"] * grad)
