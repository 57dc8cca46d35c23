"""Published results rerun from one command: ``python -m tinygrad_rnn reproduce NAME``.

    from tinygrad_rnn import reproductions
    reproductions.names()                          # ['clipping', 'copy', 'irnn-adding']
    summary = reproductions.run("copy", quick=True, out="runs/reproduce/copy")
    for c in summary["claims"]:
        print(c["claim"], c["paper_value"], c["measured"], c["holds"])

Each reproduction is a sweep (:mod:`tinygrad_rnn.sweep`) over the paper's grid, followed by
a check of the paper's claims against what was measured; :mod:`.base` describes the parts,
and each module's docstring the paper, its setting and where ours differs.
"""
from __future__ import annotations

import os

from . import clipping, copy_memory, irnn_adding
from .base import reproduce

_REGISTRY = {m.NAME: m for m in (copy_memory, irnn_adding, clipping)}


def names() -> list[str]:
    """The names of all reproductions, sorted."""
    return sorted(_REGISTRY)


def get(name: str):
    """The module of reproduction ``name`` (``ValueError`` listing the names otherwise)."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown reproduction {name!r}; expected one of "
                         + ", ".join(names())) from None


def run(name: str, quick: bool = False, out: str | None = None, workers: int = 1,
        scheduler: str | None = None, executor=None, log=None) -> dict:
    """Run reproduction ``name`` into ``out`` (default ``runs/reproduce/NAME``, plus
    ``-quick`` for the quick grid); returns its summary (also in ``out/summary.json``)."""
    module = get(name)
    out = out or os.path.join("runs", "reproduce", name + ("-quick" if quick else ""))
    return reproduce(module, quick, out, workers=workers, scheduler=scheduler,
                     executor=executor, log=log)


__all__ = ["names", "get", "run"]
