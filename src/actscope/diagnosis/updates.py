"""Update size: the update/weight ratio ||dW|| / ||W|| per step, far below or far above healthy.

Karpathy's rule of thumb puts healthy values near 1e-3. A layer whose median ratio (over the
records after the first, where a warm-up or the optimizer's first step may be unusual) is below
``stall_ratio`` is stalled. Updates are oversized where the ratio stays above
``oversized_ratio`` for a window of records (the largest rolling median): Adam at a too-high lr
rewrites the weights early, and its ratio then falls as the weights it inflated grow, so a
median over the whole run would hide it. A layer with no gradient in any record (frozen on
purpose) is not stalled.
"""

from __future__ import annotations

import numpy as np

from actscope.diagnosis.advice import Advice
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.series import field, first_iter, label, nanmedian, rolling_median, window
from actscope.diagnosis.thresholds import Thresholds
from actscope.telemetry.record import Telemetry

__all__ = ["update_findings"]


def update_findings(t: Telemetry, th: Thresholds, ctx: dict) -> list[Finding]:
    """Stalled and oversized updates."""
    u = field(t, "update_ratio")
    if u is None or u.shape[1] < 2 or not np.isfinite(u).any():
        return []
    grads = field(t, "grad_norm")
    body = u[:, 1:] if u.shape[1] > th.min_records else u
    med = nanmedian(body, axis=1)  # (L,)
    stalled, oversized = {}, {}
    for i, name in enumerate(t.names):
        m = med[i]
        if not np.isfinite(m):
            continue
        frozen = grads is not None and not (np.nan_to_num(grads[i]) > 0).any()
        if m < th.stall_ratio and not frozen:
            stalled[name] = float(m)
            continue
        n = int(np.isfinite(u[i]).sum())
        if n >= th.min_records:
            peak = float(np.nanmax(rolling_median(u[i], window(n, th))))
            if peak > th.oversized_ratio:
                oversized[name] = peak
    adv = Advice(ctx)
    out = []
    if oversized:
        hits = list(oversized)
        idx = [t.names.index(n) for n in hits]
        out.append(Finding(
            layer=", ".join(hits), kind="oversized_updates",
            message=f"{label(hits)}: each step changes the weights by up to "
                    f"{max(oversized.values()):.2g} of their size (oversized updates; "
                    f"~1e-3 is healthy)",
            evidence={"peak_update_ratio": oversized},
            suggestion=adv.for_kind("oversized_updates", hits),
            first_iter=first_iter(t, (u[idx] > th.oversized_ratio).any(axis=0))))
    if stalled:
        hits = list(stalled)
        idx = [t.names.index(n) for n in hits]
        out.append(Finding(
            layer=", ".join(hits), kind="stalled",
            message=f"{label(hits)}: each step changes the weights by only "
                    f"{max(stalled.values()):.2g} of their size or less (stalled training; "
                    f"~1e-3 is healthy)",
            evidence={"median_update_ratio": stalled},
            suggestion=adv.for_kind("stalled", hits),
            first_iter=first_iter(t, np.isfinite(u[idx]).any(axis=0))))
    return out
