"""Update size: the update/weight ratio ||dW|| / ||W|| per step, far below or far above healthy.

Karpathy's rule of thumb puts healthy values near 1e-3. A layer whose median ratio (over the
records after the first, where a warm-up or the optimizer's first step may be unusual) is below
``stall_ratio`` is stalled. Updates are oversized where the ratio stays above
``oversized_ratio`` for a window of records (the largest rolling median): Adam at a too-high lr
rewrites the weights early, and its ratio then falls as the weights it inflated grow, so a
median over the whole run would hide it. The rolling median runs over the records that hold a
ratio (it is measured on every ``signal_every``-th record; a window of raw records would hold one
value). Where the loss is recorded and it fell steadily (to ``loss_progress`` of its start,
never above ``loss_spike`` times it), large steps are doing their job and are not reported: SGD
at lr 20 on an LSTM language model (PyTorch's own recipe) moves its weights by ~0.25 a step and
trains well. A layer with no gradient in any record (frozen on purpose) is not stalled, nor one
whose parameters the optimizer does not hold (context ``trained: false``: a linear probe's
backbone). A stalled layer whose updates are all exactly 0 while its gradient is not is told
apart in the message and the advice: no step moved it (an lr of 0 from a schedule, an optimizer
that does not hold it), so "raise the learning rate" would not help. A layer whose weights start
at 0 (context ``zero_init``: a zero-initialised head) is not judged oversized: from 0 its weights
grow about linearly, and its ratio falls as 1/step whatever the lr.
"""

from __future__ import annotations

import numpy as np

from actscope.diagnosis.advice import Advice
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.series import (
    early,
    field,
    first_iter,
    label,
    late,
    layer_ctx,
    nanmedian,
    rolling_median,
    scalar,
    window,
)
from actscope.diagnosis.thresholds import Thresholds
from actscope.telemetry.record import Telemetry

__all__ = ["update_findings"]


def loss_progressing(t: Telemetry, th: Thresholds) -> bool:
    """Whether the recorded loss fell steadily: its late median at most ``loss_progress`` x its
    early median and its rolling median never above ``loss_spike`` x it (False: no loss)."""
    loss = scalar(t, "loss")
    if loss is None:
        return False
    loss = loss[np.isfinite(loss)]
    if len(loss) < th.min_records:
        return False
    e = min(float(loss[0]), early(loss, th))  # a spike within the first window counts
    if not e > 0:
        return False
    w = window(len(loss), th)
    # full windows only: the partial ones at the start are medians of the first few losses,
    # which a loss that halves within its first window puts above loss_spike x its early median
    smooth = rolling_median(loss, w)[w - 1:]
    return late(loss, th) <= th.loss_progress * e and float(smooth.max()) <= th.loss_spike * e


def update_findings(t: Telemetry, th: Thresholds, ctx: dict) -> list[Finding]:
    """Stalled and oversized updates."""
    u = field(t, "update_ratio")
    if u is None or u.shape[1] < 2 or not np.isfinite(u).any():
        return []
    grads = field(t, "grad_norm")
    body = u[:, 1:] if u.shape[1] > th.min_records else u
    med = nanmedian(body, axis=1)  # (L,)
    stalled, oversized = {}, {}
    judge_size = not loss_progressing(t, th)
    for i, name in enumerate(t.names):
        m = med[i]
        if not np.isfinite(m):
            continue
        # frozen: no gradient ever, or parameters the optimizer does not hold (context)
        frozen = (grads is not None and not (np.nan_to_num(grads[i]) > 0).any()) or \
            layer_ctx(ctx, name).get("trained") is False
        if m < th.stall_ratio and not frozen:
            stalled[name] = float(m)
            continue
        vals = u[i][np.isfinite(u[i])]
        # weights that start at 0 grow ~linearly, so ||dW|| / ||W|| falls as 1/step whatever
        # the lr (1, 0.5, 0.33...): their ratio says nothing about the step size
        zero_init = bool(layer_ctx(ctx, name).get("zero_init"))
        if judge_size and not zero_init and len(vals) >= th.min_records:
            w = window(len(vals), th)
            peak = float(np.max(rolling_median(vals, w)[w - 1:]))  # full windows: no lone value
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
        # exactly 0 with a gradient: no step moved them (an lr of 0, an optimizer without
        # them), which a higher lr cannot fix; otherwise the steps are just tiny
        zero = max(stalled.values()) == 0.0
        what = ("do not change at all (every update is exactly 0" if zero else
                f"change by only {max(stalled.values()):.2g} of their size or less each step (")
        out.append(Finding(
            layer=", ".join(hits), kind="stalled",
            message=f"{label(hits)}: the weights {what}; stalled training, ~1e-3 is healthy)",
            evidence={"median_update_ratio": stalled},
            suggestion=adv.for_kind("frozen_updates" if zero else "stalled", hits),
            first_iter=first_iter(t, np.isfinite(u[idx]).any(axis=0))))
    return out
