"""What the recording shows about the run that its context could not see when it was built.

The context is read at attach: a schedule written by hand (nanoGPT's ``get_lr(it)`` assigned to
each param group, a Lightning ``optimizer_step`` override) is invisible there. Where the
learning rate is recorded per step (the ``lr`` scalar: Lightning and HF log it, ``watch()``
reads it at each optimizer step), the diagnosis reads the schedule from it, so that advice does
not propose a warm-up the run already has.
"""

from __future__ import annotations

import numpy as np

from actscope.diagnosis.series import scalar
from actscope.telemetry.record import Telemetry

__all__ = ["observed_warmup", "with_observed"]

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


def with_observed(t: Telemetry, ctx: dict) -> dict:
    """``ctx`` with what the recording shows added (a copy; ``ctx`` itself is not changed):
    ``schedule.warmup`` True where the recorded lr warms up (``schedule.observed`` says so)."""
    if not ctx or not observed_warmup(t):
        return ctx
    sched = ctx.get("schedule") or {}
    if sched.get("warmup") is True:
        return ctx
    return {**ctx, "schedule": {**sched, "type": sched.get("type") or "recorded lr",
                                "warmup": True, "observed": True}}
