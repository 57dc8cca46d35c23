"""No leaks over a long training run: 500 steps of RNN + Linear + MSE + SGD keep the traced
memory (``tracemalloc``, which sees NumPy's array buffers too) and the number of live
``Tensor`` objects flat.

On the CuPy backend tracemalloc does not see GPU memory, so there only the host side and the
Tensor count are checked.

Step 50 is the reference (everything that is allocated once — optimizer state, caches — exists
by then); step 500 must be within a small slack of it. A leak of one activation buffer per step
(T·N·H float32 = 2 KiB here) would add ~900 KiB over 450 steps, far above the slack; a leak of
one Tensor per step would add 450 Tensors.
"""
from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, optim
from tinygrad_rnn.nn import utils as nn_utils

STEPS, REFERENCE_STEP = 500, 50
T, N, H_IN, H = 16, 8, 2, 4
MEMORY_SLACK = 64 * 1024     # bytes
TENSOR_SLACK = 5             # live Tensor objects


def live_tensors() -> int:
    # type(), not isinstance(): isinstance also reads o.__class__, which on a lazy module
    # object (torch.distributed's, once a live-torch test imported torch) warns and fails.
    return sum(1 for o in gc.get_objects() if issubclass(type(o), Tensor))


def batch(rng):
    x = rng.standard_normal((T, N, H_IN)).astype(np.float32)
    return Tensor(x), Tensor(np.roll(x[..., :1], 1, axis=0))  # target: x_{t-1}, first feature


def measure(step_fn):
    """Run ``STEPS`` steps; (memory, tensors) at the reference step and at the end."""
    rng = np.random.default_rng(0)
    snapshots = {}
    tracemalloc.start()
    try:
        for step in range(1, STEPS + 1):
            step_fn(*batch(rng))
            if step in (REFERENCE_STEP, STEPS):
                gc.collect()
                snapshots[step] = (tracemalloc.get_traced_memory()[0], live_tensors())
    finally:
        tracemalloc.stop()
    return snapshots[REFERENCE_STEP], snapshots[STEPS]


@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_memory_is_flat(unroll, optimizer):
    tg.manual_seed(0)
    rnn, head = nn.RNN(H_IN, H, unroll=unroll), nn.Linear(H, 1)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = optim.SGD(params, lr=0.01, momentum=0.9) if optimizer == "sgd" \
        else optim.Adam(params, lr=1e-3)
    loss_fn = nn.MSELoss()
    losses = []

    def step(x, y):
        opt.zero_grad()
        out, _ = rnn(x)
        loss = loss_fn(head(out), y)
        loss.backward()
        nn_utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())   # a float per step: 450 floats ≈ 11 KiB, within slack

    (mem_ref, tensors_ref), (mem_end, tensors_end) = measure(step)
    assert np.isfinite(losses).all()
    assert tensors_end - tensors_ref <= TENSOR_SLACK, (tensors_ref, tensors_end)
    assert mem_end - mem_ref <= MEMORY_SLACK, \
        f"traced memory grew from {mem_ref} to {mem_end} bytes over {STEPS - REFERENCE_STEP} steps"


def test_truncated_bptt_with_detach_is_flat():
    """Carrying the hidden state across chunks (detached) must not chain the graphs."""
    tg.manual_seed(0)
    rnn, head = nn.RNN(H_IN, H), nn.Linear(H, 1)
    opt = optim.SGD(list(rnn.parameters()) + list(head.parameters()), lr=0.01)
    state = {"h": None}

    def step(x, y):
        opt.zero_grad()
        out, h = rnn(x, state["h"])
        nn.functional.mse_loss(head(out), y).backward()
        opt.step()
        state["h"] = h.detach()

    (mem_ref, tensors_ref), (mem_end, tensors_end) = measure(step)
    assert tensors_end - tensors_ref <= TENSOR_SLACK
    assert mem_end - mem_ref <= MEMORY_SLACK


def test_the_check_can_fail():
    """The measurement sees a leak of one small array per step (guards the test itself)."""
    leak = []

    def step(x, y):  # a host array, so that tracemalloc sees it on any backend
        leak.append(Tensor._wrap(np.zeros((T, N, H), dtype=np.float32)))

    (mem_ref, tensors_ref), (mem_end, tensors_end) = measure(step)
    assert tensors_end - tensors_ref == STEPS - REFERENCE_STEP
    assert mem_end - mem_ref > MEMORY_SLACK
