"""Saturation: bounded activations (tanh, sigmoid, hardtanh, a recurrent layer's tanh state)
pinned at their limits, where the gradient through them is almost gone.

The share of values near a bound is read from the sampled histogram: a bin counts when it
reaches within ``sat_band`` of the range (or within one bin, the histogram's resolution) of a
bound. Only layers whose context says they are bounded are judged (their bounds come from it;
``nn.RNN``/``LSTM``/``GRU`` outputs are tanh-bounded in [-1, 1]); a layer whose samples fall
outside its bounds is not what the context says, and is skipped.

The model's output layer (context kind ``output``: an autoencoder's sigmoid or tanh decoder, a
GAN generator's tanh) is not judged: its range is set by its targets, as for the scale rules.
80% of MNIST's pixels are 0, and a decoder that learned them sits at its bound by design (a
GAN generator's loss does not even fall while it does).

A capped ReLU (``nn.ReLU6``: zero-floored, bounded above) carries no gradient at either bound,
but a healthy one has about half its outputs at 0 by design (that floor is the dead-unit rule's
business). It is saturated when the pinned share (both bounds) is above ``sat_share`` and the cap
alone holds at least ``sat_cap_share`` of the samples: the units are pinned at the top, not off.
"""

from __future__ import annotations

import numpy as np

from actscope.diagnosis.advice import Advice
from actscope.diagnosis.finding import Finding
from actscope.diagnosis.series import field, first_iter, label, late, layer_ctx, nanmedian
from actscope.diagnosis.thresholds import Thresholds
from actscope.telemetry.record import Telemetry

__all__ = ["saturation_findings", "bounds", "pinned_share"]

_SATURATING = ("tanh", "sigmoid", "hardtanh")
_RECURRENT_TANH = ("RNN", "LSTM", "GRU")


def capped(ctx: dict, name: str) -> bool:
    """Whether the layer is a capped ReLU (ReLU6): ReLU family with an upper bound."""
    entry = layer_ctx(ctx, name)
    b = entry.get("bounded")
    return entry.get("activation") in ("relu", "leaky_relu") and isinstance(b, (list, tuple)) \
        and len(b) == 2 and float(b[1]) > float(b[0])


def bounds(ctx: dict, name: str) -> tuple[float, float] | None:
    """``(lo, hi)`` of a saturating layer's output per the context (a capped ReLU's too), else
    None."""
    entry = layer_ctx(ctx, name)
    act, b = entry.get("activation"), entry.get("bounded")
    if (act in _SATURATING or capped(ctx, name)) and isinstance(b, (list, tuple)) and len(b) == 2:
        return float(b[0]), float(b[1])
    if entry.get("kind") == "recurrent" and entry.get("type") in _RECURRENT_TANH:
        return -1.0, 1.0
    return None


def pinned_share(t: Telemetry, i: int, lo: float, hi: float, band: float,
                 upper_only: bool = False) -> np.ndarray | None:
    """(N,) share of layer ``i``'s samples within ``band`` x (hi - lo) of a bound (only the
    upper one with ``upper_only``; the histogram's resolution permitting), NaN where it did not
    run; None if it cannot be read. A recording with a histogram range per record
    (``hist_range`` (L, N, 2)) is read record by record."""
    rng = np.asarray(t.hist_range[i], np.float64)
    if rng.ndim == 2:  # (N, 2): one range per record
        parts = [_share(t, i, j, tuple(rng[j]), lo, hi, band, upper_only)
                 for j in range(rng.shape[0])]
        if all(p is None for p in parts):
            return None
        share = np.array([np.nan if p is None else p[0] for p in parts])
        return np.where(t.ran_mask()[i], share, np.nan)
    out = _share(t, i, slice(None), tuple(rng), lo, hi, band, upper_only)
    return None if out is None else np.where(t.ran_mask()[i], out, np.nan)


def _share(t: Telemetry, i: int, rec: slice | int, rng: tuple, lo: float, hi: float,
           band: float, upper_only: bool = False) -> np.ndarray | None:
    """The pinned share of records ``rec`` of layer ``i`` under one histogram range."""
    hist = np.atleast_2d(np.asarray(t.hist[i][rec], np.float64))  # (n, B)
    h_lo, h_hi = (float(v) for v in rng)
    bins = hist.shape[1]
    if bins == 0 or not h_hi > h_lo:
        return None
    w = (h_hi - h_lo) / bins
    if w > 0.1 * (hi - lo):
        return None  # bins too coarse to tell "at the bound" from "anywhere near it"
    d = max(band * (hi - lo), 1e-12)
    edges = h_lo + w * np.arange(bins + 1)
    left, right = edges[:-1], edges[1:]
    near_hi = (right > hi - d) & (left < hi + w)
    near = near_hi if upper_only else ((left < lo + d) & (right > lo - w)) | near_hi
    under, over = field(t, "hist_under"), field(t, "hist_over")
    u = np.zeros(hist.shape[0]) if under is None else np.atleast_1d(np.nan_to_num(under[i][rec]))
    o = np.zeros(hist.shape[0]) if over is None else np.atleast_1d(np.nan_to_num(over[i][rec]))
    total = hist.sum(axis=1) + u + o
    pinned = hist[:, near].sum(axis=1)
    # out-of-range samples sit beyond the histogram: within the band when the range ends there
    pinned += (0.0 if upper_only else np.where(h_lo <= lo + d, u, 0.0)) \
        + np.where(h_hi >= hi - d, o, 0.0)
    outside = hist[:, (right <= lo - w) | (left >= hi + w)].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, pinned / total, np.nan)
        if nanmedian(np.where(total > 0, outside / total, np.nan)) > 0.01:
            return None  # values outside the bounds: not the bounded layer the context says
    return share


def saturation_findings(t: Telemetry, th: Thresholds, ctx: dict) -> list[Finding]:
    """Bounded layers whose late pinned share is above ``sat_share``."""
    if not ctx or t.hist.ndim != 3 or t.hist.shape[1] == 0:
        return []
    hits, evidence, firsts = [], {}, []
    for i, name in enumerate(t.names):
        b = bounds(ctx, name)
        if b is None or layer_ctx(ctx, name).get("kind") == "output":
            continue  # the output's range is its targets' (a decoder's background at 0)
        share = pinned_share(t, i, b[0], b[1], th.sat_band)
        if share is None or not np.isfinite(share).any():
            continue
        s = late(share, th)
        if s > th.sat_share and capped(ctx, name):  # the floor alone is off, not saturated
            top = pinned_share(t, i, b[0], b[1], th.sat_band, upper_only=True)
            if top is None or not late(top, th) >= th.sat_cap_share:
                continue
        if s > th.sat_share:
            hits.append(name)
            evidence[name] = {"pinned_share": s, "bounds": list(b)}
            firsts.append(first_iter(t, share > th.sat_share))
    if not hits:
        return []
    worst = max(v["pinned_share"] for v in evidence.values())
    return [Finding(
        layer=", ".join(hits), kind="saturated",
        message=f"{label(hits)}: up to {worst:.0%} of the bounded activations pinned at their "
                f"limits (saturated: almost no gradient flows through them)",
        evidence={"layers": evidence},
        suggestion=Advice(ctx).for_kind("saturated", hits),
        first_iter=min((f for f in firsts if f is not None), default=None))]
