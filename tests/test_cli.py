"""The command line, run as a user runs it: ``python -m tinygrad_rnn ...`` in a subprocess.

Checks that every command has ``--help``; that mistakes give one line on stderr starting with
``tinygrad_rnn: error:``, a non-zero status and no traceback; that ``train`` writes its files;
that ``--resume`` continues exactly; and that Ctrl-C / SIGTERM save and print the command
that resumes.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

import tinygrad_rnn as tg

#: Subprocesses and files: nothing here depends on the array backend.
pytestmark = pytest.mark.single_backend

SUMMARY_KEYS = {"task", "steps", "first_loss", "last_loss", "metric", "metric_name",
                "baseline_metric", "baseline_name", "seconds", "backend"}
#: A small, fast sine run.
FAST = ["--batch-size", "4", "--seq-len", "8", "--hidden", "6", "--no-plot"]


def env() -> dict:
    # One BLAS thread: these tiny matrices gain nothing from more, and several threads
    # fighting for two CI cores make them many times slower.
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TINYGRAD_RNN_BACKEND": tg.backend.name}


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinygrad_rnn", *args], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tinygrad_rnn: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# ---------------------------------------------------------------------------------- help

@pytest.mark.parametrize("command", [[], ["train"], ["bptt"], ["check"]])
def test_help(command):
    result = cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m tinygrad_rnn")


def test_train_help_lists_tasks_and_options():
    out = cli("train", "--help").stdout
    for word in ["sine", "adding", "copy", "charlm", "health", "--steps", "--epochs",
                 "--hidden", "--layers", "--nonlinearity", "--lr", "--optim", "--clip",
                 "--unroll", "--batch-size", "--seq-len", "--text", "--out", "--resume",
                 "--quiet", "--backend", "--seed"]:
        assert word in out


def test_train_help_tables_are_aligned_for_every_task_name():
    from tinygrad_rnn.cli import train as train_cli
    for table in (train_cli._task_list(), train_cli._defaults_table()):
        rows = table.splitlines()[1:]             # under the heading: "  NAME  value ..."
        starts = {len(r) - len(r[2:].split(" ", 1)[1].lstrip()) for r in rows}
        assert len(starts) == 1, table            # health_varlen pushed its row over


def test_no_command_is_an_error():
    result = cli()
    assert result.returncode != 0 and "usage:" in result.stderr


# -------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("args, fragments", [
    (["train", "nope"], ["unknown task 'nope'", "adding, charlm, copy, health, health_varlen, "
                                                "sine"]),
    (["train"], ["required: TASK"]),
    (["train", "sine", "--steps", "ten"], ["--steps", "invalid int value"]),
    (["train", "sine", "--steps", "0"], ["--steps must be a positive integer"]),
    (["train", "sine", "--optim", "lbfgs"], ["--optim", "invalid choice"]),
    (["train", "sine", "--no-such-flag"], ["unrecognized arguments"]),
    (["train", "sine", "--backend", "tpu"], ["--backend", "invalid choice"]),
    (["train", "sine", "--epochs", "2"], ["no epochs"]),
    (["train", "sine", "--text", "x.txt"], ["only used by the charlm task"]),
    (["train", "charlm", "--text", "missing.txt"], ["missing.txt", "does not exist"]),
    (["train", "sine", "--resume", "missing.npz"], ["missing.npz", "does not exist"]),
    (["frobnicate"], ["invalid choice"]),
    # 364 TiB of float32 weights: more than any address space, so the allocation fails at once.
    (["train", "sine", "--hidden", "10000000", "--steps", "1"],
     ["out of memory", "Unable to allocate", "fewer hidden units"]),
    (["bptt", "--hidden-size", "10000000"], ["out of memory"]),
])
def test_mistakes_give_one_line(tmp_path, args, fragments):
    assert_one_line_error(cli(*args, cwd=tmp_path), *fragments)


def test_resume_of_something_else(tmp_path):
    (tmp_path / "notes.npz").write_text("not a zip", encoding="utf-8")
    assert_one_line_error(cli("train", "sine", "--resume", "notes.npz", cwd=tmp_path),
                          "not a valid tinygrad_rnn checkpoint")


def test_debug_shows_the_traceback(tmp_path):
    result = cli("--debug", "train", "sine", "--resume", "missing.npz", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr


# --------------------------------------------------------------------------------- train

def test_train_writes_checkpoint_and_summary(tmp_path):
    result = cli("train", "sine", "--steps", "5", "--out", "out", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "checkpoint.npz").is_file()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert SUMMARY_KEYS <= set(summary)
    assert summary["task"] == "sine" and summary["steps"] == 5
    assert summary["backend"] == tg.backend.name
    for word in ["loss", "first", "last", "test MSE", "predict the previous value", "numpy"
                 if tg.backend.name == "numpy" else "cupy", "checkpoint.npz"]:
        assert word in result.stdout
    assert not (tmp_path / "out" / "plot.png").exists()          # --no-plot


def test_default_out_dir_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    result = cli("train", "health", "--steps", "3", "--quiet", "--batch-size", "4", "--hidden",
                 "6", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""                                    # --quiet: no progress
    out = tmp_path / "runs" / "health"
    assert {"checkpoint.npz", "summary.json", "plot.png"} <= set(os.listdir(out))
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_charlm_on_a_text_file_prints_a_sample(tmp_path):
    (tmp_path / "t.txt").write_text("to be or not to be, that is the question. " * 30,
                                    encoding="utf-8")
    result = cli("train", "charlm", "--text", "t.txt", "--steps", "3", "--quiet", *FAST,
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "bits/char" in result.stdout and "sample" in result.stdout


def history(path) -> list[float]:
    return tg.load(str(path))["history"]["loss"].numpy().tolist()


def test_resume_gives_the_same_losses_as_one_run(tmp_path):
    n = 4
    straight = cli("train", "sine", "--steps", str(2 * n), "--out", "a", *FAST, cwd=tmp_path)
    first = cli("train", "sine", "--steps", str(n), "--out", "b", *FAST, cwd=tmp_path)
    second = cli("train", "sine", "--resume", "b/checkpoint.npz", "--steps", str(2 * n),
                 "--no-plot", cwd=tmp_path)
    for result in (straight, first, second):
        assert result.returncode == 0, result.stderr
    assert "resumed from step 4" in second.stdout
    assert len(history(tmp_path / "a" / "checkpoint.npz")) == 2 * n
    assert history(tmp_path / "b" / "checkpoint.npz") == \
        history(tmp_path / "a" / "checkpoint.npz")


def test_resume_with_a_conflicting_setting(tmp_path):
    assert cli("train", "sine", "--steps", "2", "--out", "b", *FAST, cwd=tmp_path).returncode == 0
    assert_one_line_error(cli("train", "sine", "--resume", "b/checkpoint.npz", "--hidden", "9",
                              cwd=tmp_path), "--hidden 9 conflicts with checkpoint")
    assert_one_line_error(cli("train", "adding", "--resume", "b/checkpoint.npz", cwd=tmp_path),
                          "is for task 'sine', not 'adding'")


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_saves_and_prints_the_resume_command(tmp_path, signum, code):
    checkpoint = tmp_path / "runs" / "sine" / "checkpoint.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinygrad_rnn", "train", "sine", "--steps", "1000000",
         "--save-every", "5", *FAST], cwd=tmp_path, env=env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not checkpoint.exists():            # training has started once it saved
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    command = stderr.strip().splitlines()[-1]
    assert command.startswith("resume with: python -m tinygrad_rnn train sine --resume ")
    stopped = tg.load(str(checkpoint))["step"]
    assert stopped >= 5
    # The printed command works (asked to stop two steps later, so that it is quick).
    argv = shlex.split(command[len("resume with: "):])[3:]
    result = cli(*argv, "--steps", str(stopped + 2), "--no-plot", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"resumed from step {stopped}" in result.stdout


def test_version():
    import tinygrad_rnn
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"tinygrad_rnn {tinygrad_rnn.__version__}"
