"""Very long sequences: an RNN over T = 10,000 time steps trains under Python's default
recursion limit, with both implementations, and frees its unrolled graph after backward.

The unrolled implementation builds a graph ~40,000 nodes deep (four ops per step); a recursive
backward would die with ``RecursionError`` around depth 1,000. The fused one records one node
for the whole sequence and loops over time itself.
"""
from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, optim

T = 10_000
HIDDEN = 8
LR = 0.05
DEFAULT_RECURSION_LIMIT = 1000  # CPython's default (sys.getrecursionlimit() in a fresh process)


@pytest.fixture
def default_recursion_limit():
    """Run at CPython's default recursion limit, whatever the test runner set."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    yield
    sys.setrecursionlimit(previous)


def make_model(unroll: bool):
    tg.manual_seed(1)
    rnn = nn.RNN(1, HIDDEN, unroll=unroll)
    head = nn.Linear(HIDDEN, 1)
    return rnn, head


def sine_sequence():
    """Next-value prediction on one long sine wave: input x_t, target x_{t+1}."""
    wave = np.sin(np.arange(T + 1) * 0.05).astype(np.float32)
    return Tensor(wave[:-1].reshape(T, 1, 1)), Tensor(wave[1:].reshape(T, 1, 1))


def loss_of(rnn, head, x, y):
    out, _ = rnn(x)
    return nn.functional.mse_loss(head(out), y)


@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
def test_ten_thousand_steps_train(unroll, default_recursion_limit):
    rnn, head = make_model(unroll)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = optim.SGD(params, lr=LR)
    x, y = sine_sequence()
    losses = []
    for _step in range(2):
        opt.zero_grad()
        loss = loss_of(rnn, head, x, y)
        loss.backward()
        before = [p.numpy().copy() for p in params]
        grads = [p.grad.numpy().copy() for p in params]
        opt.step()
        losses.append(loss.item())
        for p, b, g in zip(params, before, grads):
            assert np.all(np.isfinite(g))
            assert np.abs(g).max() > 0                      # the gradient reached every weight
            np.testing.assert_allclose(p.numpy(), b - LR * g, rtol=1e-6, atol=1e-7)  # SGD rule
    assert sys.getrecursionlimit() == DEFAULT_RECURSION_LIMIT
    assert all(np.isfinite(losses))
    assert losses[1] < losses[0]  # a step along -grad on a smooth loss goes down


def test_fused_and_unrolled_agree_over_ten_thousand_steps(default_recursion_limit):
    """The two implementations give the same loss and gradients at T = 10,000 (float64)."""
    x, y = sine_sequence()
    x, y = x.double(), y.double()
    results = []
    for unroll in (False, True):
        rnn, head = make_model(unroll)
        rnn.double(), head.double()
        loss = loss_of(rnn, head, x, y)
        loss.backward()
        results.append((loss.item(), [p.grad.numpy() for p in rnn.parameters()]))
    (loss_f, grads_f), (loss_u, grads_u) = results
    assert loss_f == pytest.approx(loss_u, rel=1e-12)
    for gf, gu in zip(grads_f, grads_u):
        np.testing.assert_allclose(gf, gu, rtol=1e-8, atol=1e-12)


def step_states(out):
    """h_1 ... h_T of an unrolled layer: the inputs of the stack node behind its output (the
    output is a view of the stacked states, whose last row h_n is taken from too)."""
    (stacked,) = out.grad_fn.parents
    return stacked.grad_fn.parents


def test_unrolled_graph_is_released_after_backward(default_recursion_limit):
    """Weak references to step tensors in the middle of the unrolled graph die as soon as
    backward has run and the user's own references (output, loss) are gone, by reference
    counting alone: the cyclic garbage collector is switched off while we check."""
    rnn, head = make_model(unroll=True)
    x, y = sine_sequence()
    out, h_n = rnn(x)
    steps = step_states(out)
    assert len(steps) == T
    refs = [weakref.ref(steps[t]) for t in (0, 1, T // 2, T - 2, T - 1)]
    del steps
    loss = nn.functional.mse_loss(head(out), y)
    gc.collect()
    gc.disable()
    try:
        assert all(r() is not None for r in refs), "the graph keeps its step tensors"
        loss.backward()
        del out, h_n, loss
        dead = [r() is None for r in refs]
    finally:
        gc.enable()
    assert all(dead), f"step tensors still alive after backward + del: {dead}"


def test_retained_graph_is_kept_until_released(default_recursion_limit):
    """With retain_graph=True the step tensors stay (a second backward needs them), and go
    once the output is dropped."""
    rnn, head = make_model(unroll=True)
    x, y = sine_sequence()
    out, h_n = rnn(x)
    ref = weakref.ref(step_states(out)[T // 2])
    loss = nn.functional.mse_loss(head(out), y)
    gc.disable()
    try:
        loss.backward(retain_graph=True)
        alive_after_retained_backward = ref() is not None
        loss.backward()
        del out, h_n, loss
        dead_at_end = ref() is None
    finally:
        gc.enable()
    assert alive_after_retained_backward and dead_at_end
