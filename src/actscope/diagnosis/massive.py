"""Massive activations (Sun et al. 2024): a few values far above the layer's typical magnitude.

Reads the exact per-layer ``absmax``. The typical magnitude of a layer type is the smallest
median std among the comparable layers (one module type, forward order: the blocks of a
residual stream), because a massive feature that enters the stream is carried by every later
block and inflates their std too; a layer without comparable ones is measured against its own
std. Fires where the median max |x| over the run is at least ``massive_factor`` times that
scale and at least ``massive_level`` in absolute terms.
"""

from __future__ import annotations

import numpy as np

from actscope.diagnosis.advice import Advice
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.series import field, first_iter, groups, label, nanmedian
from actscope.diagnosis.thresholds import Thresholds
from actscope.telemetry.record import Telemetry

__all__ = ["massive_findings"]


def massive_findings(t: Telemetry, th: Thresholds, ctx: dict) -> list[Finding]:
    """Layers whose max |x| is massive against their type's typical scale."""
    absmax = field(t, "absmax")
    if absmax is None or absmax.shape[1] == 0:
        return []
    amax = nanmedian(np.where(np.isfinite(absmax), absmax, np.nan), axis=1)  # (L,)
    std = nanmedian(np.where(np.isfinite(t.std), t.std, np.nan), axis=1)  # (L,)
    scale = std.copy()
    for grp in groups(t, ctx, 2):
        s = std[grp]
        if np.isfinite(s).any():
            scale[grp] = np.nanmin(s)
    hits: dict[str, dict] = {}
    for i, name in enumerate(t.names):
        a, s = amax[i], scale[i]
        if not (np.isfinite(a) and np.isfinite(s) and s > 0):
            continue
        if a >= th.massive_level and a >= th.massive_factor * s:
            hits[name] = {"absmax": float(a), "typical_std": float(s), "ratio": float(a / s)}
    if not hits:
        return []
    names = list(hits)
    top = max(hits.values(), key=lambda v: v["ratio"])
    idx = [t.names.index(n) for n in names]
    mask = (np.nan_to_num(absmax[idx]) >= th.massive_level).any(axis=0)
    return [Finding(
        layer=", ".join(names), kind="massive_activations",
        message=f"{label(names)}: max |x| {top['absmax']:.3g} is {top['ratio']:.0f}x the "
                f"layer type's typical scale (massive activations / outlier features)",
        evidence={"layers": hits}, suggestion=Advice(ctx).for_kind("massive_activations", names),
        first_iter=first_iter(t, mask))]
