"""What the recording shows about the run that its context could not see when it was built.

The context is read at attach: a schedule written by hand (nanoGPT's ``get_lr(it)`` assigned to
each param group, a Lightning ``optimizer_step`` override) is invisible there. Where the
learning rate is recorded per step (the ``lr`` scalar: Lightning and HF log it, ``watch()``
reads it at each optimizer step), the diagnosis reads the schedule from it, so that advice does
not propose a warm-up the run already has. Likewise a ``clip_grad_norm_`` written in the loop:
``watch()`` records the optimizer's total gradient norm (``grad_norm_total``) on the signal
cadence, and clipped steps all sit at the max norm.
"""

from __future__ import annotations

import numpy as np

from actscope.diagnosis.series import scalar
from actscope.telemetry.record import Telemetry

__all__ = ["observed_clip", "observed_warmup", "with_observed"]

# The first recorded lr at most this share of a later one: the schedule ramps up (a warm-up;
# a decaying or constant schedule starts at its largest lr).
_WARM_START = 0.5


def observed_warmup(t: Telemetry) -> bool:
    """Whether the recorded ``lr`` starts below ``_WARM_START`` x its later peak (and above 0)."""
    lr = scalar(t, "lr")
    if lr is None:
        return False
    lr = lr[np.isfinite(lr)]
    if len(lr) < 2:
        return False
    peak = float(lr.max())
    return peak > 0 and float(lr[0]) <= _WARM_START * peak and int(np.argmax(lr)) > 0


# A clip is seen when the largest recorded total gradient norm is shared, within this relative
# distance, by at least _CLIP_HITS records and _CLIP_SHARE of the measured ones: clip_grad_norm_
# scales the gradients to max_norm / (norm + 1e-6), so clipped steps sit at max_norm to ~1e-6,
# and unclipped norms of a real run never repeat to 5 digits.
_CLIP_TOL, _CLIP_HITS, _CLIP_SHARE = 1e-4, 3, 0.2


def observed_clip(t: Telemetry) -> float | None:
    """The max norm a loop clips its gradients to, read from the recorded ``grad_norm_total``
    (``watch()``: the norm the optimizer step sees, after any clipping), or None."""
    total = scalar(t, "grad_norm_total")
    if total is None:
        return None
    total = total[np.isfinite(total)]
    if len(total) < _CLIP_HITS:
        return None
    top = float(total.max())
    hits = int((np.abs(total - top) <= _CLIP_TOL * top).sum())
    if top <= 0 or hits < _CLIP_HITS or hits < _CLIP_SHARE * len(total):
        return None
    return top


def with_observed(t: Telemetry, ctx: dict) -> dict:
    """``ctx`` with what the recording shows added (a copy; ``ctx`` itself is not changed):
    ``schedule.warmup`` True where the recorded lr warms up (``schedule.observed`` says so),
    ``grad_clip`` where the recorded total gradient norm shows a clip (``grad_clip_observed``)."""
    if not ctx:
        return ctx
    clip = observed_clip(t) if ctx.get("grad_clip") is None else None
    if clip is not None:
        ctx = {**ctx, "grad_clip": clip, "grad_clip_observed": True}
    if not observed_warmup(t):
        return ctx
    sched = ctx.get("schedule") or {}
    if sched.get("warmup") is True:
        return ctx
    return {**ctx, "schedule": {**sched, "type": sched.get("type") or "recorded lr",
                                "warmup": True, "observed": True}}
