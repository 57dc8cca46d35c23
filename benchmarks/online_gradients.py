#!/usr/bin/env python
"""Time of one gradient by BPTT, RTRL and UORO as the hidden size grows.

RTRL carries the sensitivity ``∂s_t/∂θ`` (S × |θ| numbers) and multiplies it by the step
Jacobian every step: O(S²·|θ|) = O(H⁴) per step for an Elman layer, against BPTT's O(H²).
UORO keeps only a rank-one stand-in; in this package it still forms ``∂s_t/∂θ`` of the
current step (see ``tinygrad_rnn/online.py``), so it costs O(S·|θ|) = O(H³) per step here.
This script measures each method's wall time (median of ``--repeats`` runs after one
warm-up) on the same data, prints it with its ratio to BPTT in the same run, and fits the
growth exponent of each column against H (slope of log time over log H).

    python benchmarks/online_gradients.py [--cell rnn|lstm|gru] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, bptt, nn
from tinygrad_rnn.nn import functional as F

LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
SIZES = (4, 8, 16, 32)


def problem(cell: str, H: int, T: int, N: int):
    tg.manual_seed(0)
    rnn, head = LAYERS[cell](3, H, dtype="float64"), nn.Linear(H, 1, dtype="float64")
    rng = np.random.default_rng(0)
    x, y = Tensor(rng.standard_normal((T, N, 3))), Tensor(rng.standard_normal((T, N, 1)))

    def step_loss(t, out):
        return F.mse_loss(head(out), y[t])

    def by_bptt():
        output, _ = rnn(x)
        total = step_loss(0, output[0])
        for t in range(1, T):
            total = total + step_loss(t, output[t])
        total.backward()
    methods = {"bptt": by_bptt, "rtrl": lambda: bptt.rtrl(rnn, x, step_loss),
               "uoro": lambda: bptt.uoro(rnn, x, step_loss, generator=0)}
    return rnn, methods


def median_seconds(run, repeats: int) -> float:
    run()                                            # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", choices=sorted(LAYERS), default="rnn")
    parser.add_argument("--seq-len", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args(argv)
    print(f"{args.cell}, T={args.seq_len}, N={args.batch_size}, float64, median of "
          f"{args.repeats}")
    print(f"{'H':>4} {'|theta|':>8} {'bptt ms':>9} {'rtrl ms':>9} {'(x bptt)':>9} "
          f"{'uoro ms':>9} {'(x bptt)':>9}")
    columns = {"bptt": [], "rtrl": [], "uoro": []}
    for H in args.sizes:
        rnn, methods = problem(args.cell, H, args.seq_len, args.batch_size)
        seconds = {name: median_seconds(run, args.repeats) for name, run in methods.items()}
        for name, value in seconds.items():
            columns[name].append(value)
        P = sum(p.numel() for p in rnn.parameters())
        print(f"{H:>4} {P:>8} {1e3 * seconds['bptt']:>9.2f} {1e3 * seconds['rtrl']:>9.2f} "
              f"{seconds['rtrl'] / seconds['bptt']:>9.1f} {1e3 * seconds['uoro']:>9.2f} "
              f"{seconds['uoro'] / seconds['bptt']:>9.1f}")
    if len(args.sizes) > 1:
        logs = np.log(args.sizes)
        slopes = {n: np.polyfit(logs, np.log(v), 1)[0] for n, v in columns.items()}
        print("growth exponent in H: " + ", ".join(f"{n} {s:.2f}" for n, s in slopes.items()))


if __name__ == "__main__":
    main()
