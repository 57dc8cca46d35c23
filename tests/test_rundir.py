"""The output of a training run (``tinygrad_rnn.rundir``): checked before training, locked
against a second writer (a dead writer's lock is taken over), and cleaned of the temporary
files of a killed save."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_rnn import rundir
from tinygrad_rnn.rundir import CheckpointLock, OutputError, prepare_output
from tinygrad_rnn.train import TrainConfig, Trainer

TINY = dict(batch_size=4, seq_len=8, hidden=6)


@pytest.fixture
def other_process():
    """The pid of another live process (ended after the test)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_holds_our_pid_and_is_removed_after(tmp_path):
    ckpt = tmp_path / "out" / "c.npz"
    with CheckpointLock(str(ckpt)) as lock:
        assert (tmp_path / "out").is_dir()                     # made on the way
        assert Path(lock.path).read_text().strip() == str(os.getpid())
        with CheckpointLock(str(ckpt)):                         # re-entrant in one process
            pass
        assert os.path.exists(lock.path)
    assert not os.path.exists(lock.path)


def test_a_live_holder_keeps_others_out(tmp_path, other_process):
    ckpt = tmp_path / "c.npz"
    (tmp_path / "c.npz.lock").write_text(f"{other_process}\n")
    with pytest.raises(OutputError, match=f"another training run \\(process {other_process}\\)") \
            as info:
        with CheckpointLock(str(ckpt)):
            pass
    assert info.value.errno == errno.EBUSY
    assert (tmp_path / "c.npz.lock").read_text().strip() == str(other_process)   # untouched


def test_a_dead_holders_lock_is_taken_over(tmp_path):
    (tmp_path / "c.npz.lock").write_text(f"{dead_pid()}\n")
    with CheckpointLock(str(tmp_path / "c.npz")) as lock:
        assert Path(lock.path).read_text().strip() == str(os.getpid())


def test_a_lock_being_created_counts_as_held(tmp_path):
    (tmp_path / "c.npz.lock").write_text("")                  # created, pid not written yet
    with pytest.raises(OutputError, match="a process just starting"):
        with CheckpointLock(str(tmp_path / "c.npz")):
            pass
    os.utime(tmp_path / "c.npz.lock", (0, 0))                  # an old empty lock: stale
    with CheckpointLock(str(tmp_path / "c.npz")):
        pass


def test_taking_the_lock_removes_leftovers_of_killed_saves(tmp_path):
    leftover = tmp_path / ".c.npz.0123456789ab.tmp"
    unrelated = tmp_path / ".other.npz.0123456789ab.tmp"
    leftover.write_bytes(b"half a checkpoint")
    unrelated.write_bytes(b"")
    with CheckpointLock(str(tmp_path / "c.npz")):
        assert not leftover.exists() and unrelated.exists()


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "runs").write_text("")
    with pytest.raises(OutputError, match="runs' is an existing file, not a directory"):
        prepare_output(str(tmp_path / "runs" / "sine" / "checkpoint.npz"))


@pytest.mark.parametrize("make, what", [
    (os.mkdir, "it is a directory"),
    pytest.param(getattr(os, "mkfifo", None), "it is a FIFO",
                 marks=pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")),
])
def test_a_checkpoint_path_that_is_not_a_file_is_named(tmp_path, make, what):
    make(tmp_path / "c.npz")
    with pytest.raises(OutputError, match=what):
        prepare_output(str(tmp_path / "c.npz"))


def test_an_unwritable_directory_fails_before_training(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, *args)
    monkeypatch.setattr(rundir.os, "open", read_only)
    trainer = Trainer(TrainConfig("sine", steps=5, **TINY))
    with pytest.raises(OutputError, match=r"cannot write in the output directory \(Permission"):
        trainer.run(checkpoint=str(tmp_path / "c.npz"), quiet=True)
    assert trainer.step == 0


def test_output_blocked_by_a_file_fails_before_training(tmp_path):
    (tmp_path / "out").write_text("")
    trainer = Trainer(TrainConfig("sine", steps=5, **TINY))
    with pytest.raises(OutputError, match="not a directory"):
        trainer.run(checkpoint=str(tmp_path / "out" / "c.npz"), quiet=True)
    assert trainer.step == 0
