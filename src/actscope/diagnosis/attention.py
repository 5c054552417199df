"""Attention: the max pre-softmax logit grows large (Wortsman et al. 2023) and the attention
entropy collapses towards 0 (Zhai et al. 2023).

Reads ``attn_logit_max`` and ``attn_entropy`` (NaN for layers without attention). Logits: the
late median above ``attn_logit_max`` and ``attn_logit_growth`` times the early median (a model
sharp by design, or a pretrained one, does not grow). Entropy: the late median below
``attn_entropy_min`` nats (every head near one-hot), or below ``attn_entropy_drop`` of its early
value and ``attn_entropy_drop_level`` nats.
"""

from __future__ import annotations

import math

import numpy as np

from actscope.diagnosis.advice import Advice
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.series import early, field, first_iter, label, late, start
from actscope.diagnosis.thresholds import Thresholds
from actscope.telemetry.record import Telemetry

__all__ = ["attention_findings"]


def _logits(t: Telemetry, th: Thresholds, x: np.ndarray) -> tuple[dict, list]:
    hits, firsts = {}, []
    for i, name in enumerate(t.names):
        if np.isfinite(x[i]).sum() < th.min_records:
            continue
        e, lt = start(x[i], th), late(x[i], th)
        base = max(abs(e), 1.0)  # logits are in nats: growth from ~0 is measured from 1
        if lt > th.attn_logit_max and lt >= th.attn_logit_growth * base:
            hits[name] = {"max_logit_early": e, "max_logit_late": lt}
            firsts.append(first_iter(t, x[i] > max(th.attn_logit_max,
                                                   th.attn_logit_growth * base)))
    return hits, firsts


def _entropy(t: Telemetry, th: Thresholds, x: np.ndarray) -> tuple[dict, list]:
    hits, firsts = {}, []
    for i, name in enumerate(t.names):
        if np.isfinite(x[i]).sum() < th.min_records:
            continue
        e, lt = early(x[i], th), late(x[i], th)
        dropped = lt < th.attn_entropy_drop * e and lt < th.attn_entropy_drop_level
        if lt < th.attn_entropy_min or dropped:
            hits[name] = {"entropy_early": e, "entropy_late": lt}
            level = th.attn_entropy_min if not dropped else max(th.attn_entropy_min,
                                                                 th.attn_entropy_drop * e)
            firsts.append(first_iter(t, x[i] < level))
    return hits, firsts


def attention_findings(t: Telemetry, th: Thresholds, ctx: dict) -> list[Finding]:
    """Attention-logit growth and attention-entropy collapse."""
    adv, out = Advice(ctx), []
    lg, en = field(t, "attn_logit_max"), field(t, "attn_entropy")
    if lg is not None:
        hits, firsts = _logits(t, th, lg)
        if hits:
            top = max(hits.values(), key=lambda v: v["max_logit_late"])
            names = list(hits)
            out.append(Finding(
                layer=", ".join(names), kind="attention_logits",
                message=f"{label(names)}: the max attention logit grew to "
                        f"{top['max_logit_late']:.3g} (from {top['max_logit_early']:.3g}): "
                        f"attention saturates to one-hot",
                evidence={"layers": hits}, suggestion=adv.for_kind("attention_logits", names),
                first_iter=min((f for f in firsts if f is not None), default=None)))
    if en is not None:
        hits, firsts = _entropy(t, th, en)
        if hits:
            low = min(hits.values(), key=lambda v: v["entropy_late"])
            names = list(hits)
            e = low["entropy_early"]
            out.append(Finding(
                layer=", ".join(names), kind="attention_entropy",
                message=f"{label(names)}: attention entropy collapsed to "
                        f"{low['entropy_late']:.2g} nats"
                        + (f" (from {e:.2g})" if math.isfinite(e) else ""),
                evidence={"layers": hits}, suggestion=adv.for_kind("attention_entropy", names),
                first_iter=min((f for f in firsts if f is not None), default=None)))
    return out
