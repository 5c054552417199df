"""Output-logit divergence: the model's logits (max |logit|, mean log-sum-exp) grow large.

Reads ``out_absmax`` and ``out_lse`` (NaN when the output is not logits). Fires when the late
median max |logit| is above ``logit_level`` (or the log-sum-exp above ``lse_level``) and
``logit_growth`` times its early value: a softmax over logits of 100 cannot move any more, the
z-loss signal of PaLM. A pretrained LM whose logits start large does not grow, and is quiet.
Where the loss is recorded and starts far above the first log-sum-exp, the output is a
regression, not logits (a reconstruction of 0-255 pixels grows to 255 by design): no finding.
The finding names the output layer (the context's ``output`` layer when watched, else the last
layer in forward order).
"""

from __future__ import annotations

import numpy as np

from actscope.diagnosis.advice import Advice
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.series import (
    field,
    first_iter,
    forward_order,
    late,
    layer_ctx,
    scalar,
    start,
)
from actscope.diagnosis.thresholds import Thresholds
from actscope.telemetry.record import Telemetry

__all__ = ["logit_findings"]


def _grew(x: np.ndarray | None, th: Thresholds, level: float) -> tuple[float, float] | None:
    if x is None or np.isfinite(x).sum() < th.min_records:
        return None
    e, lt = start(x, th), late(x, th)
    if lt > level and lt >= th.logit_growth * max(abs(e), 1.0):
        return e, lt
    return None


def _not_logits(t: Telemetry, lse: np.ndarray | None) -> bool:
    """Whether the recorded loss says the output is not classification logits: a cross-entropy
    starts near the log-sum-exp of the first logits (log of the number of classes when they
    are near 0, at most about it when they are not); a regression whose targets need outputs
    of 100 starts at a squared error far above it."""
    loss = scalar(t, "loss")
    if loss is None or lse is None:
        return False
    both = np.nonzero(np.isfinite(loss) & np.isfinite(lse))[0]
    if not len(both):
        return False
    j = both[0]  # the first record: the model as initialised
    return bool(loss[j] > 2.0 * abs(lse[j]) + 1.0)


def logit_findings(t: Telemetry, th: Thresholds, ctx: dict) -> list[Finding]:
    """Output-logit divergence (a model-level finding)."""
    mx, lse = field(t, "out_absmax"), field(t, "out_lse")
    if _not_logits(t, lse):
        return []
    by_max, by_lse = _grew(mx, th, th.logit_level), _grew(lse, th, th.lse_level)
    if by_max is None and by_lse is None or not t.names:
        return []
    order = forward_order(t)
    out_layer = next((t.names[i] for i in order
                      if layer_ctx(ctx, t.names[i]).get("kind") == "output"), t.names[order[-1]])
    ev: dict = {}
    if by_max:
        ev["out_absmax_early"], ev["out_absmax_late"] = by_max
    if by_lse:
        ev["out_lse_early"], ev["out_lse_late"] = by_lse
    what = (f"max |logit| {by_max[0]:.3g} -> {by_max[1]:.3g}" if by_max
            else f"log-sum-exp {by_lse[0]:.3g} -> {by_lse[1]:.3g}")
    series = mx if by_max else lse
    level = th.logit_level if by_max else th.lse_level
    return [Finding(
        layer=out_layer, kind="logit_divergence",
        message=f"the output logits diverge ({what}): the softmax saturates",
        evidence=ev, suggestion=Advice(ctx).for_kind("logit_divergence", [out_layer]),
        first_iter=first_iter(t, np.nan_to_num(series) > level))]
