"""Which path text a user may give actscope, on the command line or through the API.

Two decisions, the same for every path flag and every path argument of the API
(docs/decisions.md):

- ``~`` and ``~user`` at the start are expanded, as a shell does for an unquoted path
  (``--out '~/x'`` means the home folder, never a folder named ``~``); an unknown ``~user``
  is refused. A folder whose name starts with ``~`` is written ``./~x``.
- A path must be valid UTF-8. Linux allows any bytes in a name, but actscope writes names into
  report.html, plot titles and JSON, all of them UTF-8; a name that is not (Python holds it as
  lone surrogates) is refused with one line before any work, never after training.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from actscope.errors import UsageError

__all__ = ["user_path", "user_path_list", "check_utf8", "expand_home"]


def check_utf8(text: str, what: str) -> None:
    """UsageError, one line, when ``text`` is not valid UTF-8 (undecodable bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(text).decode("utf-8", "backslashreplace")
        raise UsageError(f"{what} '{shown}' is not valid UTF-8: actscope writes path names into "
                         "HTML, plot titles and JSON, which need UTF-8; rename it (e.g. "
                         "convmv -f latin1 -t utf8) or choose another path") from None


def expand_home(text: str, what: str) -> str:
    """``~`` or ``~user`` at the start expanded; UsageError for an unknown ``~user``."""
    if not text.startswith("~"):
        return text
    expanded = os.path.expanduser(text)
    if expanded.startswith("~"):
        user = text[1:].split(os.sep, 1)[0]
        raise UsageError(f"{what} {text!r}: there is no user {user!r} for '~{user}' to name; "
                         f"write the full path, or ./{text} for a folder named so")
    return expanded


def user_path(value: Any, what: str) -> Path:
    """A path argument as a ``Path``: str or os.PathLike only, ``~`` expanded, UTF-8."""
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, (str, os.PathLike)):
        raise UsageError(f"{what} must be a path (str or pathlib.Path), got "
                         f"{type(value).__name__} {value!r:.60}")
    text = os.fspath(value)
    if not isinstance(text, str):  # a PathLike returning bytes
        raise UsageError(f"{what} must be a text path, got bytes {text!r:.60}")
    if not text.strip():
        raise UsageError(f"{what} is empty ({text!r}); pass a folder path")
    check_utf8(text, what)
    return Path(expand_home(text, what))


def user_path_list(value: Any, what: str) -> list[Path]:
    """A list-of-paths argument: one path (str or PathLike) is a list of one; each checked."""
    if isinstance(value, (str, os.PathLike)):
        return [user_path(value, what)]
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
        raise UsageError(f"{what} must be a list of paths (or one path), got "
                         f"{type(value).__name__} {value!r:.60}")
    return [user_path(v, what) for v in value]
