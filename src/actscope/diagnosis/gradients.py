"""Gradients: exploding or vanishing from the last layer back to the first, and huge norms.

Reads the per-layer ``grad_norm`` (the norm of each layer's own parameters' gradients). Along
the forward order of comparable layers (one module type: parameter counts alike), and along
the whole forward order, each layer's median norm over the run is compared with the deepest
one's (two and three decades are more than parameter counts explain): a first layer ``grad_explode``
times the last is exploding, ``grad_vanish`` times is vanishing. A median norm above
``grad_huge`` (or inf) on any layer is exploding too, except under fp16, where gradients may
carry the loss scale; where the recorded loss starts above ``grad_loss_unit`` (a summed
reduction, an unnormalised regression) that level scales with it, as the gradients do. Layers
whose parameters the optimizer does not hold (context ``trained: false``) are left out: their
gradient is never consumed, and never zeroed.
"""

from __future__ import annotations

import numpy as np

from actscope.diagnosis.advice import Advice
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.series import (
    early,
    field,
    first_iter,
    forward_order,
    groups,
    label,
    layer_ctx,
    nanmedian,
    scalar,
)
from actscope.diagnosis.thresholds import Thresholds
from actscope.telemetry.record import Telemetry

__all__ = ["gradient_findings"]


def _profile(t: Telemetry, ctx: dict, med: np.ndarray, min_layers: int) -> list[list[int]]:
    """Comparable layers with a gradient, in forward order; then every layer with one (the
    gradient reaches the first layer through all the others: a recurrent stack's exploding
    norm shows against its head)."""
    out = []
    for g in [*groups(t, ctx, min_layers), forward_order(t)]:
        kept = [i for i in g if np.isfinite(med[i]) and med[i] > 0]
        if len(kept) >= min_layers:
            out.append(kept)
    return out


def _loss_scale(t: Telemetry, th: Thresholds) -> float:
    """How many times a mean-reduced loss's scale the recorded loss starts at (at least 1):
    gradients scale with the loss, so a summed one lifts every healthy norm with it."""
    loss = scalar(t, "loss")
    if loss is None:
        return 1.0
    e = early(np.abs(loss), th)
    return max(1.0, e / th.grad_loss_unit) if np.isfinite(e) else 1.0


def _finding(t: Telemetry, kind: str, hits: list[str], msg: str, ev: dict, mask: np.ndarray,
             ctx: dict) -> Finding:
    return Finding(layer=", ".join(hits), kind=kind, message=f"{label(hits)}: {msg}",
                   evidence=ev, suggestion=Advice(ctx).for_kind(kind, hits),
                   first_iter=first_iter(t, mask))


def gradient_findings(t: Telemetry, th: Thresholds, ctx: dict) -> list[Finding]:
    """Exploding and vanishing gradients."""
    g = field(t, "grad_norm")
    if g is None or g.shape[1] == 0 or not np.isfinite(g).any():
        return []
    g = np.where(np.isposinf(g), 3.0e38, g)  # an overflowed norm: huge, not missing
    # a layer no optimizer step reads (context ``trained: false``): its .grad is never zeroed
    # and accumulates step after step, which says nothing about the gradients of the others
    untrained = [i for i, n in enumerate(t.names) if layer_ctx(ctx, n).get("trained") is False]
    g[untrained] = np.nan
    med = nanmedian(g, axis=1)  # (L,)
    out: list[Finding] = []
    exploding: dict[str, float] = {}
    vanishing: dict[str, float] = {}
    for grp in _profile(t, ctx, med, 2):
        last = med[grp[-1]]
        ratio = med[grp[0]] / last
        if ratio >= th.grad_explode:
            for i in grp[:-1]:
                if med[i] / last >= np.sqrt(th.grad_explode):
                    exploding[t.names[i]] = float(med[i] / last)
        elif ratio <= th.grad_vanish:
            for i in grp[:-1]:
                if med[i] / last <= np.sqrt(th.grad_vanish):
                    vanishing[t.names[i]] = float(med[i] / last)
    fp16 = ctx.get("mixed_precision") == "fp16"
    level = th.grad_huge * _loss_scale(t, th)
    huge = {} if fp16 else {t.names[i]: float(med[i]) for i in range(len(t.names))
                            if np.isfinite(med[i]) and med[i] >= level}
    if exploding or huge:
        hits = list(dict.fromkeys([*exploding, *huge]))
        idx = [t.names.index(n) for n in hits]
        worst = max(exploding.values(), default=0.0)
        msg = (f"gradient norms grow {worst:.0f}x from the last comparable layer back to the "
               f"first (exploding gradients)" if exploding else
               f"gradient norms up to {max(huge.values()):.3g} (exploding gradients)")
        mask = (g[idx] >= level).any(axis=0) if huge and not exploding else \
            np.isfinite(g[idx]).any(axis=0)
        out.append(_finding(t, "exploding_gradients", hits, msg,
                            {"ratio_to_last": exploding, "median_norm": {
                                n: float(med[t.names.index(n)]) for n in hits}}, mask, ctx))
    if vanishing:
        hits = list(vanishing)
        worst = min(vanishing.values())
        idx = [t.names.index(n) for n in hits]
        out.append(_finding(t, "vanishing_gradients", hits,
                            f"gradient norms shrink to {worst:.2g} of the last comparable "
                            f"layer's on the way back to the first (vanishing gradients)",
                            {"ratio_to_last": vanishing}, np.isfinite(g[idx]).any(axis=0),
                            ctx))
    return out
