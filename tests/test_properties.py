"""Property-based tests (hypothesis) of *compositions*: what single-op tests cannot see.

``test_tensor.py`` and ``test_autograd.py`` check every op alone against NumPy and finite
differences, and ``test_rnn.py`` checks ``nn.RNN`` against a NumPy recurrence and fused against
unrolled. Here the properties are about putting things together:

* **random graphs**: random programs of broadcasting ops over a few inputs, with results
  reused several times (fan-out), agree with the same program run in NumPy, and their
  gradients agree with central finite differences of the NumPy program (float64);
* **structure**: cutting a tensor apart with indexing and putting it back with ``cat`` /
  ``stack`` is the identity or a known permutation, forwards and backwards;
* **RNN against its unrolled self**: ``nn.RNN`` equals a Python loop of ``nn.RNNCell`` steps
  with the same weights (layers, directions, h0, batch_first), outputs and every gradient;
  running a sequence in two chunks, carrying h, equals running it whole;
* **round-trips**: state dicts through ``save``/``load`` into a fresh model, between the fused
  and unrolled implementations, and a model+optimizer checkpoint taken mid-training resumes
  bit-for-bit.

The number of examples comes from the hypothesis profile in ``conftest.py`` (25 per test in
CI; ``HYPOTHESIS_PROFILE=thorough`` for 500).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import example, given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, optim
from tinygrad_rnn.serialization import load, save

SEEDS = st.integers(0, 2**32 - 1)


def numeric_grad(fn, arrays, i, eps=1e-6):
    """Central differences of the scalar ``fn(*arrays)`` w.r.t. ``arrays[i]`` (float64)."""
    arrays = [a.copy() for a in arrays]
    flat = arrays[i].reshape(-1)
    grad = np.zeros(flat.size)
    for k in range(flat.size):
        orig = flat[k]
        flat[k] = orig + eps
        plus = fn(*arrays)
        flat[k] = orig - eps
        minus = fn(*arrays)
        flat[k] = orig
        grad[k] = (plus - minus) / (2 * eps)
    return grad.reshape(arrays[i].shape)


# ----------------------------------------------------------------------------- random graphs
# Each op works on NumPy arrays and on Tensors alike (the second item is the NumPy version
# where the spelling differs). All are smooth on the whole real line, so finite differences
# apply anywhere.

UNARY = {
    "tanh": (lambda a: a.tanh(), np.tanh),
    "sigmoid": (lambda a: a.sigmoid(), lambda a: 1 / (1 + np.exp(-a))),
    "square": (lambda a: a * a, None),
    "exp_of_tanh": (lambda a: a.tanh().exp(), lambda a: np.exp(np.tanh(a))),
    "neg_scale": (lambda a: -0.5 * a + 1.0, None),
    # A 0-d tensor accepts axis 0 / -1 and reduces over nothing, as in PyTorch (NumPy refuses).
    "sum_last_keep": (lambda a: a.sum(axis=-1, keepdims=True),
                      lambda a: a.sum(axis=-1, keepdims=True) if np.ndim(a) else a),
    "mean_first_keep": (lambda a: a.mean(axis=0, keepdims=True),
                        lambda a: a.mean(axis=0, keepdims=True) if np.ndim(a) else a),
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (1.0 + b * b),
    "rdiv": lambda a, b: 2.0 / (1.5 + a.tanh() * b.tanh()) if isinstance(a, Tensor)
    else 2.0 / (1.5 + np.tanh(a) * np.tanh(b)),
}


@st.composite
def programs(draw):
    """Input shapes (mutually broadcastable) and a list of instructions over a growing pool
    of values; every value can be used by several later instructions."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=draw(st.integers(1, 3)),
                                                    min_dims=0, max_dims=3, max_side=3))
    n_inputs = len(shapes.input_shapes)
    steps = []
    for k in range(draw(st.integers(1, 8))):
        pool = n_inputs + k
        if draw(st.booleans()):
            steps.append(("u", draw(st.sampled_from(sorted(UNARY))),
                          draw(st.integers(0, pool - 1))))
        else:
            steps.append(("b", draw(st.sampled_from(sorted(BINARY))),
                          draw(st.integers(0, pool - 1)), draw(st.integers(0, pool - 1))))
    return shapes.input_shapes, steps


def run_program(steps, inputs, numpy: bool):
    """Run ``steps``; the result is sum over the whole pool of sum(value * weight_k) so that
    every intermediate (not only the last) is part of the loss."""
    pool = list(inputs)
    for step in steps:
        if step[0] == "u":
            tensor_fn, np_fn = UNARY[step[1]]
            fn = (np_fn or tensor_fn) if numpy else tensor_fn
            pool.append(fn(pool[step[2]]))
        else:
            pool.append(BINARY[step[1]](pool[step[2]], pool[step[3]]))
    total = 0.0
    for k, value in enumerate(pool):
        weighted = value * (0.3 + 0.1 * k)
        total = total + (weighted.sum() if not numpy else np.sum(weighted))
    return total


@given(program=programs(), seed=SEEDS)
@example(program=(((),), [("b", "add", 0, 0)]), seed=0)   # 0-d x + x: a lost contribution once
@example(program=(((2, 1), (3,)), [("b", "mul", 0, 1), ("b", "add", 2, 2),
                                   ("u", "sum_last_keep", 3)]), seed=1)
def test_random_graphs_match_numpy_and_finite_differences(program, seed):
    shapes, steps = program
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1.5, 1.5, s) for s in shapes]
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = run_program(steps, tensors, numpy=False)
    expected = run_program(steps, arrays, numpy=True)
    np.testing.assert_allclose(out.item(), expected, rtol=1e-12, atol=1e-12)
    out.backward()
    for i, t in enumerate(tensors):
        assert t.grad.shape == t.shape and t.grad.dtype == np.float64
        numeric = numeric_grad(lambda *xs: run_program(steps, xs, numpy=True), arrays, i)
        np.testing.assert_allclose(t.grad.numpy(), numeric, rtol=1e-5, atol=1e-6)


@given(program=programs(), seed=SEEDS)
def test_random_graphs_in_float32_track_float64(program, seed):
    """The same program in float32 stays float32 everywhere and is the float64 result up to
    float32 rounding (values and gradients)."""
    shapes, steps = program
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1.5, 1.5, s) for s in shapes]
    t32 = [Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    t64 = [Tensor(a.astype(np.float32).astype(np.float64), requires_grad=True) for a in arrays]
    out32, out64 = run_program(steps, t32, numpy=False), run_program(steps, t64, numpy=False)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32.item(), out64.item(), rtol=1e-4, atol=1e-4)
    out32.backward()
    out64.backward()
    for a, b in zip(t32, t64):
        assert a.grad.dtype == np.float32
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-3, atol=1e-3)


# ------------------------------------------------------------------- cat / stack / indexing

@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5), data=st.data(),
       seed=SEEDS)
def test_cut_apart_and_cat_back_in_another_order(shape, data, seed):
    """Slicing along an axis into chunks, reordering them and ``cat`` is a permutation P of
    the elements: forward equals NumPy's, and the gradient is Pᵀ w (the weight of each output
    element lands on the element it came from)."""
    axis = data.draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    cuts = sorted(data.draw(st.sets(st.integers(1, n - 1), max_size=3))) if n > 1 else []
    bounds = list(zip([0] + cuts, cuts + [n]))
    order = data.draw(st.permutations(range(len(bounds))))
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(shape)
    x = Tensor(x_np, requires_grad=True)

    def chunk(a, lo, hi):
        return a[(slice(None),) * axis + (slice(lo, hi),)]
    out = Tensor.cat([chunk(x, *bounds[i]) for i in order], axis=axis)
    expected = np.concatenate([chunk(x_np, *bounds[i]) for i in order], axis=axis)
    np.testing.assert_array_equal(out.numpy(), expected)
    w = rng.standard_normal(out.shape)
    out.backward(Tensor(w))
    # Pᵀ w: walk the output chunks and put each back where it came from.
    grad, start = np.zeros(shape), 0
    for i in order:
        lo, hi = bounds[i]
        grad[(slice(None),) * axis + (slice(lo, hi),)] = \
            w[(slice(None),) * axis + (slice(start, start + hi - lo),)]
        start += hi - lo
    np.testing.assert_array_equal(x.grad.numpy(), grad)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), data=st.data(),
       seed=SEEDS)
def test_stack_of_picked_rows_accumulates_repeats(shape, data, seed):
    """``stack([x[i] for i in idx], axis)`` reads rows, possibly the same row several times:
    equal to NumPy's ``np.stack``, and the gradient of row r is the sum of the weights of
    every place it was read (formula, via np.add.at)."""
    idx = data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=6))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(shape)
    x = Tensor(x_np, requires_grad=True)
    out = Tensor.stack([x[i] for i in idx], axis=axis)
    expected = np.stack([x_np[i] for i in idx], axis=axis)
    np.testing.assert_array_equal(out.numpy(), expected)
    w = rng.standard_normal(out.shape)
    (out * Tensor(w)).sum().backward()
    w_rows = np.moveaxis(w, axis, 0)            # w_rows[k] is the weight of the k-th pick
    grad = np.zeros(shape)
    np.add.at(grad, np.array(idx), w_rows)
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-12, atol=1e-12)


@given(shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4), seed=SEEDS)
def test_unbind_then_stack_is_the_identity_and_grads_pass_through_a_nonlinear_mix(shape, seed):
    """``stack(list(x), 0)`` is x; mixing rows through ``cat`` and a nonlinearity gives the
    gradient finite differences of the NumPy version give."""
    rng = np.random.default_rng(seed)
    x_np = rng.uniform(-1, 1, shape)
    x = Tensor(x_np, requires_grad=True)
    rows = [x[i] for i in range(shape[0])]
    np.testing.assert_array_equal(Tensor.stack(rows, axis=0).numpy(), x_np)

    def mix(a, stack, cat, tanh):
        rows = [a[i] for i in range(a.shape[0])]
        reversed_rows = stack(rows[::-1])
        both = cat([a, tanh(reversed_rows) * a])
        return (both * both).sum()
    out = mix(x, lambda r: Tensor.stack(r, axis=0), lambda r: Tensor.cat(r, axis=-1),
              lambda t: t.tanh())
    np_mix = lambda a: mix(a, lambda r: np.stack(r, 0), lambda r: np.concatenate(r, -1),  # noqa
                           np.tanh)
    np.testing.assert_allclose(out.item(), np_mix(x_np), rtol=1e-12)
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), numeric_grad(np_mix, [x_np], 0),
                               rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- RNN against its unrolled self

@st.composite
def rnn_configs(draw):
    unbatched = draw(st.booleans())
    return dict(
        input_size=draw(st.integers(1, 3)), hidden_size=draw(st.integers(1, 4)),
        num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()),
        nonlinearity=draw(st.sampled_from(["tanh", "relu"])), bias=draw(st.booleans()),
        batch_first=draw(st.booleans()), unbatched=unbatched, h0=draw(st.booleans()),
        T=draw(st.integers(1, 5)), N=1 if unbatched else draw(st.integers(1, 3)),
        unroll=draw(st.booleans()), seed=draw(SEEDS))


RNN_ARGS = ("input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first",
            "bidirectional", "unroll")


def rnn_inputs(cfg, rng):
    D = 2 if cfg["bidirectional"] else 1
    T, N, I, H = cfg["T"], cfg["N"], cfg["input_size"], cfg["hidden_size"]
    if cfg["unbatched"]:
        x_shape, h_shape = (T, I), (D * cfg["num_layers"], H)
    else:
        x_shape = (N, T, I) if cfg["batch_first"] else (T, N, I)
        h_shape = (D * cfg["num_layers"], N, H)
    h0 = Tensor(rng.standard_normal(h_shape), requires_grad=True) if cfg["h0"] else None
    return Tensor(rng.standard_normal(x_shape), requires_grad=True), h0


def cell_loop(rnn: nn.RNN, cfg, x: Tensor, h0):
    """``nn.RNN``'s forward written as a Python loop of ``nn.RNNCell`` steps that share the
    RNN's parameters (the cells' weights are the RNN's Parameter objects themselves, so the
    gradients land on the same leaves)."""
    D, H = (2 if cfg["bidirectional"] else 1), cfg["hidden_size"]
    seq = x if cfg["unbatched"] else (x.transpose(0, 1) if cfg["batch_first"] else x)
    T = seq.shape[0]
    final = []
    for layer in range(cfg["num_layers"]):
        outputs = []
        for direction in range(D):
            w_ih, w_hh, b_ih, b_hh = rnn.layer_weights(layer, direction)
            cell = nn.RNNCell(seq.shape[-1], H, bias=cfg["bias"],
                              nonlinearity=cfg["nonlinearity"], dtype="float64")
            cell.weight_ih, cell.weight_hh = w_ih, w_hh
            if cfg["bias"]:
                cell.bias_ih, cell.bias_hh = b_ih, b_hh
            h = h0[layer * D + direction] if h0 is not None else None
            states = [None] * T
            for t in (range(T - 1, -1, -1) if direction else range(T)):
                h = cell(seq[t], h)
                states[t] = h
            outputs.append(Tensor.stack(states, axis=0))
            final.append(h)
        seq = outputs[0] if D == 1 else Tensor.cat(outputs, axis=-1)
    out = seq if cfg["unbatched"] or not cfg["batch_first"] else seq.transpose(0, 1)
    return out, Tensor.stack(final, axis=0)


def forward_backward(fn, params, x, h0, rng_seed):
    """Outputs and all gradients of a fixed random weighting of (output, h_n)."""
    for p in params:
        p.grad = None
    x.grad = None
    if h0 is not None:
        h0.grad = None
    out, h_n = fn()
    rng = np.random.default_rng(rng_seed)
    loss = (out * Tensor(rng.standard_normal(out.shape))).sum() \
        + (h_n * Tensor(rng.standard_normal(h_n.shape))).sum()
    loss.backward()
    grads = [p.grad.numpy() for p in params] + [x.grad.numpy()]
    if h0 is not None:
        grads.append(h0.grad.numpy())
    return out.numpy(), h_n.numpy(), grads


@given(cfg=rnn_configs())
def test_rnn_equals_a_loop_of_rnn_cells(cfg):
    tg.manual_seed(cfg["seed"] % 2**31)
    rnn = nn.RNN(**{k: cfg[k] for k in RNN_ARGS}, dtype="float64")
    params = list(rnn.parameters())
    x, h0 = rnn_inputs(cfg, np.random.default_rng(cfg["seed"]))
    out_a, hn_a, grads_a = forward_backward(lambda: rnn(x, h0), params, x, h0, cfg["seed"])
    out_b, hn_b, grads_b = forward_backward(lambda: cell_loop(rnn, cfg, x, h0), params, x, h0,
                                            cfg["seed"])
    np.testing.assert_allclose(out_a, out_b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hn_a, hn_b, rtol=1e-12, atol=1e-12)
    for ga, gb in zip(grads_a, grads_b):
        np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-12)


@given(cfg=rnn_configs(), data=st.data())
def test_running_in_two_chunks_equals_running_whole(cfg, data):
    """Unidirectional: ``rnn(x[:k]) -> h``, then ``rnn(x[k:], h)`` gives the same outputs,
    final state and (without detach, so the graph spans both chunks) the same gradients as
    ``rnn(x)``."""
    cfg = {**cfg, "bidirectional": False, "batch_first": False, "unbatched": False,
           "T": max(cfg["T"], 2)}
    k = data.draw(st.integers(1, cfg["T"] - 1))
    tg.manual_seed(cfg["seed"] % 2**31)
    rnn = nn.RNN(**{key: cfg[key] for key in RNN_ARGS}, dtype="float64")
    params = list(rnn.parameters())
    x, h0 = rnn_inputs(cfg, np.random.default_rng(cfg["seed"]))

    def chunked():
        out1, h = rnn(x[:k], h0)
        out2, h_n = rnn(x[k:], h)
        return Tensor.cat([out1, out2], axis=0), h_n
    whole = forward_backward(lambda: rnn(x, h0), params, x, h0, cfg["seed"])
    parts = forward_backward(chunked, params, x, h0, cfg["seed"])
    np.testing.assert_allclose(whole[0], parts[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(whole[1], parts[1], rtol=1e-12, atol=1e-12)
    for ga, gb in zip(whole[2], parts[2]):
        np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-12)


# -------------------------------------------------------------------------------- round-trips

class Net(nn.Module):
    def __init__(self, cfg, unroll=False, dtype="float64"):
        super().__init__()
        args = {k: cfg[k] for k in RNN_ARGS if k != "unroll"}
        self.rnn = nn.RNN(**args, unroll=unroll, dtype=dtype)
        D = 2 if cfg["bidirectional"] else 1
        self.head = nn.Linear(D * cfg["hidden_size"], 2, dtype=dtype)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out)


@given(cfg=rnn_configs())
def test_state_dict_round_trips_through_a_file_and_across_implementations(cfg):
    """save → load → load_state_dict into a model with other weights (and the other
    implementation) reproduces every parameter bit for bit and the same outputs."""
    tg.manual_seed(cfg["seed"] % 2**31)
    a = Net(cfg, unroll=cfg["unroll"])
    tg.manual_seed((cfg["seed"] + 1) % 2**31)
    b = Net(cfg, unroll=not cfg["unroll"])
    x, _ = rnn_inputs(cfg, np.random.default_rng(cfg["seed"]))
    with tempfile.TemporaryDirectory() as d:
        save(a.state_dict(), Path(d) / "model.npz")
        loaded = load(Path(d) / "model.npz")
    assert list(loaded) == [name for name, _ in a.named_parameters()]
    missing, unexpected = b.load_state_dict(loaded)
    assert missing == [] and unexpected == []
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert q.dtype == p.dtype
        np.testing.assert_array_equal(q.numpy(), p.numpy(), err_msg=name)
    with tg.no_grad():
        np.testing.assert_allclose(b(x).numpy(), a(x).numpy(), rtol=1e-12, atol=1e-13)


@given(cfg=rnn_configs())
def test_float64_state_dict_into_a_float32_model_rounds_once(cfg):
    """Loading float64 weights into a float32 model casts them (as torch's copy_ does): every
    parameter equals the float64 value rounded to float32, and stays float32."""
    tg.manual_seed(cfg["seed"] % 2**31)
    a, b = Net(cfg, dtype="float64"), Net(cfg, dtype="float32")
    b.load_state_dict(a.state_dict())
    for p, q in zip(a.parameters(), b.parameters()):
        assert q.dtype == np.float32
        np.testing.assert_array_equal(q.numpy(), p.numpy().astype(np.float32))


@given(cfg=rnn_configs(), before=st.integers(1, 4), after=st.integers(1, 4),
       use_adam=st.booleans())
def test_checkpoint_mid_training_resumes_bit_for_bit(cfg, before, after, use_adam):
    """Train ``before`` steps, checkpoint model and optimizer in one file, train ``after``
    more; a fresh model and optimizer restored from the file train those ``after`` steps to
    exactly the same losses and weights."""
    x, _ = rnn_inputs(cfg, np.random.default_rng(cfg["seed"]))
    x = x.detach()
    target = Tensor(np.random.default_rng(cfg["seed"] + 1).standard_normal(
        x.shape[:-1] + (2,)))

    def make():
        tg.manual_seed(cfg["seed"] % 2**31)
        net = Net(cfg, unroll=cfg["unroll"])
        opt = optim.Adam(net.parameters(), lr=0.01) if use_adam \
            else optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        return net, opt

    def train(net, opt, steps):
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            loss = nn.functional.mse_loss(net(x), target)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    net, opt = make()
    train(net, opt, before)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ckpt.npz"
        save({"model": net.state_dict(), "optimizer": opt.state_dict(), "step": before}, path)
        expected = train(net, opt, after)
        ckpt = load(path)
    net2, opt2 = make()
    net2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    assert ckpt["step"] == before
    assert train(net2, opt2, after) == expected
    for p, q in zip(net.parameters(), net2.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
