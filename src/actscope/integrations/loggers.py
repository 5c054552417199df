"""Per-layer scalars for the trainers' own loggers, sent at flush time (never a sync per step).

``LayerScalars`` turns a chunk of newly flushed records (a host ``Telemetry``) into
``(step, {"actscope/<layer>/std": value, ...})`` points (``<layer>``: ``layer_tag`` of the
layer's name), one per ``log_every`` optimizer steps.
``FlushFeed`` hands each such chunk to listeners: it is driven from the recorders' one end-of-batch
call site and reads records back only when a flush has produced new ones (every ``chunk``
recorded steps), so a logger costs one read-back per flush, none per step.

What is logged per layer (NaN values are left out, so a point has only what was recorded):
``std``; ``max_abs`` (exact max |x|, when recorded); ``dead_share`` only where dead units can
exist (a zero-floored output per ``meta["context"]``; every layer when there is no context);
``grad_norm`` and ``update_ratio`` when recorded.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from actscope.errors import UsageError
from actscope.telemetry.record import Telemetry

__all__ = ["FlushFeed", "LayerScalars", "PREFIX", "check_log_every", "layer_tag", "records_between"]

PREFIX = "actscope"
# (Telemetry field, metric name) for the per-layer (L, N) fields sent when present.
_FIELDS = (("std", "std"), ("absmax", "max_abs"), ("dead", "dead_share"),
           ("grad_norm", "grad_norm"), ("update_ratio", "update_ratio"))


def check_log_every(owner: str, log_every: Any) -> int:
    """``log_every`` as an int >= 1, or a ``UsageError`` naming ``owner``."""
    if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 1:
        raise UsageError(f"{owner}(log_every={log_every!r}): log_every must be an int >= 1 (the "
                         "optimizer steps between two logged points); e.g. log_every=50")
    return log_every


def records_between(t: Telemetry, start: int, stop: int) -> Telemetry:
    """Records ``start:stop`` of ``t``: every per-record field cut alike, the rest kept."""
    cut: dict[str, Any] = {"iters": t.iters[start:stop]}
    for f in dataclasses.fields(t):
        v = getattr(t, f.name)
        if f.name == "iters" or not isinstance(v, np.ndarray):
            continue
        n = t.iters.shape[0]
        per_record = f.name != "channel_dead" and (f.name != "hist_range" or v.ndim == 3)
        if v.ndim >= 2 and v.shape[1] == n and per_record:
            cut[f.name] = v[:, start:stop]
        elif v.ndim == 1 and v.shape[0] == n and f.name in ("out_lse", "out_absmax"):
            cut[f.name] = v[start:stop]
    return dataclasses.replace(t, **cut)


def layer_tag(name: str) -> str:
    """A layer name as a logger-safe tag (TensorBoard, MLflow): ``"blocks.0 Sequential"`` ->
    ``"blocks.0_Sequential"`` (the same rule as the Learner's ``TensorBoardCallback``)."""
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", name).strip("_") or "layer"


def _dead_layers(t: Telemetry) -> list[bool]:
    """Per layer, whether its dead share means something (zero-floored outputs)."""
    layers = (t.meta.get("context") or {}).get("layers") if isinstance(t.meta, dict) else None
    if not layers:
        return [True] * len(t.names)
    return [bool((layers.get(n) or {}).get("zero_floored")) for n in t.names]


class LayerScalars:
    """Chunks of records -> logger points, at most one per ``log_every`` optimizer steps."""

    def __init__(self, log_every: int = 50, prefix: str = PREFIX) -> None:
        self.log_every, self.prefix = log_every, prefix
        self.next_due = 0  # the first optimizer step whose record is due

    def points(self, chunk: Telemetry) -> Iterator[tuple[int, dict[str, float]]]:
        """``(step, metrics)`` for each due record of ``chunk`` (records in step order)."""
        dead_ok = _dead_layers(chunk)
        for j, step in enumerate(chunk.iters.tolist()):
            if step < self.next_due:
                continue
            self.next_due = (step // self.log_every + 1) * self.log_every
            metrics = self.of_record(chunk, j, dead_ok)
            if metrics:
                yield int(step), metrics

    def of_record(self, t: Telemetry, j: int, dead_ok: list[bool] | None = None
                  ) -> dict[str, float]:
        """The metrics of record ``j`` of ``t`` (finite values only)."""
        dead_ok = _dead_layers(t) if dead_ok is None else dead_ok
        out: dict[str, float] = {}
        tags = [layer_tag(n) for n in t.names]
        for field, metric in _FIELDS:
            arr = getattr(t, field, None)
            if arr is None:
                continue
            for i in range(len(t.names)):
                if field == "dead" and not dead_ok[i]:
                    continue
                v = float(arr[i, j])
                if np.isfinite(v):
                    out[f"{self.prefix}/{tags[i]}/{metric}"] = v
        return out


class FlushFeed:
    """Hands newly flushed records (host ``Telemetry`` chunks) to listeners.

    Where the accumulator has its own flush listeners (``add_flush_listener``: the host record
    store, which copies each flush to the host asynchronously), they are used and ``poll`` does
    nothing. Otherwise ``poll()`` after each committed batch costs a comparison and reads back
    (one sync) only when a flush has produced new records. ``finish()`` flushes the records still
    in the chunk (end of training).
    """

    def __init__(self, acc: Any) -> None:
        self.acc = acc
        self.native = callable(getattr(acc, "add_flush_listener", None))
        self.listeners: list[Callable[[Telemetry], None]] = []
        self.sent = 0  # records already handed out (without native listeners)

    def add(self, fn: Callable[[Telemetry], None]) -> None:
        """Call ``fn(chunk)`` with each new chunk of flushed records."""
        if self.native:
            self.acc.add_flush_listener(fn)
        self.listeners.append(fn)

    def reset(self) -> None:
        """A new attach (or a restored state): records so far are not sent again."""
        self.sent = self.acc.n_records

    def poll(self) -> None:
        """Send the records a flush has produced since the last call (no device op otherwise)."""
        if self.native:
            return
        buf = self.acc.buf
        if self.listeners and buf is not None and buf.n > self.sent and not buf.slots.slot:
            self._send()

    def finish(self) -> None:
        """Flush and send every record not sent yet (one read-back)."""
        if self.native:
            if self.listeners and self.acc.n_records:
                self.acc.result()  # its flush calls the listeners with the rest
            return
        if self.listeners and self.acc.n_records > self.sent:
            self._send()

    def _send(self) -> None:
        t = self.acc.result()  # right after a flush the chunk is empty: nothing more is flushed
        n = t.iters.shape[0]
        if n <= self.sent:
            return
        chunk = records_between(t, self.sent, n)
        self.sent = n
        for fn in self.listeners:
            fn(chunk)
