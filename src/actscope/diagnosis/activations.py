"""The activation rules: dead units, dead channels, vanishing, unstable, non-finite.

Every rule reads the host arrays of a ``Telemetry`` (no torch) and is tuned by ``Thresholds``;
one private function per finding. ``non_finite`` runs first (``diagnose`` cuts the record there).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from actscope.diagnosis.finding import Finding
from actscope.diagnosis.thresholds import Thresholds
from actscope.telemetry.record import Telemetry

__all__ = ["activation_findings", "count_rise_and_collapse", "non_finite"]


def count_rise_and_collapse(x: np.ndarray, growth: float, floor: float) -> tuple[int, int | None]:
    """(events, index of the first) where ``x`` rose ``growth``× above a trough then fell back."""
    events, first = 0, None
    trough, peak, rising = math.inf, 0.0, False
    for i, v in enumerate(np.asarray(x, dtype=np.float64)):
        if not math.isfinite(v):
            continue
        v = max(v, floor)
        if not rising:
            trough = min(trough, v)
            if v >= growth * trough:
                rising, peak = True, v
        else:
            peak = max(peak, v)
            if v * growth <= peak:
                events += 1
                first = i if first is None else first
                rising, trough = False, v
    return events, first


def _label(names: list[str]) -> str:
    return f"layer {names[0]}" if len(names) == 1 else f"layers {', '.join(names)}"


def _dead(t: Telemetry, th: Thresholds) -> list[Finding]:
    out = []
    for i, name in enumerate(t.names):
        # the last records in which the layer ran (NaN: it did not run in that batch)
        ran = t.dead[i][np.isfinite(t.dead[i])]
        if ran.size == 0:
            continue
        w = max(1, math.ceil(th.final_window * ran.size))
        share = float(ran[-w:].mean())
        if share > th.dead_share:
            above = np.nonzero(t.dead[i] > th.dead_share)[0]
            out.append(Finding(
                layer=name, kind="dead",
                message=f"layer {name}: {share:.0%} of activations near zero at the end of "
                        f"training (dead units)",
                evidence={"final_dead_share": share, "window_records": w},
                suggestion="try GeneralRelu(leak=0.1, sub=0.4) or kaiming init (init_cnn)",
                first_iter=int(t.iters[above[0]]) if len(above) else None))
    return out


def _channel_list(idx: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return shown + (f", … ({len(idx) - limit} more)" if len(idx) > limit else "")


def _dead_channels(t: Telemetry, th: Thresholds) -> list[Finding]:
    """Channels that never fired (max < dead_threshold) during the last recorded epoch."""
    if t.channel_dead is None or t.channel_epochs is None or t.n_channels is None:
        return []
    if t.channel_dead.shape[1] == 0:
        return []
    epoch = int(t.channel_epochs[-1])
    out = []
    for i, name in enumerate(t.names):
        n = int(t.n_channels[i])
        row = t.channel_dead[i, -1, :n]
        if n == 0 or np.isnan(row).all():
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
            suggestion="a lower learning rate, GeneralRelu(leak=0.1, sub=0.4) or kaiming init "
                       "(init_cnn) keeps units alive; or prune them"))
    return out


def _vanishing(t: Telemetry, th: Thresholds) -> list[Finding]:
    """Layers whose early std is below ``vanishing_std`` AND shrinking through the depth.

    The depth test keeps the rule from firing on models that run at a small scale by design: a
    transformer's residual stream starts near std 0.02 and grows block by block. A layer counts
    when it is below the threshold and below ``shrink`` times the std of an earlier layer; the
    first layer counts only when the std does not grow through the depth after it.
    """
    early = t.iters < th.early_batches
    if not early.any():
        return []
    std_early = t.std[:, early]  # (L, n)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: a layer that never ran
        typical = np.nanmedian(std_early, axis=1)  # (L,)
        # per record, the running max of the std over the layers up to each one
        before = np.fmax.accumulate(np.nan_to_num(std_early, nan=-np.inf), axis=0)
    grows = len(typical) > 1 and bool(typical[-1] > typical[0])
    hits, firsts, mins = [], [], []
    for i, name in enumerate(t.names):
        std = std_early[i]
        below = std < th.vanishing_std
        if i == 0:
            below &= not grows
        else:
            below &= std < th.shrink * before[i - 1]  # shrinking at the same batch
        where = np.nonzero(below)[0]
        if len(where):
            hits.append(name)
            firsts.append(int(t.iters[early][where[0]]))
            mins.append(float(np.nanmin(std)))
    if not hits:
        return []
    conv = any("conv" in name for name in hits)
    return [Finding(
        layer=", ".join(hits), kind="vanishing",
        message=f"{_label(hits)}: std fell below {th.vanishing_std:g} within the first "
                f"{th.early_batches} batches (vanishing activations)",
        evidence={"min_std": dict(zip(hits, mins, strict=True))},
        suggestion=("initialisation is too small: use kaiming init (init_cnn) or LSUV (lsuv_init)"
                    if conv else "initialisation is too small for these layers: use kaiming "
                    "init for ReLU-family layers, or LSUV (lsuv_init)"),
        first_iter=min(firsts))]


def _unstable(t: Telemetry, th: Thresholds) -> list[Finding]:
    out = []
    for i, name in enumerate(t.names):
        events, first = count_rise_and_collapse(t.std[i], th.growth, th.scale_floor)
        if events >= th.min_collapses:
            out.append(Finding(
                layer=name, kind="unstable",
                message=f"layer {name}: activations (std) grew >{th.growth:g}x then collapsed "
                        f"{events} time{'s' if events > 1 else ''} (unstable training)",
                evidence={"collapses": events},
                suggestion="lower the learning rate, warm it up (one-cycle), or add a norm layer",
                first_iter=int(t.iters[first]) if first is not None else None))
    return out


def non_finite(t: Telemetry) -> list[Finding]:
    # A layer that did not run in a batch has NaN statistics there too: no value, not a NaN.
    bad = ~(np.isfinite(t.mean) & np.isfinite(t.std)) & t.ran_mask()  # (L, N)
    if not bad.any():
        return []
    rec = int(np.nonzero(bad.any(axis=0))[0][0])
    # the first in forward order (recorded in meta; else the watch order): where it started
    order = [i for i in t.meta.get("forward_order", []) if 0 <= i < len(t.names)]
    order += [i for i in range(len(t.names)) if i not in order]
    layer = next(i for i in order if bad[i, rec])
    it = int(t.iters[rec])
    name = t.names[layer]
    return [Finding(
        layer=name, kind="non_finite",
        message=f"non-finite activations first appeared in layer {name} at batch {it}",
        evidence={"record": rec, "layers_affected": int(bad[:, rec].sum())},
        suggestion="lower the learning rate, clip gradients, or check the inputs for NaN/Inf",
        first_iter=it)]


def activation_findings(t: Telemetry, th: Thresholds) -> list[Finding]:
    """The activation findings of records known to be finite, most severe first."""
    return [*_unstable(t, th), *_vanishing(t, th), *_dead(t, th), *_dead_channels(t, th)]
