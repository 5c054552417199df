"""The activation rules: dead units, dead channels, vanishing activations, unstable training.

Every rule reads the host arrays of a ``Telemetry`` (no torch) and is tuned by ``Thresholds``;
one private function per finding. Dead units are judged only where the context says the output
is zero-floored (ReLU family): elsewhere a near-zero share is a statistic (a tanh output near 0
is small, not dead), net of the zeros a trailing Dropout adds in training (context ``dropout``).
Without a context every layer is judged, as before contexts existed.
"""

from __future__ import annotations

import math

import numpy as np

from actscope.diagnosis.advice import Advice
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.series import label, late, layer_ctx, nanmedian
from actscope.diagnosis.thresholds import Thresholds
from actscope.telemetry.record import Telemetry

__all__ = ["activation_findings", "count_rise_and_collapse", "zero_floored"]


def count_rise_and_collapse(x: np.ndarray, growth: float, floor: float,
                            persist: int = 1) -> tuple[int, int | None]:
    """(events, index of the first) where ``x`` rose ``growth``x above a trough, then fell back
    by ``growth`` from its peak and stayed down for ``persist`` values."""
    x = np.asarray(x, dtype=np.float64)
    f = np.maximum(x[np.isfinite(x)], floor)
    if not (f >= growth * np.minimum.accumulate(f)).any():
        return 0, None  # never rose growth-fold above its trough: the scan below finds nothing
    events, first = 0, None
    trough, peak, rising = math.inf, 0.0, False
    for i, v in enumerate(x.tolist()):  # Python floats: numpy scalars cost ~3x per step here
        if not math.isfinite(v):
            continue
        v = max(v, floor)
        if not rising:
            trough = min(trough, v)
            if v >= growth * trough:
                rising, peak = True, v
        else:
            peak = max(peak, v)
            after = x[i:i + persist]
            if v * growth <= peak and len(after) == persist and (
                    np.nan_to_num(after, nan=np.inf) * growth <= peak).all():
                events += 1
                first = i if first is None else first
                rising, trough = False, v
    return events, first


def zero_floored(ctx: dict, name: str) -> bool:
    """Whether "dead units" mean anything for this layer: zero-floored per the context, or no
    context at all (then every layer is judged, as the rule always did)."""
    if not ctx:
        return True
    entry = layer_ctx(ctx, name)
    return bool(entry.get("zero_floored")) or (
        "zero_floored" not in entry and entry.get("activation") == "relu")


def _dead(t: Telemetry, th: Thresholds, ctx: dict, adv: Advice) -> list[Finding]:
    out = []
    for i, name in enumerate(t.names):
        if not zero_floored(ctx, name):
            continue
        # the last records in which the layer ran (NaN: it did not run in that batch)
        ran = t.dead[i][np.isfinite(t.dead[i])]
        if ran.size == 0:
            continue
        w = max(1, math.ceil(th.final_window * ran.size))
        share = float(ran[-w:].mean())
        # a trailing Dropout(p) zeroes p of the outputs in training on top of the units' own
        # zeros: the units' share is (share - p) / (1 - p) (Dropout(0.7) after a healthy ReLU
        # reads 85% near zero, none of it dead)
        drop = float(layer_ctx(ctx, name).get("dropout") or 0.0) if ctx else 0.0
        if 0.0 < drop < 1.0:
            share = max(0.0, (share - drop) / (1.0 - drop))
        if share > th.dead_share:
            above = np.nonzero(t.dead[i] > th.dead_share)[0]
            out.append(Finding(
                layer=name, kind="dead",
                message=f"layer {name}: {share:.0%} of activations near zero at the end of "
                        f"training (dead units)",
                evidence={"final_dead_share": share, "window_records": w},
                suggestion=adv.for_kind("dead", [name]),
                first_iter=int(t.iters[above[0]]) if len(above) else None))
    return out


def _channel_list(idx: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return shown + (f", … ({len(idx) - limit} more)" if len(idx) > limit else "")


def _dead_channels(t: Telemetry, th: Thresholds, ctx: dict, adv: Advice) -> list[Finding]:
    """Channels that never fired (max < dead_threshold) during the last recorded epoch."""
    if t.channel_dead is None or t.channel_epochs is None or t.n_channels is None:
        return []
    if t.channel_dead.shape[1] == 0:
        return []
    epoch = int(t.channel_epochs[-1])
    out = []
    for i, name in enumerate(t.names):
        n = int(t.n_channels[i])
        if n == 0 or not zero_floored(ctx, name):
            continue
        row = t.channel_dead[i, -1, :n]
        if np.isnan(row).all():
            continue
        dead = np.nonzero(row == 1.0)[0]
        if len(dead) == 0 or len(dead) < th.dead_channel_share * n:
            continue
        first = next((int(t.channel_epochs[e]) for e in range(t.channel_dead.shape[1])
                      if (t.channel_dead[i, e, :n] == 1.0).any()), epoch)
        out.append(Finding(
            layer=name, kind="dead_channels",
            message=f"layer {name}: {len(dead)} of {n} channels never activated in epoch "
                    f"{epoch} (dead units): channels {_channel_list(dead)}",
            evidence={"epoch": epoch, "dead_channels": [int(c) for c in dead], "channels": n,
                      "first_epoch": first},
            suggestion=adv.for_kind("dead_channels", [name]) + " (or prune them)"))
    return out


def _swings(std: np.ndarray, th: Thresholds) -> bool:
    """Whether the std moves by more than ``vanishing_swing`` decades per record (median)."""
    lx = np.log10(np.clip(std[np.isfinite(std)], 1e-30, None))
    return len(lx) > 2 and bool(np.median(np.abs(np.diff(lx))) > th.vanishing_swing)


def _vanishing(t: Telemetry, th: Thresholds, ctx: dict, adv: Advice) -> list[Finding]:
    """Layers whose early std is below ``vanishing_std`` AND shrinking through the depth.

    The depth test keeps the rule from firing on models that run at a small scale by design: a
    transformer's residual stream starts near std 0.02 and grows block by block. A layer counts
    when it is below the threshold and below ``shrink`` times the std of an earlier layer; the
    first layer counts only when the std does not grow through the depth after it. The model's
    output layer (context kind ``output``) never counts: its scale is set by the targets (a
    1-output regression head fitting small values, a zero-initialised classifier head), not by
    activations fading through the network; the layers before it still show real vanishing.
    """
    early = t.iters < th.early_batches
    if not early.any():
        return []
    std_early = t.std[:, early]  # (L, n)
    typical = nanmedian(std_early, axis=1)  # (L,)
    with np.errstate(all="ignore"):
        # per record, the running max of the std over the layers up to each one
        before = np.fmax.accumulate(np.nan_to_num(std_early, nan=-np.inf), axis=0)
    grows = len(typical) > 1 and bool(typical[-1] > typical[0])
    hits, firsts, mins = [], [], []
    for i, name in enumerate(t.names):
        if layer_ctx(ctx, name).get("kind") == "output":
            continue
        std = std_early[i]
        below = std < th.vanishing_std
        if i == 0:
            below &= not grows
        else:
            below &= std < th.shrink * before[i - 1]  # shrinking at the same batch
        where = np.nonzero(below)[0]
        # in most early records, and steady: a small scale set by the init is the same in every
        # batch, while the std of a handful of numbers (a 3-number code at batch size 1) swings
        # from one batch to the next and dips below by chance
        # ... and still small at the end: a scale that training lifted back above the threshold
        # was an init blip (torch's default init shrinks a GELU MLP's signal ~3x per layer and a
        # few Adam steps undo it), not a finding
        if 2 * len(where) >= std_early.shape[1] and not _swings(std, th) \
                and late(t.std[i], th) < th.vanishing_std:
            hits.append(name)
            firsts.append(int(t.iters[early][where[0]]))
            mins.append(float(np.nanmin(std)))
    if not hits:
        return []
    return [Finding(
        layer=", ".join(hits), kind="vanishing",
        message=f"{label(hits)}: std fell below {th.vanishing_std:g} within the first "
                f"{th.early_batches} batches (vanishing activations)",
        evidence={"min_std": dict(zip(hits, mins, strict=True))},
        suggestion=adv.for_kind("vanishing", hits),
        first_iter=min(firsts))]


def _unstable(t: Telemetry, th: Thresholds, adv: Advice) -> list[Finding]:
    """Layers whose std rose and collapsed (and stayed down): one finding for all of them."""
    hits: dict[str, int] = {}
    firsts = []
    for i, name in enumerate(t.names):
        events, first = count_rise_and_collapse(t.std[i], th.growth, th.scale_floor,
                                                th.collapse_persist)
        if events >= th.min_collapses and first is not None:
            hits[name] = events
            firsts.append(int(t.iters[first]))
    if not hits:
        return []
    names = list(hits)
    most = max(hits.values())
    return [Finding(
        layer=", ".join(names), kind="unstable",
        message=f"{label(names)}: activations (std) grew >{th.growth:g}x then collapsed "
                f"{most} time{'s' if most > 1 else ''} (unstable training)",
        evidence={"collapses": hits if len(hits) > 1 else most},
        suggestion=adv.for_kind("unstable", names),
        first_iter=min(firsts))]


def activation_findings(t: Telemetry, th: Thresholds, ctx: dict | None = None) -> list[Finding]:
    """The activation findings of records known to be finite (``ctx``: the run context)."""
    ctx = ctx or {}
    adv = Advice(ctx)
    return [*_unstable(t, th, adv), *_vanishing(t, th, ctx, adv), *_dead(t, th, ctx, adv),
            *_dead_channels(t, th, ctx, adv)]
