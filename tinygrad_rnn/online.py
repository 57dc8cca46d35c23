r"""Gradients computed forward in time: RTRL (exact) and UORO (an unbiased rank-one estimate).

BPTT stores the whole trajectory and walks it backwards once the sequence is over. The same
gradient can be had *online*, step by step, by carrying forward the **sensitivity** of the
state to the parameters, ``M_t = ∂s_t/∂θ`` ``(S, P)`` (state s = ``h``, or ``(h, c)`` for an
LSTM, all layers stacked; see :mod:`tinygrad_rnn.step_jacobian`). With the step Jacobians
``J_t = ∂s_t/∂s_{t-1}`` and ``D_t`` (θ's direct effect at step t)::

    M_0 = 0,        M_t = J_t M_{t-1} + D_t                          (chain rule, forward)
    ∂L/∂θ = Σ_t  δ_t M_t,     δ_t = ∂L_t/∂s_t  (the step loss's gradient, known at step t)

* :func:`rtrl` (real-time recurrent learning, Williams & Zipser 1989) carries ``M_t``
  exactly. Its gradient equals BPTT's to rounding error. The price: the product
  ``J_t M_{t-1}`` costs **O(S²·P) = O(H²·|θ|) per step and sample** (O(H⁴) for a layer of
  width H), against BPTT's O(|θ|) per step; its memory is O(S·P), independent of T, where
  BPTT's is O(T·S).
* :func:`uoro` (unbiased online recurrent optimisation, Tallec & Ollivier 2017) keeps only a
  rank-one stand-in ``M_t ≈ s̃_t θ̃_tᵀ`` (S + P numbers). With random signs ``ν`` ``(S,)``
  drawn anew each step::

      s̃_t = ρ₀ J_t s̃_{t-1} + ρ₁ ν              ρ₀ = √(‖θ̃_{t-1}‖ / ‖J_t s̃_{t-1}‖)
      θ̃_t = θ̃_{t-1}/ρ₀ + νᵀ D_t / ρ₁          ρ₁ = √(‖νᵀ D_t‖ / ‖ν‖)

  Multiplying out, ``s̃_t θ̃_tᵀ = J_t s̃θ̃ᵀ + ννᵀ D_t + (cross terms linear in ν)``; since
  ``E[ννᵀ] = I`` and the ρ's do not change when ν flips sign, ``E[s̃_t θ̃_tᵀ] = M_t`` by
  induction, and the estimate ``Σ_t (δ_t · s̃_t) θ̃_t`` is unbiased. The method needs only
  O(S² + S·P) time per step and O(S + P) memory, at the price of variance (see
  :func:`uoro_samples`). (This implementation shares RTRL's step machinery, which forms
  ``D_t`` ``(S, P)`` explicitly; a production UORO would get ``νᵀ D_t`` from one
  vector-Jacobian product instead, so the memory it measures here is O(S·P).)

Both share the contract: ``step_loss(t, out_t)`` (t = 0 … T−1) returns step t's loss as a
scalar Tensor from the layer's output ``out_t`` (``(N, H)``, or ``(H,)`` for unbatched
input); it may use other modules (a ``Linear`` head), whose ``.grad`` then receives its
gradient exactly as with BPTT (each step's loss is back-propagated as soon as it is known).
The recurrent layer's parameters receive ``∂(Σ_t L_t)/∂θ`` (RTRL) or its estimate (UORO)
in ``.grad`` (added, as ``backward`` adds). The initial state is treated as a constant: it
and ``x`` get no gradient. The sensitivities are computed in float64 whatever the layer's
dtype; ``out_t`` has the layer's dtype.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable

from . import backend
from .step_jacobian import StepMap
from .tensor import Tensor

np = backend.np  # host NumPy: the random signs are drawn on the host (see backend.rng)

__all__ = ["rtrl", "uoro", "uoro_samples"]

StepLoss = Callable[[int, Tensor], Tensor]


# ---------------------------------------------------------------------------- the methods

class _RTRL:
    """The exact sensitivity ``M_t`` ``(N, S, P)``."""

    def __init__(self, steps: StepMap):
        self.M = steps.xp.zeros((steps.batch, steps.size, steps.num_params))

    def advance(self, J, D) -> None:
        self.M = J @ self.M + D                                  # M_t = J_t M_{t-1} + D_t

    def gradient(self, delta, rows: slice):
        """``Σ_n δ_t[n] M_t[n, rows]`` ``(P,)``: this step's share of ∂L/∂θ."""
        return (delta[:, :, None] * self.M[:, rows, :]).sum(axis=(0, 1))


class _UORO:
    """``draws`` independent rank-one pairs ``(s̃, θ̃)`` per sample: ``(K, N, S)``, ``(K, N, P)``."""

    EPS = 1e-7   # keeps ρ finite when a factor is zero (as at t = 0); ρ stays sign-symmetric

    def __init__(self, steps: StepMap, draws: int, generator: np.random.Generator):
        xp, K, N = steps.xp, draws, steps.batch
        self.xp, self.generator = xp, generator
        self.s = xp.zeros((K, N, steps.size))
        self.theta = xp.zeros((K, N, steps.num_params))

    def advance(self, J, D) -> None:
        xp = self.xp
        signs = self.generator.integers(0, 2, size=self.s.shape) * 2.0 - 1.0
        nu = backend.to_backend(signs.astype("float64"))                  # (K, N, S)
        J_s = xp.einsum("nij,knj->kni", J, self.s)                         # J_t s̃
        nu_D = xp.einsum("kni,nip->knp", nu, D)                            # νᵀ D_t

        def norm(a):                                                       # per (k, n)
            return xp.sqrt((a * a).sum(axis=-1, keepdims=True))
        rho0 = xp.sqrt((norm(self.theta) + self.EPS) / (norm(J_s) + self.EPS))
        rho1 = xp.sqrt((norm(nu_D) + self.EPS) / (norm(nu) + self.EPS))
        self.s = rho0 * J_s + rho1 * nu
        self.theta = self.theta / rho0 + nu_D / rho1

    def gradient(self, delta, rows: slice):
        """``Σ_n (δ_t[n] · s̃[k, n, rows]) θ̃[k, n]`` for every draw k: ``(K, P)``."""
        weight = (delta[None] * self.s[:, :, rows]).sum(axis=-1)          # (K, N)
        return (weight[:, :, None] * self.theta).sum(axis=1)


# ------------------------------------------------------------------------- the driver

def _run(rnn, x: Tensor, step_loss: StepLoss, h0, owner: str, make_method) -> tuple:
    """Run ``rnn`` forward in time, back-propagating each step's loss into ``out_t`` as soon
    as it is known and folding ``δ_t`` into the method's gradient. Returns
    ``(total loss Tensor, gradient backend array (P,) or (K, P), StepMap)``."""
    if not callable(step_loss):
        raise TypeError(f"{owner}: step_loss must be a callable step_loss(t, out_t) -> scalar "
                        f"Tensor, got {type(step_loss).__name__}")
    steps = StepMap(rnn, x, h0, owner)
    method = make_method(steps)
    dtype = steps.rnn.weight_ih_l0.dtype
    top = steps.h_rows(steps.layers - 1)
    state, total, grad = steps.initial, None, 0
    for t in range(steps.inputs.shape[0]):
        state, J, D = steps.step(t, state)
        method.advance(J, D)
        out = steps.output(state).astype(dtype)
        out_t = Tensor(out[0] if steps.unbatched else out, requires_grad=True)
        loss = step_loss(t, out_t)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise TypeError(f"{owner}: step_loss({t}, out_t) must return a scalar Tensor, got "
                            f"{_describe(loss)}")
        if loss.requires_grad:
            loss.backward()                  # the head's gradients, and δ_t into out_t.grad
        if out_t.grad is not None:
            delta = out_t.grad.data.astype("float64").reshape(steps.batch, steps.hidden)
            grad = grad + method.gradient(delta, top)
        total = loss.detach() if total is None else total + loss.detach()
    if isinstance(grad, int):                  # no step loss depended on the output
        grad = method.gradient(steps.xp.zeros((steps.batch, steps.hidden)), top)
    return total, grad, steps


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"a Tensor of shape {value.shape}"
    return type(value).__name__


def _accumulate(steps: StepMap, grad) -> None:
    """Add the flat gradient ``(P,)`` into each parameter's ``.grad``, as backward would."""
    for name, p in steps.params:
        if not p.requires_grad:
            continue
        g = grad[steps.slices[name]].reshape(p.shape).astype(p.dtype)
        if p.grad is None:
            p.grad = Tensor(g)
        else:
            p.grad.data += g


def _generator(generator, owner: str) -> np.random.Generator:
    """A NumPy generator from ``generator``: a Generator, an int seed, or None (the
    package's seeded generator, see ``tinygrad_rnn.manual_seed``)."""
    if generator is None:
        return backend.rng()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool) \
            and int(generator) >= 0:
        return np.random.default_rng(int(generator))
    raise TypeError(f"{owner}: generator must be a numpy.random.Generator, a non-negative int "
                    f"seed or None, got {generator!r}")


# ----------------------------------------------------------------------------- public API

def rtrl(rnn, x: Tensor, step_loss: StepLoss, h0=None) -> Tensor:
    r"""Real-time recurrent learning: the exact gradient of ``Σ_t step_loss(t, out_t)``,
    computed forward in time (module docstring for the equations and the contract).

    ``rnn``: a unidirectional ``nn.RNN`` (tanh or ReLU), ``nn.LSTM`` or ``nn.GRU`` (or a
    module holding exactly one, e.g. a task's ``SequenceModel``), any
    number of layers (inter-layer dropout only in eval mode); ``x``: ``(T, N, H_in)``
    (``(N, T, H_in)`` with ``batch_first``) or unbatched ``(T, H_in)``; ``h0`` as for
    ``rnn(x, h0)``. Returns the total loss (a Tensor without graph); the gradients are in
    ``.grad``: equal to those of ``sum_t step_loss(t, output[t]).backward()`` (BPTT) up to
    rounding. Cost per step and sample O(S²·P) (O(H²·|θ|)), memory O(S·P).
    """
    total, grad, steps = _run(rnn, x, step_loss, h0, "bptt.rtrl", _RTRL)
    _accumulate(steps, grad)
    return total


def uoro(rnn, x: Tensor, step_loss: StepLoss, h0=None, generator=None) -> Tensor:
    r"""Unbiased online recurrent optimisation: one random, unbiased estimate of the gradient
    that :func:`rtrl` computes exactly, for O(S² + S·P) per step (module docstring).

    Same arguments and contract as :func:`rtrl`, plus ``generator``: a
    ``numpy.random.Generator``, an int seed, or None for the package's generator (seeded by
    ``tinygrad_rnn.manual_seed``). The recurrent parameters' ``.grad`` receives the estimate;
    the head's ``.grad`` its exact gradient. Returns the total loss.
    """
    owner = "bptt.uoro"
    rng = _generator(generator, owner)
    total, grad, steps = _run(rnn, x, step_loss, h0, owner,
                              lambda s: _UORO(s, 1, rng))
    _accumulate(steps, grad[0])
    return total


def uoro_samples(rnn, x: Tensor, step_loss: StepLoss, h0=None, draws: int = 1000,
                 generator=None):
    r"""``draws`` independent UORO estimates from one forward pass, to study the estimator:
    a host array ``(draws, P)``, flattened in ``rnn.named_parameters()`` order (their mean
    tends to the exact gradient; their spread is UORO's variance).

    The trajectory and the step Jacobians do not depend on the random signs, so all draws
    share them and advance together as one batched computation. Nothing is written into the
    recurrent layer's ``.grad``; a head used by ``step_loss`` still receives its (exact)
    gradient once.
    """
    owner = "bptt.uoro_samples"
    if isinstance(draws, bool) or not isinstance(draws, numbers.Integral) or draws < 1:
        raise ValueError(f"{owner}: draws must be a positive integer, got {draws!r}")
    rng = _generator(generator, owner)
    _, grad, _ = _run(rnn, x, step_loss, h0, owner, lambda s: _UORO(s, int(draws), rng))
    return backend.to_host(grad)
