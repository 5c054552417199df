"""``diagnose(telemetry)``: every family of rules over one recording, findings most severe first.

Each family lives in its own module and reads only the ``Telemetry`` and its run context
(``meta["context"]``; numpy, no torch); this file is the list of families. Non-finite values
come first: after NaN/Inf the other statistics mean nothing, so the families judge only the
records before it. Then the findings are ranked and related ones merged (ranking.py). What the
recording shows about the run (a warm-up in the recorded lr) joins the context first
(observed.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from actscope.diagnosis.activations import activation_findings
from actscope.diagnosis.attention import attention_findings
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.gradients import gradient_findings
from actscope.diagnosis.growth import growth_findings
from actscope.diagnosis.logits import logit_findings
from actscope.diagnosis.massive import massive_findings
from actscope.diagnosis.nonfinite import non_finite
from actscope.diagnosis.observed import with_observed
from actscope.diagnosis.ranking import rank_and_merge
from actscope.diagnosis.saturation import saturation_findings
from actscope.diagnosis.series import ctx_of
from actscope.diagnosis.thresholds import Thresholds
from actscope.diagnosis.updates import update_findings
from actscope.telemetry.record import Telemetry

__all__ = ["diagnose", "FAMILIES"]

# One entry per family of rules: (telemetry, thresholds, context) -> findings.
FAMILIES = (logit_findings, gradient_findings, attention_findings, growth_findings,
            update_findings, massive_findings, saturation_findings, activation_findings)

# Per-record arrays, (L, N) or (L, N, ...) or (N,) / (S, N): cut together at a record.
_LAYER_RECORD = ("mean", "std", "dead", "hist", "ran", "mad", "grad_mean", "grad_std",
                 "hist_under", "hist_over", "absmax", "nonfinite", "grad_norm", "update_ratio",
                 "attn_logit_max", "attn_entropy", "scalars")
_RECORD = ("iters", "out_lse", "out_absmax", "iter_end", "n_steps")


def _before(t: Telemetry, record: int) -> Telemetry:
    """``t`` cut to its first ``record`` records (every per-record field it has)."""
    cut: dict[str, Any] = {}
    for name in _LAYER_RECORD:
        a = getattr(t, name, None)
        if a is not None and a.ndim >= 2:
            cut[name] = a[:, :record]
    rng = getattr(t, "hist_range", None)
    if rng is not None and rng.ndim == 3:  # a histogram range per record: (L, N, 2)
        cut["hist_range"] = rng[:, :record]
    for name in _RECORD:
        a = getattr(t, name, None)
        if a is not None:
            cut[name] = a[:record]
    known = {k: v for k, v in cut.items() if k in t.__dataclass_fields__}
    out = replace(t, **known)
    for k, v in cut.items():  # fields a newer recorder adds beyond this Telemetry's own
        if k not in known:
            setattr(out, k, v)
    return out


def diagnose(telemetry: Telemetry, context: dict | None = None,
             thresholds: Thresholds | None = None) -> list[Finding]:
    """Findings about the recorded run, most severe first (non-finite, divergence, ...).

    ``context`` is the run context (CONTRACT.md); default ``telemetry.meta["context"]``.
    """
    if isinstance(context, Thresholds):  # the older call diagnose(telemetry, thresholds)
        context, thresholds = None, context
    th = thresholds or Thresholds()
    t = telemetry
    if t.mean.size == 0:
        return []
    ctx = with_observed(t, ctx_of(t, context))  # a hand-written warm-up seen in the lr
    found = non_finite(t, ctx)
    if found:
        record = found[0].evidence["record"]
        if record == 0:
            return found
        t = _before(t, record)
    for family in FAMILIES:
        found += family(t, th, ctx)
    return rank_and_merge(found)
