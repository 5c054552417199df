"""Scale growth: over time (grew and stayed) and across depth (exploding through the layers).

Time: a layer's late std (median of the last window) at least ``growth_factor`` times its
starting std AND at least ``growth_level`` in absolute terms; the late window is the end of the
run, so the growth stayed. The starting std is the lower of the first record (the scale the init
gave) and the median of the first window: at a too-high lr (Adam's first steps move every weight
by ~lr) the scale can grow 10x within the first window, whose median alone would then hide it.
Shrinking is the mirror image: the late std at most 1/``growth_factor`` of the early std (median
of the first window) and below ``vanishing_std`` (weight decay that outweighs the gradient, a
schedule that drives the weights to 0). An std that overflowed float32 (inf while the values
are finite) counts as huge.
The output layer is left to logits.py: its scale is set by its targets.
Depth: over comparable layers (one module type, forward order: the blocks of a residual stream),
the median std grows ``depth_factor``x over a stretch of them, rising at most steps, to at least
``depth_level`` (a stream that grows from 0.02 to 0.5 runs at a healthy scale); a stage that a
normalised shortcut resets (a ResNet's next stage) ends the stretch, not the finding.
"""

from __future__ import annotations

import math

import numpy as np

from actscope.diagnosis.advice import Advice
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.series import (
    early,
    field,
    first_iter,
    groups,
    label,
    late,
    layer_ctx,
    nanmedian,
    rolling_median,
    window,
)
from actscope.diagnosis.thresholds import Thresholds
from actscope.telemetry.record import Telemetry

__all__ = ["growth_findings"]

_HUGE = 3.0e38  # an std that overflowed float32: larger than any finite one


def _scale(t: Telemetry) -> np.ndarray:
    """(L, N) the std, with +inf (overflowed sums of squares) read as huge."""
    std = np.asarray(t.std, np.float64)
    return np.where(np.isposinf(std), _HUGE, std)


def _start(x: np.ndarray, th: Thresholds) -> float:
    """The scale a series starts at: the lower of its first finite value and its early median."""
    idx = np.nonzero(np.isfinite(x))[0]
    return min(float(x[idx[0]]), early(x, th)) if len(idx) else math.nan


def _shrinking(t: Telemetry, th: Thresholds, ctx: dict, adv: Advice) -> list[Finding]:
    """Layers whose scale fell ``growth_factor``x over the run and stayed below
    ``vanishing_std`` (the output layer excepted: its scale follows its targets)."""
    if t.std.shape[1] < th.min_records:
        return []
    std = _scale(t)
    hits, evidence, firsts = [], {}, []
    for i, name in enumerate(t.names):
        if layer_ctx(ctx, name).get("kind") == "output":
            continue
        x = std[i]
        e, lt = early(x, th), late(x, th)
        if not (math.isfinite(e) and math.isfinite(lt)):
            continue
        if e < th.vanishing_std or lt * th.growth_factor > e or lt >= th.vanishing_std:
            continue  # it started small (vanishing: activations.py) or did not shrink 10x
        smooth = rolling_median(x, window(int(np.isfinite(x).sum()), th))
        hits.append(name)
        firsts.append(first_iter(t, smooth * th.growth_factor <= e))
        evidence[name] = {"std_early": e, "std_late": lt, "ratio": lt / e}
    if not hits:
        return []
    top = min(evidence.values(), key=lambda ev: ev["ratio"])
    return [Finding(
        layer=", ".join(hits), kind="shrinking",
        message=f"{label(hits)}: activation scale shrank during training and stayed small "
                f"(std {top['std_early']:.3g} -> {top['std_late']:.3g}, "
                f"{1 / max(top['ratio'], 1e-30):.0f}x smaller)",
        evidence={"layers": evidence},
        suggestion=adv.for_kind("shrinking", hits),
        first_iter=min((f for f in firsts if f is not None), default=None))]


def _growth(t: Telemetry, th: Thresholds, ctx: dict, adv: Advice) -> list[Finding]:
    if t.std.shape[1] < th.min_records:
        return []
    std = _scale(t)
    absmax = field(t, "absmax")
    hits, evidence, firsts = [], {}, []
    for i, name in enumerate(t.names):
        if layer_ctx(ctx, name).get("kind") == "output":
            continue  # its scale is set by its targets (a regression); logits: logits.py
        x = std[i]
        e, lt = _start(x, th), late(x, th)
        if not (math.isfinite(e) and math.isfinite(lt)):
            continue
        base = max(e, th.scale_floor)
        if lt < th.growth_factor * base or lt < th.growth_level:
            continue
        w = window(int(np.isfinite(x).sum()), th)
        smooth = rolling_median(x, w)
        hits.append(name)
        firsts.append(first_iter(t, smooth >= th.growth_factor * base))
        ev = {"std_early": e, "std_late": lt, "ratio": lt / base}
        if absmax is not None:
            ev["absmax_early"], ev["absmax_late"] = early(absmax[i], th), late(absmax[i], th)
        evidence[name] = ev
    if not hits:
        return []
    top = max(evidence.values(), key=lambda ev: ev["ratio"])
    return [Finding(
        layer=", ".join(hits), kind="growth",
        message=f"{label(hits)}: activation scale grew and stayed (std {top['std_early']:.3g} "
                f"-> {top['std_late']:.3g}, {top['ratio']:.0f}x)",
        evidence={"layers": evidence},
        suggestion=adv.for_kind("growth", hits),
        first_iter=min((f for f in firsts if f is not None), default=None))]


def _rising_span(s: np.ndarray, th: Thresholds) -> tuple[int, int] | None:
    """(a, b): the stretch of layers over which the std grows ``depth_factor``x or more, mostly
    step by step, up to ``depth_level`` or more (the largest such ratio), else None."""
    logs = np.log(np.maximum(s, th.scale_floor))
    best, span = 0.0, None
    for b in range(th.depth_min_layers - 1, len(s)):
        a = int(np.argmin(s[:b + 1]))
        if b - a + 1 < th.depth_min_layers or s[b] < th.depth_level:
            continue
        ratio = s[b] / max(s[a], th.scale_floor)
        rising = float((np.diff(logs[a:b + 1]) > 0).mean())
        if ratio >= th.depth_factor and rising >= th.depth_monotone and ratio > best:
            best, span = ratio, (a, b)
    return span


def _depth_growth(t: Telemetry, th: Thresholds, ctx: dict, adv: Advice) -> list[Finding]:
    if t.std.shape[1] == 0:
        return []
    typical = nanmedian(_scale(t), axis=1)  # (L,) each layer's median std over the run
    out = []
    for group in groups(t, ctx, th.depth_min_layers):
        s = np.array([typical[i] for i in group])
        keep = np.isfinite(s) & (s > 0)
        idx = [g for g, k in zip(group, keep, strict=True) if k]
        s = s[keep]
        if len(s) < th.depth_min_layers:
            continue
        span = _rising_span(s, th)
        if span is None:
            continue
        a, b = span
        ratio = s / max(s[a], th.scale_floor)
        hits = [t.names[idx[k]] for k in range(a, b + 1) if ratio[k] >= th.depth_factor]
        per = float(ratio[b] ** (1.0 / (b - a)))
        out.append(Finding(
            layer=", ".join(hits), kind="depth_growth",
            message=f"{label(hits)}: activation scale grows through the depth ({ratio[b]:.0f}x "
                    f"from {t.names[idx[a]]} to {t.names[idx[b]]}, {per:.2f}x per layer)",
            evidence={"std_by_layer": {t.names[i]: float(v) for i, v in zip(idx, s,
                                                                             strict=True)},
                      "ratio": float(ratio[b]), "per_layer": per},
            suggestion=adv.for_kind("depth_growth", hits),
            first_iter=int(t.iters[0])))
    return out


def growth_findings(t: Telemetry, th: Thresholds, ctx: dict) -> list[Finding]:
    """Growth over time, shrinking over time and growth across depth."""
    adv = Advice(ctx)
    return [*_growth(t, th, ctx, adv), *_shrinking(t, th, ctx, adv),
            *_depth_growth(t, th, ctx, adv)]
