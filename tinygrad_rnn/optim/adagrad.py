"""``optim.Adagrad`` with PyTorch's exact update rule and options."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _check_non_negative


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), in PyTorch's formulation.

    Each weight's step is divided by the root of the sum of all its squared gradients so
    far, so rarely updated weights keep larger steps. At step :math:`t = 1, 2, \dots`::

        g  = g_t + λ θ                               (weight_decay != 0)
        γ_t = γ / (1 + (t - 1) · lr_decay)
        s  = s + g²                                  (s starts at initial_accumulator_value)
        θ  = θ - γ_t g / (sqrt(s) + ε)
    """
    _array_state = ("sum",)

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10):
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value,
                                  "eps": eps})

    def _check_options(self, options: Dict[str, Any]) -> None:
        _check_non_negative(options, "lr", "learning rate")
        _check_non_negative(options, "lr_decay", "lr_decay value")
        _check_non_negative(options, "weight_decay", "weight_decay value")
        _check_non_negative(options, "initial_accumulator_value",
                            "initial_accumulator_value value")
        _check_non_negative(options, "eps", "epsilon value")

    def _state_keys(self, group: Dict[str, Any]) -> Tuple[str, ...]:
        return ("step", "sum")

    def _update(self, p: Tensor, grad, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        xp = p.xp
        if not state:
            state.update(step=0, sum=xp.full_like(p.data, group["initial_accumulator_value"]))
        state["step"] = t = state["step"] + 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data
        clr = group["lr"] / (1 + (t - 1) * group["lr_decay"])
        state["sum"] += grad * grad
        std = xp.sqrt(state["sum"]) + group["eps"]
        p.sub_(clr * grad / std)  # (γ_t g) / d, as torch's addcdiv_
