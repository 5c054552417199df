"""Forbid host syncs in a block: Tensor.item/cpu/tolist/numpy/__float__/__bool__ raise.

The same check as test_watch.py's ``test_no_host_sync_during_recorded_batches``, as a context
manager so each signal's test can wrap exactly its per-step calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

SYNC_METHODS = ("item", "cpu", "tolist", "numpy", "__float__", "__bool__", "__int__")


@contextlib.contextmanager
def no_host_sync(monkeypatch) -> Iterator[None]:
    """Inside the block, any of SYNC_METHODS on a torch.Tensor raises AssertionError."""
    def forbid(name):
        def raiser(*a, **k):
            raise AssertionError(f"host sync on the hot path: Tensor.{name}")
        return raiser

    with monkeypatch.context() as m:
        for name in SYNC_METHODS:
            m.setattr(torch.Tensor, name, forbid(name))
        yield
