"""``train --optim adamw|rmsprop`` and ``--lr-schedule``: the schedule is followed, and it
is checkpointed so that ``--resume`` continues bit for bit."""
from __future__ import annotations

import math

import pytest

from tinygrad_rnn import optim
from tinygrad_rnn.train import TrainConfig, Trainer, TrainingError


def config(**kw):
    return TrainConfig("sine", **{"steps": 8, "batch_size": 4, "seq_len": 10, "hidden": 5,
                                  **kw})


@pytest.mark.parametrize("optim_name, schedule", [("adamw", "cosine"), ("rmsprop", "onecycle"),
                                                  ("sgd", "step"), ("adam", "none")])
def test_resume_mid_schedule_is_exact(tmp_path, optim_name, schedule):
    straight = Trainer(config(optim=optim_name, lr_schedule=schedule)).run(quiet=True).loss
    first = Trainer(config(optim=optim_name, lr_schedule=schedule))
    for _ in range(3):
        first.train_step()
    path = str(tmp_path / "ck.npz")
    first.save(path)
    resumed = Trainer.from_checkpoint(path)
    assert resumed.step == 3
    assert resumed.run(quiet=True).loss == straight


def test_optimizers_and_schedules_are_the_named_ones():
    trainer = Trainer(config(optim="rmsprop", lr_schedule="cosine", lr=0.01))
    assert isinstance(trainer.optimizer, optim.RMSprop)
    assert isinstance(trainer.scheduler, optim.lr_scheduler.CosineAnnealingLR)
    assert isinstance(Trainer(config(optim="adamw")).optimizer, optim.AdamW)
    assert Trainer(config()).scheduler is None
    for _ in range(4):
        trainer.train_step()
    # Half-way through a cosine schedule the rate is half of the initial one.
    assert math.isclose(trainer.optimizer.param_groups[0]["lr"], 0.005, rel_tol=1e-12)


def test_unknown_schedule_and_changed_horizon_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear'; expected "
                                         "one of none, cosine, step, onecycle"):
        Trainer(config(lr_schedule="linear"))
    path = str(tmp_path / "ck.npz")
    Trainer(config(lr_schedule="cosine", steps=4)).run(checkpoint=path, quiet=True)
    with pytest.raises(TrainingError, match="planned for a different number of steps"):
        Trainer.from_checkpoint(path, steps=8)


@pytest.mark.single_backend  # runs the command line in a subprocess
def test_command_line_options(tmp_path):
    from test_cli import FAST, cli
    result = cli("train", "sine", "--steps", "4", "--optim", "adamw", "--lr-schedule",
                 "onecycle", "--out", "out", "--quiet", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    trainer = Trainer.from_checkpoint(str(tmp_path / "out" / "checkpoint.npz"))
    assert trainer.config.optim == "adamw" and trainer.config.lr_schedule == "onecycle"
    assert trainer.scheduler.last_epoch == 4
