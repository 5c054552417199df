"""An OS lock on a run folder: one writer at a time, freed by the kernel when its process dies.

``fcntl.flock`` on ``<run>/.lock``, exclusive and non-blocking: a second writer is refused at
once instead of waiting. The kernel drops the lock when the holding process exits in any way
(SIGKILL and the OOM killer included), so a killed run never leaves a stale lock; the ``.lock``
file itself stays and means nothing on its own. The lock is per open file: two ``RunLock``
objects on one folder conflict even inside one process.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from actscope.runs.files import RunFolderError

__all__ = ["RunLock", "LockedError", "LOCK_FILE", "is_locked"]

LOCK_FILE = ".lock"


class LockedError(RunFolderError):
    """Another live process holds the folder's lock."""


class RunLock:
    """The exclusive lock of one folder; ``acquire`` or raise, ``release`` (idempotent)."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock now; LockedError if another process (or RunLock) holds it."""
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            _flock_exclusive(fd)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(f"{self.path.parent} is being written by another live process "
                              f"({_holder(self.path)}); wait for it to finish, stop it, or "
                              "choose another folder") from None
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for the message a refused writer prints (informative only).
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Free the lock (closing the file frees it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def _flock_exclusive(fd: int, tries: int = 5) -> None:
    """LOCK_EX without waiting on a writer; a few short retries ride out an ``is_locked`` probe
    (it holds a shared lock for microseconds) instead of refusing a writer because of it."""
    for attempt in range(tries):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt == tries - 1:
                raise
            time.sleep(0.01)


def is_locked(folder: str | Path) -> bool:
    """True when a live process holds ``folder``'s lock (probes without creating the file)."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock if we got it
    return False


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        pid = ""
    if not pid.isdigit():
        return "pid unknown"
    return f"pid {pid}, this process" if int(pid) == os.getpid() else f"pid {pid}"
