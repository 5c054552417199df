"""Can a user-given path name a file at all? Checked before anything reads or writes through it.

A path with a component longer than the filesystem allows (255 bytes on every common one), a
whole path longer than the kernel's limit, a symbolic-link loop or a NUL byte makes the first
``stat``/``mkdir``/``open`` on it fail with an OSError (or a RuntimeError from ``Path.resolve``)
deep inside the command. ``check_path`` turns each into one UsageError line naming the flag.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from actscope.errors import UsageError
from actscope.pathtext import check_utf8

__all__ = ["check_path", "check_data_path", "NAME_MAX"]

# The longest file name (one path component) in bytes: ext4, xfs, btrfs, tmpfs, APFS, NTFS.
NAME_MAX = 255
_SHOWN = 60  # a long path is shown shortened in the one error line


def _short(text: str) -> str:
    """``text``, or its start and end around '...' when it is too long for an error line."""
    return text if len(text) <= _SHOWN else f"{text[:40]}...{text[-12:]}"


def _probe(path: str, flag: str) -> None:
    """``stat`` the path: a loop, a too-long name or a NUL byte is an error; missing is fine."""
    try:
        os.stat(path)
    except ValueError:  # an embedded NUL byte (not possible from the command line)
        raise UsageError(f"{flag} {_short(path)!r} contains a NUL byte; pass a plain path"
                         ) from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UsageError(f"{flag} {_short(path)}: a symbolic link on this path points back "
                             "to itself (a link loop); fix the link or choose another path"
                             ) from None
        if e.errno == errno.ENAMETOOLONG:
            raise UsageError(f"{flag} {_short(path)} is too long for this system "
                             f"({len(os.fsencode(path))} bytes); choose a shorter path") from None
        # missing, not a folder, no permission: the command's own checks say what to do


def check_path(path: str | os.PathLike[str], flag: str) -> Path:
    """``Path(path)`` if it can name a file here; else UsageError naming ``flag``, one line.

    Refused: a name that is not UTF-8 (``pathtext.check_utf8``), a component over NAME_MAX bytes
    (also below a folder that does not exist yet, which ``stat`` alone would not reach), a path
    the kernel finds too long, a link loop, a NUL byte.
    Whether the file exists, or may be written, is left to the command's own checks.
    """
    text = os.fspath(path)
    check_utf8(text, flag)  # before any work: never a UnicodeEncodeError after training
    for part in Path(text).parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            which = "" if part == text else f" ({_short(part)})"
            raise UsageError(f"{flag} {_short(text)} has a name of {size} bytes{which}; file "
                             f"systems allow at most {NAME_MAX}: choose a shorter name")
    _probe(text, flag)
    return Path(text)


def check_data_path(data: str | os.PathLike[str] | None) -> None:
    """Check the data folder: ``data`` (``--data``), else ``$ACTSCOPE_DATA`` when it is set."""
    if data is not None:
        check_path(data, "--data")
    elif os.environ.get("ACTSCOPE_DATA"):
        check_path(os.environ["ACTSCOPE_DATA"], "ACTSCOPE_DATA")
