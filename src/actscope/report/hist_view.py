"""How a layer's histograms become one picture: per-record ranges mapped onto a shared y-range.

A recording may fix one range per layer (``hist_range`` (L, 2), older files) or carry a range per
record (``hist_range`` (L, N, 2), re-fitted per flush chunk as the data grows). The report draws
every layer on ONE linear y-range: the union of its records' ranges. Each record's counts are
spread onto that shared grid exactly in total (uniform within a source bin: ``rebin``), so a
record whose range was re-fitted keeps all its samples in range, and the overflow counts
(``hist_under``/``hist_over``) stay visible as bands. ``compare`` re-bins through the same
``layer_picture`` onto the range it shares across runs: one re-binning for both pages. We chose
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


def _overlap(src_lo: float, src_hi: float, B: int, edges: np.ndarray) -> np.ndarray:
    """(B, bins) the share of each source bin of [src_lo, src_hi] that falls in each target
    bin of ``edges`` (uniform within a source bin); all zero for an unusable source range."""
    if not (np.isfinite(src_lo) and np.isfinite(src_hi) and src_hi > src_lo):
        return np.zeros((B, len(edges) - 1))
    src = np.linspace(src_lo, src_hi, B + 1)
    inter = (np.minimum(src[1:, None], edges[None, 1:])
             - np.maximum(src[:-1, None], edges[None, :-1]))
    return np.clip(inter, 0.0, None) / (src[1:] - src[:-1])[:, None]


def rebin(hist: np.ndarray, ranges: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """(N, bins) counts of ``hist`` (N, B), record j over ``ranges[j]``, on the grid [lo, hi].

    Each source bin's count is spread uniformly over its width onto the target bins: exact in
    total for the part of a record's range inside [lo, hi] (the rest is dropped; a record with
    a non-finite or empty range draws nothing), and bin for bin exact where every source bin
    lies in one target bin (the store's power-of-two ladder). The map is linear, so it is one
    (B, bins) matrix per run of consecutive records sharing a range (a flush chunk's records
    do): a few matrix products instead of per-record interpolation."""
    hist = np.asarray(hist, np.float64)
    ranges = np.asarray(ranges, np.float64)
    N, B = hist.shape
    edges = np.linspace(lo, hi, bins + 1)
    out = np.zeros((N, bins))
    if N == 0:
        return out
    changed = np.flatnonzero((ranges[1:] != ranges[:-1]).any(axis=1)) + 1
    if len(changed) > max(16, N // 16):  # ranges that change nearly every record: no runs
        return _rebin_each(hist, ranges, edges)
    starts = np.concatenate([[0], changed, [N]])
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        out[a:b] = hist[a:b] @ _overlap(ranges[a, 0], ranges[a, 1], B, edges)
    return out


def _rebin_each(hist: np.ndarray, ranges: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``rebin`` record by record, vectorised: each record's cumulative counts interpolated at
    the target edges (the same map as ``_overlap``; for ranges that change every record)."""
    N, B = hist.shape
    cum = np.concatenate([np.zeros((N, 1)), np.cumsum(hist, axis=1)], axis=1)  # (N, B+1)
    usable = np.isfinite(ranges).all(axis=1) & (ranges[:, 1] > ranges[:, 0])
    lo = np.where(usable, ranges[:, 0], 0.0)
    width = np.where(usable, ranges[:, 1] - ranges[:, 0], 1.0)
    pos = np.clip((edges[None, :] - lo[:, None]) / width[:, None] * B, 0, B)  # source bins
    k = np.minimum(pos.astype(np.int64), B - 1)
    at = np.take_along_axis(cum, k, axis=1) + (pos - k) * np.take_along_axis(hist, k, axis=1)
    return np.where(usable[:, None], np.diff(at, axis=1), 0.0)


def layer_picture(t: Telemetry, layer: int, lo: float | None = None, hi: float | None = None,
                  bins: int | None = None) -> tuple[np.ndarray, float, float]:
    """(N, bins) counts of ``layer`` on one range, and that range (lo, hi).

    The one re-binning of the report and of ``compare``: by default the layer's shared range
    (the union of its records' ranges) with its recorded number of bins; compare passes the
    range and bins it shares across runs."""
    ranges = layer_ranges(t, layer)
    if lo is None or hi is None:
        lo, hi = shared_range(ranges)
    return rebin(t.hist[layer], ranges, lo, hi, bins or t.hist.shape[2]), lo, hi


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
