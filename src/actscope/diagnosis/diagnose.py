"""``diagnose(telemetry)``: every family of rules over one recording, findings most severe first.

Each family lives in its own module and reads only the ``Telemetry`` (numpy, no torch); this
file is the list of families. Non-finite values come first: after NaN/Inf the other statistics
mean nothing, so the families judge only the records before it.
"""

from __future__ import annotations

from dataclasses import replace

from actscope.diagnosis.activations import activation_findings, non_finite
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.thresholds import Thresholds
from actscope.telemetry.record import Telemetry

__all__ = ["diagnose"]

# One entry per family of rules, in order of severity.
FAMILIES = (activation_findings,)


def _before(t: Telemetry, record: int) -> Telemetry:
    """``t`` cut to its first ``record`` records."""
    return replace(t, iters=t.iters[:record], mean=t.mean[:, :record], std=t.std[:, :record],
                   dead=t.dead[:, :record], hist=t.hist[:, :record],
                   hist_range=t.hist_range[:, :record],
                   iter_end=None if t.iter_end is None else t.iter_end[:record],
                   n_steps=None if t.n_steps is None else t.n_steps[:record],
                   ran=None if t.ran is None else t.ran[:, :record])


def diagnose(telemetry: Telemetry, thresholds: Thresholds | None = None) -> list[Finding]:
    """Findings about the recorded run, most severe first (non-finite, unstable, ...)."""
    th = thresholds or Thresholds()
    t = telemetry
    if t.mean.size == 0:
        return []
    found = non_finite(t)
    if found:
        record = found[0].evidence["record"]
        if record == 0:
            return found
        t = _before(t, record)
    for family in FAMILIES:
        found += family(t, th)
    return found
