"""``optim.RMSprop`` with PyTorch's exact update rule and options."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _check_non_negative, lerp_


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e), in PyTorch's formulation.

    With gradient :math:`g_t`, learning rate :math:`\gamma`, smoothing :math:`\alpha`::

        g  = g_t + λ θ                               (weight_decay != 0)
        v  = α v + (1 - α) g²                        (v starts at 0)
        ḡ  = α ḡ + (1 - α) g;  v' = v - ḡ²           (centered: a variance, not a 2nd moment)
        d  = sqrt(v') + ε                            (v' = v when not centered)
        b  = μ b + g / d;  θ = θ - γ b               (momentum μ > 0)
        θ  = θ - γ g / d                             (otherwise)

    ``ε`` is added *outside* the square root, and there is no bias correction (unlike Adam).
    """
    _array_state = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False):
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps,
                                  "weight_decay": weight_decay, "momentum": momentum,
                                  "centered": centered})

    def _check_options(self, options: Dict[str, Any]) -> None:
        _check_non_negative(options, "lr", "learning rate")
        _check_non_negative(options, "eps", "epsilon value")
        _check_non_negative(options, "momentum", "momentum value")
        _check_non_negative(options, "weight_decay", "weight_decay value")
        _check_non_negative(options, "alpha", "alpha value")

    def _state_keys(self, group: Dict[str, Any]) -> Tuple[str, ...]:
        keys: Tuple[str, ...] = ("step", "square_avg")
        if group["momentum"] > 0:
            keys += ("momentum_buffer",)
        return keys + ("grad_avg",) if group["centered"] else keys

    def _update(self, p: Tensor, grad, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        xp = p.xp
        if not state:
            state.update(step=0, square_avg=xp.zeros_like(p.data))
            if group["momentum"] > 0:
                state["momentum_buffer"] = xp.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(p.data)
        state["step"] += 1
        alpha = group["alpha"]
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = lerp_(state["grad_avg"], grad, 1 - alpha)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += grad / avg
            p.sub_(group["lr"] * buf)
        else:
            p.sub_(group["lr"] * grad / avg)  # (γ g) / d, as torch's addcdiv_
