"""Optimizers: ``SGD`` and ``Adam`` against their published update rules.

The references below are written from the PyTorch documentation's pseudocode (SGD) and
Kingma & Ba's Algorithm 1 with PyTorch's placement of ε (Adam), in plain float64 NumPy, in
the textbook form (``m = β1 m + (1-β1) g``), not copied from our implementation. Two
closed forms need no reference code at all: SGD with momentum on a constant gradient
(geometric series) and Adam on a constant gradient (every step is exactly ``lr·g/(|g|+ε)``).

The training problem is a quadratic with a known gradient: ``L(θ) = Σ a·θ + ½ Σ b·θ²``, so
``∂L/∂θ = a + b·θ`` (``b > 0`` varies per entry so that the updates are not all alike).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend, optim
from tinygrad_rnn.serialization import load, save

RNG = np.random.default_rng(1234)
A = [RNG.standard_normal((3, 4)), RNG.standard_normal(5)]
B = [RNG.uniform(0.5, 2.0, (3, 4)), RNG.uniform(0.5, 2.0, 5)]
THETA0 = [RNG.standard_normal((3, 4)), RNG.standard_normal(5)]


def make_params(dtype="float64"):
    return [Tensor(t, dtype=dtype, requires_grad=True) for t in THETA0]


def quadratic_grad(theta, i):
    return A[i] + B[i] * theta


def backward_quadratic(params):
    """Compute L with tensor ops and backpropagate, so .grad is set by autograd."""
    loss = sum(((p * Tensor(a, dtype=p.dtype)).sum()
                + 0.5 * (Tensor(b, dtype=p.dtype) * p * p).sum())
               for p, a, b in zip(params, A, B))
    loss.backward()


def train(opt, params, steps):
    for _ in range(steps):
        opt.zero_grad()
        backward_quadratic(params)
        opt.step()


# --------------------------------------------------------------------------- references

def sgd_reference(steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """torch.optim.SGD's documented algorithm, one parameter at a time."""
    out = []
    for i, theta in enumerate(THETA0):
        theta, buf = theta.copy(), None
        for t in range(1, steps + 1):
            g = quadratic_grad(theta, i)
            if weight_decay:
                g = g + weight_decay * theta
            if momentum:
                buf = g.copy() if t == 1 else momentum * buf + (1 - dampening) * g
                g = g + momentum * buf if nesterov else buf
            theta = theta - lr * g
        out.append(theta)
    return out


def adam_reference(steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   amsgrad=False):
    """Kingma & Ba, Algorithm 1 (+ AMSGrad's running max), with ε added to the
    bias-corrected sqrt(v), as torch.optim.Adam documents."""
    beta1, beta2 = betas
    out = []
    for i, theta in enumerate(THETA0):
        theta = theta.copy()
        m = v = vmax = np.zeros_like(theta)
        for t in range(1, steps + 1):
            g = quadratic_grad(theta, i) + weight_decay * theta
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            m_hat = m / (1 - beta1 ** t)
            if amsgrad:
                vmax = np.maximum(vmax, v)
                v_hat = vmax / (1 - beta2 ** t)
            else:
                v_hat = v / (1 - beta2 ** t)
            theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(theta)
    return out


def assert_params(params, expected, rtol=1e-12, atol=1e-14):
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.numpy(), e, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------- SGD

SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.02, momentum=0.9, dampening=0.1, weight_decay=0.05),
    dict(lr=0.02, momentum=0.5, weight_decay=0.05, nesterov=True),
]


def case_id(kwargs):
    return ",".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults"


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=case_id)
def test_sgd_matches_reference(kwargs):
    params = make_params()
    train(optim.SGD(params, **kwargs), params, steps=6)
    assert_params(params, sgd_reference(6, **kwargs))


def test_sgd_momentum_constant_gradient_closed_form():
    """Gradient ≡ 1: the buffer after t steps is 1 + μ + … + μ^(t-1) = (1 - μ^t)/(1 - μ), so
    θ_t = θ_0 - lr Σ_{k=1..t} (1 - μ^k)/(1 - μ)."""
    p = Tensor([2.0, -1.0], dtype="float64", requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    for t in range(1, 6):
        opt.zero_grad()
        p.sum().backward()
        opt.step()
        moved = 0.1 * sum((1 - 0.9 ** k) / (1 - 0.9) for k in range(1, t + 1))
        np.testing.assert_allclose(p.numpy(), np.array([2.0, -1.0]) - moved, rtol=1e-13)


def test_sgd_float32_stays_float32_and_in_place():
    params = make_params("float32")
    arrays = [p.data for p in params]
    train(optim.SGD(params, lr=0.1, momentum=0.9), params, steps=3)
    assert all(p.data is a for p, a in zip(params, arrays))  # updated in place
    assert all(p.dtype == np.float32 for p in params)
    assert_params(params, sgd_reference(3, lr=0.1, momentum=0.9), rtol=1e-5, atol=1e-6)


def test_sgd_first_momentum_step_copies_the_gradient():
    """The buffer must not alias p.grad (which zero_grad(set_to_none=False) zeroes)."""
    p = Tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    opt = optim.SGD([p], lr=1.0, momentum=0.5)
    (p * p).sum().backward()
    opt.step()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(backend.to_host(opt.state[p]["momentum_buffer"]), [2.0, 4.0])


# --------------------------------------------------------------------------------- Adam

ADAM_CASES = [
    dict(),
    dict(lr=0.01),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.1, betas=(0.9, 0.5), amsgrad=True),
    dict(lr=0.05, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.01, amsgrad=True),
]


@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=case_id)
def test_adam_matches_reference(kwargs):
    params = make_params()
    train(optim.Adam(params, **kwargs), params, steps=8)
    assert_params(params, adam_reference(8, **kwargs))


def test_adam_amsgrad_cases_are_not_vacuous():
    """With a short memory for v (β2 = 0.5) the shrinking gradients of this problem make
    v fall below its running max, so AMSGrad takes a visibly different path."""
    kwargs = dict(lr=0.1, betas=(0.9, 0.5))
    plain, ams = adam_reference(8, **kwargs), adam_reference(8, amsgrad=True, **kwargs)
    assert not np.allclose(plain[0], ams[0], rtol=1e-3)


def test_adam_constant_gradient_closed_form():
    """Constant g: m_t = (1-β1^t) g and v_t = (1-β2^t) g², so the bias-corrected ratio is
    exactly g / (|g| + ε) at every step: θ_t = θ_0 - t·lr·g/(|g| + ε)."""
    g = np.array([0.5, -2.0, 3.0])
    p = Tensor(np.zeros(3), requires_grad=True)
    opt = optim.Adam([p], lr=0.01, eps=1e-3)
    for t in range(1, 5):
        opt.zero_grad()
        (p * Tensor(g)).sum().backward()
        opt.step()
        np.testing.assert_allclose(p.numpy(), -t * 0.01 * g / (np.abs(g) + 1e-3), rtol=1e-12)
    assert opt.state[p]["step"] == 4


def test_adam_float32():
    params = make_params("float32")
    train(optim.Adam(params, lr=0.01), params, steps=5)
    assert all(p.dtype == np.float32 for p in params)
    assert_params(params, adam_reference(5, lr=0.01), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ common behaviour

@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.1)], ids=["SGD", "Adam"])
def test_params_without_grad_are_skipped(make):
    used = Tensor([1.0, 2.0], requires_grad=True)
    unused = Tensor([3.0, 4.0], requires_grad=True)
    opt = make([used, unused])
    (used * used).sum().backward()
    opt.step()
    np.testing.assert_array_equal(unused.numpy(), [3.0, 4.0])
    assert not opt.state.get(unused)  # no state for a parameter that was never updated
    assert not np.allclose(used.numpy(), [1.0, 2.0])


def test_zero_grad():
    params = make_params()
    opt = optim.SGD(params, lr=0.1)
    backward_quadratic(params)
    grads = [p.grad for p in params]
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is g for p, g in zip(params, grads))  # zeroed in place
    assert all(not p.grad.numpy().any() for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    opt.zero_grad()  # nothing to do: no error


def test_step_closure_is_called_with_grad_enabled_and_returns_its_value():
    p = Tensor([1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with tg.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 1.0
    np.testing.assert_allclose(p.numpy(), [0.0])


def test_step_records_no_graph():
    p = Tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([p])
    (p * p).sum().backward()
    opt.step()
    assert p.is_leaf and p.grad_fn is None


def test_param_groups_and_named_parameters():
    a = Tensor([1.0], dtype="float64", requires_grad=True)
    b = Tensor([1.0], dtype="float64", requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    (a + b).sum().backward()
    opt.step()
    np.testing.assert_allclose([a.item(), b.item()], [0.9, 0.5])
    opt.param_groups[0]["lr"] = 0.2  # a learning-rate schedule edits the groups, as in torch
    opt.step()
    np.testing.assert_allclose(a.item(), 0.7)

    named = optim.Adam([("w", a), ("b", b)])
    assert named.param_groups[0]["param_names"] == ["w", "b"]
    assert named.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]


def test_repr_lists_the_options():
    text = repr(optim.Adam([Tensor([1.0], requires_grad=True)], lr=0.01))
    assert text.startswith("Adam (") and "lr: 0.01" in text and "betas: (0.9, 0.999)" in text


# --------------------------------------------------------------------------- validation

def leaf():
    return Tensor([1.0], requires_grad=True)


@pytest.mark.parametrize("make, message", [
    (lambda: optim.SGD([leaf()], lr=-1), "Invalid learning rate: -1"),
    (lambda: optim.SGD([leaf()], lr=float("nan")), "Invalid learning rate: nan"),
    (lambda: optim.SGD([leaf()], lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (lambda: optim.SGD([leaf()], lr=0.1, weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda: optim.SGD([leaf()], lr=0.1, nesterov=True),
     "Nesterov momentum requires a momentum and zero dampening"),
    (lambda: optim.SGD([leaf()], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "zero dampening"),
    (lambda: optim.Adam([leaf()], lr=-0.001), "Invalid learning rate: -0.001"),
    (lambda: optim.Adam([leaf()], eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (lambda: optim.Adam([leaf()], betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (lambda: optim.Adam([leaf()], betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (lambda: optim.Adam([leaf()], betas=(0.9,)), "betas must be a pair"),
    (lambda: optim.Adam([leaf()], weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (lambda: optim.SGD([{"params": [leaf()], "lr": -2}], lr=0.1), "Invalid learning rate: -2"),
])
def test_invalid_options(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        make()


def test_invalid_params():
    t = leaf()
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts, but got a Tensor"):
        optim.SGD(t, lr=0.1)
    with pytest.raises(TypeError, match=r"can only optimize Tensors, but params\[1\] is a int"):
        optim.SGD([t, 3], lr=0.1)
    with pytest.raises(ValueError, match="does not require grad"):
        optim.Adam([Tensor([1.0])])
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.Adam([t * 2])
    with pytest.raises(ValueError, match="duplicate parameters"):
        optim.Adam([t, t])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.Adam([{"params": [t]}, {"params": [t]}])
    with pytest.raises(TypeError, match="ordered collections"):
        optim.Adam({t})
    with pytest.raises(ValueError, match="Some param names are missing"):
        optim.Adam([("a", t), leaf()])
    assert optim.Adam(p for p in [leaf(), leaf()])  # any iterable, e.g. a generator


# --------------------------------------------------------------------------- state dicts

@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
    lambda ps: optim.SGD(ps, lr=0.05),
    lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01),
    lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
], ids=["SGD-momentum", "SGD-plain", "Adam", "Adam-amsgrad"])
@pytest.mark.parametrize("through_file", [False, True], ids=["in-memory", "saved-npz"])
def test_state_dict_resumes_training_exactly(make, through_file, tmp_path):
    """Train 5 steps, snapshot, train 5 more; a fresh optimizer loaded from the snapshot
    (with the parameters as they were) must produce bit-identical parameters."""
    params = make_params()
    opt = make(params)
    train(opt, params, 5)
    snapshot = opt.state_dict()
    weights = [p.numpy().copy() for p in params]
    if through_file:
        save({"optimizer": snapshot, "params": weights, "epoch": 5}, tmp_path / "ckpt.npz")
    train(opt, params, 5)
    expected = [p.numpy() for p in params]

    if through_file:
        ckpt = load(tmp_path / "ckpt.npz")
        assert ckpt["epoch"] == 5
        snapshot, weights = ckpt["optimizer"], [w.numpy() for w in ckpt["params"]]
    resumed = [Tensor(w, requires_grad=True) for w in weights]
    opt2 = make(resumed)
    opt2.load_state_dict(snapshot)
    train(opt2, resumed, 5)
    for p, e in zip(resumed, expected):
        np.testing.assert_array_equal(p.numpy(), e)


def test_state_dict_layout_and_snapshot():
    params = make_params()
    opt = optim.Adam(params, lr=0.01, amsgrad=True)
    train(opt, params, 2)
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sd["param_groups"] == [{"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8,
                                   "weight_decay": 0, "amsgrad": True, "params": [0, 1]}]
    assert sorted(sd["state"]) == [0, 1]
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert sd["state"][0]["step"] == 2 and isinstance(sd["state"][0]["step"], int)
    before = backend.to_host(sd["state"][0]["exp_avg"]).copy()
    train(opt, params, 1)
    # A snapshot, not a view of the live state:
    np.testing.assert_array_equal(backend.to_host(sd["state"][0]["exp_avg"]), before)
    assert optim.SGD(make_params(), lr=0.1).state_dict()["state"] == {}


def test_load_state_dict_restores_options():
    params = make_params()
    opt = optim.SGD(params, lr=0.5, momentum=0.9)
    sd = opt.state_dict()
    sd["param_groups"][0]["lr"] = 0.25
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.25
    assert opt.param_groups[0]["params"][0] is params[0]


def test_load_state_dict_casts_loaded_arrays_to_the_parameter_dtype():
    params = make_params("float32")
    opt = optim.Adam(params)
    train(opt, params, 1)
    sd = opt.state_dict()
    sd["state"][0] = {k: (Tensor(v.astype(np.float64)) if k != "step" else np.array(1.0))
                      for k, v in sd["state"][0].items()}
    opt.load_state_dict(sd)
    assert opt.state[params[0]]["exp_avg"].dtype == np.float32
    assert opt.state[params[0]]["step"] == 1


def _trained_state_dict(make):
    params = make_params()
    opt = make(params)
    train(opt, params, 2)
    return opt.state_dict()


def test_load_state_dict_errors():
    adam_sd = _trained_state_dict(lambda ps: optim.Adam(ps))
    sgd_sd = _trained_state_dict(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9))
    adam = optim.Adam(make_params())

    with pytest.raises(ValueError, match="expected an optimizer state dict"):
        adam.load_state_dict({"weight": 1})
    with pytest.raises(ValueError, match="different optimizer"):
        adam.load_state_dict(sgd_sd)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        adam.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        optim.Adam(make_params()[:1]).load_state_dict(adam_sd)

    bad_shape = _trained_state_dict(lambda ps: optim.Adam(ps))
    bad_shape["state"][1]["exp_avg"] = np.zeros(7)
    with pytest.raises(ValueError, match=r"'exp_avg' has shape \(7,\), but the parameter "
                                         r"has shape \(5,\)"):
        adam.load_state_dict(bad_shape)

    missing = _trained_state_dict(lambda ps: optim.Adam(ps))
    del missing["state"][0]["exp_avg_sq"]
    with pytest.raises(ValueError, match="parameter 0 has entries"):
        adam.load_state_dict(missing)

    extra = _trained_state_dict(lambda ps: optim.Adam(ps))
    extra["state"][5] = extra["state"][0]
    with pytest.raises(ValueError, match="state for parameter 5, but this optimizer has only 2"):
        adam.load_state_dict(extra)

    bad_option = _trained_state_dict(lambda ps: optim.Adam(ps))
    bad_option["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        adam.load_state_dict(bad_option)

    # A rejected state dict changes nothing.
    assert adam.state == {} and adam.param_groups[0]["lr"] == 1e-3


def test_load_state_dict_toggles_amsgrad_state():
    """Options come from the state dict, and the state it carries must fit them."""
    sd = _trained_state_dict(lambda ps: optim.Adam(ps, amsgrad=True))
    opt = optim.Adam(make_params())
    opt.load_state_dict(sd)  # amsgrad=True is restored along with max_exp_avg_sq
    assert opt.param_groups[0]["amsgrad"] is True
    del sd["state"][0]["max_exp_avg_sq"]
    with pytest.raises(ValueError, match="max_exp_avg_sq"):
        optim.Adam(make_params()).load_state_dict(sd)


def test_sgd_lr_default_matches_torch():
    assert optim.SGD([leaf()]).param_groups[0]["lr"] == 1e-3
    assert math.isclose(optim.Adam([leaf()]).param_groups[0]["eps"], 1e-8)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
                                  lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True)],
                         ids=["SGD", "Adam"])
def test_cupy_matches_numpy(requires_gpu, make):
    results = {}
    for name in ("numpy", "cupy"):
        backend.use(name)
        params = make_params()
        opt = make(params)
        train(opt, params, 4)
        assert all(p.backend == name for p in params)
        results[name] = [p.numpy() for p in params]
        state = opt.state_dict()  # round trip on the device too
        opt.load_state_dict(state)
    for a, b in zip(results["numpy"], results["cupy"]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
