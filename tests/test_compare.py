"""``bptt.compare``: BPTT, truncated BPTT, RTRL and UORO on the same batch and parameters."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import tinygrad_rnn as tg
import tinygrad_rnn.compare as comparison
from tinygrad_rnn import Tensor, bptt, nn, tasks
from tinygrad_rnn.nn import functional as F


def problem(make, T=12, seed=0):
    tg.manual_seed(seed)
    model = nn.Sequential(make(), nn.Linear(4, 1, dtype="float64"))
    layer, head = model[0], model[1]
    rng = np.random.default_rng(seed)
    x, y = Tensor(rng.standard_normal((T, 2, 3))), Tensor(rng.standard_normal((T, 2, 1)))

    def step_loss(t, out):
        return F.mse_loss(head(out), y[t])
    return model, layer, head, x, y, step_loss


def flat(layer):
    return np.concatenate([p.grad.numpy().ravel() for p in layer.parameters()])


def chunked_reference(layer, head, x, y, k):
    """Truncated BPTT written as in bptt's module docstring, with bptt.chunks."""
    layer.zero_grad()
    h = None
    for x_k, y_k in zip(bptt.chunks(x, k), bptt.chunks(y, k)):
        out, h = layer(x_k, h)
        sum(F.mse_loss(head(out[i]), y_k[i]) for i in range(out.shape[0])).backward()
        h = tuple(s.detach() for s in h) if isinstance(h, tuple) else h.detach()
    return flat(layer)


@pytest.mark.parametrize("make", [lambda: nn.RNN(3, 4, dtype="float64"),
                                  lambda: nn.LSTM(3, 4, dtype="float64"),
                                  lambda: nn.GRU(3, 4, dtype="float64")],
                         ids=["rnn", "lstm", "gru"])
def test_each_method_is_scored_against_the_exact_gradient(make):
    model, layer, head, x, y, step_loss = problem(make)
    output, _ = layer(x)
    sum(step_loss(t, output[t]) for t in range(12)).backward()
    exact = flat(layer)
    results = bptt.compare(model, x, step_loss,
                           methods=["bptt", "tbptt:3", "tbptt:12", "rtrl", "uoro", "uoro:2000"])
    by = {r.method: r for r in results}
    assert [r.method for r in results] == ["bptt", "tbptt:3", "tbptt:12", "rtrl", "uoro",
                                           "uoro:2000"]
    np.testing.assert_allclose(by["bptt"].gradient, exact, rtol=0, atol=1e-13)
    assert by["rtrl"].relative_error < 1e-12 and by["tbptt:12"].relative_error < 1e-13
    truncated = chunked_reference(layer, head, x, y, 3)
    np.testing.assert_allclose(by["tbptt:3"].gradient, truncated, rtol=0, atol=1e-13)
    g = by["tbptt:3"].gradient
    assert by["tbptt:3"].cosine == pytest.approx(g @ exact / np.linalg.norm(g)
                                                 / np.linalg.norm(exact), abs=1e-12)
    assert by["tbptt:3"].relative_norm == pytest.approx(np.linalg.norm(g)
                                                        / np.linalg.norm(exact), rel=1e-12)
    assert by["tbptt:3"].relative_error > 1e-3          # truncation drops long paths
    assert by["uoro:2000"].cosine > by["uoro"].cosine and by["uoro:2000"].cosine > 0.9
    draws = bptt.uoro_samples(layer, x, step_loss, draws=2000, generator=0)   # compare's seed
    np.testing.assert_allclose(by["uoro:2000"].gradient, draws.mean(axis=0), rtol=1e-12)
    assert by["uoro:2000"].variance == pytest.approx(
        draws.var(axis=0, ddof=1).sum() / (exact @ exact), rel=1e-10)
    assert all(by[m].variance is None for m in ("bptt", "tbptt:3", "rtrl", "uoro"))
    assert all(r.seconds > 0 and r.peak_bytes > 0 for r in results)


def test_gradients_are_put_back_as_they_were():
    model, layer, head, x, _, step_loss = problem(lambda: nn.RNN(3, 4, dtype="float64"))
    head.weight.grad = Tensor(np.full(head.weight.shape, 7.0))
    bptt.compare(model, x, step_loss, methods=["rtrl"])
    assert head.weight.grad.numpy().tolist() == np.full(head.weight.shape, 7.0).tolist()
    assert all(p.grad is None for p in layer.parameters())


@pytest.mark.parametrize("method", ["adam", "tbptt", "tbptt:0", "tbptt:x", "rtrl:3", 5])
def test_unknown_methods_are_refused(method):
    model, _, _, x, _, step_loss = problem(lambda: nn.RNN(3, 4, dtype="float64"))
    with pytest.raises((ValueError, TypeError), match="method"):
        bptt.compare(model, x, step_loss, methods=[method])


@pytest.mark.parametrize("name", ["sine", "adding", "charlm", "health"])
def test_task_step_losses_add_up_to_the_task_loss(name, float64_default):
    task = tasks.get(name)(seed=0, batch_size=3, seq_len=12)
    model = task.make_model(hidden=5, cell="gru")
    x, y = task.batch(0)
    step_loss = comparison.task_step_loss(task, model, x, y)     # checks the split itself
    output, _ = model.rnn(x)
    split = sum(step_loss(t, output[:, t]) for t in range(x.shape[1]))
    split.backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    model.zero_grad()
    task.loss(model(x), y).backward()
    for n, p in model.named_parameters():
        np.testing.assert_allclose(grads[n], p.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_a_task_whose_loss_is_not_per_step_is_refused(float64_default):
    task = tasks.get("copy")(seed=0, batch_size=2, seq_len=3)
    model = task.make_model(hidden=4)
    x, y = task.batch(0)
    with pytest.raises(ValueError, match="copy"):
        comparison.task_step_loss(task, model, x, y)


def test_the_table_lists_every_method():
    model, _, _, x, _, step_loss = problem(lambda: nn.GRU(3, 4, dtype="float64"))
    results = bptt.compare(model, x, step_loss, methods=["bptt", "tbptt:4", "rtrl"])
    table = comparison.format_table(results).splitlines()
    assert len(table) == 4 and "cosine" in table[0]
    assert table[2].split()[0] == "tbptt:4"


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="no matplotlib")
def test_the_figure_is_written(tmp_path):
    model, _, _, x, _, step_loss = problem(lambda: nn.RNN(3, 4, dtype="float64"))
    results = bptt.compare(model, x, step_loss, methods=["bptt", "tbptt:2", "uoro"])
    path = comparison.plot_comparison({"rnn": results}, str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 1000 and path.endswith("c.png")


def test_a_packed_task_is_refused_with_a_reason():
    from tinygrad_rnn import tasks
    from tinygrad_rnn.compare import task_step_loss
    task = tasks.get("health_varlen")(batch_size=4)
    model = task.make_model(hidden=3)
    x, y = task.batch(0)
    with pytest.raises(ValueError, match="packed sequences of different lengths"):
        task_step_loss(task, model, x, y)


@pytest.mark.parametrize("make, methods, words", [
    (lambda: nn.LSTM(3, 4, num_layers=2, dropout=0.5, dtype="float64"), ["bptt"], "eval()"),
    (lambda: nn.GRU(3, 2, bidirectional=True, dtype="float64"), ["bptt", "tbptt:3"],
     "bidirectional"),
], ids=["dropout-in-training", "bidirectional-tbptt"])
def test_a_setting_without_one_exact_gradient_is_refused(make, methods, words):
    """Random dropout masks give each run another loss (the "exact" one too); chunks change
    a reverse direction's outputs: either would score a gradient of another function."""
    model, layer, _, x, _, step_loss = problem(make)
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        bptt.compare(model, x, step_loss, methods=methods)
    layer.eval()
    if not layer.bidirectional:     # in eval mode dropout is off: one gradient, exact
        assert bptt.compare(model, x, step_loss, methods=["rtrl"])[0].relative_error < 1e-12


def test_an_empty_sequence_is_refused_by_the_layer():
    model, _, _, x, _, step_loss = problem(lambda: nn.RNN(3, 4, dtype="float64"))
    with pytest.raises(ValueError, match="length >= 1"):
        bptt.compare(model, x[:0], step_loss, methods=["bptt"])
