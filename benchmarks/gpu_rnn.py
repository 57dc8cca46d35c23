#!/usr/bin/env python
"""Fused RNN / LSTM / GRU on the CuPy backend against PyTorch's cuDNN layers, on one GPU.

One *step* is a forward and backward pass of one recurrent layer (``(T, N, H) → (T, N, H)``,
loss = ``(output * w).sum()`` with a fixed random ``w``), float32, the same weights in both
frameworks. Both sides are synchronised before the clock stops (``cupy.cuda.Device().
synchronize()``, ``torch.cuda.synchronize()``), each figure is the median of ``--repeats``
samples after ``--warmup`` steps, and the outputs and weight gradients of the two are compared
before timing (a wrong kernel must not look fast). Sizes: ``--sizes large,small``:

* ``large``: H = 1024, N = 256, T = 200 (goal: fused within 2× of cuDNN)
* ``small``: H = 128,  N = 32,  T = 100

With the CuPy stand-in (``tests/cupy_standin``, NumPy underneath; ``--standin``) the script
runs on the CPU at tiny sizes, which checks the script itself and prints the device→host
transfers per step (0 is the goal: a transfer inside the loop makes the GPU wait). Torch then
runs on its CPU build. The figures of a stand-in run mean nothing about a GPU.

Usage::

    python benchmarks/gpu_rnn.py --out gpu-results.json            # on a GPU machine
    python benchmarks/gpu_rnn.py --standin --sizes tiny             # anywhere (smoke)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"large": (1024, 256, 200), "small": (128, 32, 100), "tiny": (16, 4, 12)}
CELLS = ("RNN", "LSTM", "GRU")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="large,small", help="comma list of " + ", ".join(SIZES))
    p.add_argument("--cells", default=",".join(CELLS), help="comma list of RNN, LSTM, GRU")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--standin", action="store_true",
                   help="use the CuPy stand-in from tests/ (CPU smoke run, counts transfers)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    for name in args.sizes.split(","):
        if name not in SIZES:
            p.error(f"--sizes: unknown size {name!r}; choose from {', '.join(SIZES)}")
    for name in args.cells.split(","):
        if name not in CELLS:
            p.error(f"--cells: unknown cell {name!r}; choose from {', '.join(CELLS)}")
    return args


def setup(standin: bool):
    if standin:
        sys.path.insert(0, str(ROOT / "tests" / "cupy_standin"))
    sys.path.insert(0, str(ROOT))
    os.environ["TINYGRAD_RNN_BACKEND"] = "cupy"
    import cupy
    import numpy as np
    import torch

    import tinygrad_rnn as tg
    device = "cuda" if torch.cuda.is_available() and not standin else "cpu"
    return np, cupy, torch, tg, device


def make_pair(tg, torch, cell, H, device):
    """Our fused layer and torch's, with the same float32 weights."""
    ours = getattr(tg.nn, cell)(H, H, unroll=False)
    theirs = getattr(torch.nn, cell)(H, H).to(device)
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.from_numpy(getattr(ours, name).numpy()).to(device))
    return ours, theirs


def step_ours(tg, layer, x, w):
    layer.zero_grad()
    out, _ = layer(x)
    (out * w).sum().backward()
    return out


def step_theirs(layer, x, w):
    layer.zero_grad()
    out, _ = layer(x)
    (out * w).sum().backward()
    return out


def time_it(fn, sync, repeats, warmup):
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run_case(np, cupy, torch, tg, device, cell, size, args):
    H, N, T = SIZES[size]
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal((T, N, H)).astype(np.float32)
    w_host = rng.standard_normal((T, N, H)).astype(np.float32)
    ours, theirs = make_pair(tg, torch, cell, H, device)
    x, w = tg.Tensor(x_host), tg.Tensor(w_host)
    tx, tw = torch.from_numpy(x_host).to(device), torch.from_numpy(w_host).to(device)

    out = step_ours(tg, ours, x, w)
    t_out = step_theirs(theirs, tx, tw)
    out_err = float(np.abs(out.numpy() - t_out.detach().cpu().numpy()).max())
    grad_err = max(float(np.abs(getattr(ours, n).grad.numpy() - p.grad.cpu().numpy()).max())
                   for n, p in theirs.named_parameters())

    transfers = None
    if getattr(cupy, "STANDIN", False):
        before = cupy.transfers
        step_ours(tg, ours, x, w)
        transfers = cupy.transfers - before

    def sync_cupy():
        cupy.cuda.Device().synchronize()

    def sync_torch():
        if device == "cuda":
            torch.cuda.synchronize()

    t_ours = time_it(lambda: step_ours(tg, ours, x, w), sync_cupy, args.repeats, args.warmup)
    t_theirs = time_it(lambda: step_theirs(theirs, tx, tw), sync_torch, args.repeats,
                       args.warmup)
    return {"cell": cell, "size": size, "H": H, "N": N, "T": T, "ours_ms": 1e3 * t_ours,
            "torch_ms": 1e3 * t_theirs, "ratio": t_ours / t_theirs, "max_out_err": out_err,
            "max_grad_err": grad_err, "transfers_per_step": transfers, "torch_device": device}


def main(argv=None) -> int:
    args = parse_args(argv)
    np, cupy, torch, tg, device = setup(args.standin)
    label = "CuPy stand-in on the CPU (NOT a GPU run)" if getattr(cupy, "STANDIN", False) \
        else f"CuPy {cupy.__version__} vs torch {torch.__version__} on {device}"
    print(f"# fused recurrent layers, forward + backward, float32 — {label}")
    print(f"{'cell':5} {'size':6} {'H':>5} {'N':>4} {'T':>4} {'ours ms':>9} {'torch ms':>9} "
          f"{'× torch':>8} {'out err':>9} {'grad err':>9} {'D→H/step':>9}")
    rows = []
    for size in args.sizes.split(","):
        for cell in args.cells.split(","):
            r = run_case(np, cupy, torch, tg, device, cell, size, args)
            rows.append(r)
            print(f"{cell:5} {size:6} {r['H']:5} {r['N']:4} {r['T']:4} {r['ours_ms']:9.2f} "
                  f"{r['torch_ms']:9.2f} {r['ratio']:8.2f} {r['max_out_err']:9.1e} "
                  f"{r['max_grad_err']:9.1e} {str(r['transfers_per_step']):>9}", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"label": label, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
