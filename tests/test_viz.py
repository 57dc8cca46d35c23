"""``tinygrad_rnn.viz`` (SPEC §7): the graph as DOT source, rendering, and norm plots."""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, viz

NODE = re.compile(r"^\s*(n\d+) \[label=")
EDGE = re.compile(r"^\s*(n\d+) -> (n\d+);$")


def rnn_loss(unroll: bool, T: int = 3, **kw):
    tg.manual_seed(0)
    rnn = nn.RNN(2, 4, unroll=unroll, **kw)
    out, h_n = rnn(Tensor.randn(T, 1, 2))
    return rnn, (out ** 2).mean() + h_n.sum()


def check_valid_dot(source: str) -> tuple[set, list]:
    """Balanced braces, each node declared once, every edge between declared nodes."""
    assert source.startswith("digraph ") and source.rstrip().endswith("}")
    assert source.count("{") == source.count("}")
    lines = source.splitlines()
    declared = [m.group(1) for m in map(NODE.match, lines) if m]
    assert len(declared) == len(set(declared))
    edges = [m.groups() for m in map(EDGE.match, lines) if m]
    assert edges and all(a in declared and b in declared for a, b in edges)
    return set(declared), edges


def test_unrolled_rnn_graph_names_ops_parameters_shapes_and_time_steps():
    rnn, loss = rnn_loss(unroll=True)
    source = viz.to_dot(loss, params=dict(rnn.named_parameters()))
    check_valid_dot(source)
    for text in ("tanh", "matmul", "stack", "getitem", "weight_ih_l0", "weight_hh_l0",
                 "bias_ih_l0", "bias_hh_l0", "(3, 1, 4) float32", "(4, 4) float32",
                 'label="t = 1"', 'label="t = 2"', 'label="t = 3"', "tanh = h_3"):
        assert text in source, text
    assert source.count("subgraph cluster_") == 3
    # each step box holds the four ops of one step: getitem, matmul, add, tanh
    for body in re.findall(r"subgraph cluster_\w+ \{(.*?)\n  \}", source, re.S):
        assert len(re.findall(r"n\d+ \[label", body)) == 4


def test_multilayer_bidirectional_graph_has_a_box_per_step_layer_and_direction():
    rnn, loss = rnn_loss(unroll=True, num_layers=2, bidirectional=True)
    source = viz.to_dot(loss, params=rnn)                # a Module works too
    check_valid_dot(source)
    assert source.count("subgraph cluster_") == 3 * 4
    assert "weight_hh_l1_reverse" in source


def test_fused_rnn_is_one_node_and_has_no_time_boxes():
    rnn, loss = rnn_loss(unroll=False)
    source = viz.to_dot(loss, params=rnn)
    check_valid_dot(source)
    assert "rnn_tanh" in source and "weight_hh_l0" in source
    assert "subgraph" not in source


def test_leaves_without_names_and_constants():
    x = Tensor([[1.0, 2.0]], requires_grad=True)
    source = viz.to_dot((x * Tensor([[3.0, 4.0]]) * 0.5).sum(), title='a "quoted" title')
    check_valid_dot(source)
    assert "leaf (requires_grad)" in source and "input\\n(1, 2) float32" in source
    assert "constant 0.5" in source and 'label="a \\"quoted\\" title"' in source


def test_deep_graph_is_walked_without_recursion():
    x = Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(3 * sys.getrecursionlimit()):
        y = y * 1.0001
    _, edges = check_valid_dot(viz.to_dot(y))
    assert len(edges) == 2 * 3 * sys.getrecursionlimit()


def test_errors():
    _, loss = rnn_loss(unroll=True)
    with pytest.raises(TypeError, match="params must be a Module"):
        viz.to_dot(loss, params=[1, 2])
    with pytest.raises(TypeError, match="expected a Tensor"):
        viz.to_dot(np.ones(2))
    loss.backward()
    with pytest.raises(RuntimeError, match="freed by backward"):
        viz.to_dot(loss)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_accepts_the_source(tmp_path):
    rnn, loss = rnn_loss(unroll=True, num_layers=2)
    path = viz.draw(loss, tmp_path / "graph.svg", params=rnn)
    assert "<svg" in Path(path).read_text()


def test_draw_without_graphviz_writes_the_source_and_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    _, loss = rnn_loss(unroll=True)
    with pytest.warns(viz.GraphvizNotFoundWarning) as caught:
        written = viz.draw(loss, tmp_path / "graph.png")
    assert written == str(tmp_path / "graph.dot") and not (tmp_path / "graph.png").exists()
    check_valid_dot(Path(written).read_text())
    assert "graph.dot" in str(caught[0].message)
    with pytest.raises(viz.GraphvizNotFoundError) as info:   # strict: stop instead
        viz.draw(loss, tmp_path / "graph.png", strict=True)
    message = str(info.value)
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install",
                 ".dot", "to_dot"):
        assert hint in message
    # .dot needs no Graphviz: the source is written as is
    path = viz.draw(loss, tmp_path / "graph.dot")
    check_valid_dot(Path(path).read_text())
    # a directory that does not exist yet is made (the README draws into runs/)
    with pytest.warns(viz.GraphvizNotFoundWarning):
        viz.draw(loss, tmp_path / "runs" / "graph.svg")
    check_valid_dot((tmp_path / "runs" / "graph.dot").read_text())


@pytest.mark.skipif(os.name != "posix", reason="fake `dot` is a shell-free POSIX script")
def test_draw_runs_dot_with_the_format_of_the_extension(tmp_path, monkeypatch):
    fake = tmp_path / "dot"
    # A stand-in for Graphviz: writes its first argument and the DOT source to the -o file.
    fake.write_text(f"#!{sys.executable}\nimport sys\n"
                    "args = sys.argv[1:]\n"
                    "out = open(args[args.index('-o') + 1], 'w')\n"
                    "out.write(args[0] + '\\n' + sys.stdin.read())\n")
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name: str(fake) if name == "dot" else None)
    _, loss = rnn_loss(unroll=True)
    out = viz.draw(loss, tmp_path / "graph.svg")
    written = Path(out).read_text()
    assert written.startswith("-Tsvg\ndigraph ")
    fake.write_text(f"#!{sys.executable}\nimport sys\nsys.exit('dot: syntax error')\n")
    with pytest.raises(RuntimeError, match="syntax error"):
        viz.draw(rnn_loss(unroll=True)[1], tmp_path / "graph.png")


def test_plot_norms(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    curves = {"tanh": np.array([1e-6, 1e-3, 0.0, 1.0]), "relu": [np.inf, 10, 2, 1],
              "tensor": Tensor([3.0, 2.0, 1.0])}
    assert os.path.getsize(viz.plot_norms(curves, tmp_path / "one.png")) > 0
    panels = {"gradient": curves, "Jacobian": curves}
    assert os.path.getsize(viz.plot_norms(panels, tmp_path / "two.png", title="t")) > 0
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)   # as if not installed
    with pytest.raises(ImportError, match=r"pip install \"tinygrad-rnn\[plot\]\""):
        viz.plot_norms(curves, tmp_path / "three.png")


def test_dot_escapes_labels():
    assert viz._quote('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c\\nd"'


def _lines_executed_in_viz(T: int) -> int:
    """Python lines run inside viz.py to draw an unrolled RNN over T steps: a measure of
    work that does not depend on the machine's speed or load."""
    tg.manual_seed(0)
    rnn = nn.RNN(2, 3, batch_first=True, unroll=True)
    out, _ = rnn(Tensor.randn(1, T, 2))
    loss = out.sum()
    count = 0

    def local(frame, event, arg):
        nonlocal count
        count += event == "line"
        return local

    def on_call(frame, event, arg):
        return local if frame.f_code.co_filename == viz.__file__ else None
    sys.settrace(on_call)
    try:
        viz.to_dot(loss, params=rnn)
    finally:
        sys.settrace(None)
    return count


def test_to_dot_work_grows_linearly_with_the_graph():
    """Twice the time steps, about twice the work (it was quadratic: T=4000 took 5.6 s)."""
    small, large = _lines_executed_in_viz(100), _lines_executed_in_viz(200)
    assert 1.5 < large / small < 2.3, (small, large)


def test_inputs_are_labelled_by_name():
    x = Tensor(np.ones((3, 1, 2), np.float32))
    h0 = Tensor(np.zeros((1, 1, 4), np.float32))
    rnn = nn.RNN(2, 4, unroll=True)
    out, _ = rnn(x, h0)
    source = viz.to_dot(out.sum(), params=rnn, inputs={"x": x, "h0": h0})
    check_valid_dot(source)
    labels = re.findall(r'label="([^"\\]*)', source)
    assert "x" in labels and "h0" in labels and "weight_hh_l0" in labels
    with pytest.raises(TypeError, match="inputs must be a"):
        viz.to_dot(out, inputs=[x])
