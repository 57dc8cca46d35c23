#!/usr/bin/env python
"""The fixed cost of one small op: ``tanh`` of a 4×4 tensor, in microseconds.

On a 4×4 array the arithmetic is nothing; what is measured is what the framework adds around
the array call — making the result tensor, recording the graph node, and for the backward
pass, ordering the graph, calling the node's backward and accumulating ``x.grad``. This is
the cost an unrolled RNN pays per time step and per op, so it bounds how fast
``nn.RNN(..., unroll=True)`` can be on small layers.

Rows (median over ``--repeats`` samples of ``--number`` calls each, one thread):

* ``numpy``     — the bare array call, ``np.tanh(a)``: the floor
* ``ours``      — ``tinygrad_rnn``: ``x.tanh()`` with ``x.requires_grad`` (records a node);
  ``fwd+bwd``: ``x.tanh().backward(g)`` with ``x.grad`` reset first
* ``ours no_grad`` — the forward with grad mode off (``tinygrad_rnn.no_grad()``
  around the whole sample): no node is recorded
* ``torch``     — the same with ``torch.tanh`` / ``y.backward(g)``, when torch is installed

``--op`` also times ``mul`` (``x * x``) and ``matmul`` (``x @ x``) the same way.

Columns ``chain fwd`` / ``chain bwd``: the same op applied ``--chain`` times in a row
(``y = op(y)``, as an unrolled RNN chains its steps), then one ``backward``; µs per node to
record the chain and to sweep it. Unlike ``fwd+bwd``, they leave out the fixed cost of
starting a backward pass, so they are what each node adds to a long graph.

    python benchmarks/op_overhead.py [--op tanh,mul,matmul] [--repeats 15] [--number 20000]
                                     [--chain 2000] [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time


def _set_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(threads)


def _per_call_us(fn, number: int, repeats: int) -> float:
    """Median over ``repeats`` samples of the time of one call of ``fn``, in µs."""
    for _ in range(max(1, number // 10)):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number * 1e6)
    return statistics.median(samples)


def _chain_us(op_fn, x, seed, length: int, repeats: int) -> tuple:
    """Median µs per node to record ``length`` chained ops from ``x``, and to sweep them."""
    forward, backward = [], []
    for _ in range(repeats):
        x.grad = None
        t0 = time.perf_counter()
        y = x
        for _ in range(length):
            y = op_fn(y)
        t1 = time.perf_counter()
        y.backward(seed)
        t2 = time.perf_counter()
        forward.append((t1 - t0) / length * 1e6)
        backward.append((t2 - t1) / length * 1e6)
    return statistics.median(forward), statistics.median(backward)


def cases(op: str):
    """``{row: (forward, forward_backward)}`` closures for one op on 4×4 float32 data."""
    import numpy as np

    import tinygrad_rnn as tg

    a = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    g = np.ones((4, 4), dtype=np.float32)
    np_fn = {"tanh": np.tanh, "mul": lambda v: v * v, "matmul": lambda v: v @ v}[op]
    tg_fn = {"tanh": tg.Tensor.tanh, "mul": lambda v: v * v, "matmul": lambda v: v @ v}[op]
    rows = {"numpy": (lambda: np_fn(a), None, None)}

    x = tg.Tensor(a, requires_grad=True)
    gt = tg.Tensor(g)

    def ours_fwd_bwd():
        x.grad = None
        tg_fn(x).backward(gt)
    rows["ours"] = (lambda: tg_fn(x), ours_fwd_bwd,
                    lambda length, repeats: _chain_us(tg_fn, x, gt, length, repeats))

    rows["ours no_grad"] = (lambda: tg_fn(x), None, None)   # timed with grad mode off

    try:
        import torch
    except ImportError:
        return rows
    torch.set_num_threads(1)
    xt = torch.tensor(a, requires_grad=True)
    gtt = torch.tensor(g)
    th_fn = {"tanh": torch.tanh, "mul": lambda v: v * v, "matmul": lambda v: v @ v}[op]

    def torch_fwd_bwd():
        xt.grad = None
        th_fn(xt).backward(gtt)
    rows["torch"] = (lambda: th_fn(xt), torch_fwd_bwd,
                     lambda length, repeats: _chain_us(th_fn, xt, gtt, length, repeats))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--op", default="tanh",
                   help="comma-separated from tanh, mul, matmul (default: tanh)")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--number", type=int, default=20000, help="calls per sample")
    p.add_argument("--chain", type=int, default=2000,
                   help="ops per chain for the chain columns (default 2000)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    _set_threads(args.threads)   # before numpy / torch are imported
    ops = [o for o in args.op.split(",") if o]
    if any(o not in ("tanh", "mul", "matmul") for o in ops):
        p.error(f"unknown op in {args.op!r}; choose from tanh, mul, matmul")
    import numpy
    results = []
    for op in ops:
        for row, (fwd, fwd_bwd, chain) in cases(op).items():
            import tinygrad_rnn as tg
            with tg.no_grad() if row == "ours no_grad" else contextlib.nullcontext():
                forward_us = _per_call_us(fwd, args.number, args.repeats)
            with numpy.errstate(all="ignore"):   # a chain of x*x or x@x overflows: harmless
                chain_us = chain(args.chain, args.repeats) if chain else (None, None)
            results.append({
                "op": op, "row": row, "forward_us": forward_us,
                "forward_backward_us": (_per_call_us(fwd_bwd, max(1, args.number // 4),
                                                     args.repeats) if fwd_bwd else None),
                "chain_forward_us_per_node": chain_us[0],
                "chain_backward_us_per_node": chain_us[1]})
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"one op on a 4x4 float32 tensor, µs per call (median of {args.repeats}), "
          f"numpy {numpy.__version__}, Python {sys.version.split()[0]}; chains of "
          f"{args.chain} ops, µs per node")
    print(f"{'op':<7} {'row':<13} {'forward':>9} {'fwd+bwd':>9} {'chain fwd':>10} "
          f"{'chain bwd':>10}")

    def cell(value, width: int) -> str:
        return f"{value:{width}.2f}" if value is not None else f"{'-':>{width}}"
    for r in results:
        print(f"{r['op']:<7} {r['row']:<13} {r['forward_us']:9.2f} "
              f"{cell(r['forward_backward_us'], 9)} {cell(r['chain_forward_us_per_node'], 10)} "
              f"{cell(r['chain_backward_us_per_node'], 10)}")


if __name__ == "__main__":
    main()
