"""What every plot module shares: finite values, thinning for drawing, grids, colours, PNG bytes.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no global state, no display), so
they work headless and in threads. Thinning is for drawing only: saved data is never reduced.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from actscope.atomic import atomic_write

__all__ = ["finite", "thin", "thin_columns", "grid", "panel_table", "run_colours",
           "layer_colours", "label_fontsize", "plain", "smooth", "figure_png", "save_figure",
           "MAX_POINTS", "fixed_figure", "draw_png", "envelope_bands", "DRAW_RC", "outer_x_ticks",
           "panel_points", "layer_lines"]

# Points per drawn line (min-max pairs): a panel is under 800 pixels wide at 90 dpi, and
# 100k-point lines make PNGs slow to draw and heavy to embed.
MAX_POINTS = 800
# Tableau's ten colours: distinct, readable for runs; more layers use a sequential map.
_TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]


def finite(a: np.ndarray) -> np.ndarray:
    """``a`` as float with +-inf turned into NaN: matplotlib leaves a gap instead of failing."""
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a), a, np.nan)


def _buckets(x: np.ndarray, y: np.ndarray, max_points: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(first x, last x, min, max) of each of ``max_points // 2`` buckets of ``y``; an all-NaN
    bucket has NaN min and max (a gap, on purpose)."""
    n = len(y)
    edges = np.linspace(0, n, max_points // 2 + 1).astype(np.int64)
    # reduceat instead of a Python loop per bucket: 32 layers x 10k steps stay fast.
    lo = np.minimum.reduceat(np.where(np.isnan(y), np.inf, y), edges[:-1])
    hi = np.maximum.reduceat(np.where(np.isnan(y), -np.inf, y), edges[:-1])
    lo, hi = np.where(np.isinf(lo), np.nan, lo), np.where(np.isinf(hi), np.nan, hi)
    return x[edges[:-1]], x[edges[1:] - 1], lo, hi


def thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS
         ) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points that keep every spike: each bucket's min and max, in order.

    A plain stride would drop the one batch where the loss exploded; the envelope keeps it.
    """
    x, y = np.asarray(x, np.float64), finite(y)
    if len(y) <= max_points:
        return x, y
    x0, x1, lo, hi = _buckets(x, y, max_points)
    return np.column_stack([x0, x1]).ravel(), np.column_stack([lo, hi]).ravel()


def envelope_bands(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS
                   ) -> list[np.ndarray]:
    """``thin``'s min/max envelope as polygons (k, 2), one per run of buckets with values.

    The same pixels as the zigzag line ``thin`` draws (each bucket's span from its min to its
    max), filled instead of stroked: a noisy series' zigzag strokes every bucket's full height
    twice, which is most of a 32-layer panel's drawing time."""
    x, y = np.asarray(x, np.float64), finite(y)
    x0, x1, lo, hi = _buckets(x, y, max_points)
    ok = np.concatenate([[0], np.isfinite(lo).astype(np.int8), [0]])
    starts, ends = np.flatnonzero(np.diff(ok) == 1), np.flatnonzero(np.diff(ok) == -1)
    bands = []
    for a, b in zip(starts, ends, strict=True):
        xs = np.column_stack([x0[a:b], x1[a:b]]).ravel()
        top, bottom = np.repeat(hi[a:b], 2), np.repeat(lo[a:b], 2)
        bands.append(np.column_stack([np.concatenate([xs, xs[::-1]]),
                                      np.concatenate([top, bottom[::-1]])]))
    return bands


def thin_columns(a: np.ndarray, max_cols: int = MAX_POINTS) -> np.ndarray:
    """``a`` (rows, N) with N reduced to at most ``max_cols`` column means (for images)."""
    n = a.shape[1]
    if n <= max_cols:
        return a
    edges = np.linspace(0, n, max_cols + 1).astype(np.int64)
    sums = np.add.reduceat(a, edges[:-1], axis=1)
    return sums / np.diff(edges)


def panel_points(ax: Axes, dpi: int = 90) -> int:
    """Points a thinned line needs in ``ax``: a min and a max per pixel column at ``dpi``
    (at most ``MAX_POINTS``). More would only draw strokes over the same pixels again."""
    width = ax.get_position().width * ax.get_figure().get_figwidth() * dpi
    return int(min(MAX_POINTS, max(2 * math.ceil(width), 4)))


def layer_lines(ax: Axes, x: np.ndarray, rows: np.ndarray, colours: Sequence,
                labels: Sequence[str] | None = None, lw: float = 1.0) -> None:
    """Each row of ``rows`` (L, N) against ``x``, thinned to the panel's pixel width (min/max
    envelope, ``thin``). Up to 10 labelled rows are lines a legend reads; more are one
    collection (a 32-layer panel draws one artist instead of 32, and no legend, which
    ``plots._layer_key`` replaces by a colour bar beyond 10 layers anyway): the lines, or where
    they are thinned their envelopes as filled bands (``envelope_bands``: the same pixels).
    Set a log y axis before drawing: a row with values <= 0 is then a line with gaps."""
    n = panel_points(ax)
    if labels is not None and len(rows) <= 10:
        for row, colour, label in zip(rows, colours, labels, strict=True):
            ax.plot(*thin(x, row, n), label=plain(label), lw=lw, color=colour)
        return
    from matplotlib.collections import LineCollection, PolyCollection

    if len(x) <= n:  # nothing to thin: the lines as they are
        segments = [np.column_stack([np.asarray(x, np.float64), finite(r)]) for r in rows]
        ax.add_collection(LineCollection(segments, colors=list(colours), linewidths=lw))
    else:  # envelopes as filled bands, outlined so that a quiet series is still a line
        log = ax.get_yscale() == "log"
        bands, band_colours = [], []
        for row, colour in zip(rows, colours, strict=True):
            if log and (finite(row) <= 0).any():  # a log axis masks these: a line has gaps
                ax.plot(*thin(x, row, n), lw=lw, color=colour)
                continue
            mine = envelope_bands(x, row, n)
            bands += mine
            band_colours += [colour] * len(mine)
        # The outline is stroked on both edges: 0.6 x lw keeps a quiet series' band as thick
        # as the other panels' lines.
        ax.add_collection(PolyCollection(bands, facecolors=band_colours,
                                         edgecolors=band_colours, linewidths=0.6 * lw))
    ax.autoscale_view()


def grid(n: int, max_cols: int = 6, panel: tuple[float, float] = (2.8, 2.2),
         top: float = 0.45, bottom: float = 0.45, right: float = 0.15
         ) -> tuple[Figure, list[Axes]]:
    """A figure of ``n`` small panels, up to ``max_cols`` a row; returns the used axes.

    Margins (``top``, ``bottom``, ``right``) are in inches. Fixed margins instead of
    constrained layout, which costs 2-3x the drawing time once a figure has 30+ panels.
    """
    n = max(n, 1)
    cols = min(n, max_cols)
    rows = math.ceil(n / cols)
    w, h = panel[0] * cols + 0.6 + right, panel[1] * rows + top + bottom
    fig = Figure(figsize=(w, h))
    fig.subplots_adjust(left=0.6 / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        wspace=0.3, hspace=0.65)
    spec = fig.add_gridspec(rows, cols)
    # Only the n panels: an axes made and deleted costs as much as one drawn.
    return fig, [fig.add_subplot(spec[i // cols, i % cols]) for i in range(n)]


def panel_table(rows: int, cols: int, panel: tuple[float, float] = (2.6, 2.0),
                top: float = 0.45, bottom: float = 0.45, left: float = 0.75,
                right: float = 0.15) -> tuple[Figure, np.ndarray]:
    """A (rows, cols) array of panels with fixed margins in inches (rows = layers, cols = runs)."""
    w, h = panel[0] * cols + left + right, panel[1] * rows + top + bottom
    fig = Figure(figsize=(w, h))
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        wspace=0.25, hspace=0.45)
    return fig, np.atleast_2d(fig.subplots(rows, cols, squeeze=False))


def run_colours(n: int) -> list[str]:
    """One distinct colour per run (compare allows at most 8 runs)."""
    return [_TAB10[i % len(_TAB10)] for i in range(n)]


def layer_colours(n: int) -> list[tuple[float, ...] | str]:
    """Distinct colours for up to 10 layers; a dark-to-light map by depth for more."""
    if n <= len(_TAB10):
        return list(_TAB10[:n])
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1) * 0.9) for i in range(n)]


def plain(text: object) -> str:
    """``text`` drawn literally: a ``$`` from a file would otherwise start matplotlib mathtext
    (and an invalid formula fails the whole figure)."""
    return str(text).replace("$", r"\$")


def label_fontsize(n: int) -> str:
    """A legend/title size that still fits when there are many entries."""
    return "small" if n <= 10 else "x-small"


# Settings every report figure is built under (``draw_png``). A title at a fixed height: the
# automatic one measures every panel's tick labels once more per draw (about a tenth of a
# 32-panel figure's time) to dodge top-side ticks, which our figures never have.
DRAW_RC = {"axes.titley": 1.0}


def draw_png(draw: Callable[[], Figure], dpi: int = 90) -> bytes:
    """The figure ``draw()`` builds, under ``DRAW_RC``, as PNG bytes."""
    with matplotlib.rc_context(DRAW_RC):
        return figure_png(draw(), dpi)


def outer_x_ticks(axes: Sequence[Axes], cols: int, y_ticks: int = 4,
                  integer_y: bool = False) -> None:
    """Small multiples on one x range (``axes`` row by row, ``cols`` a row): x ticks and label
    only on the lowest panel of each column, and at most ``y_ticks`` + 1 y ticks a panel.

    Tick objects are most of a many-panel figure's drawing time; the x range is the same in
    every panel (the caller sets it), so the bottom row reads for all."""
    for i, ax in enumerate(axes):
        if i + cols < len(axes):
            ax.xaxis.set_major_locator(NullLocator())
            ax.set_xlabel("")
        ax.yaxis.set_major_locator(MaxNLocator(y_ticks, integer=integer_y))


def figure_png(fig: Figure, dpi: int = 90) -> bytes:
    """``fig`` as PNG bytes (for embedding in a page; nothing is written)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = 90) -> Path:
    """Write ``fig`` as a PNG atomically (temp file + fsync + rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        f.write(figure_png(fig, dpi))
    return path


def smooth(y: np.ndarray, beta: float = 0.98) -> np.ndarray:
    """Debiased exponential moving average (fastai's smoothed loss); non-finite values skipped."""
    y = finite(y)
    out = np.full(len(y), np.nan)
    avg, n = 0.0, 0
    for i, v in enumerate(y):
        if np.isnan(v):
            continue
        n += 1
        avg = beta * avg + (1 - beta) * v
        out[i] = avg / (1 - beta ** n)
    return out


def fixed_figure(size: tuple[float, float], left: float = 0.7, right: float = 0.2,
                 top: float = 0.4, bottom: float = 0.5) -> Figure:
    """A figure with fixed margins in inches: constrained layout costs more than the drawing."""
    w, h = size
    fig = Figure(figsize=size)
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        wspace=0.3, hspace=0.45)
    return fig
