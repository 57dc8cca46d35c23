"""Where a training run writes its checkpoint: checked, locked, and cleaned before training.

Three ways to lose a run, and what this module does about each:

* **An output that cannot be written.** :func:`prepare_output` makes the directory and says
  precisely what is wrong (a path component that is a file, a checkpoint path that is a
  directory or a FIFO, no permission) *before* any training, not after 3,000 steps.
* **Two runs writing one checkpoint.** :class:`CheckpointLock` creates
  ``CHECKPOINT.lock`` holding the writer's process id; a second run on the same checkpoint
  fails at once, naming that process. A lock left by a process that no longer exists (killed
  with SIGKILL, or a machine that rebooted) is taken over.
* **Leftovers of a killed save.** A save writes a temporary file and renames it (see
  :mod:`tinygrad_rnn.serialization`); a process killed in between leaves the temporary
  file. Taking the lock removes such leftovers, since no one else can be saving then.
"""
from __future__ import annotations

import errno
import os
import stat
import time

from .serialization import stale_temporary_files

LOCK_SUFFIX = ".lock"
#: A lock file younger than this without a readable pid is being created: it counts as held.
FRESH_SECONDS = 5.0


class OutputError(OSError):
    """The checkpoint cannot be written where it was asked to go (shown without traceback)."""


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def describe_non_regular(path: str) -> str | None:
    """``None`` if ``path`` is a regular file (or does not exist), else what it is instead:
    ``"a directory"``, ``"a FIFO (named pipe)"``, ``"a character device"``, …"""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    return None if stat.S_ISREG(mode) else _kind(mode)


def prepare_output(checkpoint: str) -> str:
    """Make the directory of ``checkpoint`` and check that the checkpoint can go there;
    returns the directory. Raises :class:`OutputError` with the exact reason otherwise."""
    checkpoint = os.path.abspath(checkpoint)
    directory = os.path.dirname(checkpoint)
    blocker = _file_in_the_way(directory)
    if blocker is not None:
        raise OutputError(errno.ENOTDIR, f"cannot write the checkpoint: {blocker!r} is an "
                          "existing file, not a directory (choose another --out)", checkpoint)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise OutputError(exc.errno, f"cannot create the output directory ({exc.strerror})",
                          directory) from None
    what = describe_non_regular(checkpoint)
    if what is not None:
        raise OutputError(errno.EISDIR if what == "a directory" else errno.EINVAL,
                          f"cannot write the checkpoint there: it is {what}, not a "
                          "checkpoint file", checkpoint)
    return directory


def _file_in_the_way(directory: str) -> str | None:
    """The first existing component of ``directory`` that is not a directory, if any."""
    path = directory
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    return path if path and not os.path.isdir(path) else None


def _process_exists(pid: int) -> bool:
    """Whether a process with this id is running (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)          # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True              # it exists, but belongs to someone else
    return True


class CheckpointLock:
    """``with CheckpointLock(checkpoint):`` — only this process writes ``checkpoint``.

    The lock is the file ``checkpoint + ".lock"``, created exclusively (``O_EXCL``) and holding
    the process id. Re-entrant within one process (the command line holds it around
    :func:`tinygrad_rnn.train.train`, which takes it too). Creating it is also the test that
    the directory is writable, so a read-only output fails here, before training.
    """

    _held: dict[str, int] = {}   # lock path → how many times this process holds it

    def __init__(self, checkpoint: str):
        self.checkpoint = os.path.abspath(checkpoint)
        self.path = self.checkpoint + LOCK_SUFFIX

    def __enter__(self) -> "CheckpointLock":
        if self._held.get(self.path):
            self._held[self.path] += 1
            return self
        prepare_output(self.checkpoint)
        if not self._create():
            holder = self._holder()
            if holder is None and self._age() < FRESH_SECONDS:
                holder = -1           # being written this instant by its creator: in use
            if holder == -1 or (holder is not None and holder != os.getpid()
                                and _process_exists(holder)):
                who = "process " + str(holder) if holder > 0 else "a process just starting"
                raise OutputError(errno.EBUSY, f"another training run ({who}) is "
                                  f"writing this checkpoint (lock file {self.path}); wait for it "
                                  "to finish or choose another --out", self.checkpoint)
            self._remove()                                      # stale: its writer is gone
            if not self._create():                              # someone else was quicker
                raise OutputError(errno.EBUSY, "another training run took the lock on this "
                                  f"checkpoint just now (lock file {self.path})", self.checkpoint)
        self._held[self.path] = 1
        for leftover in stale_temporary_files(self.checkpoint):
            try:
                os.unlink(leftover)
            except OSError:
                pass
        return self

    def __exit__(self, *exc) -> None:
        self._held[self.path] -= 1
        if self._held[self.path] == 0:
            del self._held[self.path]
            if self._holder() == os.getpid():
                self._remove()

    def _create(self) -> bool:
        """Create the lock file with our pid; False if it exists already."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise OutputError(exc.errno, f"cannot write in the output directory "
                              f"({exc.strerror})", os.path.dirname(self.path)) from None
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return True

    def _holder(self) -> int | None:
        """The pid in the lock file (None if unreadable: a half-written or foreign file)."""
        try:
            with open(self.path, encoding="ascii") as f:
                return int(f.read(32).strip())
        except (OSError, ValueError):
            return None

    def _age(self) -> float:
        """Seconds since the lock file was last written."""
        try:
            return time.time() - os.stat(self.path).st_mtime
        except OSError:
            return float("inf")

    def _remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
