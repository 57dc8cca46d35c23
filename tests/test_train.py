"""The training loop (``tinygrad_rnn.train``): settings, checkpoints, exact resume, signals."""
from __future__ import annotations

import gc
import os
import signal

import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import tasks
from tinygrad_rnn.train import (
    TrainConfig,
    Trainer,
    TrainingError,
    TrainingInterrupted,
    read_checkpoint,
    train,
)

#: A tiny sine run: a few milliseconds per step.
TINY = dict(batch_size=4, seq_len=8, hidden=6)


def tiny(steps: int = 6, **options) -> TrainConfig:
    return TrainConfig("sine", steps=steps, **{**TINY, **options})


# ----------------------------------------------------------------------------- settings

def test_resolved_fills_in_the_task_defaults():
    config = TrainConfig("adding").resolved()
    d = tasks.get("adding").defaults
    assert (config.steps, config.batch_size, config.seq_len, config.hidden, config.lr,
            config.optim, config.clip) == (d.steps, d.batch_size, d.seq_len, d.hidden, d.lr,
                                           d.optim, d.clip)
    assert TrainConfig("adding", hidden=7).resolved().hidden == 7


def test_epochs_become_steps_for_finite_data_sets():
    config = TrainConfig("health", epochs=2, batch_size=100).resolved()
    assert config.steps == 2 * tasks.get("health")(batch_size=100).steps_per_epoch()
    assert config.epochs is None
    with pytest.raises(ValueError, match="no epochs; use --steps"):
        TrainConfig("sine", epochs=1).resolved()


@pytest.mark.parametrize("options, message", [
    (dict(steps=0), "--steps must be a positive integer"),
    (dict(hidden=-2), "--hidden must be a positive integer"),
    (dict(seed=-1), "--seed must be an integer >= 0"),
    (dict(lr=0.0), "--lr must be a positive number"),
    (dict(clip=-1.0), "--clip must be a number >= 0"),
    (dict(optim="lbfgs"), "unknown optimizer 'lbfgs'; expected one of sgd, adam, adamw, rmsprop"),
    (dict(nonlinearity="gelu"), "unknown nonlinearity 'gelu'"),
    (dict(steps=3, epochs=1), "give --steps or --epochs, not both"),
    (dict(text="x.txt"), "--text is only used by the charlm task"),
])
def test_bad_settings_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig("sine", **options).resolved()


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        Trainer(TrainConfig("nope"))


# ------------------------------------------------------------------------------ training

def test_run_records_one_loss_and_norm_per_step(tmp_path):
    trainer = Trainer(tiny(steps=5))
    history = trainer.run(checkpoint=str(tmp_path / "ck.npz"), quiet=True)
    assert trainer.step == 5 and len(history.loss) == 5 and len(history.grad_norm) == 5
    assert all(n > 0 for n in history.grad_norm)
    assert read_checkpoint(str(tmp_path / "ck.npz"))["step"] == 5


@pytest.mark.parametrize("frozen_by_caller", [False, True])
def test_run_hides_the_setup_from_the_collector_and_restores_it(frozen_by_caller):
    """During the run, everything made before it is frozen (gc.freeze: the collector's full
    collections then scan only the steps' graphs); afterwards the collector is as before,
    and a caller that froze objects itself keeps exactly its own freeze."""
    gc.collect()
    if frozen_by_caller:
        gc.freeze()
    before = gc.get_freeze_count()
    seen = []
    try:
        Trainer(tiny(steps=2)).run(quiet=True, on_step=lambda t: seen.append(gc.get_freeze_count()))
        after = gc.get_freeze_count()
    finally:
        gc.unfreeze()
    if frozen_by_caller:  # (the count only falls, as frozen objects die)
        assert 0 < after <= before and all(count <= before for count in seen)
    else:
        assert before == after == 0 and all(count > 1000 for count in seen)


def test_same_seed_same_losses_other_seed_other_losses():
    a = Trainer(tiny()).run(quiet=True).loss
    assert Trainer(tiny()).run(quiet=True).loss == a
    assert Trainer(tiny(seed=1)).run(quiet=True).loss != a


@pytest.mark.parametrize("optim_name, clip", [("sgd", 0.0), ("adam", 0.5)])
def test_optimizers_and_clipping(optim_name, clip):
    trainer = Trainer(tiny(steps=30, optim=optim_name, clip=clip, lr=0.05))
    history = trainer.run(quiet=True)
    assert sum(history.loss[-5:]) < sum(history.loss[:5])
    assert type(trainer.optimizer).__name__.lower() == optim_name


def test_divergence_is_reported(monkeypatch):
    trainer = Trainer(tiny())
    monkeypatch.setattr(trainer.task, "loss", lambda out, y: out.sum() * float("nan"))
    with pytest.raises(TrainingError, match="training diverged; try a smaller --lr"):
        trainer.run(quiet=True)


def test_train_function_returns_metric(tmp_path):
    result = train(tiny(steps=3), checkpoint=str(tmp_path / "ck.npz"), quiet=True)
    assert result.trainer.step == 3 and result.resumed_from == 0
    assert result.metric.name == "test MSE" and result.seconds > 0
    with pytest.raises(ValueError, match="either a TrainConfig or resume"):
        train()


def test_progress_lines_when_not_a_terminal():
    lines = []
    Trainer(tiny(steps=20)).run(log=lines.append)        # pytest's stderr is no terminal
    assert len(lines) == 10 and lines[-1].startswith("step 20/20  loss ")
    lines.clear()
    Trainer(tiny(steps=20)).run(log=lines.append, quiet=True)
    assert lines == []


# ---------------------------------------------------------------------- checkpoint/resume

@pytest.mark.parametrize("name", ["sine", "health", "charlm", "health_varlen"])
def test_resume_continues_exactly(tmp_path, name):
    """N steps, save, resume for N more == 2N steps straight: the same loss at every step."""
    config = TrainConfig(name, steps=8, batch_size=4, seq_len=12, hidden=5)
    straight = Trainer(config).run(quiet=True).loss
    path = str(tmp_path / "ck.npz")
    Trainer(TrainConfig(name, steps=4, batch_size=4, seq_len=12, hidden=5)).run(
        checkpoint=path, quiet=True)
    resumed = Trainer.from_checkpoint(path, steps=8)
    assert resumed.step == 4
    assert resumed.run(quiet=True).loss == straight


def test_checkpoint_contents(tmp_path):
    path = str(tmp_path / "ck.npz")
    trainer = Trainer(tiny(steps=3))
    trainer.run(checkpoint=path, quiet=True)
    state = tg.load(path)
    assert {"format", "version", "config", "task", "step", "seconds", "backend", "model",
            "optimizer", "history"} <= set(state)
    assert state["config"]["task"] == "sine" and state["config"]["hidden"] == 6
    assert set(state["model"]) == {name for name, _ in trainer.model.named_parameters()}
    assert state["optimizer"]["state"][0]["step"] == 3           # Adam's step count
    assert state["history"]["loss"].numpy().tolist() == trainer.history.loss


def test_resume_rejects_changed_settings(tmp_path):
    path = str(tmp_path / "ck.npz")
    Trainer(tiny(steps=2)).run(checkpoint=path, quiet=True)
    with pytest.raises(TrainingError, match="--hidden 9 conflicts with checkpoint"):
        Trainer.from_checkpoint(path, hidden=9)
    with pytest.raises(TrainingError, match="is for task 'sine', not 'adding'"):
        Trainer.from_checkpoint(path, task="adding")
    same = Trainer.from_checkpoint(path, hidden=6, lr=None, steps=5)   # equal or unset: fine
    assert same.config.steps == 5


def test_resume_to_fewer_steps_than_done_is_an_error(tmp_path):
    """A total below the steps already done would train nothing and rewrite the
    checkpoint's configured steps; say so instead."""
    path = str(tmp_path / "ck.npz")
    Trainer(tiny(steps=4)).run(checkpoint=path, quiet=True)
    with pytest.raises(TrainingError, match="already at step 4; --steps 2 asks for fewer"):
        Trainer.from_checkpoint(path, steps=2)
    assert Trainer.from_checkpoint(path, steps=4).step == 4          # equal: nothing to do


def test_resume_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Trainer.from_checkpoint(str(tmp_path / "missing.npz"))
    weights = str(tmp_path / "weights.npz")
    tg.save(Trainer(tiny()).model.state_dict(), weights)               # not a training run
    with pytest.raises(TrainingError, match="is not a training checkpoint"):
        Trainer.from_checkpoint(weights)


def test_save_every(tmp_path, monkeypatch):
    saved_at = []
    trainer = Trainer(tiny(steps=6))
    monkeypatch.setattr(trainer, "save", lambda path: saved_at.append(trainer.step))
    trainer.run(checkpoint=str(tmp_path / "unused.npz"), quiet=True, save_every=2)
    assert saved_at == [2, 4, 6, 6]                   # every 2 steps, and at the end


# --------------------------------------------------------------------------- interrupts

@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_after_the_step_saves_and_resumes_exactly(tmp_path, monkeypatch,
                                                              signum, code):
    straight = Trainer(tiny(steps=8)).run(quiet=True).loss
    path = str(tmp_path / "ck.npz")
    trainer = Trainer(tiny(steps=8))
    step = trainer.train_step

    def step_then_signal():
        loss = step()
        if trainer.step == 3:
            os.kill(os.getpid(), signum)      # as if the user pressed Ctrl-C / kill(1) now
        return loss
    monkeypatch.setattr(trainer, "train_step", step_then_signal)
    with pytest.raises(TrainingInterrupted) as info:
        trainer.run(checkpoint=path, quiet=True)
    assert (info.value.step, info.value.exit_code, info.value.checkpoint) == (3, code, path)
    assert read_checkpoint(path)["step"] == 3
    assert Trainer.from_checkpoint(path).run(quiet=True).loss == straight
    # and the process's own handlers are back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ------------------------------------------------------------------ damaged checkpoints

def _break(state: dict, change: str) -> dict:
    state = dict(state)
    key, _, value = change.partition("=")
    if not value:
        del state[key]
    else:
        state[key] = {"neg": -1, "float": 2.5, "str": "3", "bool": True, "list": [1]}[value]
    return state


@pytest.mark.parametrize("change, words", [
    ("config", "'config' entry is missing"),
    ("history", "'history' entry is missing"),
    ("task", "'task' entry is missing"),
    ("model", "'model' entry is missing"),
    ("step", "step counter is None"),
    ("step=neg", "step counter is -1"),
    ("step=float", "step counter is 2.5"),
    ("step=str", "step counter is '3'"),
    ("step=bool", "step counter is True"),
    ("task=list", "'task' entry is a list, not a dict"),
])
def test_damaged_checkpoints_are_one_line_errors(tmp_path, change, words):
    path = str(tmp_path / "ck.npz")
    Trainer(tiny(steps=2)).run(checkpoint=path, quiet=True)
    tg.save(_break(tg.load(path), change), path)
    with pytest.raises(TrainingError, match="is damaged: .*" + words.replace("(", r"\(")) as info:
        Trainer.from_checkpoint(path)
    assert "\n" not in str(info.value)


def test_history_shorter_than_the_steps_is_damage(tmp_path):
    path = str(tmp_path / "ck.npz")
    Trainer(tiny(steps=3)).run(checkpoint=path, quiet=True)
    state = tg.load(path)
    state["step"] = 5
    tg.save(state, path)
    with pytest.raises(TrainingError, match="records 3 values of 'loss' for 5 steps"):
        Trainer.from_checkpoint(path)


# ---------------------------------------------------------------------- charlm's text

def charlm(text_path, steps=2) -> TrainConfig:
    return TrainConfig("charlm", steps=steps, batch_size=2, seq_len=10, hidden=4,
                       text=str(text_path))


def test_charlm_resume_on_changed_text_is_refused(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    path = str(tmp_path / "ck.npz")
    Trainer(charlm(text)).run(checkpoint=path, quiet=True)
    assert Trainer.from_checkpoint(path, steps=3).step == 2          # unchanged: resumes
    text.write_text("the dog sat on the log. " * 40, encoding="utf-8")  # same vocabulary size
    with pytest.raises(TrainingError, match="trained on a different text .*restore that text"):
        Trainer.from_checkpoint(path, steps=3)
    other = tmp_path / "other.txt"
    other.write_text("the cat sat on the mat. " * 40, encoding="utf-8")  # moved: same text
    state = tg.load(path)
    assert state["task"]["corpus_sha256"] == tasks.get("charlm")(text=str(other)).config()[
        "corpus_sha256"]


def test_charlm_task_rebuilt_from_its_config_checks_the_text(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("abc abd abe. " * 60, encoding="utf-8")
    config = tasks.get("charlm")(text=str(text)).config()
    assert tasks.get("charlm")(**config).config() == config
    text.write_text("xyz xyw xyv. " * 60, encoding="utf-8")
    with pytest.raises(ValueError, match="has changed"):
        tasks.get("charlm")(**config)


def test_checkpoint_without_a_text_hash_still_resumes(tmp_path):
    """Checkpoints written before the hash was recorded: nothing to compare, so resume."""
    path = str(tmp_path / "ck.npz")
    Trainer(TrainConfig("charlm", steps=2, batch_size=2, seq_len=10, hidden=4)).run(
        checkpoint=path, quiet=True)
    state = tg.load(path)
    del state["task"]["corpus_sha256"], state["task"]["vocab_sha256"]
    tg.save(state, path)
    assert Trainer.from_checkpoint(path, steps=3).step == 2
