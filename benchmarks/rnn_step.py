#!/usr/bin/env python
"""One training step of a small sequence model, timed on several implementations.

The model is the one the seed notebooks train: ``nn.RNN(I, H, batch_first=True)`` (tanh), an
``nn.Linear(H, I)`` head on every time step (next-value prediction), the mean squared error
against a target sequence, and one plain SGD update. ``--cell lstm`` or ``--cell gru`` puts
an ``nn.LSTM`` or ``nn.GRU`` in place of the RNN. One *step* is::

    zero_grad → forward (RNN, Linear on every step, MSE) → backward (BPTT) → SGD update

Entries:

* ``fused``    — ``tinygrad_rnn`` with ``nn.RNN(..., unroll=False)`` (hand-written BPTT node)
* ``unrolled`` — ``tinygrad_rnn`` with ``nn.RNN(..., unroll=True)`` (autograd does BPTT)
* ``numpy``    — the *floor*: the same step written by hand on raw arrays in this file
  (:class:`Floor`, :class:`FloorLSTM`), no framework at all: what NumPy itself allows. Its
  gradients are checked against the reference (float64, and the timed dtype) before
  anything is timed.
* ``torch``    — ``torch.nn.RNN`` + ``torch.nn.Linear`` + ``torch.optim.SGD``, when torch is
  importable (on ``--backend cupy`` only if torch sees a GPU: cuDNN against CuPy).
* ``torch_unrolled`` — PyTorch's autograd on the *unrolled* graph: the same per-step
  primitive ops as ``unrolled`` (the input projection of all steps, then per step a slice,
  ``h @ W_hhᵀ``, the sum and the cell's elementwise ops, then ``stack``), written with torch
  tensors in a Python loop. It is the yardstick for ``unrolled``: what PyTorch's C++ engine
  costs on the same graph.
* ``gemm``     — the *small-GEMM limit*: only the step's matrix products, each at its shape
  (the input projection and the head over all T·N rows, the T recurrent ``(N, P) × (P, G·H)``
  products forward and T ``(N, G·H) × (G·H, P)`` backward, the weight-gradient products), on
  preallocated buffers; no elementwise work at all. No implementation can beat it.

The numpy floor exists for the RNN and the LSTM. The RNN's gradients are checked against the
floor's; the LSTM's and GRU's against torch's (without torch: the unrolled layer's, or the
fused one's, itself checked against recorded PyTorch fixtures by the test suite).

Every configuration runs in its own child process, with the BLAS/OpenMP thread variables set
(``--threads``, default 1) before NumPy or torch is imported, and ``torch.set_num_threads``.
Each entry is warmed up, then the entries are timed round-robin (the order rotates every
round), each sample running the step enough times to last ``--min-time``; the figure is the
median over ``--repeats`` samples. Before timing, ``gc.freeze()`` hides everything set up so
far (torch's modules among it) from the garbage collector, whose full collections the
unrolled graph's many objects set off: as in a training script that has not imported torch
(``unrolled_gc.py`` measures the collector's share without the freeze, with a large heap).
Ratios are to the floor (``× numpy``), to PyTorch (``× torch``) and to the small-GEMM limit
(``× gemm``) from the same run.

``--memory`` measures the peak memory of one step, each entry in a child process of its own,
after one warm-up step:

* ``tracemalloc`` (NumPy entries): the peak, during the step, of the bytes allocated in the
  step and not yet freed — NumPy reports every array buffer to ``tracemalloc``, so this is the
  step's working set of arrays (activations, gradients, temporaries) plus Python objects;
  parameters and data, allocated before, are not counted. torch's allocator is invisible to
  it.
* ``rss`` (every entry): the peak resident set size during the step minus the resident size
  at its start (Linux: ``/proc/self/clear_refs`` resets the peak, ``VmHWM`` reads it; glibc
  is told to give large blocks back at once with ``MALLOC_MMAP_THRESHOLD_``, so freed
  arrays leave the RSS). Coarser (pages), but the same yardstick for torch.
* on ``--backend cupy`` (column ``peak MiB``): the bytes CuPy's memory pool holds after one
  step that started with an emptied pool (about the peak of live device arrays); for torch,
  ``torch.cuda.max_memory_allocated`` over the step.

Examples::

    python benchmarks/rnn_step.py                      # all configs, 1 thread, table
    python benchmarks/rnn_step.py --cell lstm --entries fused,unrolled,torch,gemm
    python benchmarks/rnn_step.py --configs M,L --memory
    python benchmarks/rnn_step.py --json > results.json
    python benchmarks/rnn_step.py --backend cupy

OpenBLAS note: where ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` are set (some machines set
them to work around old OpenBLAS bugs), a current NumPy runs a slower kernel; the header line
shows the kernel in use (via ``threadpoolctl`` when installed). This script never changes
them: unset both in the benchmarking command itself if you want the native kernel.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

# name: (input size I, hidden size H, batch N, sequence length T)
CONFIGS = {
    "S": (4, 32, 16, 50),
    "M": (32, 128, 32, 100),
    "L": (64, 256, 64, 200),
    "Long": (4, 32, 1, 2000),
}
ENTRIES = ("fused", "unrolled", "numpy", "torch", "torch_unrolled", "gemm")
TORCH_ENTRIES = ("torch", "torch_unrolled")
CELLS = {"rnn": 1, "lstm": 4, "gru": 3}     # cell: gate blocks G
LAYER_NAMES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
RESULT_TAG = "@@RESULT "
LR = 0.01
SEED = 0


# ====================================================================== the step, four ways

class Ours:
    """tinygrad_rnn: RNN, LSTM or GRU (fused or unrolled) + Linear + MSE + SGD."""

    def __init__(self, weights, x, y, dtype, unroll, cell="rnn"):
        import tinygrad_rnn as tg
        from tinygrad_rnn import optim
        I, H = weights["rnn.weight_ih_l0"].shape[1], weights["rnn.weight_hh_l0"].shape[1]
        self.F = tg.nn.functional
        layer = getattr(tg.nn, LAYER_NAMES[cell])
        self.rnn = layer(I, H, batch_first=True, unroll=unroll, dtype=dtype)
        self.fc = tg.nn.Linear(H, weights["fc.weight"].shape[0], dtype=dtype)
        self.rnn.load_state_dict({k[4:]: v for k, v in weights.items() if k.startswith("rnn.")})
        self.fc.load_state_dict({k[3:]: v for k, v in weights.items() if k.startswith("fc.")})
        self.named = [("rnn." + n, p) for n, p in self.rnn.named_parameters()] + \
                     [("fc." + n, p) for n, p in self.fc.named_parameters()]
        self.opt = optim.SGD([p for _, p in self.named], lr=LR)
        self.x, self.y = tg.Tensor(x), tg.Tensor(y)

    def _loss(self):
        out, _ = self.rnn(self.x)
        return self.F.mse_loss(self.fc(out), self.y)

    def step(self):
        self.opt.zero_grad()
        self._loss().backward()
        self.opt.step()

    def grads(self):
        self.opt.zero_grad()
        self._loss().backward()
        return {n: p.grad.data for n, p in self.named}


class Floor:
    """The floor: the same step by hand on raw arrays (NumPy, or CuPy with ``xp=cupy``).

    Forward, time-major ``(T, N, ·)`` inside (``x`` arrives batch-first)::

        a_t = x_t W_ihᵀ + b_ih + b_hh + h_{t-1} W_hhᵀ,   h_t = tanh(a_t)   (h_0 = 0)
        ŷ_t = h_t W_fcᵀ + b_fc,   L = mean((ŷ - y)²)

    Backward: ``dŷ = 2(ŷ - y)/size``; ``δh_t = dŷ_t W_fc + δa_{t+1} W_hh``;
    ``δa_t = δh_t ⊙ (1 - h_t²)``; parameter gradients are one matmul each over all T·N rows.

    Written to be fast and lean, as a careful person would by hand: every big product is one
    matmul, ``W_hhᵀ`` is copied once to a contiguous array (OpenBLAS multiplies by a
    transposed view about twice as slowly at these shapes), the time loops do three array
    calls per step into preallocated buffers, and the
    ``(T, N, H)`` arrays alive at the peak are h, dŷ W_fc (updated into δh) and 1 - h² (updated
    into δa).
    """

    def __init__(self, weights, x, y, xp):
        self.xp = xp
        self.p = {k: xp.array(v) for k, v in weights.items()}
        self.x, self.y = xp.asarray(x), xp.asarray(y)

    def _forward_backward(self):
        xp, p, x = self.xp, self.p, self.x
        N, T, I = x.shape
        W_ih, W_hh, W_fc = p["rnn.weight_ih_l0"], p["rnn.weight_hh_l0"], p["fc.weight"]
        H, K = W_hh.shape[0], W_fc.shape[0]
        x_rows = x.transpose(1, 0, 2).reshape(T * N, I)     # time-major rows (a copy)
        hs = xp.empty((T, N, H), dtype=x.dtype)
        xp.matmul(x_rows, W_ih.T, out=hs.reshape(T * N, H))  # all input projections at once
        hs += p["rnn.bias_ih_l0"] + p["rnn.bias_hh_l0"]
        W_hh_T = xp.ascontiguousarray(W_hh.T)   # a transposed view: each matmul ~2x slower
        recurrent = xp.empty((N, H), dtype=x.dtype)
        h = xp.zeros((N, H), dtype=x.dtype)
        for t in range(T):
            a = hs[t]
            xp.matmul(h, W_hh_T, out=recurrent)
            a += recurrent
            xp.tanh(a, out=a)
            h = a
        flat_h = hs.reshape(T * N, H)
        diff = flat_h @ W_fc.T                              # ŷ, rows in (t, n) order
        diff += p["fc.bias"]
        diff -= self.y.transpose(1, 0, 2).reshape(T * N, K)
        diff *= 2.0 / diff.size                             # dL/dŷ
        g = {"fc.weight": diff.T @ flat_h, "fc.bias": diff.sum(axis=0)}
        delta_h = (diff @ W_fc).reshape(T, N, H)            # dŷ_t W_fc, becomes δh_t
        delta = hs * hs
        xp.subtract(1, delta, out=delta)                    # f'(a_t) = 1 - h_t², becomes δa_t
        carry = xp.zeros((N, H), dtype=x.dtype)             # δa_{t+1} W_hh
        for t in range(T - 1, -1, -1):
            dh = delta_h[t]
            dh += carry                                     # δh_t
            da = delta[t]
            da *= dh                                        # δa_t
            xp.matmul(da, W_hh, out=carry)
        flat_d = delta.reshape(T * N, H)
        g["rnn.weight_ih_l0"] = flat_d.T @ x_rows
        g["rnn.weight_hh_l0"] = flat_d[N:].T @ flat_h[:-N]  # h_0 = 0 adds nothing
        g["rnn.bias_ih_l0"] = g["rnn.bias_hh_l0"] = flat_d.sum(axis=0)
        return g

    def step(self):
        for name, grad in self._forward_backward().items():
            self.p[name] -= LR * grad

    def grads(self):
        return self._forward_backward()


class FloorLSTM(Floor):
    """The floor for ``--cell lstm``: the LSTM step by hand on raw arrays, as a careful person
    would write it for speed (no framework at all). Gates i, f, g, o (PyTorch's order)::

        a_t = x_t W_ihᵀ + b_ih + b_hh + h_{t-1} W_hhᵀ
        i, f, o = σ(a^i, a^f, a^o),  g = tanh(a^g)      (σ(a) = ½ tanh(a/2) + ½: one tanh)
        c_t = f ⊙ c_{t-1} + i ⊙ g,    h_t = o ⊙ tanh(c_t)

    Backward, with ``δh_t = dŷ_t W_fc + δa_{t+1} W_hh`` and
    ``δc_t = δh_t ⊙ o ⊙ (1 - tanh²(c_t)) + δc_{t+1} ⊙ f_{t+1}``::

        δa_t = [δc_t ⊙ g σ'(i),  δc_t ⊙ c_{t-1} σ'(f),  δc_t ⊙ i (1 - g²),  δh_t ⊙ tanh(c_t) σ'(o)]

    The factors beside ``δc_t`` and ``δh_t`` depend on the forward pass only: computed for
    all steps at once. Per step: one matmul and nine array calls forward, one matmul and six
    calls backward, into preallocated buffers; every big product is one matmul.
    """

    def _forward_backward(self):
        xp, p, x = self.xp, self.p, self.x
        N, T, I = x.shape
        W_ih, W_hh, W_fc = p["rnn.weight_ih_l0"], p["rnn.weight_hh_l0"], p["fc.weight"]
        G, K, dtype = W_hh.shape[0], W_fc.shape[0], x.dtype
        H = G // 4
        scale = xp.full(G, 0.5, dtype=dtype)
        scale[2 * H:3 * H] = 1                           # g is a tanh, the others σ
        shift = xp.where(scale == 1, 0, 0.5).astype(dtype)
        x_rows = x.transpose(1, 0, 2).reshape(T * N, I)
        a = x_rows @ W_ih.T
        a += p["rnn.bias_ih_l0"] + p["rnn.bias_hh_l0"]
        a *= scale
        a = a.reshape(T, N, G)
        W_hh_T = xp.ascontiguousarray(W_hh.T * scale)
        hs, cs, tanh_c = (xp.empty((T, N, H), dtype=dtype) for _ in range(3))
        recurrent, tmp = xp.empty((N, G), dtype=dtype), xp.empty((N, H), dtype=dtype)
        h = c = xp.zeros((N, H), dtype=dtype)
        for t in range(T):
            gates = a[t]
            xp.dot(h, W_hh_T, out=recurrent)
            gates += recurrent
            xp.tanh(gates, out=gates)
            gates *= scale
            gates += shift                               # i, f, g, o
            xp.multiply(gates[:, H:2 * H], c, out=cs[t])
            xp.multiply(gates[:, :H], gates[:, 2 * H:3 * H], out=tmp)
            cs[t] += tmp                                 # c_t
            xp.tanh(cs[t], out=tanh_c[t])
            xp.multiply(gates[:, 3 * H:], tanh_c[t], out=hs[t])
            h, c = hs[t], cs[t]
        flat_h = hs.reshape(T * N, H)
        diff = flat_h @ W_fc.T
        diff += p["fc.bias"]
        diff -= self.y.transpose(1, 0, 2).reshape(T * N, K)
        diff *= 2.0 / diff.size                          # dL/dŷ
        g = {"fc.weight": diff.T @ flat_h, "fc.bias": diff.sum(axis=0)}
        delta_h = (diff @ W_fc).reshape(T, N, H)         # dŷ_t W_fc, becomes δh_t
        i, f, gg, o = (a[..., k * H:(k + 1) * H] for k in range(4))
        slope = tanh_c * tanh_c
        xp.subtract(1, slope, out=slope)
        slope *= o                                       # ∂h/∂c = o (1 - tanh²(c))
        factors = xp.empty((T, N, 4, H), dtype=dtype)
        c_prev = xp.concatenate([xp.zeros((1, N, H), dtype=dtype), cs[:-1]])
        for k, (gate, partner) in enumerate(((i, gg), (f, c_prev), (gg, i), (o, tanh_c))):
            factor = factors[:, :, k]
            if k == 2:
                xp.multiply(gate, gate, out=factor)
                xp.subtract(1, factor, out=factor)       # 1 - g²
            else:
                xp.subtract(1, gate, out=factor)
                factor *= gate                           # σ (1 - σ)
            factor *= partner
        d_a = xp.empty((T, N, G), dtype=dtype)
        blocks = d_a.reshape(T, N, 4, H)
        carry = xp.zeros((N, H), dtype=dtype)            # δa_{t+1} W_hh
        d_c = xp.zeros((N, H), dtype=dtype)              # δc_{t+1} ⊙ f_{t+1}, becomes δc_t
        for t in range(T - 1, -1, -1):
            d_h = delta_h[t]
            d_h += carry                                 # δh_t
            xp.multiply(d_h, slope[t], out=tmp)
            d_c += tmp                                   # δc_t
            xp.multiply(d_c[:, None, :], factors[t, :, :3], out=blocks[t, :, :3])
            xp.multiply(d_h, factors[t, :, 3], out=blocks[t, :, 3])
            d_c *= f[t]
            xp.dot(d_a[t], W_hh, out=carry)
        flat_d = d_a.reshape(T * N, G)
        g["rnn.weight_ih_l0"] = flat_d.T @ x_rows
        g["rnn.weight_hh_l0"] = flat_d[N:].T @ flat_h[:-N]   # h_0 = 0 adds nothing
        g["rnn.bias_ih_l0"] = g["rnn.bias_hh_l0"] = flat_d.sum(axis=0)
        return g


#: The hand-written floor of each cell that has one.
FLOORS = {"rnn": Floor, "lstm": FloorLSTM}


class GemmLimit:
    """The small-GEMM limit: the matrix products of one step alone, at their shapes, into
    preallocated buffers (see the module docstring). ``grads()`` has nothing to check."""

    def __init__(self, weights, x, xp, cell):
        N, T, I = x.shape
        P = weights["rnn.weight_hh_l0"].shape[1]
        GH, K = weights["rnn.weight_hh_l0"].shape[0], weights["fc.weight"].shape[0]
        dtype = x.dtype

        def rand(*shape):
            return xp.asarray(xp.ones(shape, dtype=dtype) * 0.01)
        self.xp, self.T = xp, T
        self.x_rows, self.W_ih_T = rand(T * N, I), rand(I, GH)
        self.W_hh_T, self.W_hh, self.W_fc_T, self.W_fc = rand(P, GH), rand(GH, P), \
            rand(P, K), rand(K, P)
        self.a, self.h, self.rec, self.carry = rand(T * N, GH), rand(T * N, P), rand(N, GH), \
            rand(N, P)
        self.y, self.d_a = rand(T * N, K), rand(T * N, GH)
        self.g_ih, self.g_hh, self.g_fc, self.d_h = rand(GH, I), rand(GH, P), rand(K, P), \
            rand(T * N, P)
        self.N = N

    def step(self):
        xp, N = self.xp, self.N
        xp.matmul(self.x_rows, self.W_ih_T, out=self.a)           # input projection
        for t in range(self.T):                                   # recurrent, forward
            xp.matmul(self.h[t * N:(t + 1) * N], self.W_hh_T, out=self.rec)
        xp.matmul(self.h, self.W_fc_T, out=self.y)                # head
        xp.matmul(self.y.T, self.h, out=self.g_fc)                # head weight gradient
        xp.matmul(self.y, self.W_fc, out=self.d_h)                # head input gradient
        for t in range(self.T - 1, -1, -1):                       # recurrent, backward
            xp.matmul(self.d_a[t * N:(t + 1) * N], self.W_hh, out=self.carry)
        xp.matmul(self.d_a.T, self.x_rows, out=self.g_ih)         # Σ_t δa_tᵀ x_t
        xp.matmul(self.d_a.T, self.h, out=self.g_hh)              # Σ_t δa_tᵀ h_{t-1}


class Torch:
    """torch.nn.RNN (LSTM, GRU) + torch.nn.Linear + MSE + torch.optim.SGD."""

    def __init__(self, weights, x, y, dtype, device, cell="rnn"):
        import torch
        self.torch = torch
        tdtype = getattr(torch, str(dtype))
        I, H = weights["rnn.weight_ih_l0"].shape[1], weights["rnn.weight_hh_l0"].shape[1]
        layer = getattr(torch.nn, LAYER_NAMES[cell])
        self.rnn = layer(I, H, batch_first=True).to(device=device, dtype=tdtype)
        self.fc = torch.nn.Linear(H, weights["fc.weight"].shape[0]).to(device=device,
                                                                        dtype=tdtype)
        with torch.no_grad():
            for prefix, module in (("rnn.", self.rnn), ("fc.", self.fc)):
                for n, prm in module.named_parameters():
                    prm.copy_(torch.as_tensor(weights[prefix + n]))
        self.named = [("rnn." + n, p) for n, p in self.rnn.named_parameters()] + \
                     [("fc." + n, p) for n, p in self.fc.named_parameters()]
        self.opt = torch.optim.SGD([p for _, p in self.named], lr=LR)
        self.x = torch.as_tensor(x).to(device)
        self.y = torch.as_tensor(y).to(device)

    def _loss(self):
        out, _ = self.rnn(self.x)
        return self.torch.nn.functional.mse_loss(self.fc(out), self.y)

    def step(self):
        self.opt.zero_grad()
        self._loss().backward()
        self.opt.step()

    def grads(self):
        self.opt.zero_grad()
        self._loss().backward()
        return {n: p.grad.detach().cpu().numpy() for n, p in self.named}


class TorchUnrolled(Torch):
    """PyTorch's autograd on the graph ``unroll=True`` records: the same primitive ops per
    step, with torch tensors in a Python loop (the weights of ``Torch``'s layer)."""

    def _loss(self):
        torch, rnn = self.torch, self.rnn
        w_ih, w_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, \
            rnn.bias_hh_l0
        x = self.x.transpose(0, 1)                               # (T, N, I)
        T, N = x.shape[0], x.shape[1]
        H = w_hh.shape[1]
        gru = isinstance(rnn, torch.nn.GRU)
        x_share = x.reshape(T * N, -1) @ w_ih.T + (b_ih if gru else b_ih + b_hh)
        h = torch.zeros(N, H, dtype=x.dtype, device=x.device)
        c = torch.zeros_like(h)
        w_hh_t = w_hh.T
        outputs = []
        for t in range(T):
            xs, hs = x_share[t * N:(t + 1) * N], h @ w_hh_t
            if isinstance(rnn, torch.nn.LSTM):
                gates = xs + hs
                i, f = gates[:, :H].sigmoid(), gates[:, H:2 * H].sigmoid()
                g, o = gates[:, 2 * H:3 * H].tanh(), gates[:, 3 * H:].sigmoid()
                c = f * c + i * g
                h = o * c.tanh()
            elif gru:
                hs = hs + b_hh
                r = (xs[:, :H] + hs[:, :H]).sigmoid()
                z = (xs[:, H:2 * H] + hs[:, H:2 * H]).sigmoid()
                n = (xs[:, 2 * H:] + r * hs[:, 2 * H:]).tanh()
                h = n + z * (h - n)
            else:
                h = (xs + hs).tanh()
            outputs.append(h)
        out = torch.stack(outputs, 0).transpose(0, 1)           # (N, T, H), batch_first
        return torch.nn.functional.mse_loss(self.fc(out), self.y)


# ============================================================================ child process

def _child_setup(args):
    """Imports that must happen after the thread variables are set (by the parent)."""
    import numpy as np

    import tinygrad_rnn as tg
    if args.backend != "numpy":
        tg.backend.use(args.backend)
    torch = None
    if any(name in TORCH_ENTRIES for name in args.entries):
        try:
            import torch
            torch.set_num_threads(args.threads)
            if args.backend == "cupy" and not torch.cuda.is_available():
                torch = None   # no cuDNN to compare with
        except Exception:
            torch = None
    return np, tg, torch


def _make_problem(np, tg, config, dtype, cell="rnn"):
    """Initial weights (PyTorch's init, from tinygrad_rnn's seeded generator) and data."""
    I, H, N, T = CONFIGS[config]
    tg.manual_seed(SEED)
    rnn = getattr(tg.nn, LAYER_NAMES[cell])(I, H, dtype="float64")
    fc = tg.nn.Linear(H, I, dtype="float64")
    weights = {"rnn." + n: p.numpy() for n, p in rnn.named_parameters()}
    weights.update({"fc." + n: p.numpy() for n, p in fc.named_parameters()})
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((N, T, I))
    y = np.roll(x, -1, axis=1)                 # next value of the same sequence
    cast = {k: v.astype(dtype) for k, v in weights.items()}
    return cast, x.astype(dtype), y.astype(dtype)


def _make_entries(names, np, tg, torch, config, dtype, backend, cell="rnn"):
    weights, x, y = _make_problem(np, tg, config, dtype, cell)
    made = {}
    for name in names:
        if name == "fused":
            made[name] = Ours(weights, x, y, dtype, unroll=False, cell=cell)
        elif name == "unrolled":
            made[name] = Ours(weights, x, y, dtype, unroll=True, cell=cell)
        elif name == "numpy" and cell in FLOORS:
            made[name] = FLOORS[cell](weights, x, y, tg.backend.xp)
        elif name in TORCH_ENTRIES and torch is not None:
            kind = Torch if name == "torch" else TorchUnrolled
            made[name] = kind(weights, x, y, dtype, "cuda" if backend == "cupy" else "cpu",
                              cell=cell)
        elif name == "gemm":
            made[name] = GemmLimit(weights, tg.backend.xp.asarray(x), tg.backend.xp, cell)
    return made


def _to_host(tg, array):
    return array if isinstance(array, tg.backend.np.ndarray) else tg.backend.to_host(array)


def _reference_entry(names, cell):
    """The entry every other entry's gradients are checked against: the NumPy floor for the
    RNN; torch for LSTM and GRU (without torch: the unrolled layer, or the fused one)."""
    for name in (("numpy",) if cell == "rnn" else ("torch", "unrolled", "fused")):
        if name in names:
            return name
    return None


def _check_gradients(np, tg, torch, config, backend, names, dtype, cell="rnn"):
    """Every entry's gradients against the reference's (:func:`_reference_entry`): float64 to
    ~1e-9, ``dtype`` to ~1e-4 (relative to the largest gradient), and ours keep ``dtype``.
    Raises on a mismatch."""
    report = {}
    names = [n for n in names if n != "gemm"]
    reference = _reference_entry(names, cell)
    if reference is None:
        return report
    for check_dtype, tol in (("float64", 1e-9), (dtype, 1e-4 if dtype == "float32" else 1e-9)):
        entries = _make_entries(names, np, tg, torch, config, check_dtype, backend, cell)
        floor = {k: _to_host(tg, v) for k, v in entries.pop(reference).grads().items()}
        for name, entry in entries.items():
            grads = entry.grads()
            worst = 0.0
            for k, ref in floor.items():
                got = _to_host(tg, grads[k])
                if name not in TORCH_ENTRIES + ("gemm",) and got.dtype != np.dtype(check_dtype):
                    raise AssertionError(f"{config}/{name}: grad of {k} is {got.dtype}, "
                                         f"expected {check_dtype}")
                scale = max(float(np.abs(ref).max()), 1e-30)
                worst = max(worst, float(np.abs(got.astype(np.float64) - ref).max()) / scale)
            if not worst <= tol:
                raise AssertionError(f"{config}/{name} ({check_dtype}): gradients differ from "
                                     f"the floor's by {worst:.3g} (relative), over {tol:g}")
            report[f"{name}/{check_dtype}"] = worst
    return report


def _sync_fn(tg, torch, backend):
    if backend != "cupy":
        return lambda: None
    stream_sync = tg.backend.xp.cuda.get_current_stream().synchronize

    def sync():
        stream_sync()
        if torch is not None:
            torch.cuda.synchronize()
    return sync


def _time_entries(entries, sync, repeats, warmup, min_time):
    """Median seconds per step of each entry: warm-up, then round-robin samples."""
    import gc
    inner = {}
    for name, entry in entries.items():
        for _ in range(warmup):
            entry.step()
        sync()
        one = []
        for _ in range(3):   # the fastest of three steps, so one hiccup does not decide
            t0 = time.perf_counter()
            entry.step()
            sync()
            one.append(time.perf_counter() - t0)
        inner[name] = max(1, math.ceil(min_time / max(min(one), 1e-9)))
    names = list(entries)
    samples = {name: [] for name in names}
    for r in range(repeats):
        gc.collect()
        for name in names[r % len(names):] + names[:r % len(names)]:
            step, n = entries[name].step, inner[name]
            t0 = time.perf_counter()
            for _ in range(n):
                step()
            sync()
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: {"median_s": statistics.median(s), "min_s": min(s), "steps_per_sample":
                   inner[name], "samples": len(s)} for name, s in samples.items()}


def _blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')}"
                     f" ({i.get('num_threads')} threads)"
                     for i in threadpool_info() if i.get("user_api") == "blas") or "unknown"


def child_main(args):
    np, tg, torch = _child_setup(args)
    config = args.child
    result = {"config": config, "cell": args.cell, "shape": dict(zip("IHNT", CONFIGS[config])),
              "dtype": args.dtype, "backend": args.backend, "threads": args.threads,
              "numpy": np.__version__, "torch": torch.__version__ if torch else None,
              "blas": _blas_info()}
    names = [n for n in args.entries if (n not in TORCH_ENTRIES or torch is not None)
             and (n != "numpy" or args.cell in FLOORS)]
    if "numpy" not in names and args.cell == "rnn":
        names.append("numpy")   # the floor is the reference for the check and the ratios
    if not args.no_check:
        result["grad_check"] = _check_gradients(np, tg, torch, config, args.backend, names,
                                                args.dtype, args.cell)
    entries = _make_entries(names, np, tg, torch, config, args.dtype, args.backend, args.cell)
    sync = _sync_fn(tg, torch, args.backend)
    # Move everything alive now (torch's and NumPy's modules, the models) out of the garbage
    # collector's sight: its full collections, which an unrolled graph's many objects set
    # off, then scan only what the steps make, as in a script that imports less.
    import gc
    gc.collect()
    gc.freeze()
    result["timing"] = _time_entries(entries, sync, args.repeats, args.warmup, args.min_time)
    print(RESULT_TAG + json.dumps(result), flush=True)


def memory_main(args):
    """Peak memory of one step of one entry (this process runs nothing else)."""
    import gc
    import tracemalloc
    np, tg, torch = _child_setup(args)
    entry = _make_entries([args.memory_entry], np, tg, torch, args.child, args.dtype,
                          args.backend, args.cell).get(args.memory_entry)
    out = {"config": args.child, "entry": args.memory_entry}
    if entry is None:
        print(RESULT_TAG + json.dumps(out), flush=True)
        return
    entry.step()   # warm-up: lazy initialisation, optimizer state, caches
    gc.collect()
    if args.backend == "cupy":
        sync = _sync_fn(tg, torch, args.backend)
        sync()
        if args.memory_entry in TORCH_ENTRIES:   # torch's allocator keeps its own count
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            entry.step()
            sync()
            out["pool_bytes"] = torch.cuda.max_memory_allocated() - before
        else:
            pool = tg.backend.xp.get_default_memory_pool()
            pool.free_all_blocks()
            before = pool.total_bytes()
            entry.step()
            sync()
            out["pool_bytes"] = pool.total_bytes() - before
        print(RESULT_TAG + json.dumps(out), flush=True)
        return
    rss_reset = _reset_peak_rss()
    rss_before = _status_kib("VmRSS")
    tracemalloc.start()
    entry.step()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if rss_reset and rss_before is not None:
        out["rss_bytes"] = (_status_kib("VmHWM") - rss_before) * 1024
    if args.memory_entry not in TORCH_ENTRIES:
        out["tracemalloc_bytes"] = peak
    print(RESULT_TAG + json.dumps(out), flush=True)


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_kib(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# =========================================================================== parent process

def _child_env(threads: int, memory: bool) -> dict:
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    if memory:
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
        env["MALLOC_TRIM_THRESHOLD_"] = "0"
    # make the checkout importable without installing it
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _run_child(args, extra, memory=False) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(args.threads),
           "--repeats", str(args.repeats), "--warmup", str(args.warmup),
           "--min-time", str(args.min_time), "--backend", args.backend, "--dtype", args.dtype,
           "--entries", ",".join(args.entries), "--cell", args.cell] \
        + (["--no-check"] if args.no_check else []) + extra
    proc = subprocess.run(cmd, env=_child_env(args.threads, memory), capture_output=True,
                          text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    sys.stderr.write(proc.stdout + proc.stderr)
    raise SystemExit(f"rnn_step.py: the child for {' '.join(extra)} failed "
                     f"(exit {proc.returncode})")


def _fmt_mib(n):
    return f"{n / 2**20:.2f}" if n is not None else "-"


def _fmt_ratio(x):
    return f"{x:.2f}" if x is not None else "-"


def print_table(results, memory: bool) -> None:
    first = results[0]
    layer = "RNN tanh" if first.get("cell", "rnn") == "rnn" else LAYER_NAMES[first["cell"]]
    print(f"one training step ({layer} batch_first + Linear every step + MSE + SGD), "
          f"{first['dtype']}, backend {first['backend']}, {first['threads']} thread(s)")
    print(f"numpy {first['numpy']} [{first['blas']}], torch {first['torch'] or 'not run'}")
    if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
        print("note: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are set; NumPy may run a slower kernel")
    head = f"{'config':<6} {'I':>3} {'H':>4} {'N':>3} {'T':>5}  {'entry':<14} {'ms/step':>9} " \
           f"{'x numpy':>8} {'x torch':>8} {'x gemm':>7}"
    if memory:
        head += f" {'peak MiB':>9} {'rss MiB':>8}"
    print(head)
    print("-" * len(head))
    for res in results:
        timing = res["timing"]
        floor = timing["numpy"]["median_s"] if "numpy" in timing else None
        torch_t = timing["torch"]["median_s"] if "torch" in timing else None
        gemm_t = timing["gemm"]["median_s"] if "gemm" in timing else None
        s = res["shape"]
        for i, name in enumerate(n for n in ENTRIES if n in timing):
            t = timing[name]["median_s"]
            cfg = f"{res['config']:<6} {s['I']:>3} {s['H']:>4} {s['N']:>3} {s['T']:>5}" if i == 0 \
                else " " * 25
            line = f"{cfg}  {name:<14} {t * 1e3:>9.3f} " \
                   f"{_fmt_ratio(t / floor if floor else None):>8} " \
                   f"{_fmt_ratio(t / torch_t if torch_t else None):>8} " \
                   f"{_fmt_ratio(t / gemm_t if gemm_t else None):>7}"
            if memory:
                mem = res.get("memory", {}).get(name, {})
                peak = mem.get("tracemalloc_bytes", mem.get("pool_bytes"))
                rss = mem.get("rss_bytes")
                line += f" {_fmt_mib(peak):>9} {_fmt_mib(rss):>8}"
            print(line)
        if "grad_check" in res:
            worst = max(res["grad_check"].values(), default=0.0)
            print(" " * 27 + f"(gradients match the reference's: worst relative diff "
                             f"{worst:.1e})")
    if memory:
        if first["backend"] == "cupy":
            print("peak MiB: device memory one step adds (CuPy pool / torch.cuda peak)")
        else:
            print("peak MiB: tracemalloc peak of what one step allocates (NumPy arrays + Python "
                  "objects; torch's allocator is invisible to it)")
        print("rss MiB: peak resident size during the step minus the size at its start")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default=",".join(CONFIGS),
                   help=f"comma-separated, from {', '.join(CONFIGS)} (default: all)")
    p.add_argument("--entries", default=",".join(ENTRIES),
                   help=f"comma-separated, from {', '.join(ENTRIES)} (default: all; the "
                        "numpy floor always runs)")
    p.add_argument("--cell", choices=tuple(CELLS), default="rnn",
                   help="the recurrent layer: rnn (tanh, default), lstm or gru")
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads (1)")
    p.add_argument("--repeats", type=int, default=15, help="timed samples per entry (15)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per entry first (2)")
    p.add_argument("--min-time", type=float, default=0.05,
                   help="seconds one sample lasts at least (several steps if needed)")
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--memory", action="store_true",
                   help="also measure each entry's peak memory of one step")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--no-check", action="store_true", help="skip the gradient check")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--memory-entry", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.entries = [e for e in args.entries.split(",") if e]
    bad = [e for e in args.entries if e not in ENTRIES]
    configs = [c for c in args.configs.split(",") if c]
    bad += [c for c in configs if c not in CONFIGS]
    if bad:
        p.error(f"unknown config/entry {', '.join(bad)}")
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0:
        p.error("--threads and --repeats must be >= 1, --warmup >= 0")
    args.configs = configs
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.backend == "cupy" and not args.child:
        import importlib.util
        if importlib.util.find_spec("cupy") is None:
            raise SystemExit('rnn_step.py: --backend cupy needs CuPy and an NVIDIA GPU '
                             '(pip install "tinygrad-rnn[cuda]")')
    if args.child and args.memory_entry:
        return memory_main(args)
    if args.child:
        return child_main(args)
    results = []
    for config in args.configs:
        res = _run_child(args, ["--child", config])
        if args.memory:
            res["memory"] = {}
            for name in res["timing"]:
                res["memory"][name] = _run_child(
                    args, ["--child", config, "--memory-entry", name], memory=True)
        results.append(res)
        if not args.json:
            print(f"[{config} done]", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print_table(results, args.memory)


if __name__ == "__main__":
    main()
