"""Plain-language findings from recorded telemetry: dead units, vanishing, unstable, non-finite.

Every rule reads the host arrays of a ``Telemetry`` (no torch) and is tuned by ``Thresholds``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from actscope.telemetry.record import Telemetry

__all__ = ["Thresholds", "Finding", "diagnose", "format_findings", "count_rise_and_collapse"]


@dataclass(frozen=True)
class Thresholds:
    """When a finding fires. All shares are fractions in [0, 1]."""

    # Dead units: mean near-zero share over the final window of records above this.
    dead_share: float = 0.8
    # The final window: this fraction of the records (at least one).
    final_window: float = 0.1
    # Vanishing: std below this within the first ``early_batches`` training iterations.
    vanishing_std: float = 0.1
    early_batches: int = 10
    # ... and below this fraction of an earlier layer's std (the activations shrink with depth).
    shrink: float = 0.5
    # Unstable: the std grew by more than ``growth`` from a trough, then fell back by ``growth``
    # from its peak, at least ``min_collapses`` times. (The std, not the mean: a mean that
    # crosses zero would "grow" 10x from 0.001 to 0.01 without anything going wrong.)
    growth: float = 10.0
    min_collapses: int = 1
    # Values below this count as this when looking for growth (noise near zero is not growth).
    scale_floor: float = 1e-3
    # Dead channels: at least this share of a layer's channels never fired in the last epoch.
    dead_channel_share: float = 0.05


@dataclass
class Finding:
    """One diagnosis: which layer(s), what, the numbers behind it, and what to try."""

    layer: str
    kind: str  # "dead", "dead_channels", "vanishing", "unstable", "non_finite"
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    suggestion: str = ""
    first_iter: int | None = None

    def __str__(self) -> str:
        return f"{self.message}; {self.suggestion}" if self.suggestion else self.message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


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


def _non_finite(t: Telemetry) -> list[Finding]:
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


def diagnose(telemetry: Telemetry, thresholds: Thresholds | None = None) -> list[Finding]:
    """Findings about the recorded run, most severe first (non-finite, unstable, ...)."""
    th = thresholds or Thresholds()
    t = telemetry
    if t.mean.size == 0:
        return []
    first = _non_finite(t)
    if first:
        # After NaN/Inf the other statistics mean nothing: judge only the records before it.
        rec = first[0].evidence["record"]
        if rec == 0:
            return first
        t = replace(t, iters=t.iters[:rec], mean=t.mean[:, :rec], std=t.std[:, :rec],
                    dead=t.dead[:, :rec], hist=t.hist[:, :rec],
                    ran=None if t.ran is None else t.ran[:, :rec])
    return [*first, *_unstable(t, th), *_vanishing(t, th), *_dead(t, th),
            *_dead_channels(t, th)]


def format_findings(findings: list[Finding]) -> str:
    """The findings as printable lines (or a line saying there are none)."""
    if not findings:
        return "diagnosis: no problems found in the recorded activations"
    return "\n".join(["diagnosis:", *(f"  - {f}" for f in findings)])
