r"""Lyapunov exponents of a recurrent layer along a trajectory.

Driven by an input sequence, a recurrent layer is a dynamical system ``s_t = F(s_{t-1}, x_t)``
(s = ``h``, or ``(h, c)`` for an LSTM; all layers stacked, see
:mod:`tinygrad_rnn.step_jacobian`). A small perturbation of the state evolves with the step
Jacobians ``J_t = ∂s_t/∂s_{t-1}``: after T steps it has been multiplied by
``J_T ⋯ J_2 J_1``. The **Lyapunov exponents** ``λ_1 ≥ λ_2 ≥ …`` are the average
logarithmic growth rates, per step, of that product along its independent directions:
``λ_1 > 0`` means nearby trajectories separate exponentially (chaos; in BPTT, exploding
gradients, since back-propagated gradients travel through the transposed product), while
``λ_1 < 0`` means every perturbation dies out (stable dynamics; vanishing gradients).

The product itself overflows or collapses onto one direction after a few dozen steps, so it
is never formed. Instead (Benettin et al. 1980; for RNNs Engelken, Wolf & Abbott 2023) an
orthonormal basis ``Q`` ``(S, k)`` is pushed through each step and re-orthonormalised by a
QR decomposition, whose triangular factor keeps the stretching::

    Q_0 = I[:, :k],     J_t Q_{t-1} = Q_t R_t,     λ_i = (1 / T') Σ_{t ≥ warmup} log |R_t[i, i]|

(T' = T − warmup steps counted). Because ``|det J_t| = Π_i |R_t[i, i]|`` when k = S, the
exponents add up to the mean of ``log |det J_t|``: the average rate at which the dynamics
expand or contract volume.
"""
from __future__ import annotations

import numbers

from . import backend
from .step_jacobian import StepMap
from .tensor import Tensor

np = backend.np  # host NumPy: S×S QR decompositions and a short result vector

__all__ = ["lyapunov_spectrum"]


def lyapunov_spectrum(rnn, x: Tensor, h0=None, k: int | None = None,
                      warmup: int = 0) -> np.ndarray:
    r"""The top ``k`` Lyapunov exponents of ``rnn`` along the trajectory driven by ``x``.

    ``rnn``: a unidirectional ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` (any number of layers,
    eval mode if it has dropout). ``x``: one sequence, unbatched ``(T, H_in)`` or a batch of
    one ``(T, 1, H_in)`` (``(1, T, H_in)`` with ``batch_first``); ``h0`` shaped to match, as
    for ``rnn(x, h0)`` (zeros if None). ``k``: how many exponents (default all, S = the state
    size: ``num_layers·H``, doubled for an LSTM). ``warmup``: the first ``warmup`` steps move
    the basis (starting from the identity) but their stretching is not counted, so the basis
    can align with the dynamics first.

    Returns a host float64 array ``(k,)``, largest first, in natural-log units per step
    (``-inf`` for a direction that is collapsed exactly, e.g. by a dead ReLU unit). Method in
    the module docstring; each step costs one exact Jacobian (see ``step_jacobian``) and a QR
    of ``(S, k)``. The trajectory is the layer's own (its forward pass, one step at a time,
    in its dtype): in a chaotic regime any other computation of it would drift away.
    """
    owner = "bptt.lyapunov_spectrum"
    steps = StepMap(rnn, x, h0, owner)
    if steps.batch != 1:
        raise ValueError(f"{owner}: expected one sequence, (T, H_in) or (T, 1, H_in), got a "
                         f"batch of {steps.batch}; pass x[:, i:i+1] for sequence i")
    T, S = steps.inputs.shape[0], steps.size
    k = S if k is None else k
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= int(k) <= S:
        raise ValueError(f"{owner}: k must be an integer from 1 to the state size {S}, got "
                         f"{k!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) \
            or not 0 <= warmup < T:
        raise ValueError(f"{owner}: warmup must be an integer from 0 to T - 1 = {T - 1} (at "
                         f"least one step must be counted), got {warmup!r}")
    basis = np.eye(S)[:, :int(k)]
    log_stretch = np.zeros(int(k))
    state = steps.initial
    with np.errstate(divide="ignore"):              # log 0 = -inf is the right answer
        for t in range(T):
            _, jacobian, _ = steps.step(t, state, with_params=False)   # J_t at s_{t-1}
            state = steps.layer_step(t, state)
            basis, r = np.linalg.qr(backend.to_host(jacobian[0]) @ basis)
            if t >= warmup:
                log_stretch += np.log(np.abs(np.diag(r)))
    return np.sort(log_stretch / (T - warmup))[::-1]
