"""HostStore: the recording's records in host memory (numpy), bounded by a budget per layer.

Each flush appends the chunk's records. When ``max_records`` are held, older history is
coarsened: the first ``keep_first`` records and the most recent half stay at full resolution,
and the records in between merge in adjacent pairs (``merge_rules``: exact counts, sums and sums
of squares, added histograms, maxima, weighted means). Every record keeps its span: ``iters``
(first iteration), ``iter_end`` (last) and ``n_steps`` (recorded batches merged into it). So
memory and checkpoints stay bounded whatever the run length.

Fields have the record axis at 1: per-layer fields are (L, M, ...), run-wide ones (1, M).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from actscope.telemetry.merge_rules import RULES, fill_value, merge_pairs

__all__ = ["HostStore"]

_INT_FIELDS = ("iters", "iter_end", "n_steps", "ran", "hist", "hist_under", "hist_over")


def _fill(key: str, dtype: Any) -> float:
    return 0 if np.dtype(dtype).kind in "iu" else fill_value(key)


class HostStore:
    """Bounded, coarsening host record store (numpy)."""

    def __init__(self, max_records: int, keep_first: int) -> None:
        self.max_records, self.keep_first = max_records, keep_first
        self.f: dict[str, np.ndarray] = {}  # field -> (rows, capacity, ...)
        self.size = 0
        self.total_steps = 0  # recorded batches appended so far (whatever the coarsening)

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        """Bytes held (capacity included)."""
        return sum(v.nbytes for v in self.f.values())

    def arrays(self) -> dict[str, np.ndarray]:
        """The held records of every field (views, record axis 1)."""
        return {k: v[:, : self.size] for k, v in self.f.items()}

    # ---- appending -----------------------------------------------------------------------
    def append(self, rec: dict[str, np.ndarray]) -> None:
        """Append records (every field with the record axis at 1); coarsens when full."""
        unknown = sorted(set(rec) - set(RULES))
        if unknown:
            raise KeyError(f"no merge rule for record fields {unknown}: add them to RULES")
        n = rec["iters"].shape[1]
        self.total_steps += int(rec["n_steps"].sum())
        done = 0
        while done < n:
            if self.size >= self.max_records:
                self.coarsen()
            take = min(n - done, self.max_records - self.size)
            self._put({k: v[:, done:done + take] for k, v in rec.items()}, take)
            done += take

    def _put(self, rec: dict[str, np.ndarray], n: int) -> None:
        need = self.size + n
        for key in set(rec) | set(self.f):
            val = rec.get(key)
            buf = self.f.get(key)
            if buf is None:  # a field that starts now: nothing in the earlier records
                buf = self._new(key, val, max(need, 64))
            if val is not None and val.shape[0] > buf.shape[0]:  # a scalar first given now
                more = np.full((val.shape[0] - buf.shape[0], *buf.shape[1:]), _fill(key, buf.dtype),
                               dtype=buf.dtype)
                buf = np.concatenate([buf, more])
            if buf.shape[1] < need:
                cap = min(self.max_records, max(need, 2 * buf.shape[1]))
                new = self._new(key, buf, cap)
                new[:, : self.size] = buf[:, : self.size]
                buf = new
            if val is None:  # a field this chunk does not have
                buf[:, self.size:need] = _fill(key, buf.dtype)
            else:
                rows = val.shape[0]
                buf[:rows, self.size:need] = val
                buf[rows:, self.size:need] = _fill(key, buf.dtype)
            self.f[key] = buf
        self.size = need

    def _new(self, key: str, like: np.ndarray, cap: int) -> np.ndarray:
        dtype = np.int64 if key in _INT_FIELDS else np.float64
        buf = np.empty((like.shape[0], min(cap, self.max_records), *like.shape[2:]), dtype=dtype)
        buf[:, : self.size] = _fill(key, dtype)
        return buf

    # ---- coarsening ----------------------------------------------------------------------
    def coarsen(self) -> None:
        """Merge adjacent pairs between the first ``keep_first`` and the recent half."""
        k, end = self.keep_first, self.size - self.max_records // 2
        pairs = (end - k) // 2
        if pairs <= 0:
            return
        ia = np.arange(k, k + 2 * pairs, 2)
        merged = merge_pairs(self.arrays(), ia, ia + 1)
        tail = k + 2 * pairs  # an odd record before the recent half stays as it is
        for key, buf in self.f.items():
            rest = buf[:, tail: self.size].copy()
            buf[:, k:k + pairs] = merged[key]
            buf[:, k + pairs: k + pairs + rest.shape[1]] = rest
        self.size -= pairs

    # ---- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The held records (copies, trimmed to the size) and the counters."""
        return {"fields": {k: v.copy() for k, v in self.arrays().items()},
                "total_steps": self.total_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``."""
        fields = {k: np.asarray(v) for k, v in state["fields"].items()}
        self.size = next(iter(fields.values())).shape[1] if fields else 0
        self.f = {}
        for key, val in fields.items():
            buf = self._new(key, val, max(self.size, 64))
            buf[:, : self.size] = val
            self.f[key] = buf
        self.total_steps = int(state["total_steps"])
