"""``optim.Adam`` and ``optim.AdamW`` with PyTorch's exact update rules."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _check_non_negative, lerp_


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), with PyTorch's formulation and options.

    With gradient :math:`g_t` at step :math:`t = 1, 2, \dots`, learning rate :math:`\gamma`
    and weight decay :math:`\lambda` (L2, added to the gradient; this is not AdamW)::

        g   = g_t + λ θ                              (weight_decay != 0)
        m   = β1 m + (1 - β1) g                      (m, v start at 0)
        v   = β2 v + (1 - β2) g²
        v̂max = max(v̂max, v); use it instead of v     (amsgrad)
        θ   = θ - γ / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + ε)

    ``ε`` is added after the bias correction of ``v``, exactly where PyTorch adds it.
    """
    _array_state = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    #: AdamW: weight decay shrinks θ directly instead of being added to the gradient.
    _decoupled_weight_decay = False

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad})

    def _check_options(self, options: Dict[str, Any]) -> None:
        _check_non_negative(options, "lr", "learning rate")
        _check_non_negative(options, "eps", "epsilon value")
        betas = options["betas"]
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        _check_non_negative(options, "weight_decay", "weight_decay value")

    def _state_keys(self, group: Dict[str, Any]) -> Tuple[str, ...]:
        keys = ("step", "exp_avg", "exp_avg_sq")
        return keys + ("max_exp_avg_sq",) if group["amsgrad"] else keys

    def _update(self, p: Tensor, grad, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        xp = p.xp
        beta1, beta2 = group["betas"]
        if not state:
            state.update(step=0, exp_avg=xp.zeros_like(p.data), exp_avg_sq=xp.zeros_like(p.data))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] = t = state["step"] + 1
        if group["weight_decay"] != 0:
            if self._decoupled_weight_decay:
                p.mul_(1 - group["lr"] * group["weight_decay"])
            else:
                grad = grad + group["weight_decay"] * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # m = β1 m + (1-β1) g, written as PyTorch's lerp so that the rounding matches.
        lerp_(m, grad, 1 - beta1)
        v *= beta2
        v += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            v = xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        step_size = group["lr"] / (1 - beta1 ** t)
        denom = xp.sqrt(v) / (1 - beta2 ** t) ** 0.5 + group["eps"]
        p.sub_(step_size * m / denom)  # (step_size * m) / denom, as torch's addcdiv_


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with *decoupled* weight decay.

    Instead of adding ``λ θ`` to the gradient (where Adam's normalisation would rescale it),
    each step first shrinks the weights, ``θ = θ (1 - γ λ)``, and then takes the plain Adam
    step above with the raw gradient. The default ``weight_decay`` is 0.01, as in PyTorch.
    """
    _decoupled_weight_decay = True

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)

