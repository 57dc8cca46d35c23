"""``nn.utils.clip_grad_norm_`` and ``clip_grad_value_`` against NumPy, with PyTorch's
semantics (the ``1e-6`` in the clip coefficient, the returned pre-clip norm, inf norm)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinygrad_rnn import Tensor, backend
from tinygrad_rnn.nn.utils import clip_grad_norm_, clip_grad_value_


def params_with_grads(grads, dtype="float64"):
    """Leaf tensors whose .grad is set to ``grads`` (through autograd: grad of Σ g·p)."""
    params = []
    for g in grads:
        p = Tensor(np.zeros_like(g), dtype=dtype, requires_grad=True)
        (p * Tensor(g, dtype=dtype)).sum().backward()
        params.append(p)
    return params


GRADS = [np.array([[3.0, -4.0], [1.0, 2.0]]), np.array([-12.0, 0.5, 0.0])]
ALL = np.concatenate([g.ravel() for g in GRADS])


@pytest.mark.parametrize("norm_type, expected", [
    (2.0, np.sqrt((ALL ** 2).sum())),
    (1.0, np.abs(ALL).sum()),
    (3.0, (np.abs(ALL) ** 3).sum() ** (1 / 3)),
    (float("inf"), np.abs(ALL).max()),
    ("inf", np.abs(ALL).max()),
])
def test_clip_grad_norm_scales_to_max_norm(norm_type, expected):
    params = params_with_grads(GRADS)
    total = clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type)
    assert isinstance(total, Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), expected, rtol=1e-12)
    coef = 1.0 / (expected + 1e-6)
    for p, g in zip(params, GRADS):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-12)
    # The clipped gradients have (just under) max_norm.
    clipped = np.concatenate([p.grad.numpy().ravel() for p in params])
    p = np.inf if norm_type in ("inf", float("inf")) else norm_type
    assert 1.0 - 1e-5 < np.linalg.norm(clipped, ord=p) <= 1.0


def test_clip_grad_norm_is_a_no_op_under_max_norm():
    params = params_with_grads(GRADS)
    total = clip_grad_norm_(params, max_norm=100.0)
    np.testing.assert_allclose(total.item(), np.sqrt((ALL ** 2).sum()), rtol=1e-12)
    for p, g in zip(params, GRADS):
        np.testing.assert_array_equal(p.grad.numpy(), g)  # bit for bit


def test_clip_grad_norm_in_place_float32():
    params = params_with_grads(GRADS, dtype="float32")
    grads = [p.grad for p in params]
    total = clip_grad_norm_(iter(params), 5.0)  # any iterable
    assert total.dtype == np.float32
    assert all(p.grad is g for p, g in zip(params, grads))
    expected = np.sqrt((ALL ** 2).sum())
    np.testing.assert_allclose(params[1].grad.numpy(), GRADS[1] * 5.0 / (expected + 1e-6),
                               rtol=1e-6)


def test_clip_grad_norm_float16_does_not_overflow():
    # 300² overflows float16 (max 65504): PyTorch accumulates the norm in float32 and
    # returns it rounded to float16; an inf norm would silently zero every gradient.
    p = Tensor(np.zeros(3), dtype="float16", requires_grad=True)
    p.grad = Tensor(np.full(3, 300.0), dtype="float16")
    total = clip_grad_norm_([p], max_norm=1.0)
    exact = np.sqrt(3 * 300.0 ** 2)
    assert total.dtype == np.float16 and total.item() == np.float16(exact)
    np.testing.assert_allclose(p.grad.numpy(), np.full(3, 300.0 / exact), rtol=2e-3)


def test_clip_grad_norm_float16_matches_torch():
    torch = pytest.importorskip("torch")
    grads = np.array([[300.0, -250.0], [1e-3, 40.0]], np.float16)
    for norm_type in (2.0, 1.0, 3.0, float("inf")):
        ours = Tensor(np.zeros((2, 2)), dtype="float16", requires_grad=True)
        ours.grad = Tensor(grads)
        theirs = torch.zeros(2, 2, dtype=torch.float16, requires_grad=True)
        theirs.grad = torch.tensor(grads)
        a = clip_grad_norm_([ours], 1.0, norm_type)
        b = torch.nn.utils.clip_grad_norm_([theirs], 1.0, norm_type)
        assert a.item() == b.item(), norm_type
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-3)
def test_clip_grad_norm_of_float16_gradients_does_not_overflow():
    """300² overflowed float16: the total norm was inf and every gradient was zeroed. As in
    PyTorch, each norm is accumulated in float32 (and returned as float16); the total of
    mixed dtypes is taken in the widest one."""
    half, = params_with_grads([np.array([300.0, 400.0])], dtype="float16")
    wide, = params_with_grads([np.array([4.0, 5.0])])
    total = clip_grad_norm_([half, wide], max_norm=1.0)
    expected = np.sqrt(500.0 ** 2 + 4.0 ** 2 + 5.0 ** 2)
    np.testing.assert_allclose(total.item(), expected, rtol=1e-12)
    np.testing.assert_allclose(half.grad.numpy(), [0.6, 0.8], rtol=1e-3)  # float16 spacing
    assert half.grad.dtype == np.float16
    only_half, = params_with_grads([np.array([300.0, 400.0])], dtype="float16")
    assert clip_grad_norm_(only_half, 1e9).item() == 500.0   # coef inf in float16, so 1
    np.testing.assert_array_equal(only_half.grad.numpy(), [300.0, 400.0])


def test_clip_grad_norm_single_tensor_and_missing_grads():
    p, = params_with_grads([np.array([6.0, 8.0])])
    no_grad = Tensor([1.0], requires_grad=True)
    assert clip_grad_norm_(p, 5.0).item() == pytest.approx(10.0)
    np.testing.assert_allclose(p.grad.numpy(), np.array([6.0, 8.0]) * (5.0 / (10.0 + 1e-6)))
    assert clip_grad_norm_([no_grad, p], 5.0).item() == pytest.approx(5.0, rel=1e-6)
    assert no_grad.grad is None
    assert clip_grad_norm_([no_grad], 1.0).item() == 0.0  # nothing to clip


def test_clip_grad_norm_all_zero_gradients_stay_zero():
    """The 1e-6 keeps max_norm / (0 + 1e-6) finite; the clamp to 1 leaves zeros alone."""
    params = params_with_grads([np.zeros(3)])
    assert clip_grad_norm_(params, 1.0).item() == 0.0
    np.testing.assert_array_equal(params[0].grad.numpy(), np.zeros(3))


def test_clip_grad_norm_nonfinite():
    params = params_with_grads([np.array([1.0, np.nan])])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert np.isnan(clip_grad_norm_(params, 1.0).item())  # as in PyTorch: NaN spreads
    assert np.isnan(params[0].grad.numpy()).all()


def test_clip_grad_norm_rejects_non_tensors():
    with pytest.raises(TypeError, match="expected Tensors"):
        clip_grad_norm_([np.ones(3)], 1.0)


@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=20),
       st.floats(1e-3, 1e3), st.sampled_from([1.0, 2.0, 3.5, float("inf")]))
def test_clip_grad_norm_property(values, max_norm, norm_type):
    g = np.array(values)
    params = params_with_grads([g])
    total = clip_grad_norm_(params, max_norm, norm_type)
    expected = np.linalg.norm(g, ord=norm_type)
    np.testing.assert_allclose(total.item(), expected, rtol=1e-10, atol=1e-300)
    coef = min(1.0, max_norm / (expected + 1e-6))
    np.testing.assert_allclose(params[0].grad.numpy(), g * coef, rtol=1e-10, atol=1e-300)


def test_clip_grad_value_():
    params = params_with_grads(GRADS)
    grads = [p.grad for p in params]
    assert clip_grad_value_(params, 2.5) is None
    for p, g, kept in zip(params, GRADS, grads):
        assert p.grad is kept  # in place
        np.testing.assert_array_equal(p.grad.numpy(), np.clip(g, -2.5, 2.5))
    single, = params_with_grads([np.array([-3.0, 0.1, 7.0])])
    clip_grad_value_(single, 1)
    np.testing.assert_array_equal(single.grad.numpy(), [-1.0, 0.1, 1.0])
    clip_grad_value_([Tensor([1.0], requires_grad=True)], 1.0)  # no grad: skipped


def test_matches_torch_if_installed():
    torch = pytest.importorskip("torch")
    for norm_type in (2.0, 1.0, float("inf")):
        ours = params_with_grads(GRADS)
        theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in GRADS]
        for t, g in zip(theirs, GRADS):
            t.grad = torch.tensor(g)
        a = clip_grad_norm_(ours, 2.0, norm_type)
        b = torch.nn.utils.clip_grad_norm_(theirs, 2.0, norm_type)
        np.testing.assert_allclose(a.item(), b.item(), rtol=1e-14)
        for o, t in zip(ours, theirs):
            np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-14)


def test_cupy_matches_numpy(requires_gpu):
    results = {}
    for name in ("numpy", "cupy"):
        backend.use(name)
        params = params_with_grads(GRADS)
        total = clip_grad_norm_(params, 1.0)
        clip_grad_value_(params, 0.05)
        assert total.backend == name
        results[name] = [total.numpy()] + [p.grad.numpy() for p in params]
    for a, b in zip(results["numpy"], results["cupy"]):
        np.testing.assert_allclose(b, a, rtol=1e-12)


def test_nn_utils_is_a_package_with_torchs_paths():
    """``nn.utils.clip_grad_norm_`` (as before) and ``nn.utils.rnn.pack_padded_sequence``,
    the paths PyTorch code uses."""
    from tinygrad_rnn import nn
    from tinygrad_rnn.nn.utils import clip_grad
    assert nn.utils.clip_grad_norm_ is clip_grad.clip_grad_norm_
    assert nn.utils.clip_grad_value_ is clip_grad.clip_grad_value_
    for name in ("PackedSequence", "pack_padded_sequence", "pad_packed_sequence",
                 "pad_sequence", "pack_sequence", "unpack_sequence", "unpad_sequence"):
        assert callable(getattr(nn.utils.rnn, name))
