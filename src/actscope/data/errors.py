"""The data layer's error types: every bad-data problem is a ``DataError`` (a ``ValueError``)."""

from __future__ import annotations

from actscope.errors import ActscopeError

__all__ = ["DataError", "IDXError"]


class DataError(ActscopeError, ValueError):
    """Bad or missing data: the message names the file or value, what is wrong and how to fix it."""


class IDXError(DataError):
    """An IDX file that cannot be read or written: wrong magic, truncated, corrupt gzip, ..."""
