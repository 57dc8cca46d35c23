"""The CuPy stand-in's rules, and zero device→host transfers in the hot loops.

Under CuPy every ``float()``, ``.item()``, ``if tensor:`` or NumPy call on device data makes the
host wait for the GPU (and copies), so one inside the time loop or the optimizer turns a GPU
run into a crawl. The strict stand-in (``tests/cupy_standin``) counts those transfers; here a
whole training step (forward, loss, backward, clipping, optimizer) must make none except the
``.item()`` the user asks for.
"""
from __future__ import annotations

import numpy as np
import pytest

from tinygrad_rnn import Tensor, backend, nn, optim
from tinygrad_rnn.nn import functional as F


def training_step(model, head, opt, params, x, y):
    opt.zero_grad()
    out, _ = model(x)
    loss = F.mse_loss(head(out[:, -1]), y)
    loss.backward()
    nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss


@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("make_opt", [lambda p: optim.Adam(p, lr=1e-3),
                                      lambda p: optim.SGD(p, lr=0.1, momentum=0.9)],
                         ids=["adam", "sgd"])
def test_a_training_step_makes_no_host_transfer(cell, unroll, make_opt, device_transfers):
    model = getattr(nn, cell)(3, 8, num_layers=2, batch_first=True, bidirectional=True,
                              unroll=unroll)
    head = nn.Linear(16, 1)
    params = list(model.parameters()) + list(head.parameters())
    opt = make_opt(params)
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 6, 3)).astype(np.float32))
    y = Tensor(rng.standard_normal((4, 1)).astype(np.float32))
    training_step(model, head, opt, params, x, y)          # optimizer state is created lazily
    with device_transfers() as transfers:
        loss = training_step(model, head, opt, params, x, y)
        assert transfers() == 0, f"{transfers()} device→host transfer(s) in one training step"
        loss.item()                                          # the one the user asks for
        assert transfers() == 1


def test_the_standin_refuses_implicit_host_conversion(backend_name):
    if backend_name != "cupy":
        pytest.skip("a rule of the CuPy backend")
    device = Tensor([1.0, 2.0]).data
    host = np.ones(2, dtype=np.float32)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(device)
    with pytest.raises(TypeError):
        np.tanh(device)                                      # a NumPy ufunc on device data
    with pytest.raises(TypeError):
        np.concatenate([device, device])                     # a NumPy function on device data
    with pytest.raises(TypeError):
        device + host                                        # a host array in a device op
    with pytest.raises(TypeError):
        backend.xp.matmul(device, host)
    np.testing.assert_array_equal(backend.to_host(device), [1.0, 2.0])  # the explicit way


def test_a_mixed_host_array_in_an_op_is_converted_not_mixed(backend_name):
    """``Tensor + ndarray`` is legal user code on both backends: the array is uploaded."""
    t = Tensor([1.0, 2.0])
    np.testing.assert_allclose((t + np.array([1.0, 1.0], dtype=np.float32)).numpy(), [2.0, 3.0])
    np.testing.assert_allclose((np.array([1.0, 1.0], dtype=np.float32) * t).numpy(), [1.0, 2.0])


def test_large_arrays_go_to_the_device_through_pinned_memory(backend_name, monkeypatch):
    if backend_name != "cupy":
        pytest.skip("a rule of the CuPy backend")
    import cupyx
    staged = []
    real = cupyx.empty_pinned
    monkeypatch.setattr(cupyx, "empty_pinned", lambda *a, **k: staged.append(a) or real(*a, **k))
    big = np.arange(backend.PINNED_MIN_BYTES // 4, dtype=np.float32)
    small = np.arange(8, dtype=np.float32)
    moved = Tensor(big)
    Tensor(small)
    assert staged == [(big.shape,)]                         # only the large one is staged
    np.testing.assert_array_equal(moved.numpy(), big)


@pytest.mark.parametrize("make", [lambda: nn.RNN(3, 5, num_layers=2, bidirectional=True),
                                  lambda: nn.LSTM(3, 5, num_layers=2, bidirectional=True),
                                  lambda: nn.LSTM(3, 5, proj_size=2),
                                  lambda: nn.GRU(3, 5, num_layers=2, bidirectional=True)],
                         ids=["rnn", "lstm", "lstm-proj", "gru"])
def test_fused_kernels_compute_what_the_array_code_computes(make, backend_name, monkeypatch,
                                                            float64_default):
    """Under CuPy the fused cells run each step as one ElementwiseKernel (CUDA C); the
    stand-in runs that C translated to NumPy. It must give the numbers of the cells' array
    code (which the NumPy backend runs, and which is checked against PyTorch)."""
    if backend_name != "cupy":
        pytest.skip("the kernels exist under CuPy only")
    used = []
    real = backend.elementwise_kernel
    monkeypatch.setattr(backend, "elementwise_kernel",
                        lambda xp, name, *a: used.append(name) or real(xp, name, *a))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 4, 3))
    w = rng.standard_normal((7, 4, 10))

    def run():
        import tinygrad_rnn as tg
        tg.manual_seed(0)
        layer = make()
        xt = Tensor(x, requires_grad=True)
        out, _ = layer(xt)
        (out * Tensor(w[..., :out.shape[-1]])).sum().backward()
        return [out.numpy(), xt.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()]

    with_kernels = run()
    assert used and all(name.endswith(("forward", "backward")) for name in used)
    monkeypatch.setattr(backend, "elementwise_kernel", lambda *a: None)
    without = run()
    for got, expected in zip(with_kernels, without):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
