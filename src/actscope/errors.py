"""ActscopeError: the base of every user-facing error the project raises on purpose.

The CLI turns exactly these into one line ``actscope: error: ...`` and exit code 2. Anything
else is a bug and keeps its traceback (exit 1): a ValueError raised deep inside training never
masquerades as bad input. Subclasses also derive from ValueError where the input was a bad value,
so ``except ValueError`` in user code keeps working.
"""

from __future__ import annotations

__all__ = ["ActscopeError", "UsageError"]


class ActscopeError(Exception):
    """A problem with the user's input, files or settings; the message says what and how to fix."""


class UsageError(ActscopeError, ValueError):
    """A bad command-line or API value (a flag, a setting, an output path)."""
