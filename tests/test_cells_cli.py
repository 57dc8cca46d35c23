"""Choosing the recurrent layer of a task's model: ``--cell rnn|lstm|gru``.

Through the Python API (``task.make_model(cell=...)``, ``TrainConfig(cell=...)``) and the
command line (``train TASK --cell``, ``bptt --cell``): each cell trains, checkpoints record
the cell and resume exactly, and mistakes (an unknown cell, ``--nonlinearity`` with a gated
cell, resuming with another cell) give one clear error.
"""
from __future__ import annotations

import json

import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn, tasks
from tinygrad_rnn.cli import bptt as bptt_cli
from tinygrad_rnn.tasks.model import CELLS
from tinygrad_rnn.train import TrainConfig, Trainer, TrainingError, read_checkpoint

from test_bptt import parse as parse_bptt
from test_cli import assert_one_line_error, cli

#: Subprocesses and files: nothing here depends on the array backend.
pytestmark = pytest.mark.single_backend

LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
#: A tiny sine run: a few milliseconds per step for every cell.
TINY = dict(task="sine", batch_size=4, seq_len=8, hidden=6)


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path, monkeypatch):
    """The bptt command writes runs/bptt/bptt.png by default: keep it out of the checkout."""
    monkeypatch.chdir(tmp_path)



def tiny(steps: int = 6, **options) -> TrainConfig:
    return TrainConfig(**{**TINY, "steps": steps, **options})


# --------------------------------------------------------------------------------- model

@pytest.mark.parametrize("cell", CELLS)
def test_make_model_builds_the_cell(cell):
    task = tasks.get("adding")(batch_size=3, seq_len=5)
    model = task.make_model(hidden=4, cell=cell)
    assert type(model.rnn) is LAYERS[cell] and model.rnn.batch_first
    assert f"cell={cell!r}" in repr(model)
    x, _ = task.batch(0)
    out, state = model.forward_state(x)
    assert out.shape == (3, 1)
    if cell == "lstm":                         # (h_n, c_n), which it takes back as a state
        assert [s.shape for s in state] == [(1, 3, 4), (1, 3, 4)]
    else:
        assert state.shape == (1, 3, 4)
    assert model(x, state).shape == (3, 1)
    assert {n.split(".")[0] for n, _ in model.named_parameters()} == {"rnn", "fc"}


def test_lstm_language_model_samples_text():
    """charlm carries the state from character to character: (h, c) for an LSTM."""
    task = tasks.get("charlm")(batch_size=2, seq_len=6)
    text = task.sample(task.make_model(hidden=5, cell="lstm"), length=12, prime="the ")
    assert len(text) == 4 + 12


@pytest.mark.parametrize("kwargs, message", [
    (dict(cell="lstmm"), "unknown cell 'lstmm'; expected one of rnn, lstm, gru"),
    (dict(cell="lstm", nonlinearity="relu"), "--nonlinearity only applies to --cell rnn"),
    (dict(cell="gru", nonlinearity="tanh"), "--nonlinearity only applies to --cell rnn"),
])
def test_make_model_and_config_reject_bad_cells(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tasks.get("sine")().make_model(hidden=4, **kwargs)
    with pytest.raises(ValueError, match=message):
        tiny(**kwargs).resolved()


def test_resolved_cell_defaults():
    rnn = tiny().resolved()
    assert (rnn.cell, rnn.nonlinearity) == ("rnn", "tanh")
    assert tiny(nonlinearity="relu").resolved().nonlinearity == "relu"
    gated = tiny(cell="gru").resolved()
    assert (gated.cell, gated.nonlinearity) == ("gru", None)   # nothing to choose
    assert gated.resolved() == gated                             # idempotent


# ------------------------------------------------------------------------------ training

@pytest.mark.parametrize("cell", CELLS)
def test_each_cell_trains(cell):
    trainer = Trainer(tiny(steps=40, cell=cell, lr=0.02))
    loss = trainer.run(quiet=True).loss
    assert type(trainer.model.rnn) is LAYERS[cell]
    assert sum(loss[-5:]) < 0.5 * sum(loss[:5]), loss


def test_lstm_checkpoint_records_the_cell_and_resumes_exactly(tmp_path):
    straight = Trainer(tiny(steps=8, cell="lstm"))
    straight.run(quiet=True)
    path = str(tmp_path / "ck.npz")
    Trainer(tiny(steps=4, cell="lstm")).run(checkpoint=path, quiet=True)
    state = read_checkpoint(path)
    assert state["config"]["cell"] == "lstm" and state["config"]["nonlinearity"] is None
    assert "rnn.weight_hh_l0" in state["model"]
    resumed = Trainer.from_checkpoint(path, steps=8)
    assert type(resumed.model.rnn) is nn.LSTM and resumed.step == 4
    assert resumed.run(quiet=True).loss == straight.history.loss
    for (name, a), (_, b) in zip(resumed.model.named_parameters(),
                                 straight.model.named_parameters()):
        assert (a.numpy() == b.numpy()).all(), name


def test_resume_with_another_cell_names_the_flag(tmp_path):
    path = str(tmp_path / "ck.npz")
    Trainer(tiny(steps=2, cell="gru")).run(checkpoint=path, quiet=True)
    with pytest.raises(TrainingError, match="--cell lstm conflicts with checkpoint .* "
                                            "cell='gru'"):
        Trainer.from_checkpoint(path, cell="lstm")
    with pytest.raises(ValueError, match="--nonlinearity only applies to --cell rnn"):
        Trainer.from_checkpoint(path, nonlinearity="relu")
    assert Trainer.from_checkpoint(path, cell="gru", steps=3).config.cell == "gru"


def test_checkpoint_without_a_cell_is_an_rnn(tmp_path):
    """Checkpoints written before ``--cell`` existed resume as the Elman RNN they were."""
    path = str(tmp_path / "old.npz")
    trainer = Trainer(tiny(steps=2))
    trainer.run(quiet=True)
    state = trainer.state()
    del state["config"]["cell"]
    tg.save(state, path)
    resumed = Trainer.from_checkpoint(path, steps=3)
    assert resumed.config.cell == "rnn" and type(resumed.model.rnn) is nn.RNN
    with pytest.raises(TrainingError, match="--cell lstm conflicts"):
        Trainer.from_checkpoint(path, cell="lstm")


# --------------------------------------------------------------------------- train CLI

FAST = ["--batch-size", "4", "--seq-len", "8", "--hidden", "6", "--no-plot", "--quiet"]


def test_cli_trains_a_gru_and_resumes_an_lstm(tmp_path):
    gru = cli("train", "adding", "--cell", "gru", "--steps", "3", "--out", "g", *FAST,
              cwd=tmp_path)
    assert gru.returncode == 0, gru.stderr
    assert "model    GRU(hidden 6, layers 1) + Linear" in gru.stdout
    summary = json.loads((tmp_path / "g" / "summary.json").read_text(encoding="utf-8"))
    assert summary["config"]["cell"] == "gru" and summary["steps"] == 3
    assert read_checkpoint(str(tmp_path / "g" / "checkpoint.npz"))["config"]["cell"] == "gru"

    straight = cli("train", "sine", "--cell", "lstm", "--steps", "6", "--out", "a", *FAST,
                   cwd=tmp_path)
    first = cli("train", "sine", "--cell", "lstm", "--steps", "3", "--out", "b", *FAST,
                cwd=tmp_path)
    second = cli("train", "sine", "--resume", "b/checkpoint.npz", "--steps", "6", "--quiet",
                 "--no-plot", cwd=tmp_path)
    for result in (straight, first, second):
        assert result.returncode == 0, result.stderr
    assert "LSTM(hidden 6" in second.stdout and "resumed from step 3" in second.stdout
    loss = lambda d: tg.load(str(tmp_path / d / "checkpoint.npz"))["history"]["loss"]
    assert loss("a").numpy().tolist() == loss("b").numpy().tolist()

    assert_one_line_error(cli("train", "sine", "--resume", "b/checkpoint.npz", "--cell", "rnn",
                              cwd=tmp_path), "--cell rnn conflicts with checkpoint",
                          "cell='lstm'")


@pytest.mark.parametrize("args, fragments", [
    (["--cell", "transformer"], ["--cell", "invalid choice: 'transformer'"]),
    (["--cell", "lstm", "--nonlinearity", "relu"],
     ["--nonlinearity only applies to --cell rnn", "lstm"]),
])
def test_cli_cell_mistakes_give_one_line(tmp_path, args, fragments):
    assert_one_line_error(cli("train", "sine", *args, *FAST, cwd=tmp_path), *fragments)


def test_train_help_mentions_cell():
    out = cli("train", "--help").stdout
    assert "--cell {rnn,lstm,gru}" in out and "rnn only" in out


# ---------------------------------------------------------------------------- bptt CLI

def header(out: str) -> str:
    return next(line for line in out.splitlines() if line.lstrip().startswith("t "))


def test_bptt_cell_all_adds_lstm_and_gru_columns(capsys):
    assert bptt_cli.run(parse_bptt("--cell", "all", "--seq-len", "10", "--hidden-size", "4",
                                   "--batch-size", "2")) == 0
    out = capsys.readouterr().out
    columns = header(out).split("  ")
    for name in ("tanh", "relu", "lstm", "gru"):
        assert f"|dL/dh_t| {name}" in header(out) and f"|dh_T/dh_t| {name}" in header(out)
    assert out.count("spectral radius of W_hh") == 2              # the Elman RNNs only
    assert "  lstm: |dL/dh_1| / |dL/dh_T|" in out and "   gru: |dL/dh_1|" in out
    assert "LSTM and GRU from the same seed" in out
    assert len([c for c in columns if c.strip()]) == 9


def test_bptt_cell_list_and_the_default(capsys):
    bptt_cli.run(parse_bptt("--cell", "gru,tanh", "--seq-len", "6", "--hidden-size", "4"))
    picked = header(capsys.readouterr().out)
    assert "gru" in picked and "tanh" in picked and "relu" not in picked and "lstm" not in picked
    bptt_cli.run(parse_bptt("--seq-len", "6", "--hidden-size", "4"))     # as before --cell
    default = capsys.readouterr().out
    assert "lstm" not in default and "gru" not in default
    assert "same weights for tanh and ReLU" in default


def test_bptt_same_input_for_every_cell(capsys):
    """The tanh column does not change when gated columns are added."""
    args = ("--seq-len", "8", "--hidden-size", "4", "--every", "1")
    bptt_cli.run(parse_bptt(*args))
    alone = capsys.readouterr().out.splitlines()
    bptt_cli.run(parse_bptt("--cell", "tanh,lstm", *args))
    mixed = capsys.readouterr().out.splitlines()
    rows = lambda lines: [line.split()[:2] for line in lines if line.split()[0].isdigit()]
    assert rows(alone) == rows(mixed)


def test_bptt_unknown_cell():
    with pytest.raises(ValueError, match="--cell: unknown cell 'lsmt'"):
        bptt_cli.run(parse_bptt("--cell", "lstm,lsmt"))


def test_bptt_copy_task_reports_its_time_steps(capsys):
    """copy's seq_len counts symbols; its sequences are 2 * seq_len + delay steps long."""
    bptt_cli.run(parse_bptt("--task", "copy", "--seq-len", "3", "--hidden-size", "4",
                            "--batch-size", "2", "--cell", "lstm"))
    task = tasks.get("copy")(seq_len=3)
    assert f"BPTT through {task.time_steps} steps" in capsys.readouterr().out
    assert task.time_steps == 2 * 3 + task.delay
