#!/usr/bin/env python
"""Peak memory of one training step against what BPTT has to keep.

Backpropagation through time needs every hidden state of the forward pass: for each layer and
direction, T·N·H numbers, plus the input sequence (T·N·I). That is the *activation size*, the
floor no implementation can go below without recomputing. This script measures the peak
memory of one training step and divides it by that floor:

    step = zero_grad → RNN forward → Linear head → MSE → backward (BPTT) → SGD update

* ``peak`` is ``tracemalloc``'s peak during the step, minus what was allocated before it
  (parameters, the batch): NumPy reports every array buffer to tracemalloc, so this is the
  step's working set of arrays (activations, gradients, temporaries) and Python objects
  (graph nodes, tensors). One warm-up step runs first.
* ``fused`` is ``nn.RNN(...)`` (one graph node per layer and direction, hand-written BPTT);
  ``unrolled`` is ``nn.RNN(..., unroll=True)`` (a graph of primitive ops per time step).

A ratio of a few is expected: the fused layer keeps its hidden states once and needs
same-sized buffers for the gradients in backward; the unrolled graph also keeps, per time
step, the pre-activations and Python objects for each op.

    python benchmarks/memory_step.py [--dtype float32|float64]
"""
from __future__ import annotations

import argparse
import gc
import tracemalloc

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, optim

#: (T, N, I, H, num_layers, bidirectional)
CONFIGS = [
    (100, 32, 8, 64, 1, False),
    (1000, 16, 4, 32, 1, False),
    (200, 32, 16, 128, 2, False),
    (100, 16, 8, 64, 2, True),
    (2000, 4, 1, 16, 1, False),
]


def activation_bytes(T, N, I, H, layers, bidirectional, itemsize) -> int:
    """Hidden states of every layer and direction, plus the input: what BPTT must keep."""
    D = 2 if bidirectional else 1
    return (layers * D * T * N * H + T * N * I) * itemsize


def step_peak(T, N, I, H, layers, bidirectional, unroll, dtype) -> int:
    """tracemalloc peak (bytes) of one training step, above what existed before it."""
    tg.manual_seed(0)
    D = 2 if bidirectional else 1
    rnn = nn.RNN(I, H, num_layers=layers, bidirectional=bidirectional, unroll=unroll,
                 dtype=dtype)
    head = nn.Linear(D * H, 1, dtype=dtype)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = optim.SGD(params, lr=0.01)
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((T, N, I)).astype(dtype))
    y = Tensor(rng.standard_normal((T, N, 1)).astype(dtype))

    def step():
        opt.zero_grad()
        out, _ = rnn(x)
        loss = nn.functional.mse_loss(head(out), y)
        loss.backward()
        opt.step()

    step()                       # warm-up: first-call allocations, optimizer setup
    opt.zero_grad()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base


def mib(n: float) -> str:
    return f"{n / 2**20:8.2f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args(argv)
    itemsize = np.dtype(args.dtype).itemsize
    print(f"peak memory of one training step vs activations (tracemalloc, {args.dtype}, "
          f"backend {tg.backend.name})")
    header = (f"{'T':>5} {'N':>3} {'I':>3} {'H':>4} {'L':>2} {'D':>2} | {'acts MiB':>8} | "
              f"{'fused MiB':>9} {'ratio':>6} | {'unrolled MiB':>12} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for T, N, I, H, layers, bidirectional in CONFIGS:
        acts = activation_bytes(T, N, I, H, layers, bidirectional, itemsize)
        fused = step_peak(T, N, I, H, layers, bidirectional, False, args.dtype)
        unrolled = step_peak(T, N, I, H, layers, bidirectional, True, args.dtype)
        print(f"{T:>5} {N:>3} {I:>3} {H:>4} {layers:>2} {2 if bidirectional else 1:>2} | "
              f"{mib(acts)} | {mib(fused):>9} {fused / acts:>6.2f} | {mib(unrolled):>12} "
              f"{unrolled / acts:>6.2f}")


if __name__ == "__main__":
    main()
