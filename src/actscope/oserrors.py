"""WriteError: an OSError while actscope writes a file, as one line naming the file and a fix.

A full disk (ENOSPC), a used-up quota (EDQUOT), a read-only file system (EROFS), a failing
disk (EIO) or a missing permission (EACCES, EPERM) is not a bug in actscope: the user can act on
it. ``atomic_write`` (and the checkpoint writer) turn the OSError of a write into ``WriteError``
naming the file being written; the command line prints it as ``actscope: error: could not write
<file>: <cause>; <hint>`` and exits 2. ``WriteError`` is also an ``OSError`` (same ``errno``),
so ``except OSError`` in a user's code keeps working.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from actscope.errors import ActscopeError

__all__ = ["WriteError", "write_error", "hint_for", "describe_os_error"]

_HINTS = {
    errno.ENOSPC: "the disk is full: free some space (or choose a folder on another disk), "
                  "then run again",
    errno.EDQUOT: "your disk quota is used up: free some space (or choose a folder on another "
                  "disk), then run again",
    errno.EROFS: "the file system is read-only: choose a folder on a writable disk",
    errno.EIO: "the disk reported an input/output error: check the disk, then run again",
    errno.EACCES: "no permission: check the folder's permissions or choose another folder",
    errno.EPERM: "not permitted: check the folder's permissions or choose another folder",
    errno.EFBIG: "the file is too large for this file system: choose another disk",
}


def hint_for(code: int | None) -> str:
    """What the user can do about an OSError with this ``errno``."""
    return _HINTS.get(code or 0, "check the disk and the folder's permissions, then run again")


class WriteError(ActscopeError, OSError):
    """Writing a file failed with an OSError; one line: the file, the cause and what to do."""

    def __init__(self, path: str | os.PathLike[str], cause: OSError) -> None:
        OSError.__init__(self, cause.errno, cause.strerror or str(cause), os.fspath(path))
        self.path = Path(path)
        cause_text = cause.strerror or str(cause) or type(cause).__name__
        self.message = (f"could not write {os.fspath(path)}: {cause_text}; "
                        f"{hint_for(cause.errno)} (nothing half-written was kept)")

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # pickles (multiprocessing) with the same arguments
        return (_rebuild, (os.fspath(self.path), self.errno, self.strerror))


def _rebuild(path: str, code: int, text: str) -> WriteError:
    return WriteError(path, OSError(code, text))


def write_error(path: str | os.PathLike[str], cause: OSError) -> WriteError:
    """``cause`` as a WriteError naming ``path`` (a WriteError is passed on unchanged)."""
    return cause if isinstance(cause, WriteError) else WriteError(path, cause)


# errnos that only a write (or a file's creation) raises: the line says "could not write"
_WRITE_ONLY = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def describe_os_error(e: OSError) -> str:
    """One line for an OSError that reached the command line without a WriteError around it."""
    if isinstance(e, WriteError):
        return e.message
    where = os.fsdecode(e.filename) if e.filename is not None else "a file"
    if e.filename2 is not None:
        where += f" -> {os.fsdecode(e.filename2)}"
    cause = e.strerror or str(e) or type(e).__name__
    verb = "could not write" if e.errno in _WRITE_ONLY else "could not read or write"
    return f"{verb} {where}: {cause}; {hint_for(e.errno)}"
