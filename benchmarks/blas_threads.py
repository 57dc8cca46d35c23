#!/usr/bin/env python
"""Does the import order still matter? ``train sine`` with ``import numpy`` first, and without.

NumPy's BLAS reads ``OPENBLAS_NUM_THREADS`` & co. only when NumPy is first imported, so a
package that sets them at its own import time is too late for a program that imported NumPy
first; on a small machine threaded BLAS then makes RNN training many times slower.
``tinygrad_rnn`` instead limits the threads with ``threadpoolctl`` inside its own loops
(:func:`tinygrad_rnn.backend.blas_threads`), which works whatever was imported first.

Each sample is a fresh interpreter that runs ``python -m tinygrad_rnn train sine`` (through
``tinygrad_rnn.cli.main``) with no BLAS thread variable in its environment; its time is the
run's own ``seconds`` from ``summary.json`` (build, train, evaluate; not the imports). Rows,
each the median of ``--repeats`` samples, interleaved so that a change in the machine's load
hits every row alike:

* ``tinygrad_rnn first``      — ``import tinygrad_rnn``, then train: the baseline
* ``numpy first``            — ``import numpy`` first, then the same
* ``numpy first, no limit``  — as above with ``tinygrad_rnn.set_num_threads(None)``: what the
  trap costs on this machine (``--no-trap`` leaves this row out)

The ratio column is each row's median over the baseline's.

    python benchmarks/blas_threads.py [--repeats 5] [--steps N] [--no-trap] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")

ROWS = {
    "tinygrad_rnn first": "import tinygrad_rnn",
    "numpy first": "import numpy; import tinygrad_rnn",
    "numpy first, no limit": "import numpy; import tinygrad_rnn; "
                             "tinygrad_rnn.set_num_threads(None)",
}


def one_run(prelude: str, steps: int | None, out: str) -> float:
    """Seconds of one ``train sine`` in a fresh interpreter after ``prelude``."""
    args = ["train", "sine", "--quiet", "--no-plot", "--out", out]
    if steps is not None:
        args += ["--steps", str(steps)]
    code = f"{prelude}\nfrom tinygrad_rnn.cli import main\nraise SystemExit(main({args!r}))"
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"train sine failed:\n{done.stderr[-2000:]}")
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
        return float(json.load(f)["seconds"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="samples per row (default 5)")
    parser.add_argument("--steps", type=int, help="training steps (default: the task's)")
    parser.add_argument("--no-trap", action="store_true",
                        help="leave out the 'no limit' row (slow on small machines)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows = {k: v for k, v in ROWS.items() if not (args.no_trap and "no limit" in k)}
    samples: dict = {name: [] for name in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for name, prelude in rows.items():
                samples[name].append(one_run(prelude, args.steps, os.path.join(tmp, str(i))))
    base = statistics.median(samples["tinygrad_rnn first"])
    result = [{"row": name, "median_s": statistics.median(s), "samples_s": s,
               "ratio": statistics.median(s) / base} for name, s in samples.items()]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"train sine, {os.cpu_count()} CPUs, median of {args.repeats} (seconds):")
    for row in result:
        print(f"  {row['row']:<24} {row['median_s']:8.2f} s   {row['ratio']:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
