"""run_labels: a short name per run folder that tells every run of one comparison apart.

A run is named by its folder's name. Where two runs share it (``x/a/run`` and ``y/a/run``),
each gets the shortest tail of its full (resolved) path that no other run shares
(``x/a/run``, ``y/a/run``), not only its parent's name, which can be shared too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["run_labels"]


def _tail(parts: tuple[str, ...], n: int) -> str:
    return "/".join(parts[-n:]) if n <= len(parts) else "/".join(parts)


def run_labels(paths: Sequence[Path]) -> list[str]:
    """One label per folder: its name, or the shortest path tail that is unique among them."""
    full = [p.resolve().parts for p in paths]
    labels = []
    for i, parts in enumerate(full):
        others = [q for j, q in enumerate(full) if j != i]
        n = 1
        while n < len(parts) and any(_tail(parts, n) == _tail(q, n) for q in others):
            n += 1
        labels.append(_tail(parts, n).removeprefix("//") or str(paths[i]))
    return labels
