"""Atomic file writes: every file actscope writes goes through ``atomic_write``.

A write goes to ``.<name>.<random>.tmp`` beside the target and is renamed over it once complete.
A process killed mid-write leaves that temp file behind; ``remove_stale_temps`` deletes exactly
those names (nothing else) and is called by whoever owns the folder next (resume, finish).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from actscope.oserrors import write_error

__all__ = ["atomic_write", "is_stale_temp", "remove_stale_temps"]

# mkstemp's random part: 8 characters of [a-z0-9_]; the name is ".<target>.<random>.tmp"
_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


@contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``.

    Readers see the old file or the new one, never half of one; on error the temp file is removed,
    and an OSError (full disk, read-only disk...) becomes ``WriteError`` naming ``path``.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise write_error(path, e) from e
    try:
        text_args = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **text_args) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a run folder is for sharing
        os.replace(tmp, path)
    except BaseException as e:
        _discard(tmp)
        if isinstance(e, OSError):  # a full disk, a read-only one...: one line naming the file
            raise write_error(path, e) from e
        raise


def _discard(tmp: str) -> None:
    """Remove a temp file after a failed write; an error here must not hide the first one."""
    try:
        os.unlink(tmp)
    except OSError:
        pass  # already gone, or the disk fails: remove_stale_temps takes it next time


def is_stale_temp(path: Path) -> bool:
    """True for a file named like an ``atomic_write`` temp file (``.<name>.<random>.tmp``)."""
    return path.is_file() and not path.is_symlink() and bool(_TEMP.match(path.name))


def remove_stale_temps(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Delete the temp files ``atomic_write`` left in ``folder`` (and below); return them.

    Call it only while no other process writes the folder (hold its lock): a live writer's
    temp file looks the same.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in (folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp"))
             if is_stale_temp(p)]
    for p in found:
        p.unlink(missing_ok=True)
    return found


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
