"""``optim.lr_scheduler`` against learning-rate trajectories recorded from PyTorch
(``tests/fixtures/lr_scheduler/*.npz``, see ``tests/fixtures/record_nn11.py``), including a
run that is saved halfway with ``tg.save`` and resumed from the state dicts."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, optim
from tinygrad_rnn.optim import lr_scheduler
from tinygrad_rnn.parity import load_fixture

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "lr_scheduler").glob("*.npz"))
RTOL = 1e-12
# The functions named in the fixtures' meta["lambdas"] (the same as in record_nn11.py).
LAMBDAS = {
    "exp95": lambda epoch: 0.95 ** epoch,
    "warmup5": lambda epoch: min(1.0, (epoch + 1) / 5),
}

if not FIXTURES:
    pytest.skip("no recorded scheduler fixtures (run tests/fixtures/record.py --only "
                "lr_scheduler)", allow_module_level=True)


def build(meta):
    """The recorded optimizer (two groups) and scheduler, built fresh."""
    params = [Tensor(np.zeros(2), requires_grad=True) for _ in meta["groups"]]
    opt = getattr(optim, meta["optimizer"])(
        [{"params": [p], **g} for p, g in zip(params, meta["groups"])])
    kwargs = {k: tuple(v) if isinstance(v, list) and k != "milestones" else v
              for k, v in meta["kwargs"].items()}
    if meta["scheduler"] == "LambdaLR":
        fns = [LAMBDAS[name] for name in meta["lambdas"]]
        kwargs["lr_lambda"] = fns if len(fns) > 1 else fns[0]
    if isinstance(kwargs.get("min_lr"), tuple):
        kwargs["min_lr"] = list(kwargs["min_lr"])
    return opt, getattr(lr_scheduler, meta["scheduler"])(opt, **kwargs)


def momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum", 0.0) for g in opt.param_groups]


def advance(opt, sched, arrays, k):
    """Step ``k`` (1-based) of the recorded run."""
    opt.step()
    if "metrics" in arrays:
        sched.step(arrays["metrics"][k - 1])
    else:
        sched.step()


def check_row(opt, sched, arrays, k):
    lrs = [g["lr"] for g in opt.param_groups]
    np.testing.assert_allclose(lrs, arrays["lr"][k], rtol=RTOL, atol=0, err_msg=f"lr {k}")
    np.testing.assert_allclose(sched.get_last_lr(), arrays["lr"][k], rtol=RTOL, atol=0)
    np.testing.assert_allclose(momenta(opt), arrays["momentum"][k], rtol=RTOL, atol=0,
                               err_msg=f"momentum {k}")


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_trajectory_matches_pytorch(path):
    meta, arrays = load_fixture(path)
    opt, sched = build(meta)
    check_row(opt, sched, arrays, 0)
    for k in range(1, meta["steps"] + 1):
        advance(opt, sched, arrays, k)
        check_row(opt, sched, arrays, k)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_resumed_run_is_exact(path, tmp_path):
    """Save optimizer and scheduler halfway, rebuild both, load, finish: same trajectory."""
    meta, arrays = load_fixture(path)
    half = meta["steps"] // 2
    opt, sched = build(meta)
    for k in range(1, half + 1):
        advance(opt, sched, arrays, k)
    tg.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()},
            tmp_path / "ckpt.npz")
    for k in range(half + 1, meta["steps"] + 1):  # the original goes on: the saved copy
        advance(opt, sched, arrays, k)            # must not change with it
    checkpoint = tg.load(tmp_path / "ckpt.npz")
    opt, sched = build(meta)
    opt.load_state_dict(checkpoint["optimizer"])
    sched.load_state_dict(checkpoint["scheduler"])
    check_row(opt, sched, arrays, half)
    for k in range(half + 1, meta["steps"] + 1):
        advance(opt, sched, arrays, k)
        check_row(opt, sched, arrays, k)


def sgd(lr=0.1, **kw):
    return optim.SGD([Tensor(np.zeros(2), requires_grad=True)], lr=lr, **kw)


@pytest.mark.parametrize("make, match", [
    (lambda: lr_scheduler.LinearLR(sgd(), start_factor=0), "Starting multiplicative factor"),
    (lambda: lr_scheduler.LinearLR(sgd(), end_factor=1.5), "Ending multiplicative factor"),
    (lambda: lr_scheduler.ReduceLROnPlateau(sgd(), factor=1.0), "Factor should be < 1.0"),
    (lambda: lr_scheduler.ReduceLROnPlateau(sgd(), mode="lowest"), "mode lowest is unknown"),
    (lambda: lr_scheduler.OneCycleLR(sgd(), 0.1), "total_steps OR"),
    (lambda: lr_scheduler.OneCycleLR(sgd(), 0.1, total_steps=0), "positive integer"),
    (lambda: lr_scheduler.OneCycleLR(sgd(), 0.1, 10, pct_start=1), "pct_start"),
    (lambda: lr_scheduler.OneCycleLR(sgd(), 0.1, 10, anneal_strategy="cosine"), "cos"),
    (lambda: lr_scheduler.OneCycleLR(optim.Adagrad([Tensor([1.0], requires_grad=True)]),
                                     0.1, 10), "support momentum or beta1"),
    (lambda: lr_scheduler.OneCycleLR(sgd(), [0.1, 0.2], 10), "one per param group"),
    (lambda: lr_scheduler.LambdaLR(sgd(), [LAMBDAS["exp95"]] * 2), "one per param group"),
])
def test_bad_settings_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_not_an_optimizer_is_refused():
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        lr_scheduler.StepLR([], step_size=1)


def test_onecycle_refuses_steps_past_the_end():
    opt = sgd(momentum=0.9)
    sched = lr_scheduler.OneCycleLR(opt, 0.1, total_steps=3)
    opt.step()
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of "
                                         "total steps is 3"):
        sched.step()


def test_state_dict_of_another_scheduler_is_refused():
    opt = sgd()
    state = lr_scheduler.StepLR(opt, step_size=2).state_dict()
    with pytest.raises(ValueError, match="different scheduler"):
        lr_scheduler.ExponentialLR(opt, gamma=0.5).load_state_dict(state)


def test_lambda_state_dict_keeps_callable_objects_state_but_not_functions():
    class Decay:
        def __init__(self):
            self.rate = 0.5

        def __call__(self, epoch):
            return self.rate ** epoch
    decay = Decay()
    sched = lr_scheduler.LambdaLR(sgd(), decay)
    decay.rate = 0.25
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"rate": 0.25}]
    fresh = Decay()
    again = lr_scheduler.LambdaLR(sgd(), fresh)
    again.load_state_dict(state)
    assert fresh.rate == 0.25
    assert lr_scheduler.LambdaLR(sgd(), LAMBDAS["exp95"]).state_dict()["lr_lambdas"] == [None]


def test_optimizer_state_dict_with_scheduler_entries_loads_into_a_plain_optimizer():
    """As in PyTorch: a state dict saved under a scheduler (``initial_lr`` in the groups)
    loads into an optimizer that has no scheduler yet, and brings the entries with it."""
    opt = sgd(lr=0.5)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    fresh = sgd(lr=0.5)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0]["lr"] == 0.25
    assert fresh.param_groups[0]["initial_lr"] == 0.5


def test_resuming_with_last_epoch_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(sgd(), step_size=2, last_epoch=3)


def test_stepping_the_scheduler_first_warns_as_pytorch():
    opt = sgd()
    sched = lr_scheduler.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    opt = sgd()
    sched = lr_scheduler.StepLR(opt, step_size=2)
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()
