"""A float32 model computes in float32 all the way: forward results, every gradient that flows
through the graph, every ``.grad``, and the parameters after an optimizer step.

A silent promotion to float64 (a NumPy float64 scalar, ``np.ones`` without a dtype, a float64
constant mixed in a backward closure) doubles memory and halves speed without changing a single
printed digit, so every op is checked on its own, with ``retain_grad`` on its output to see the
gradient flowing into it, and the RNN on both paths. float64 stays float64 the same way.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend, nn, optim
from tinygrad_rnn.nn import functional as F

DTYPES = ("float32", "float64")

# name -> (input shapes, function of the input tensors); inputs are made positive where the
# op needs it (log, pow, div), and every input requires a gradient.
OPS = {
    "add": ([(3, 4), (3, 4)], lambda a, b: a + b),
    "add_broadcast": ([(2, 3, 4), (4,)], lambda a, b: a + b),
    "sub": ([(3, 4), (1, 4)], lambda a, b: a - b),
    "mul": ([(3, 4), (3, 1)], lambda a, b: a * b),
    "div": ([(3, 4), (3, 4)], lambda a, b: a / b),
    "pow_tensor": ([(3, 4), (3, 4)], lambda a, b: a ** b),
    "pow_scalar": ([(3, 4)], lambda a: a ** 3),
    "pow_half": ([(3, 4)], lambda a: a ** 0.5),
    "rpow": ([(3, 4)], lambda a: 2.0 ** a),
    "scalar_float_both_sides": ([(3, 4)], lambda a: 0.5 * a + a * 0.25 - 1.5 / a + 3.0 - a),
    "scalar_int_both_sides": ([(3, 4)], lambda a: 2 * a + a * 3 - 1 / a + 4 - a),
    "numpy_float64_scalar": ([(3, 4)], lambda a: a * np.float64(0.5) + np.float64(1.0)),
    "neg": ([(3, 4)], lambda a: -a),
    "matmul_2d": ([(3, 4), (4, 5)], lambda a, b: a @ b),
    "matmul_batched": ([(2, 3, 4), (2, 4, 5)], lambda a, b: a @ b),
    "matmul_broadcast": ([(2, 3, 4), (4, 5)], lambda a, b: a @ b),
    "matmul_vec": ([(4,), (4, 5)], lambda a, b: a @ b),
    "matmul_mat_vec": ([(3, 4), (4,)], lambda a, b: a @ b),
    "sum": ([(3, 4)], lambda a: a.sum()),
    "sum_axis": ([(2, 3, 4)], lambda a: a.sum(axis=1)),
    "mean": ([(3, 4)], lambda a: a.mean()),
    "mean_axis_keepdims": ([(2, 3, 4)], lambda a: a.mean(axis=(0, 2), keepdims=True)),
    "max": ([(3, 4)], lambda a: a.max(axis=1)),
    "exp": ([(3, 4)], lambda a: a.exp()),
    "log": ([(3, 4)], lambda a: a.log()),
    "tanh": ([(3, 4)], lambda a: a.tanh()),
    "sigmoid": ([(3, 4)], lambda a: a.sigmoid()),
    "relu": ([(3, 4)], lambda a: (a - 1.0).relu()),
    "clip": ([(3, 4)], lambda a: a.clip(0.5, 1.5)),
    "reshape": ([(3, 4)], lambda a: a.reshape(4, 3)),
    "transpose": ([(2, 3, 4)], lambda a: a.transpose(0, 2)),
    "permute": ([(2, 3, 4)], lambda a: a.permute(2, 0, 1)),
    "T": ([(3, 4)], lambda a: a.T),
    "unsqueeze_squeeze": ([(3, 4)], lambda a: a.unsqueeze(1).squeeze(1)),
    "flip": ([(3, 4)], lambda a: a.flip(1)),
    "getitem_slice": ([(5, 4)], lambda a: a[1:4]),
    "getitem_int": ([(5, 4)], lambda a: a[2]),
    "getitem_array_repeated": ([(5, 4)], lambda a: a[np.array([0, 2, 2])]),
    "getitem_many_slices": ([(5, 4)], lambda a: Tensor.stack([a[t] for t in range(5)])),
    "cat": ([(2, 4), (3, 4)], lambda a, b: Tensor.cat([a, b], axis=0)),
    "stack": ([(3, 4), (3, 4)], lambda a, b: Tensor.stack([a, b], axis=1)),
    "fan_out": ([(3, 4)], lambda a: a * a + a.tanh() + a[0]),
    "log_softmax": ([(3, 4)], lambda a: F.log_softmax(a, axis=1)),
    "softmax": ([(3, 4)], lambda a: F.softmax(a, axis=-1)),
    "mse_loss": ([(3, 4), (3, 4)], lambda a, b: F.mse_loss(a, b)),
    "mse_loss_numpy_target": ([(3, 4)], lambda a: F.mse_loss(a, np.ones((3, 4)))),
    "cross_entropy": ([(3, 4)], lambda a: F.cross_entropy(a, Tensor(np.array([0, 3, 1])))),
}


def _inputs(shapes, dtype):
    rng = np.random.default_rng(0)
    return [Tensor(rng.uniform(0.5, 1.5, size=shape).astype(dtype), requires_grad=True)
            for shape in shapes]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_keeps_the_dtype_forward_and_backward(name, dtype):
    shapes, fn = OPS[name]
    inputs = _inputs(shapes, dtype)
    out = fn(*inputs)
    assert out.dtype == np.dtype(dtype), f"{name}: forward gave {out.dtype}"
    out.retain_grad()
    weights = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    (out * Tensor(weights)).sum().backward()
    assert out.grad.dtype == np.dtype(dtype), f"{name}: gradient into the output"
    for i, x in enumerate(inputs):
        assert x.grad is not None, f"{name}: input {i} got no gradient"
        assert x.grad.dtype == np.dtype(dtype), f"{name}: grad of input {i} is {x.grad.dtype}"
        assert x.grad.shape == x.shape


@pytest.mark.parametrize("name", ["getitem_slice", "fan_out", "getitem_array_repeated"])
def test_gradients_passing_through_hooks_keep_the_dtype(name):
    """A hook sees every gradient a tensor receives, including ones summed from several
    consumers (and from slices, which the backward sweep adds in place)."""
    shapes, fn = OPS[name]
    (x,) = _inputs(shapes, "float32")
    seen = []
    y = x * 1.0
    y.register_hook(lambda g: seen.append(g.dtype))
    fn(y).sum().backward()
    assert seen == [np.float32]
    assert x.grad.dtype == np.float32


def test_float32_model_under_a_float64_default_dtype():
    """Python numbers inside ops take the tensor's dtype, not the default dtype."""
    tg.set_default_dtype("float64")
    (x,) = _inputs([(3, 4)], "float32")
    y = (x * 0.5 + 1.0) / 3.0 - 2.0 * x.tanh()
    y.mean().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_accumulating_grads_across_backward_calls_keeps_the_dtype():
    (x,) = _inputs([(3, 4)], "float32")
    for _ in range(3):
        (x * 2.0 + x[0]).sum().backward()
    assert x.grad.dtype == np.float32
    # d/dx of sum(2x + x[0] broadcast over 3 rows): 2 everywhere, plus 3 on row 0; 3 calls.
    expected = 3 * (2.0 + np.array([[3.0], [0.0], [0.0]]) * np.ones((3, 4)))
    np.testing.assert_allclose(x.grad.numpy(), expected)


RNN_CONFIGS = [
    dict(),
    dict(nonlinearity="relu"),
    dict(bias=False),
    dict(batch_first=True),
    dict(num_layers=2, bidirectional=True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
@pytest.mark.parametrize("cfg", RNN_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in
                                                                   c.items()) or "default")
def test_rnn_keeps_the_dtype_on_both_paths(cfg, unroll, dtype):
    tg.manual_seed(0)
    rnn = nn.RNN(3, 5, unroll=unroll, dtype=dtype, **cfg)
    head = nn.Linear(5 * (2 if cfg.get("bidirectional") else 1), 2, dtype=dtype)
    rng = np.random.default_rng(0)
    layers = cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional") else 1)
    x = Tensor(rng.standard_normal((4, 6, 3)).astype(dtype), requires_grad=True)
    h0 = Tensor(rng.standard_normal((layers, 6 if not cfg.get("batch_first") else 4, 5))
                .astype(dtype), requires_grad=True)
    out, h_n = rnn(x, h0)
    assert out.dtype == h_n.dtype == np.dtype(dtype)
    out.retain_grad()
    target = rng.standard_normal(out.shape[:-1] + (2,))
    loss = F.mse_loss(head(out), target) + h_n.sum() * 0.1
    assert loss.dtype == np.dtype(dtype)
    loss.backward()
    assert out.grad.dtype == np.dtype(dtype)
    assert x.grad.dtype == h0.grad.dtype == np.dtype(dtype)
    for name, p in list(rnn.named_parameters()) + list(head.named_parameters()):
        assert p.grad is not None, name
        assert p.grad.dtype == np.dtype(dtype), f"{name}: {p.grad.dtype}"


@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
def test_bptt_trace_gradients_keep_the_dtype(unroll):
    from tinygrad_rnn import bptt
    rnn = nn.RNN(3, 5, unroll=unroll, dtype="float32")
    x = Tensor(np.random.default_rng(0).standard_normal((7, 2, 3)).astype(np.float32))
    with bptt.trace(rnn) as trace:
        out, _ = rnn(x)
        out.sum().backward()
    assert trace.grad_norms().shape == (1, 7)
    assert trace.grads.dtype == np.float32


@pytest.mark.parametrize("make_opt", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9,
                                                           weight_decay=1e-2),
                                      lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-2)],
                         ids=["SGD", "Adam"])
@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
def test_a_training_step_keeps_float32_parameters(make_opt, unroll):
    rnn = nn.RNN(3, 5, unroll=unroll, batch_first=True, dtype="float32")
    head = nn.Linear(5, 3, dtype="float32")
    params = list(rnn.parameters()) + list(head.parameters())
    opt = make_opt(params)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 6, 3)).astype(np.float32))
    for _ in range(2):
        opt.zero_grad()
        out, _ = rnn(x)
        F.mse_loss(head(out), np.zeros((2, 6, 3))).backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    for p in params:
        assert p.dtype == np.float32 and p.grad.dtype == np.float32


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "permuted", "flipped"])
def test_a_linear_layer_on_a_sequence_view_keeps_dtype_and_values(layout, dtype):
    """``(..., k) @ (k, n)`` runs as one product over all rows taken in memory order (so the
    transposed (N, T, H) view a batch_first RNN returns is not copied); the values and both
    gradients must still be those of NumPy's batched matmul, whatever the layout."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((5, 3, 4)).astype(dtype)
    view = {"contiguous": lambda b: b, "transposed": lambda b: b.transpose(1, 0, 2),
            "permuted": lambda b: b.transpose(2, 1, 0), "flipped": lambda b: b[::-1]}[layout]
    a = Tensor._wrap(view(backend.to_backend(base))).requires_grad_()  # a view on the device
    w = Tensor(rng.standard_normal((a.shape[-1], 2)).astype(dtype), requires_grad=True)
    out = a @ w
    expected = view(base) @ w.numpy()
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    g = rng.standard_normal(out.shape).astype(dtype)
    out.backward(Tensor(g))
    np.testing.assert_allclose(a.grad.numpy(), g @ w.numpy().T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(),
                               np.einsum("ijk,ijn->kn", view(base), g), rtol=1e-5, atol=1e-6)
    assert a.grad.dtype == w.grad.dtype == np.dtype(dtype)
