"""One process per run: an exclusive ``flock`` on the run's ``lock`` file.

The kernel drops the lock when its holder dies, however it dies (SIGKILL, a crash, a reboot), so
a stale lock cannot outlive its process and "is this run's process alive?" is "is the lock
held?". The holder writes its pid into the file, for messages only.

A launcher that starts a run in another process takes the lock first and hands the open file to
the child (``pass_fds``): the lock is held without a gap from launch to the run's end, so two
``agent jobs resume`` at once cannot both start the run.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class RunLock:
    """The lock of one run directory.

    Args:
        path: The lock file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fd: int | None = None

    def acquire(self, *, claim: bool = True) -> bool:
        """Take the lock without waiting; False when another process (or open file) holds it.

        Args:
            claim: Write this process's pid as the holder (a mere probe does not).

        Raises:
            FileNotFoundError: The run directory is gone.
        """
        if self.fd is not None:
            return True
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if claim else 0)
        fd = os.open(self.path, flags, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        if claim:
            self.claim(os.getpid())
        return True

    @classmethod
    def adopt(cls, path: str | Path, fd: int) -> RunLock:
        """The lock a launcher handed over as open file ``fd`` (see the module docstring).

        Raises:
            RuntimeError: ``fd`` is not an open lock on ``path``.
        """
        lock = cls(path)
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock.path))
            # Our own open file description holds the lock already, so this succeeds at once.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise RuntimeError(f"the lock handed over for {path} is not usable ({exc})") from None
        if not same:
            raise RuntimeError(f"the lock handed over is not {path}")
        os.set_inheritable(fd, False)  # not into processes the run itself starts
        lock.fd = fd
        lock.claim(os.getpid())
        return lock

    def claim(self, pid: int) -> None:
        """Write ``pid`` as the holder (a launcher names its child this way)."""
        if self.fd is None:
            raise RuntimeError(f"{self.path} is not held")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{pid}\n".encode(), 0)

    def release(self) -> None:
        """Drop the lock (closing the last descriptor of the open file drops the flock)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def is_locked(path: str | Path) -> bool:
    """Whether a live process holds the lock at ``path`` (False when the file is missing)."""
    probe = RunLock(path)
    try:
        if not probe.acquire(claim=False):
            return True
    except FileNotFoundError:
        return False
    probe.release()
    return False


def holder(path: str | Path) -> int | None:
    """The pid written by the last holder, if readable."""
    try:
        return int(Path(path).read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None
