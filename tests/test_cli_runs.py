"""The command line keeps runs safe and says exactly what is wrong: a bad
``TINYGRAD_RNN_BACKEND`` is one line (and ``--help``/``--backend numpy`` still work), a FIFO
gets an accurate reason, two runs on one ``--out`` cannot both write. (Damaged checkpoints,
a changed ``--text`` and the other odd paths are cases of ``test_errors.py``.)"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from test_cli import FAST, assert_one_line_error, cli, env

#: Subprocesses: nothing here depends on the array backend.
pytestmark = pytest.mark.single_backend


def cli_with_backend(value: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinygrad_rnn", *args], cwd=cwd,
                          env={**env(), "TINYGRAD_RNN_BACKEND": value},
                          capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------ TINYGRAD_RNN_BACKEND

def test_bad_backend_variable_keeps_help_and_backend_numpy_working(tmp_path):
    value = "bogus"
    shown = cli_with_backend(value, "--help", cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout.startswith("usage:"), shown.stderr
    trained = cli_with_backend(value, "train", "sine", "--backend", "numpy", "--steps", "2",
                               "--quiet", *FAST, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr == ""


@pytest.mark.parametrize("command", [["bptt"], ["check"]])   # train: in test_errors.py
def test_bad_backend_variable_is_one_line(tmp_path, command):
    result = cli_with_backend("bogus", *command, cwd=tmp_path)
    assert_one_line_error(result, "TINYGRAD_RNN_BACKEND='bogus'", "'numpy', 'cupy'")


# ------------------------------------------------------------------------------ odd paths

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_as_resume_is_named(tmp_path):
    """(A directory, /dev/zero and an existing file as --out: cases in test_errors.py.)"""
    os.mkfifo(tmp_path / "a_fifo")
    result = cli("train", "sine", "--steps", "2", "--resume", "a_fifo", "--out", "o", *FAST,
                 cwd=tmp_path)
    assert_one_line_error(result, "--resume 'a_fifo' is a FIFO (named pipe)")


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
        first.stderr.close()
    assert first.returncode == 143
    assert not lock.exists()                    # released on the way out
    assert (tmp_path / "o" / "checkpoint.npz").is_file()


# ------------------------------------------------------------------ a run over a run

def test_a_new_run_never_replaces_a_saved_one_without_overwrite(tmp_path):
    """`train adding --cell lstm` after `train adding` (one default --out) must not write over
    the first run; the refusal leaves its checkpoint as it was and says how to go on."""
    first = cli("train", "sine", "--steps", "2", "--quiet", "--out", "o", *FAST, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    saved = (tmp_path / "o" / "checkpoint.npz").read_bytes()
    again = cli("train", "sine", "--steps", "3", "--quiet", "--out", "o", *FAST, cwd=tmp_path)
    assert_one_line_error(again, "holds a sine run saved at step 2", "--resume",
                          "--overwrite")
    assert (tmp_path / "o" / "checkpoint.npz").read_bytes() == saved
    resumed = cli("train", "sine", "--resume", "o/checkpoint.npz", "--steps", "3", "--quiet",
                  *FAST, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    replaced = cli("train", "sine", "--steps", "1", "--quiet", "--out", "o", "--overwrite",
                   *FAST, cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    from tinygrad_rnn.train import read_checkpoint
    assert read_checkpoint(str(tmp_path / "o" / "checkpoint.npz"))["step"] == 1
