"""``python -m tinygrad_rnn check``: replay the PyTorch fixtures on this install and backend.

Prints one line per fixture case and implementation (the worst compared quantity, its error
and the tolerance), a summary per group and a final line; exits with 0 when every case
passes, 1 otherwise: a case failed, or the check could not run (no fixtures found, a damaged
fixture file, backend unavailable), which is said in one line on stderr.
The error measure and tolerances are explained in :mod:`tinygrad_rnn.parity`.
"""
from __future__ import annotations

import argparse
import sys

from .. import backend, parity
from .options import add_backend_option

DESCRIPTION = (
    "Replay the fixtures recorded from PyTorch (tests/fixtures) on the active backend and "
    "compare every output and gradient: the way to verify an install, e.g. on a GPU box "
    "(--backend cupy). Errors are max|ours - PyTorch's| relative to the expected array "
    "(see tinygrad_rnn.parity for the exact definition and tolerances).")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``check`` sub-command."""
    parser = subparsers.add_parser(
        "check", help="verify this install against the PyTorch fixtures",
        description=DESCRIPTION)
    parser.add_argument(
        "--fixtures", metavar="DIR",
        help=f"fixtures directory (default: ${parity.ENV_VAR}, else the source checkout's "
             "tests/fixtures, else the installed <prefix>/share/tinygrad_rnn/fixtures)")
    parser.add_argument(
        "--group", action="append", choices=parity.GROUPS, metavar="GROUP",
        help="check only this group (repeatable): " + ", ".join(parity.GROUPS))
    add_backend_option(parser, "array backend to run on")
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="print every compared quantity, not only the worst of each case")
    return parser


def _error(message: str) -> int:
    print(f"tinygrad_rnn: error: {message}", file=sys.stderr)  # the cli package's style
    return 1


def run(args: argparse.Namespace) -> int:
    """Run the check; returns the exit status (0: every case passed, 1: otherwise)."""
    if getattr(args, "backend", None):
        try:
            backend.use(args.backend)
        except (RuntimeError, ValueError) as exc:
            return _error(str(exc))
    backend.check_available()   # a bad TINYGRAD_RNN_BACKEND: one error, not 426 failures
    try:
        root = parity.find_fixtures(getattr(args, "fixtures", None))
        versions = parity.recorded_with(root)
    except (parity.FixturesNotFoundError, parity.FixturesDamagedError) as exc:
        return _error(str(exc))
    groups = tuple(dict.fromkeys(getattr(args, "group", None) or parity.GROUPS))

    print(f"tinygrad_rnn parity check: backend {backend.name}, fixtures {root} "
          f"(recorded with torch {', '.join(versions)})")
    rows = parity.run(root, groups, catch=True)
    results = parity.by_case(rows)
    if not results:
        return _error(f"no fixture cases in {root} for group(s) {', '.join(groups)}")
    _print_table(results, verbose=getattr(args, "verbose", False))
    print()
    _print_groups(results, groups)
    failed = [r for r in results if not r.passed]
    print()
    print(f"{len(results) - len(failed)}/{len(results)} cases passed "
          f"({len(rows)} quantities compared) on backend {backend.name}: "
          + ("PASS" if not failed else f"FAIL ({len(failed)} failing)"))
    return 0 if not failed else 1


def _fmt(error: float) -> str:
    return f"{error:.2e}" if error != float("inf") else "inf"


def _print_table(results, verbose: bool) -> None:
    g = max([len("group")] + [len(r.group) for r in results])     # column widths
    c = max([len("case")] + [len(r.case) for r in results])
    header = (f"{'group':<{g}} {'case':<{c}} {'impl':<8} "
              f"{'error' if verbose else 'worst error':>11} "
              f"{'tolerance':>9}  {'result':<6} {'quantity' if verbose else 'worst quantity'}")
    print(header)
    print("-" * len(header))
    for result in results:
        rows = result.rows if verbose else (result.worst,)
        for row in rows:
            status = "PASS" if (row.passed if verbose else result.passed) else "FAIL"
            detail = row.quantity + (f"  ({row.note})" if row.note else "")
            print(f"{result.group:<{g}} {result.case:<{c}} {result.implementation:<8} "
                  f"{_fmt(row.error):>11} {row.tolerance:>9.0e}  {status:<6} {detail}")


def _print_groups(results, groups) -> None:
    """One line per group: cases passed and the worst error per dtype."""
    g = max(len(group) for group in ("group",) + tuple(groups))
    print(f"{'group':<{g}} {'cases':>9}  {'worst float64':>13}  {'worst float32':>13}")
    for group in groups:
        mine = [r for r in results if r.group == group]
        if not mine:
            continue
        worst: dict[str, float] = {}  # dtype -> worst error
        for r in mine:
            dtype = r.worst.dtype
            worst[dtype] = max(worst.get(dtype, 0.0), r.worst.error)
        passed = sum(r.passed for r in mine)
        print(f"{group:<{g}} {passed:>4}/{len(mine):<4}  "
              f"{_fmt(worst['float64']) if 'float64' in worst else '-':>13}  "
              f"{_fmt(worst['float32']) if 'float32' in worst else '-':>13}")
