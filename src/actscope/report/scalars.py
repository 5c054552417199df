"""A run's scalars without metrics.csv: the loss and eval metrics from Telemetry ``scalars``.

``watch()``, Lightning and Hugging Face runs have no metrics.csv of their own; their loss, learning
rate and logged metrics travel in ``Telemetry.scalars`` on the telemetry's step axis. This module
turns them into metrics.csv rows (so ``actscope compare`` compares them with ``actscope fit`` runs)
and answers the log-scale question every line plot asks. numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from actscope.telemetry.record import Telemetry

__all__ = ["TRAIN_LOSS", "EVAL_ALIASES", "train_loss", "metrics_rows_from_scalars",
           "wants_log_scale"]

TRAIN_LOSS = ("loss", "train_loss", "train/loss")
# A trainer's eval metric names -> metrics.csv's columns (Lightning: val_*, HF: eval_*).
EVAL_ALIASES = {"valid_loss": ("val_loss", "eval_loss", "valid_loss", "val/loss"),
                "valid_accuracy": ("val_acc", "val_accuracy", "eval_accuracy", "valid_accuracy",
                                   "val/acc")}


def _row(t: Telemetry, names: tuple[str, ...]) -> np.ndarray | None:
    for n in names:
        v = t.scalar(n)
        if v is not None and np.isfinite(v).any():
            return np.asarray(v, np.float64)
    return None


def train_loss(t: Telemetry | None) -> np.ndarray | None:
    """(N,) the training loss per record from ``scalars`` (NaN where absent), or None."""
    return None if t is None or t.scalars is None else _row(t, TRAIN_LOSS)


def metrics_rows_from_scalars(t: Telemetry) -> list[dict[str, Any]]:
    """metrics.csv rows for a run that has only scalars: one per eval point, else one final row.

    An "epoch" row ends at each record with an eval metric; its ``train_loss`` is the mean loss
    since the previous row. Without eval metrics the run is one row (the loss over its last
    tenth): enough for compare's table, honest about what was recorded.
    """
    if t.scalars is None or not len(t.iters):
        return []
    loss = train_loss(t)
    evals = {col: r for col, names in EVAL_ALIASES.items() if (r := _row(t, names)) is not None}
    ends = sorted({int(j) for r in evals.values() for j in np.flatnonzero(np.isfinite(r))})
    n = len(t.iters)
    if not ends:
        if loss is None:
            return []
        ends, starts = [n - 1], [max(n - max(n // 10, 1), 0)]
    else:
        starts = [0] + [e + 1 for e in ends[:-1]]
    rows = []
    for epoch, (a, b) in enumerate(zip(starts, ends, strict=True)):
        row: dict[str, Any] = {"epoch": epoch}
        if loss is not None:
            seg = loss[a:b + 1]
            row["train_loss"] = float(np.nanmean(seg)) if np.isfinite(seg).any() else None
        for col, r in evals.items():
            row[col] = float(r[b]) if np.isfinite(r[b]) else None
        rows.append(row)
    return rows


def wants_log_scale(*arrays: np.ndarray | None, decades: float = 2.0) -> bool:
    """True when the finite positive values span more than ``decades`` powers of ten (and there
    are no non-positive finite values, which a log axis cannot show)."""
    vals = [np.asarray(a, np.float64).ravel() for a in arrays if a is not None]
    if not vals:
        return False
    v = np.concatenate(vals)
    v = v[np.isfinite(v)]
    if not v.size or (v <= 0).any():
        return False
    return bool(np.log10(v.max() / v.min()) > decades)
