#!/usr/bin/env python
"""The unrolled RNN in a process with a large heap: is a training step linear in T, and how
much of it is Python's garbage collector?

An unrolled layer (``nn.RNN(..., unroll=True)``) records a few graph nodes per time step, and
each node is a handful of Python objects the cyclic garbage collector tracks (the Tensor, its
Node, tuples, closures). They all outlive the young generations (the graph lives until
``backward``), so they keep setting off *full* collections, and a full collection scans every
tracked object of the process: in a script that has imported torch (about 170,000 objects),
scipy or pandas, that is far more than the graph. So the collector's share grows with the
size of the heap and with the number of objects each node makes. ``rnn_step.py`` hides the
effect with ``gc.freeze()``, as ``Trainer.run`` (``python -m tinygrad_rnn train``) does for
its run; this script shows it, and freezes nothing unless ``--freeze`` is given.

It fills the heap with ``--heap`` long-lived tracked objects (dicts, tuples, lists, functions
and their closure cells, about the mix torch's import leaves; ``--torch`` imports torch
instead, when installed), then times one training step ::

    zero_grad → nn.RNN(unroll=True) forward → Linear head → MSE → backward → SGD update

at each sequence length of ``--lengths``, and reports the mean milliseconds per time step
(flat when the step is linear in T), the share of the steps' time spent in the collector
(timed through ``gc.callbacks``), the full (generation-2) collections per step, and the
tracked objects the forward pass creates per time step (what the collector has to scan).

    python benchmarks/unrolled_gc.py                     # I=4 H=32 N=1, heap of 170,000
    python benchmarks/unrolled_gc.py --heap 0            # the same without the heap
    python benchmarks/unrolled_gc.py --torch --freeze    # heap frozen after setup, as train
    python benchmarks/unrolled_gc.py --cell lstm --lengths 500,2000 --torch
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import time

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn, optim


class GcClock:
    """Time spent inside the garbage collector, from its ``gc.callbacks`` start/stop events."""

    def __init__(self):
        self.seconds = 0.0
        self.full = 0          # generation-2 collections
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.full += info["generation"] == 2

    def reset(self) -> None:
        self.seconds, self.full = 0.0, 0


def make_heap(size: int) -> list:
    """``size`` long-lived objects the collector tracks, in about the mix of a torch import:
    functions with closure cells, tuples, dicts and lists."""
    heap: list = []
    for i in range(size // 5):
        def fn(x, i=i):                   # a function object and its defaults tuple
            return x + i
        cell_holder = (lambda: fn)        # a closure: one more function and a cell
        heap.append({"f": fn, "c": cell_holder})
        heap.append([i, (i, str(i))])
    return heap


def make_step(cell: str, I: int, H: int, N: int, T: int):
    """One training step of the benchmark's model at sequence length T (batch-first)."""
    tg.manual_seed(0)
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    rnn = layer(I, H, batch_first=True, unroll=True)
    head = nn.Linear(H, I)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = optim.SGD(params, lr=0.01)
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal((N, T, I)).astype("float32"))
    y = tg.Tensor(np.roll(x.numpy(), -1, axis=1))

    def forward():
        out, _ = rnn(x)
        return nn.functional.mse_loss(head(out), y)

    def step():
        opt.zero_grad()
        forward().backward()
        opt.step()
    return step, forward


def tracked_per_time_step(forward, T: int) -> float:
    """Tracked objects alive in the graph of one forward pass, per time step."""
    gc.collect()
    before = len(gc.get_objects())
    loss = forward()
    after = len(gc.get_objects())
    del loss
    return (after - before) / T


def measure(cell: str, I: int, H: int, N: int, T: int, repeats: int, clock: GcClock) -> dict:
    step, forward = make_step(cell, I, H, N, T)
    step()                                                 # warm-up
    per_object = tracked_per_time_step(forward, T)
    times, gc_times, fulls = [], [], []
    for _ in range(repeats):
        clock.reset()
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        gc_times.append(clock.seconds)
        fulls.append(clock.full)
    # Means, not medians: a full collection comes every few steps, and its cost is part of
    # every step's share (a median would hide it, or show it in full, by chance).
    ms = statistics.mean(times) * 1e3
    return {"T": T, "steps": repeats, "ms_per_step": ms, "ms_per_time_step": ms / T,
            "gc_share": sum(gc_times) / sum(times),
            "full_collections_per_step": statistics.mean(fulls),
            "tracked_objects_per_time_step": per_object}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="250,500,1000,2000", help="sequence lengths T")
    p.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="rnn")
    p.add_argument("--size", default="4,32,1", help="I,H,N (default 4,32,1: config Long)")
    p.add_argument("--heap", type=int, default=170_000,
                   help="long-lived tracked objects to allocate first (default 170000)")
    p.add_argument("--torch", action="store_true", help="import torch instead of --heap")
    p.add_argument("--time-steps", type=int, default=16000,
                   help="time steps to run at each length (default 16000: 64 training steps "
                        "at T=250, 8 at T=2000), so that every length creates as many graph "
                        "objects and the collector's cost is compared over the same work")
    p.add_argument("--freeze", action="store_true",
                   help="call gc.freeze() after filling the heap, as Trainer.run does: the "
                        "collector then scans only what the steps create")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = p.parse_args(argv)
    I, H, N = (int(v) for v in args.size.split(","))
    heap = []
    if args.torch:
        import torch  # noqa: F401  (the point is its heap)
    else:
        heap = make_heap(args.heap)
    gc.collect()
    if args.freeze:
        gc.freeze()
    clock = GcClock()
    gc.callbacks.append(clock)
    rows = [measure(args.cell, I, H, N, int(T), max(2, args.time_steps // int(T)), clock)
            for T in args.lengths.split(",")]
    gc.callbacks.remove(clock)
    heap_objects = len(gc.get_objects()) + gc.get_freeze_count()
    del heap
    if args.json:
        print(json.dumps({"cell": args.cell, "I": I, "H": H, "N": N,
                          "heap_objects": heap_objects, "rows": rows}))
        return
    print(f"unrolled {args.cell.upper()} I={I} H={H} N={N}, float32, "
          f"{heap_objects} tracked objects in the process"
          f"{' (frozen after setup)' if args.freeze else ''}; mean over {args.time_steps} "
          "time steps per length")
    print(f"{'T':>6} {'ms/step':>9} {'ms/time step':>13} {'x first':>8} {'gc share':>9} "
          f"{'full gc/step':>13} {'tracked obj/t':>14}")
    first = rows[0]["ms_per_time_step"]
    for r in rows:
        print(f"{r['T']:>6} {r['ms_per_step']:>9.2f} {r['ms_per_time_step']:>13.4f} "
              f"{r['ms_per_time_step'] / first:>8.2f} {r['gc_share']:>9.0%} "
              f"{r['full_collections_per_step']:>13.1f} "
              f"{r['tracked_objects_per_time_step']:>14.1f}")


if __name__ == "__main__":
    main()
