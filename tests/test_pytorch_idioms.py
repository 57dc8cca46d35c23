"""``docs/pytorch.md``: every row marked **works** is run exactly as written (with
``import tinygrad_rnn as torch``), and so is every Python block after the setup block."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "pytorch.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.S)
SETUP, EXAMPLES = BLOCKS[0], BLOCKS[1:]
ROWS = re.findall(r"^\| `(.*)` \| (works|difference) \|", TEXT, re.M)
WORKS = [code for code, verdict in ROWS if verdict == "works"]


def test_the_table_has_both_kinds_of_rows():
    assert len(WORKS) >= 30 and any(v == "difference" for _, v in ROWS)


@pytest.fixture
def namespace():
    ns: dict = {}
    exec(SETUP, ns)   # noqa: S102  (the documented setup, our own file)
    return ns


@pytest.mark.parametrize("code", WORKS, ids=[f"row{i}" for i in range(len(WORKS))])
def test_works_row(code, namespace):
    exec(code.replace("\\|", "|"), namespace)   # noqa: S102


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"block{i}" for i in range(len(EXAMPLES))])
def test_python_block(code, namespace):
    exec(code, namespace)   # noqa: S102
