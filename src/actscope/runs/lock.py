"""An OS lock on a run folder: one writer at a time, freed by the kernel when its process dies.

``fcntl.flock`` on ``<run>/.lock``, exclusive and non-blocking: a second writer is refused at
once instead of waiting. The kernel drops the lock when the holding process exits in any way
(SIGKILL and the OOM killer included), so a killed run never leaves a stale lock; the ``.lock``
file itself stays and means nothing on its own. The lock is per open file: two ``RunLock``
objects on one folder conflict even inside one process.

The ``.lock`` is opened without following a symlink and must be a regular file with no other
name: anything else there (a symlink, a folder, a hard link to another file, a FIFO) is refused
with ``RunFolderError`` before a byte is written, so the pid never lands in a user's file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from pathlib import Path

from actscope.runs.files import RunFolderError
from actscope.runs.layout import LOCK_FILE

__all__ = ["RunLock", "LockedError", "LOCK_FILE", "is_locked"]

# O_NOFOLLOW: a symlinked .lock fails (ELOOP) instead of opening its target; O_NONBLOCK: a FIFO
# there cannot hang the open (its kind is refused right after).
_OPEN = os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


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
        """Take the lock now; LockedError if another process (or RunLock) holds it,
        RunFolderError if ``.lock`` is not a plain file of its own (a symlink, a folder...)."""
        if self._fd is not None:
            return self
        fd = _open_lock_file(self.path)
        try:
            _flock_exclusive(fd)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise LockedError(f"{self.path.parent} is being written by another live process "
                              f"({holder}); wait for it to finish, stop it, or choose another "
                              "folder") from None
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


def _open_lock_file(path: Path) -> int:
    """Open (or create) ``path`` read-write as a lock file, never through a symlink.

    RunFolderError, naming it, unless it is a regular file with a single name: nothing outside
    the folder can be reached and nothing of the user's is written.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _OPEN, 0o666)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EOPNOTSUPP):
            raise _not_a_lock_file(path) from None
        raise RunFolderError(f"cannot open the lock file {path}: {e.strerror or e}; check the "
                             "folder's permissions or choose another folder") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise _not_a_lock_file(path)
    return fd


def _not_a_lock_file(path: Path) -> RunFolderError:
    """The refusal of a ``.lock`` that is not a plain file of the folder's own."""
    try:
        info = os.lstat(path)
    except OSError:
        info = None
    if info is not None and stat.S_ISLNK(info.st_mode):
        what, fix = "a symbolic link", f"remove the link itself (rm {path}; its target is kept)"
    elif info is not None and stat.S_ISDIR(info.st_mode):
        what, fix = "a folder", "move that folder away"
    elif info is not None and stat.S_ISREG(info.st_mode):
        what, fix = "a hard link to another file", (f"remove this name (rm {path}; the file "
                                                    "keeps its other name)")
    else:
        what, fix = "a special file (FIFO, socket or device)", f"remove it (rm {path})"
    return RunFolderError(f"{path} is {what}, not actscope's lock file: refusing to use it, "
                          f"nothing was changed; {fix}, then run again")


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
        fd = os.open(path, os.O_RDONLY | _OPEN)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock if we got it
    return False


def _holder(fd: int) -> str:
    """The holder's pid as written in the lock file open at ``fd`` (read, never followed)."""
    try:
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        pid = ""
    if not pid.isdigit():
        return "pid unknown"
    return f"pid {pid}, this process" if int(pid) == os.getpid() else f"pid {pid}"
