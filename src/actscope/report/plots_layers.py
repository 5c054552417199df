"""One layer's pictures, drawn into a given panel: the histogram heat-map and the dead channels.

The run report and ``compare`` both draw through these, so a layer looks the same in both; compare
passes one shared colour scale (``norm``) and value range to every run's panel.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, LogNorm, Normalize

from actscope.report.plots_base import finite, thin_columns

__all__ = ["draw_heatmap", "draw_channel_dead", "heat_values", "DEAD_CMAP"]

# Fired channels light, dead channels dark red; NaN (a layer with fewer channels) stays blank.
DEAD_CMAP = ListedColormap(["#e8e8e8", "#b2182b"])
_HEAT_CMAP = "viridis"


def heat_values(hist: np.ndarray, under: np.ndarray | None, over: np.ndarray | None,
                share: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Counts (N, bins) and overflow (N,) as floats; with ``share`` as fractions of each batch."""
    h = hist.astype(np.float64)
    u = None if under is None else under.astype(np.float64)
    o = None if over is None else over.astype(np.float64)
    if share:
        total = h.sum(axis=1) + (0 if u is None else u) + (0 if o is None else o)
        total = np.where(total > 0, total, 1.0)
        h = h / total[:, None]
        u = None if u is None else u / total
        o = None if o is None else o / total
    return h, u, o


def _image(ax: Axes, values: np.ndarray, extent: tuple[float, float, float, float],
           norm: Normalize) -> None:
    """``values`` (rows, N) as a log-coloured image; zero counts stay blank (white)."""
    values = thin_columns(values)
    ax.imshow(np.where(values > 0, values, np.nan), origin="lower", aspect="auto", norm=norm,
              cmap=_HEAT_CMAP, extent=extent, interpolation="nearest")


def draw_heatmap(ax: Axes, x: np.ndarray, hist: np.ndarray, lo: float, hi: float,
                 under: np.ndarray | None = None, over: np.ndarray | None = None,
                 norm: Normalize | None = None) -> None:
    """Draw one layer: x on the x axis, bins on y; overflow counts as bands at the edges.

    ``hist`` is (N, bins). The overflow bands (values below ``lo``, at or above ``hi``) are two
    bins tall, outside the dashed lines, so counts outside the range are never silently lost.
    """
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        lo, hi = 0.0, 1.0  # a range from a diverged run: keep the picture, lose the scale
    if norm is None:
        peak = max([hist.max(initial=0)] + [a.max(initial=0) for a in (under, over)
                                             if a is not None])
        norm = LogNorm(vmin=1, vmax=max(float(peak), 2.0))
    x = np.asarray(x, np.float64)
    x0, x1 = (x[0], x[-1] + (x[1] - x[0] if len(x) > 1 else 1)) if len(x) else (0.0, 1.0)
    width = (hi - lo) / max(hist.shape[1], 1)
    # One image per panel (the overflow bands are two extra bin rows at each edge): a third of
    # the resampling work of three images, the same picture.
    rows = [hist.T]
    y0, y1 = lo, hi
    if under is not None:
        y0 = lo - 2 * width
        rows.insert(0, np.repeat(np.asarray(under, np.float64)[None, :], 2, axis=0))
    if over is not None:
        y1 = hi + 2 * width
        rows.append(np.repeat(np.asarray(over, np.float64)[None, :], 2, axis=0))
    _image(ax, np.concatenate(rows, axis=0), (x0, x1, y0, y1), norm)
    for edge, present in ((lo, under is not None), (hi, over is not None)):
        if present:
            ax.axhline(edge, color="0.35", lw=0.6, ls="--")
    ax.set_ylim(y0, y1)
    ax.set_xlim(x0, x1)


def draw_channel_dead(ax: Axes, epochs: np.ndarray, dead: np.ndarray, n_channels: int) -> str:
    """Channels (y) by epoch (x): dark where a channel never fired that epoch; returns a summary.

    ``dead`` is (E, Cmax) with NaN past ``n_channels``.
    """
    dead = finite(dead[:, :n_channels])
    E = dead.shape[0]
    ep = np.asarray(epochs, np.float64)
    x0, x1 = (ep[0] - 0.5, ep[-1] + 0.5) if E else (-0.5, 0.5)
    ax.imshow(dead.T, origin="lower", aspect="auto", cmap=DEAD_CMAP, vmin=0, vmax=1,
              extent=(x0, x1, -0.5, n_channels - 0.5), interpolation="nearest")
    last = dead[-1] if E else np.zeros(0)
    n_dead = int(np.nansum(last))
    ax.set_xticks(ep if E <= 12 else ep[:: max(E // 6, 1)])
    return f"{n_dead} of {n_channels} dead"
