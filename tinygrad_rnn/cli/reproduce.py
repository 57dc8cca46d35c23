"""``python -m tinygrad_rnn reproduce NAME [--quick] [--out DIR]``: rerun a published result
and compare it with the paper's numbers (:mod:`tinygrad_rnn.reproductions`).

Writes ``DIR/results.csv`` (one row per run), ``DIR/summary.json`` (``{"claims": [{"claim",
"paper_value", "measured", "holds", ...setting}]}``) and, with matplotlib, ``DIR/plot.png``;
prints the claims as a table. A rerun skips the runs already finished.
"""
from __future__ import annotations

import argparse

from .. import reproductions


def _catalogue() -> str:
    lines = []
    for name in reproductions.names():
        module = reproductions.get(name)
        lines.append(f"  {name:12s} {module.PAPER}\n  {'':12s} {module.SUMMARY}")
    return "reproductions:\n" + "\n".join(lines)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``reproduce`` sub-command."""
    p = subparsers.add_parser(
        "reproduce", help="rerun a published RNN result and compare with the paper ("
                          + ", ".join(reproductions.names()) + ")",
        description="Rerun a paper's experiment as a sweep and check its claims against the "
                    "measured numbers.\n--quick runs a reduced grid in minutes on 2 CPU cores; "
                    "without it, the paper's grid\nor the closest that fits a CPU in hours "
                    "(`pydoc tinygrad_rnn.reproductions.<module>` says which).",
        epilog=_catalogue() + "\n\nexample:\n  python -m tinygrad_rnn reproduce copy --quick",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="NAME", help="one of: " + ", ".join(reproductions.names()))
    p.add_argument("--quick", action="store_true", help="the reduced grid (minutes)")
    p.add_argument("--out", metavar="DIR",
                   help="output directory (default: runs/reproduce/NAME[-quick])")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=1, metavar="N",
                       help="local processes running at once (default: 1)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on the Dask distributed scheduler at ADDRESS")
    return p


def run(args: argparse.Namespace) -> int:
    reproductions.get(args.name)                    # an unknown name fails first
    try:
        summary = reproductions.run(args.name, quick=args.quick, out=args.out,
                                    workers=args.workers, scheduler=args.scheduler)
    except ImportError as exc:     # Dask missing: a one-line error naming the extra
        raise ValueError(str(exc)) from None
    print(format_claims(summary))
    return 1 if summary["failed"] else 0


def format_claims(summary: dict) -> str:
    """The claims as a table, one line each, then the totals."""
    lines = [f"{summary['reproduction']} ({summary['plan']} grid): {summary['paper']}"]
    for c in summary["claims"]:
        setting = ", ".join(f"{k}={v}" for k, v in c.items()
                            if k not in ("claim", "paper_value", "measured", "holds"))
        measured = c["measured"]
        shown = f"{measured:.4g}" if isinstance(measured, float) else str(measured)
        lines.append(f"  [{'holds' if c['holds'] else 'FAILS'}] {c['claim']} ({setting}): "
                     f"paper {c['paper_value']}, measured {shown}")
    held = sum(c["holds"] for c in summary["claims"])
    lines.append(f"{held} of {len(summary['claims'])} claims hold; {summary['runs']} runs "
                 f"({summary['failed']} failed) in {summary['seconds']:.0f} s")
    return "\n".join(lines)
