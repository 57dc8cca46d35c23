r"""The step equations of the Elman, LSTM and GRU cells, for the driver in ``recurrence.py``.

Each cell is written twice, side by side: :meth:`step` with primitive :class:`Tensor` ops
(the unrolled graph, and the ``nn.*Cell`` modules), and the pair :meth:`forward_step` /
:meth:`backward_step` over raw arrays with BPTT written out by hand (the fused node). The time
loop, the input projection, ``h_{t-1}``, the state hook and the sums over time are the
driver's. Notation: ``a`` the input share ``x_t W_ihᵀ + b`` of the pre-activations, ``r`` the
recurrent share ``h_{t-1} W_hhᵀ``, ``δ`` a gradient of the loss.
"""
from __future__ import annotations

from typing import Any

from .. import backend
from ..tensor import Tensor
from .recurrence import Cell

#: What a one-state cell returns when nothing reaches ``h_{t-1}`` but through ``W_hh``.
NO_CARRY = (None,)


class ElmanEquations(Cell):
    r"""``h_t = f(a_t + r_t)`` with ``f`` = tanh or ReLU.

    BPTT step: ``δ(a_t + r_t) = δh_t ⊙ f'``, with ``f'`` read from the stored ``h_t``:
    ``1 - h_t²`` (tanh), ``[h_t > 0]`` (ReLU), parked in the gradient buffer itself and
    multiplied in place. No path to ``h_{t-1}`` but through ``W_hh``.
    """

    uses_previous_states = False

    def __init__(self, nonlinearity: str = "tanh"):
        self.nonlinearity = nonlinearity
        self.name = f"rnn_{nonlinearity}"

    def step(self, x_share: Tensor, h_share: Tensor, states: tuple) -> tuple:
        a = x_share + h_share
        return (a.tanh() if self.nonlinearity == "tanh" else a.relu(),)

    def begin_forward(self, xp, a, batch) -> None:
        self.kernel = self.nonlinearity == "tanh" and backend.elementwise_kernel(
            xp, "elman_tanh_forward", "T a, T r", "T h", "h = tanh(a + r)")

    def forward_step(self, xp, rows, a, rec, prev, new) -> None:
        h = new[0]
        if self.kernel:                                      # CuPy: one kernel
            self.kernel(a, rec, h)
            return
        xp.add(a, rec, out=h)
        if self.nonlinearity == "tanh":
            xp.tanh(h, out=h)
        else:
            xp.maximum(h, 0, out=h)

    def backward_block(self, xp, block, gates, states, before, d_a) -> None:
        h = states[0]                                        # f'(a_t) of every step:
        if self.nonlinearity == "tanh":
            xp.multiply(h, h, out=d_a)
            xp.subtract(1, d_a, out=d_a)                     # 1 - h_t²
        else:
            xp.sign(h, out=d_a)                              # [h_t > 0], as h_t ≥ 0

    def backward_step(self, xp, rows, d_states, d_a, d_rec) -> tuple:
        d_a *= d_states[0]                                   # δa_t = δh_t ⊙ f'(a_t)
        return NO_CARRY


class LSTMEquations(Cell):
    r"""Gates i, f, g, o (PyTorch's order) from ``a_t + r_t`` ``(N, 4H)``::

        i, f, o = σ(·),  g = tanh(·)
        c_t = f ⊙ c_{t-1} + i ⊙ g,    m_t = o ⊙ tanh(c_t),    h_t = m_t (or m_t W_hrᵀ)

    BPTT step, with ``δh_t`` and ``δc_t`` arriving (``δc_t`` includes ``δc_{t+1} ⊙ f_{t+1}``,
    the path without a matrix product that lets LSTM gradients survive long spans)::

        δm_t  = δh_t (or δh_t W_hr)
        δc_t += δm_t ⊙ o ⊙ (1 - tanh²(c_t))
        δa_t  = [δc_t ⊙ g ⊙ σ'(i),  δc_t ⊙ c_{t-1} ⊙ σ'(f),  δc_t ⊙ i ⊙ (1 - g²),
                 δm_t ⊙ tanh(c_t) ⊙ σ'(o)]                      σ' = σ (1 - σ)
        to c_{t-1}: δc_t ⊙ f;       ∂L/∂W_hr = Σ_t δh_tᵀ m_t

    The factors beside ``δc_t`` and ``δm_t`` depend on the forward pass only, so
    :meth:`backward_block` computes them for a block of steps at once.
    """

    name = "lstm"
    #: m_t of every step, kept for ∂L/∂W_hr (with a projection only)
    ms: Any = None

    def __init__(self, w_hr: Tensor | None = None):
        self.w_hr = w_hr

    # ------------------------------------------------------------------------ unrolled
    def step(self, x_share: Tensor, h_share: Tensor, states: tuple) -> tuple:
        gates, c_prev = x_share + h_share, states[1]
        H = c_prev.shape[-1]
        i = gates[:, 0:H].sigmoid()
        f = gates[:, H:2 * H].sigmoid()
        g = gates[:, 2 * H:3 * H].tanh()
        o = gates[:, 3 * H:4 * H].sigmoid()
        c = f * c_prev + i * g
        h = o * c.tanh()
        return (h if self.w_hr is None else h @ self.w_hr.T, c)

    def parameters(self) -> tuple:
        return () if self.w_hr is None else (self.w_hr,)

    # --------------------------------------------------------------------------- fused
    def gate_scale(self, xp, width, dtype):
        H = width // 4
        scale = xp.full(width, 0.5, dtype=dtype)
        scale[2 * H:3 * H] = 1                               # g is a tanh, not a σ
        # After one tanh over all blocks, σ(a) = ½ tanh(a/2) + ½ on the σ blocks:
        self.after_tanh = (scale, xp.where(scale == 1, 0, 0.5).astype(dtype))
        return scale

    def begin_forward(self, xp, a, batch) -> None:
        total, G = a.shape
        self.scratch = xp.empty((batch, G // 4), dtype=a.dtype)
        self.ms = xp.empty((total, G // 4), dtype=a.dtype) if self.w_hr is not None else None
        self.w_hr_t = None if self.w_hr is None else xp.ascontiguousarray(self.w_hr.data.T)
        self.kernel = backend.elementwise_kernel(xp, "lstm_forward", *self.FORWARD_KERNEL)
        # One row per batch row: NumPy runs an operation on same-shaped arrays about three
        # times faster than one that broadcasts a (G·H,) vector (small arrays, every step).
        self.after_tanh = tuple(xp.ascontiguousarray(xp.broadcast_to(v, (batch, G)))
                                for v in self.after_tanh)

    #: The forward step below as one CUDA kernel (CuPy only): the gates in place, c_t, and
    #: h_t (or m_t, with a projection). Pre-activations of σ gates arrive halved.
    FORWARD_KERNEL = ("T ri, T rf, T rg, T ro, T cp", "T ai, T af, T ag, T ao, T c, T h",
                      "ai = tanh(ai + ri) * 0.5f + 0.5f; af = tanh(af + rf) * 0.5f + 0.5f;"
                      "ag = tanh(ag + rg); ao = tanh(ao + ro) * 0.5f + 0.5f;"
                      "c = af * cp + ai * ag; h = ao * tanh(c)")
    #: The backward step below as one CUDA kernel (CuPy only).
    BACKWARD_KERNEL = ("T dm, T slope, T f0, T f1, T f2, T f3, T fg",
                       "T dc, T dai, T daf, T dag, T dao, T tcp",
                       "dc = dc + dm * slope; dai = dc * f0; daf = dc * f1; dag = dc * f2;"
                       "dao = dm * f3; tcp = dc * fg")

    def forward_step(self, xp, rows, a, rec, prev, new) -> None:
        H = a.shape[1] // 4
        if self.kernel:                                      # CuPy: one kernel
            out = new[0] if self.w_hr is None else self.ms[rows]
            self.kernel(*_blocks(rec, 4, H), prev[1], *_blocks(a, 4, H), new[1], out)
            if self.w_hr is not None:
                xp.matmul(out, self.w_hr_t, out=new[0])
            return
        a += rec
        xp.tanh(a, out=a)                                    # every gate in one call
        n = len(a)                                           # the rows this step runs
        a *= self.after_tanh[0][:n]
        a += self.after_tanh[1][:n]
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c, tmp = new[1], self.scratch[:n]
        xp.multiply(f, prev[1], out=c)
        xp.multiply(i, g, out=tmp)
        c += tmp                                             # c_t
        xp.tanh(c, out=tmp)
        m = new[0] if self.w_hr is None else self.ms[rows]   # m_t, kept for ∂L/∂W_hr
        xp.multiply(o, tmp, out=m)                           # m_t = o ⊙ tanh(c_t)
        if self.w_hr is not None:
            xp.matmul(m, self.w_hr_t, out=new[0])            # h_t = m_t W_hrᵀ

    def begin_backward(self, xp, gates, block_rows, batch) -> None:
        H, dtype = gates.shape[1] // 4, gates.dtype
        self.tanh_c, self.o_tanh_slope = (xp.empty((block_rows, H), dtype=dtype)
                                          for _ in range(2))
        self.factors = xp.empty((block_rows, 4, H), dtype=dtype)
        self.d_m = xp.empty((batch, H), dtype=dtype)
        self.to_c_prev = xp.empty((batch, H), dtype=dtype)
        self.backward_kernel = backend.elementwise_kernel(xp, "lstm_backward",
                                                          *self.BACKWARD_KERNEL)

    def backward_block(self, xp, block, gates, states, before, d_a) -> None:
        rows, H = gates.shape[0], gates.shape[1] // 4
        i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
        tanh_c, slope = self.tanh_c[:rows], self.o_tanh_slope[:rows]
        xp.tanh(states[1], out=tanh_c)
        xp.multiply(tanh_c, tanh_c, out=slope)
        xp.subtract(1, slope, out=slope)
        slope *= o                                           # ∂m/∂c = o ⊙ (1 - tanh²(c))
        factors = self.factors[:rows]                        # δa = [δc, δc, δc, δm] ⊙ this
        # In place, block by block (no temporaries): g σ'(i), c_{t-1} σ'(f), i (1 - g²),
        # tanh(c) σ'(o), with σ' = σ (1 - σ).
        for k, (gate, partner) in enumerate(((i, g), (f, before[1]), (g, i), (o, tanh_c))):
            factor = factors[:, k]
            if k == 2:                                       # tanh': 1 - g²
                xp.multiply(gate, gate, out=factor)
                xp.subtract(1, factor, out=factor)
            else:                                            # σ': σ (1 - σ)
                xp.subtract(1, gate, out=factor)
                factor *= gate
            factor *= partner
        self.forget = f

    def backward_step(self, xp, rows, d_states, d_a, d_rec) -> tuple:
        d_h, d_c = d_states
        N, H = d_c.shape
        to_c_prev = self.to_c_prev[:N]
        d_m = d_h if self.w_hr is None else xp.matmul(d_h, self.w_hr.data, out=self.d_m[:N])
        slope, factors, forget = self.o_tanh_slope[rows], self.factors[rows], self.forget[rows]
        if self.backward_kernel:                             # CuPy: one kernel
            self.backward_kernel(d_m, slope, *(factors[:, k] for k in range(4)), forget,
                                 d_c, *_blocks(d_a, 4, H), to_c_prev)
            return (None, to_c_prev)
        xp.multiply(d_m, slope, out=to_c_prev)
        d_c += to_c_prev                                     # δc_t
        blocks = d_a.reshape(N, 4, H)
        xp.multiply(d_c[:, None, :], factors[:, :3], out=blocks[:, :3])
        xp.multiply(d_m, factors[:, 3], out=blocks[:, 3])
        xp.multiply(d_c, forget, out=to_c_prev)
        return (None, to_c_prev)

    def parameter_grads(self, xp, delta_h) -> tuple:
        if self.w_hr is None:
            return ()
        return (delta_h.T @ self.ms,)


class GRUEquations(Cell):
    r"""Gates r, z, n (PyTorch's order); ``b_hh`` stays in the recurrent share ``r_t`` (the
    reset gate multiplies its n block ``u_t = h_{t-1} W_hnᵀ + b_hn``, as in PyTorch)::

        r = σ(a^r + r^r),   z = σ(a^z + r^z),   n = tanh(a^n + r ⊙ u_t)
        h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

    BPTT step, with ``δh_t`` arriving (it includes ``δh_{t+1} ⊙ z_{t+1}``, the direct path
    through the update gate)::

        δa^n = δh_t ⊙ (1 - z) ⊙ (1 - n²)        δa^z = δh_t ⊙ (h_{t-1} - n) ⊙ σ'(z)
        δa^r = δa^n ⊙ u_t ⊙ σ'(r)
        δa_t = [δa^r, δa^z, δa^n]      (input share)
        δr_t = [δa^r, δa^z, δa^n ⊙ r]  (recurrent share);     to h_{t-1}: δh_t ⊙ z
    """

    name = "gru"
    hidden_bias_apart = True

    def step(self, x_share: Tensor, h_share: Tensor, states: tuple) -> tuple:
        h_prev = states[0]
        H = h_prev.shape[-1]
        r = (x_share[:, 0:H] + h_share[:, 0:H]).sigmoid()
        z = (x_share[:, H:2 * H] + h_share[:, H:2 * H]).sigmoid()
        n = (x_share[:, 2 * H:3 * H] + r * h_share[:, 2 * H:3 * H]).tanh()
        return (n + z * (h_prev - n),)                       # = (1 - z) ⊙ n + z ⊙ h_prev

    # --------------------------------------------------------------------------- fused
    def gate_scale(self, xp, width, dtype):
        scale = xp.full(width, 0.5, dtype=dtype)             # σ(a) = ½ tanh(a/2) + ½
        scale[2 * (width // 3):] = 1                         # n: r multiplies u unscaled
        return scale

    def begin_forward(self, xp, a, batch) -> None:
        total, G = a.shape
        self.u = xp.empty((total, G // 3), dtype=a.dtype)    # u_t, kept for backward
        self.scratch = xp.empty((batch, G // 3), dtype=a.dtype)
        # ½ for every row of r and z (an array: faster per step than the Python float)
        self.half = xp.full((batch, 2 * G // 3), 0.5, dtype=a.dtype)
        self.kernel = backend.elementwise_kernel(xp, "gru_forward", *self.FORWARD_KERNEL)

    #: The forward step below as one CUDA kernel (CuPy only): r, z, n in place, u_t, h_t.
    FORWARD_KERNEL = ("T rr, T rz, T un, T hp", "T ar, T az, T an, T u, T h",
                      "ar = tanh(ar + rr) * 0.5f + 0.5f; az = tanh(az + rz) * 0.5f + 0.5f;"
                      "u = un; an = tanh(an + ar * un); h = an + az * (hp - an)")
    #: The backward step below as one CUDA kernel (CuPy only).
    BACKWARD_KERNEL = ("T dh, T fr, T fz, T fn, T rs, T up",
                       "T dar, T daz, T dan, T drr, T drz, T drn, T thp",
                       "daz = dh * fz; dan = dh * fn; dar = dan * fr; drr = dar; drz = daz;"
                       "drn = dan * rs; thp = dh * up")

    def forward_step(self, xp, rows, a, rec, prev, new) -> None:
        H = a.shape[1] // 3
        if self.kernel:                                      # CuPy: one kernel
            self.kernel(*_blocks(rec, 3, H), prev[0], *_blocks(a, 3, H), self.u[rows], new[0])
            return
        rows_run, rz, half = len(a), a[:, :2 * H], self.half
        rz += rec[:, :2 * H]
        xp.tanh(rz, out=rz)
        rz *= half[:rows_run]
        rz += half[:rows_run]                                # r_t, z_t
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        u, tmp = self.u[rows], self.scratch[:rows_run]
        u[...] = rec[:, 2 * H:]
        xp.multiply(r, u, out=tmp)
        n += tmp
        xp.tanh(n, out=n)                                    # n_t
        xp.subtract(prev[0], n, out=tmp)
        tmp *= z
        xp.add(n, tmp, out=new[0])                           # h_t

    def begin_backward(self, xp, gates, block_rows, batch) -> None:
        H, dtype = gates.shape[1] // 3, gates.dtype
        self.factors = xp.empty((block_rows, 3, H), dtype=dtype)
        self.scratch = xp.empty((block_rows, H), dtype=dtype)
        self.to_h_prev = xp.empty((batch, H), dtype=dtype)
        self.backward_kernel = backend.elementwise_kernel(xp, "gru_backward",
                                                          *self.BACKWARD_KERNEL)

    def backward_block(self, xp, block, gates, states, before, d_a) -> None:
        rows, H = gates.shape[0], gates.shape[1] // 3
        r, z, n = (gates[:, k * H:(k + 1) * H] for k in range(3))
        factors, tmp = self.factors[:rows], self.scratch[:rows]  # in place, block by block:
        f_r, f_z, f_n = factors[:, 0], factors[:, 1], factors[:, 2]
        xp.subtract(1, r, out=f_r)
        f_r *= r
        f_r *= self.u[block]                                 # δa^r = δa^n ⊙ u σ'(r)
        xp.subtract(1, z, out=f_z)
        f_z *= z
        xp.multiply(n, n, out=f_n)
        xp.subtract(1, f_n, out=f_n)
        xp.subtract(1, z, out=tmp)
        f_n *= tmp                                           # δa^n = δh ⊙ (1 - z)(1 - n²)
        xp.subtract(before[0], n, out=tmp)
        f_z *= tmp                                           # δa^z = δh ⊙ (h_{t-1} - n) σ'(z)
        self.reset, self.update = r, z

    def backward_step(self, xp, rows, d_states, d_a, d_rec) -> tuple:
        d_h = d_states[0]
        N, H = d_h.shape
        to_h_prev = self.to_h_prev[:N]
        factors, reset, update = self.factors[rows], self.reset[rows], self.update[rows]
        if self.backward_kernel:                             # CuPy: one kernel
            self.backward_kernel(d_h, *(factors[:, k] for k in range(3)), reset, update,
                                 *_blocks(d_a, 3, H), *_blocks(d_rec, 3, H), to_h_prev)
            return (to_h_prev,)
        blocks = d_a.reshape(N, 3, H)
        xp.multiply(d_h[:, None, :], factors[:, 1:], out=blocks[:, 1:])   # δa^z, δa^n
        xp.multiply(blocks[:, 2], factors[:, 0], out=blocks[:, 0])        # δa^r
        d_rec[:, :2 * H] = d_a[:, :2 * H]
        xp.multiply(blocks[:, 2], reset, out=d_rec[:, 2 * H:])
        xp.multiply(d_h, update, out=to_h_prev)
        return (to_h_prev,)


def _blocks(array, count: int, H: int) -> list:
    """The ``count`` gate blocks ``(N, H)`` of an ``(N, count·H)`` array, as views."""
    return [array[:, k * H:(k + 1) * H] for k in range(count)]
