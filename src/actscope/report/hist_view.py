"""How a layer's histograms become one picture: per-record ranges mapped onto a shared y-range.

A recording may fix one range per layer (``hist_range`` (L, 2), older files) or carry a range per
record (``hist_range`` (L, N, 2), re-fitted per flush chunk as the data grows). The report draws
every layer on ONE linear y-range: the union of its records' ranges. Each record's counts are
spread onto that shared grid exactly in total (linear interpolation of its cumulative counts,
i.e. uniform within a source bin), so a record whose range was re-fitted keeps all its samples
in range, and the overflow counts (``hist_under``/``hist_over``) stay visible as bands. We chose
the union over a symmetric-log axis because the heat-map's y stays in activation units and the
re-binning is exact in total. ``in_range_share`` is the measurable check: the share of samples
drawn inside the range per panel. numpy only.
"""

from __future__ import annotations

import numpy as np

from actscope.telemetry.record import Telemetry

__all__ = ["layer_ranges", "shared_range", "rebin", "layer_picture", "in_range_share"]


def layer_ranges(t: Telemetry, layer: int) -> np.ndarray:
    """(N, 2) the range of each record of ``layer`` (a fixed range repeated for old files)."""
    r = np.asarray(t.hist_range, np.float64)
    if r.ndim == 3:
        return r[layer]
    return np.broadcast_to(r[layer], (len(t.iters), 2))


def shared_range(ranges: np.ndarray) -> tuple[float, float]:
    """The union of the finite ranges (N, 2): lo of all records, hi of all records."""
    ok = np.isfinite(ranges).all(axis=1) & (ranges[:, 1] > ranges[:, 0])
    if not ok.any():
        return 0.0, 1.0
    return float(ranges[ok, 0].min()), float(ranges[ok, 1].max())


def rebin(hist: np.ndarray, ranges: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """(N, bins) counts of ``hist`` (N, B), record j over ``ranges[j]``, on the grid [lo, hi]."""
    hist = np.asarray(hist, np.float64)
    N, B = hist.shape
    if N == 0:
        return np.zeros((0, bins))
    cum = np.concatenate([np.zeros((N, 1)), np.cumsum(hist, axis=1)], axis=1)  # (N, B+1)
    edges = np.linspace(lo, hi, bins + 1)
    width = np.where(ranges[:, 1] > ranges[:, 0], ranges[:, 1] - ranges[:, 0], 1.0)
    pos = (edges[None, :] - ranges[:, :1]) / width[:, None] * B  # in source-bin units
    pos = np.clip(np.nan_to_num(pos, nan=0.0), 0, B)
    k = np.minimum(pos.astype(np.int64), B - 1)
    frac = pos - k
    c_at = (np.take_along_axis(cum, k, axis=1)
            + frac * np.take_along_axis(hist, k, axis=1))  # cumulative count at each edge
    return np.diff(c_at, axis=1)


def layer_picture(t: Telemetry, layer: int) -> tuple[np.ndarray, float, float]:
    """(N, bins) counts of ``layer`` on its shared range, and that range (lo, hi)."""
    ranges = layer_ranges(t, layer)
    hist = t.hist[layer]
    if np.asarray(t.hist_range).ndim == 2:  # one range: the recorded bins as they are
        lo, hi = (float(v) for v in t.hist_range[layer])
        return hist.astype(np.float64), lo, hi
    lo, hi = shared_range(ranges)
    return rebin(hist, ranges, lo, hi, hist.shape[1]), lo, hi


def in_range_share(t: Telemetry) -> np.ndarray:
    """(L,) per histogram panel, the share of recorded samples drawn inside its range (1.0 when
    nothing was recorded): the check that a panel is not blank with everything overflowing."""
    out = np.ones(t.n_layers)
    for i in range(t.n_layers):
        inside = float(np.asarray(t.hist[i], np.float64).sum())
        outside = sum(float(np.asarray(a[i], np.float64).sum())
                      for a in (t.hist_under, t.hist_over) if a is not None)
        if inside + outside > 0:
            out[i] = inside / (inside + outside)
    return out
