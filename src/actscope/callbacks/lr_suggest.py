"""The LR finder's suggestion rules: pure functions of (lrs, losses), testable without a Learner.

The default is the valley rule: fastai compared the rules on many tasks (fastai PR #3377) and
found it the most reliable; the steepest-slope rule is easily fooled by one spike in a noisy loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from actscope.errors import UsageError

__all__ = ["SUGGESTERS", "Suggester", "smooth_losses", "suggest_minimum", "suggest_steepest",
           "suggest_valley"]

Suggester = Callable[[np.ndarray, np.ndarray], float]


def smooth_losses(losses: np.ndarray, beta: float = 0.98) -> np.ndarray:
    """Debiased exponential moving average of ``losses`` (fastai's smooth_loss)."""
    out = np.empty(len(losses), dtype=np.float64)
    avg = 0.0
    for i, loss in enumerate(np.asarray(losses, dtype=np.float64)):
        avg = beta * avg + (1 - beta) * loss
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def _clean(lrs: Any, losses: Any, min_points: int, skip_start: int, skip_end: int,
           rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Drop the noisy first/last points, then NaN/inf points; check enough are left."""
    lrs, losses = np.asarray(lrs, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    if lrs.ndim != 1 or lrs.shape != losses.shape:
        raise UsageError(f"{rule}: lrs and losses must be 1-D and the same length, got shapes "
                         f"{lrs.shape} and {losses.shape}")
    lrs, losses = lrs[skip_start:len(lrs) - skip_end], losses[skip_start:len(losses) - skip_end]
    keep = np.isfinite(lrs) & np.isfinite(losses) & (lrs > 0)
    lrs, losses = lrs[keep], losses[keep]
    if len(lrs) < min_points:
        raise UsageError(f"{rule}: only {len(lrs)} usable points (need {min_points}) after "
                         f"dropping the first {skip_start}, the last {skip_end} and non-finite "
                         "ones; run a longer sweep (raise num_it or max_lr, or lower min_lr)")
    return lrs, losses


def suggest_valley(lrs: Any, losses: Any, skip_start: int = 1, skip_end: int = 1) -> float:
    """fastai's valley: the longest descending stretch of the loss, 2/3 of the way down it."""
    lrs, losses = _clean(lrs, losses, 3, skip_start, skip_end, "suggest_valley")
    n = len(losses)
    run = np.ones(n, dtype=np.int64)  # run[i]: longest decreasing subsequence ending at i
    max_start = max_end = 0
    for i in range(1, n):
        higher = losses[:i] > losses[i]
        if higher.any():
            run[i] = run[:i][higher].max() + 1
        if run[max_end] < run[i]:
            max_end, max_start = i, i - run[i]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[min(idx, n - 1)])


def suggest_steepest(lrs: Any, losses: Any, skip_start: int = 1, skip_end: int = 1) -> float:
    """The lr where the (smoothed) loss falls fastest per unit of log(lr)."""
    lrs, losses = _clean(lrs, losses, 3, skip_start, skip_end, "suggest_steepest")
    slopes = np.diff(losses) / np.diff(np.log(lrs))
    return float(lrs[int(np.argmin(slopes))])


def suggest_minimum(lrs: Any, losses: Any, skip_start: int = 1, skip_end: int = 1) -> float:
    """The lr at the lowest loss, divided by 10 (the lesson's rule of thumb)."""
    lrs, losses = _clean(lrs, losses, 1, skip_start, skip_end, "suggest_minimum")
    return float(lrs[int(np.argmin(losses))] / 10)


SUGGESTERS: dict[str, Suggester] = {
    "valley": suggest_valley, "steepest": suggest_steepest, "minimum": suggest_minimum}
