"""Interrupted training is never lost: ``python -m tinygrad_rnn train`` stopped by Ctrl-C
(SIGINT) or SIGTERM saves a checkpoint, exits non-zero saying how to resume, and the resumed
run continues *exactly*: its loss history equals, bit for bit, the history of an uninterrupted
run with the same seed for the same number of steps.

Each test starts a real training process (a tiny sine model, a very large ``--steps`` and
``--save-every 5``), waits until the first checkpoint file appears, sends the signal, and
then:

1. the process exits with 128 + the signal number (130 / 143), no traceback, and its last
   line is ``resume with: python -m tinygrad_rnn train sine --resume ...``;
2. the checkpoint is a valid training checkpoint whose step counter and histories agree;
3. the printed command, run as printed (plus ``--steps M`` to stop soon after), finishes;
4. the loss and gradient-norm histories it stores (``history/loss``,
   ``history/grad_norm``, one entry per step, written by ``tinygrad_rnn.train``) and the final
   weights equal those of a fresh ``--steps M`` run.
"""
from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tinygrad_rnn.cli.train")   # the train command (lands with the tasks)
from tinygrad_rnn.train import read_checkpoint  # noqa: E402

#: Subprocesses and files: nothing here depends on the array backend.
pytestmark = pytest.mark.single_backend

if not hasattr(signal, "SIGTERM") or sys.platform == "win32":
    pytest.skip("POSIX signals needed", allow_module_level=True)

TINY = ["--hidden", "6", "--batch-size", "3", "--seq-len", "8", "--seed", "3",
        "--no-plot", "--quiet"]
EXTRA_STEPS = 15
TIMEOUT = 60


def cli(*args, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinygrad_rnn", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=TIMEOUT, **kw)


def start_and_interrupt(tmp: Path, signum: int):
    """Start a long run, wait for its first checkpoint, send ``signum``; return
    (returncode, stdout, stderr, out dir)."""
    out = tmp / "interrupted"
    checkpoint = out / "checkpoint.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinygrad_rnn", "train", "sine", "--steps", "1000000",
         "--save-every", "5", "--out", str(out), *TINY],
        cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not checkpoint.exists():
            if proc.poll() is not None:
                pytest.fail(f"training ended before its first checkpoint:\n{proc.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint appeared")
            time.sleep(0.02)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stdout, stderr, out


def history(path: Path):
    state = read_checkpoint(str(path))
    return (int(state["step"]), state["history"]["loss"].numpy(),
            state["history"]["grad_norm"].numpy(),
            {k: v.numpy() for k, v in state["model"].items()})


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_training_saves_and_resumes_exactly(signum, tmp_path):
    returncode, _stdout, stderr, out = start_and_interrupt(tmp_path, signum)

    # 1. non-zero exit (as a shell reports death by that signal), a message, no traceback
    assert returncode == 128 + signum, (returncode, stderr)
    assert "Traceback" not in stderr, stderr
    name = signal.Signals(signum).name
    assert f"interrupted by {name} at step" in stderr, stderr
    resume_lines = [ln for ln in stderr.splitlines() if ln.startswith("resume with: ")]
    assert resume_lines, f"no line saying how to resume:\n{stderr}"
    command = shlex.split(resume_lines[-1][len("resume with: "):])
    assert command[:5] == ["python", "-m", "tinygrad_rnn", "train", "sine"]
    assert "--resume" in command and command[command.index("--resume") + 1] == \
        str(out / "checkpoint.npz")

    # 2. the checkpoint loads, and is consistent with itself
    step, losses, norms, _ = history(out / "checkpoint.npz")
    assert step >= 5 and len(losses) == len(norms) == step
    assert np.isfinite(losses).all()
    assert f"at step {step};" in stderr   # the step the message names is the one saved

    # 3. the printed command, as printed (plus a near total), resumes and finishes
    total = step + EXTRA_STEPS
    resumed = subprocess.run([sys.executable] + command[1:] + ["--steps", str(total),
                                                               "--quiet", "--no-plot"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from step {step}" in resumed.stdout
    r_step, r_losses, r_norms, r_weights = history(out / "checkpoint.npz")
    assert r_step == total and len(r_losses) == total
    np.testing.assert_array_equal(r_losses[:step], losses)   # the past is kept as it was

    # 4. ...exactly as if it had never been interrupted
    fresh = cli("train", "sine", "--steps", str(total), "--out", str(tmp_path / "fresh"),
                *TINY, cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    f_step, f_losses, f_norms, f_weights = history(tmp_path / "fresh" / "checkpoint.npz")
    assert f_step == total
    np.testing.assert_array_equal(r_losses, f_losses)
    np.testing.assert_array_equal(r_norms, f_norms)
    assert r_weights.keys() == f_weights.keys()
    for key in f_weights:
        np.testing.assert_array_equal(r_weights[key], f_weights[key], err_msg=key)


def test_signal_before_any_step_leaves_no_broken_checkpoint(tmp_path):
    """A SIGTERM that arrives while the process is still starting (before training) may kill
    it outright, but must never leave a half-written checkpoint behind."""
    out = tmp_path / "early"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinygrad_rnn", "train", "sine", "--steps", "1000000",
         "--out", str(out), *TINY], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=TIMEOUT)
    assert proc.returncode != 0
    leftovers = [p.name for p in out.glob("*")] if out.exists() else []
    assert all(name == "checkpoint.npz" for name in leftovers), leftovers
    if leftovers:   # if it got as far as saving, the file is a complete checkpoint
        history(out / "checkpoint.npz")
