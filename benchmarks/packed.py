#!/usr/bin/env python
"""Packed against padded: what a batch of variable-length sequences costs a fused layer.

A batch of N sequences whose lengths are drawn uniformly from [T/4, T] (N, T, I, H from
configs S and M of ``rnn_step.py``, the same definitions), run through one fused recurrent
layer (``nn.RNN`` tanh by default; ``--cell lstm|gru``) in two ways:

* ``padded`` — the ``(N, T, I)`` batch padded to T, as a user without packing runs it: every
  step computes all N rows;
* ``packed`` — ``pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)``
  (timed too: a training loop packs every batch), then the same layer: step t computes only
  the ``batch_sizes[t]`` sequences still running.

One *step* is: forward, ``loss = sum(output ⊙ w)`` over the output rows (padded: all N·T,
packed: the real ones), backward. Both entries are warmed up, then timed round-robin (the
order alternates every round), each sample repeating the step enough times to last
``--min-time``; the figure is the median over ``--repeats`` samples, and the ratio
``packed / padded`` comes from the same run. ``paired`` is the median of the per-round ratios
(each round times both entries back to back, so a change in the machine's load from one
round to the next, e.g. on a shared machine, cancels out of it). ``tokens`` is Σ lengths /
(N·T), the share of real steps: what a packed layer could reach if cost followed tokens
exactly.

Before timing, the two are checked against each other in float64: at every real step the
packed outputs equal the padded ones, and the packed ``h_n`` of each sequence equals the
padded output at that sequence's last step.

Examples::

    python benchmarks/packed.py                       # S and M, RNN, 1 thread
    python benchmarks/packed.py --cell lstm --json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from rnn_step import CONFIGS, THREAD_VARS

ENTRIES = ("padded", "packed")
SEED = 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="S,M",
                        help=f"comma-separated, from {', '.join(CONFIGS)} (default S,M)")
    parser.add_argument("--cell", default="rnn", choices=("rnn", "lstm", "gru"))
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--repeats", type=int, default=7, help="timed samples per entry")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per entry")
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds each timed sample lasts at least (default 0.2)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--backend", default="numpy", choices=("numpy", "cupy"))
    parser.add_argument("--json", action="store_true", help="print JSON rows, not a table")
    args = parser.parse_args(argv)
    args.configs = args.configs.split(",")
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {unknown}; choose from {list(CONFIGS)}")
    return args


def make_batch(config: str, np):
    """``x`` ``(N, T, I)`` (standard normal, zero past each length), the lengths, and the
    upstream weights of both outputs."""
    I, H, N, T = CONFIGS[config]
    rng = np.random.default_rng(SEED)
    lengths = rng.integers(T // 4, T + 1, N)
    lengths[rng.integers(N)] = T                     # the padded length is a real one
    x = rng.standard_normal((N, T, I))
    x[np.arange(T)[None, :] >= lengths[:, None]] = 0.0
    return x, lengths, rng


class Step:
    """One entry: a fused layer and the data of its step, in ``dtype`` on the backend."""

    def __init__(self, entry, config, cell, dtype, x, lengths, rng):
        import tinygrad_rnn as tg
        from tinygrad_rnn.nn.utils.rnn import pack_padded_sequence
        self.tg, self.pack = tg, pack_padded_sequence
        I, H, N, T = CONFIGS[config]
        tg.manual_seed(SEED)                         # the same weights in both entries
        layer = {"rnn": tg.nn.RNN, "lstm": tg.nn.LSTM, "gru": tg.nn.GRU}[cell]
        self.layer = layer(I, H, batch_first=True, dtype=dtype)
        self.entry, self.lengths = entry, lengths.tolist()
        self.x = tg.Tensor(x, dtype=dtype)
        rows = int(lengths.sum()) if entry == "packed" else N * T
        shape = (rows, H) if entry == "packed" else (N, T, H)
        self.w = tg.Tensor(rng.standard_normal(shape), dtype=dtype)

    def forward(self):
        if self.entry == "padded":
            return self.layer(self.x)
        p = self.pack(self.x, self.lengths, batch_first=True, enforce_sorted=False)
        out, h_n = self.layer(p)
        return out.data, h_n

    def step(self):
        self.layer.zero_grad()
        out, _ = self.forward()
        (out * self.w).sum().backward()


def check_agreement(config, cell, x, lengths, rng):
    """Packed and padded runs agree at every real step, and packed h_n is each sequence's own
    last output (float64)."""
    from tinygrad_rnn.nn.utils.rnn import pad_packed_sequence
    padded = Step("padded", config, cell, "float64", x, lengths, rng)
    packed = Step("packed", config, cell, "float64", x, lengths, rng)
    out_padded = padded.forward()[0].numpy()
    p = packed.pack(packed.x, packed.lengths, batch_first=True, enforce_sorted=False)
    out, h_n = packed.layer(p)
    h_n = h_n[0] if isinstance(h_n, tuple) else h_n
    out_packed = pad_packed_sequence(out, batch_first=True)[0].numpy()
    worst = 0.0
    for n, length in enumerate(packed.lengths):
        worst = max(worst, abs(out_packed[n, :length] - out_padded[n, :length]).max(),
                    abs(h_n.numpy()[0, n] - out_padded[n, length - 1]).max())
    if worst > 1e-12:
        raise SystemExit(f"{config}: packed and padded disagree by {worst:.3g}")


def time_entries(steps: dict, repeats: int, warmup: int, min_time: float, sync) -> dict:
    """Seconds per step of every entry: one sample per round, in round order."""
    for s in steps.values():
        for _ in range(warmup):
            s.step()
        sync()
    loops = {}
    for name, s in steps.items():                    # calibrate: steps per sample
        start, n = time.perf_counter(), 0
        while True:
            s.step()
            n += 1
            sync()
            if time.perf_counter() - start >= min_time / 4 or n >= 1000:
                break
        per_step = (time.perf_counter() - start) / n
        loops[name] = max(1, int(min_time / per_step))
    samples = {name: [] for name in steps}
    names = list(steps)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            s = steps[name]
            start = time.perf_counter()
            for _ in range(loops[name]):
                s.step()
            sync()
            samples[name].append((time.perf_counter() - start) / loops[name])
    return samples


def main(argv=None):
    args = parse_args(argv)
    for var in THREAD_VARS:
        os.environ[var] = str(args.threads)
    os.environ["TINYGRAD_RNN_BACKEND"] = args.backend
    import gc

    import tinygrad_rnn as tg
    np = tg.backend.np
    sync = (lambda: None) if args.backend == "numpy" else \
        (lambda: tg.backend.xp.cuda.Stream.null.synchronize())
    rows = []
    for config in args.configs:
        x, lengths, rng = make_batch(config, np)
        check_agreement(config, args.cell, x, lengths, np.random.default_rng(SEED))
        steps = {e: Step(e, config, args.cell, args.dtype, x, lengths,
                         np.random.default_rng(SEED)) for e in ENTRIES}
        gc.collect()
        gc.freeze()
        samples = time_entries(steps, args.repeats, args.warmup, args.min_time, sync)
        gc.unfreeze()
        seconds = {name: statistics.median(v) for name, v in samples.items()}
        paired = statistics.median(p / q for p, q in zip(samples["packed"], samples["padded"]))
        I, H, N, T = CONFIGS[config]
        rows.append({"config": config, "I": I, "H": H, "N": N, "T": T, "cell": args.cell,
                     "dtype": args.dtype, "backend": args.backend, "threads": args.threads,
                     "tokens": float(lengths.sum() / (N * T)),
                     "padded_ms": seconds["padded"] * 1e3, "packed_ms": seconds["packed"] * 1e3,
                     "ratio": seconds["packed"] / seconds["padded"], "paired_ratio": paired})
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"fused {args.cell}, {args.dtype}, {args.backend}, {args.threads} thread(s); lengths "
          f"uniform in [T/4, T]; median of {args.repeats}")
    print(f"{'config':<7}{'I':>4}{'H':>5}{'N':>4}{'T':>5}{'tokens':>8}{'padded ms':>11}"
          f"{'packed ms':>11}{'packed/padded':>15}{'paired':>8}")
    for r in rows:
        print(f"{r['config']:<7}{r['I']:>4}{r['H']:>5}{r['N']:>4}{r['T']:>5}{r['tokens']:>8.3f}"
              f"{r['padded_ms']:>11.3f}{r['packed_ms']:>11.3f}{r['ratio']:>15.3f}"
              f"{r['paired_ratio']:>8.3f}")


if __name__ == "__main__":
    sys.exit(main())
