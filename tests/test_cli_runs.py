"""The command line keeps runs safe and says exactly what is wrong: a bad
``TINYGRAD_RNN_BACKEND`` is one line (and ``--help``/``--backend numpy`` still work), odd
paths get accurate reasons, two runs on one ``--out`` cannot both write, a damaged
checkpoint or a changed ``--text`` is one line."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import tinygrad_rnn as tg
from test_cli import FAST, assert_one_line_error, cli, env


def cli_with_backend(value: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinygrad_rnn", *args], cwd=cwd,
                          env={**env(), "TINYGRAD_RNN_BACKEND": value},
                          capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------ TINYGRAD_RNN_BACKEND

@pytest.mark.parametrize("value", ["bogus", "cupy"])
def test_bad_backend_variable_keeps_help_and_backend_numpy_working(tmp_path, value):
    if value == "cupy" and tg.backend.name == "cupy":
        pytest.skip("CuPy works here")
    shown = cli_with_backend(value, "--help", cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout.startswith("usage:"), shown.stderr
    trained = cli_with_backend(value, "train", "sine", "--backend", "numpy", "--steps", "2",
                               "--quiet", *FAST, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr == ""


@pytest.mark.parametrize("command", [["train", "sine", "--steps", "2"], ["bptt"], ["check"]])
def test_bad_backend_variable_is_one_line(tmp_path, command):
    result = cli_with_backend("bogus", *command, cwd=tmp_path)
    assert_one_line_error(result, "TINYGRAD_RNN_BACKEND='bogus'", "'numpy', 'cupy'")


# ------------------------------------------------------------------------------ odd paths

def test_odd_paths_get_accurate_reasons(tmp_path):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_dir").mkdir()
    cases = [(["--out", "a_file"], ["a_file' is an existing file, not a directory"]),
             (["--resume", "a_dir"], ["--resume 'a_dir' is a directory"])]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "a_fifo")
        cases.append((["--resume", "a_fifo", "--out", "o"], ["is a FIFO (named pipe)"]))
    if os.path.exists("/dev/zero"):
        cases.append((["--resume", "/dev/zero", "--out", "o"], ["is a character device"]))
    for args, fragments in cases:
        result = cli("train", "sine", "--steps", "2", *args, *FAST, cwd=tmp_path)
        assert_one_line_error(result, *fragments)
        assert "does not exist" not in result.stderr and "File exists" not in result.stderr


# ------------------------------------------------------------------------------ one --out

def test_a_second_run_on_the_same_out_fails_at_once(tmp_path):
    first = subprocess.Popen([sys.executable, "-m", "tinygrad_rnn", "train", "sine", "--steps",
                              "100000", "--quiet", "--out", "o", *FAST], cwd=tmp_path, env=env(),
                             stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / "o" / "checkpoint.npz.lock"
        deadline = time.monotonic() + 60
        while not lock.exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert lock.exists(), first.stderr.read() if first.poll() is not None else "no lock"
        second = cli("train", "sine", "--steps", "2", "--out", "o", *FAST, cwd=tmp_path)
        assert_one_line_error(second, f"another training run (process {first.pid})",
                              "choose another --out")
    finally:
        first.terminate()                       # SIGTERM: it saves and exits with 143
        first.wait(timeout=60)
    assert first.returncode == 143
    assert not lock.exists()                    # released on the way out
    assert (tmp_path / "o" / "checkpoint.npz").is_file()


# --------------------------------------------------------------------- resuming mistakes

def test_damaged_checkpoint_is_one_line(tmp_path):
    assert cli("train", "sine", "--steps", "2", "--quiet", "--out", "o", *FAST,
               cwd=tmp_path).returncode == 0
    state = tg.load(tmp_path / "o" / "checkpoint.npz")
    state["step"] = -3
    tg.save(state, tmp_path / "o" / "checkpoint.npz")
    assert_one_line_error(cli("train", "sine", "--resume", "o/checkpoint.npz", cwd=tmp_path),
                          "is damaged", "step counter is -3")


def test_charlm_resume_on_changed_text_is_one_line(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be, that is the question. " * 30, encoding="utf-8")
    args = ["train", "charlm", "--text", "t.txt", "--quiet", "--batch-size", "2", "--seq-len",
            "8", "--hidden", "4", "--no-plot", "--out", "o"]
    assert cli(*args, "--steps", "2", cwd=tmp_path).returncode == 0
    text.write_text("to be or not to be, that is the answer.. " * 30, encoding="utf-8")
    assert_one_line_error(cli("train", "charlm", "--resume", "o/checkpoint.npz", "--steps", "3",
                              cwd=tmp_path), "different text")
