"""Plots that put runs side by side: curves overlaid, heat-maps on one shared range and scale.

Each function takes ``runs``: ``(label, RunView)`` pairs in the order of the comparison (colour i
is run i everywhere), and ``x``: ``"batch"`` (training batch) or ``"fraction"`` (of training), the
x axis that makes runs of different lengths comparable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from actscope.report.hist_view import layer_picture, layer_ranges, shared_range
from actscope.report.plots_base import (
    finite,
    grid,
    outer_x_ticks,
    panel_points,
    panel_table,
    plain,
    run_colours,
    smooth,
    thin,
)
from actscope.report.plots_layers import draw_channel_dead, draw_heatmap, heat_values
from actscope.report.run_view import RunView
from actscope.report.scalars import wants_log_scale

__all__ = ["plot_compare_metrics", "plot_compare_lines", "plot_compare_heatmaps",
           "plot_compare_channel_dead", "shared_hist", "x_of", "X_LABELS", "LOG_FIELDS"]

Runs = Sequence[tuple[str, RunView]]
X_LABELS = {"batch": "training batch", "fraction": "fraction of training"}
LOG_FIELDS = ("std", "absmax")  # scales: log y where a panel spans more than two decades


def x_of(view: RunView, steps: np.ndarray, x: str) -> np.ndarray:
    """Training batch ``steps`` on the chosen axis (fraction: batches done / the run's total)."""
    steps = np.asarray(steps, np.float64)
    if x == "batch":
        return steps
    return (steps + 1) / max(view.n_batches or 1, 1)


def _legend(fig: Figure, runs: Runs, where: str = "outside upper center") -> None:
    """One legend of run colours for the whole figure, outside the panels."""
    handles = [Line2D([], [], color=c, lw=2) for c in run_colours(len(runs))]
    fig.legend(handles, [plain(label) for label, _ in runs], loc=where,
               ncols=min(len(runs), 4), fontsize="small", frameon=False)


def _epoch_x(view: RunView, x: str) -> np.ndarray:
    """Where each epoch ends on the x axis (batch: end-of-epoch batch, if the run knows it)."""
    n = len(view.metrics or [])
    ends = np.arange(1, n + 1, dtype=np.float64)
    if x == "fraction":
        return ends / max(n, 1)
    return ends * (view.n_batches / n) if view.n_batches and n else ends


def plot_compare_metrics(runs: Runs, x: str = "batch") -> Figure:
    """Validation accuracy and loss per epoch, and training loss per batch, all runs overlaid."""
    fig = Figure(figsize=(14, 4), layout="constrained")
    acc, loss, train = fig.subplots(1, 3)
    colours = run_colours(len(runs))
    for (_label, view), colour in zip(runs, colours, strict=True):
        rows = view.metrics or []
        ex = _epoch_x(view, x)
        for ax, col in ((acc, "valid_accuracy"), (loss, "valid_loss")):
            if rows and col in rows[0]:
                ax.plot(ex, finite([r[col] for r in rows]), "-o", ms=3, color=colour)
        rec = view.recorder
        if rec is not None and len(rec["losses"]):
            steps = x_of(view, np.arange(len(rec["losses"])), x)
            train.plot(*thin(steps, rec["losses"]), color=colour, lw=0.5, alpha=0.25)
            train.plot(*thin(steps, smooth(rec["losses"])), color=colour, lw=1.4)
    by_batch = x == "batch" and all(v.n_batches for _, v in runs)
    for ax, title in ((acc, "validation accuracy per epoch"), (loss, "validation loss per epoch"),
                      (train, "training loss per batch (smoothed; raw faint)")):
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel(X_LABELS[x] if (ax is train or by_batch or x == "fraction") else "epoch")
        if not ax.lines:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
    _legend(fig, runs)
    return fig


def plot_compare_lines(runs: Runs, layers: Sequence[str], field: str, title: str,
                       x: str = "batch", ylim: tuple[float, float] | None = None) -> Figure:
    """One panel per layer, the runs' ``field`` curves (mean, std, dead, absmax) overlaid.

    A scale field (``LOG_FIELDS``) gets a log y axis in a panel whose runs' values span more
    than two decades (``scalars.wants_log_scale``, the single report's rule): on a linear axis
    a sane run beside a diverging one is a flat line at 0."""
    rows = -(-len(runs) // 4)  # legend rows, four runs a row
    fig, axes = grid(len(layers), max_cols=6, panel=(2.8, 2.1), top=0.55 + 0.22 * rows)
    colours = run_colours(len(runs))
    for ax, layer in zip(axes, layers, strict=True):
        drawn = []
        for (_, view), colour in zip(runs, colours, strict=True):
            t = view.telemetry
            if t is not None and layer in t.names and getattr(t, field, None) is not None:
                row = getattr(t, field)[t.names.index(layer)]
                ax.plot(*thin(x_of(view, t.iters, x), row, panel_points(ax)), color=colour,
                        lw=1)
                drawn.append(row)
        log = field in LOG_FIELDS and wants_log_scale(*drawn)
        if log:
            ax.set_yscale("log")
        ax.set_title(plain(layer) + (" (log)" if log else ""), fontsize="x-small")
        ax.tick_params(labelsize="x-small")
        if ylim is not None:
            ax.set_ylim(*ylim)
    for ax in axes[-min(len(axes), 6):]:
        ax.set_xlabel(X_LABELS[x], fontsize="x-small")
    h = fig.get_size_inches()[1]
    fig.suptitle(plain(title), fontsize="medium", y=1 - 0.05 / h, va="top")
    _legend(fig, runs, "upper center")
    fig.legends[0].set_bbox_to_anchor((0.5, 1 - 0.3 / h))
    return fig


def shared_hist(runs: Runs, layer: str) -> tuple[float, float, dict[int, tuple]] | None:
    """One value range for ``layer`` over all runs, each run's shares rebinned onto it.

    Returns ``(lo, hi, {run index: (shares (N, bins), under (N,)|None, over (N,)|None)})``;
    the overflow bands hold each run's share outside its OWN recorded range.
    """
    found = {i: v.telemetry for i, (_, v) in enumerate(runs)
             if v.telemetry is not None and layer in v.telemetry.names and len(v.telemetry.iters)}
    if not found:
        return None
    ranges = np.concatenate([layer_ranges(t, t.names.index(layer)) for t in found.values()])
    lo, hi = shared_range(ranges)  # the union of every run's every record's range
    bins = max(t.hist.shape[2] for t in found.values())
    out = {}
    for i, t in found.items():
        k = t.names.index(layer)
        hist, _, _ = layer_picture(t, k, lo, hi, bins)  # the report's one re-binning
        under = None if t.hist_under is None else t.hist_under[k]
        over = None if t.hist_over is None else t.hist_over[k]
        out[i] = heat_values(hist, under, over, share=True)
    return lo, hi, out


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize="small")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_compare_heatmaps(runs: Runs, layers: Sequence[str], x: str = "batch") -> Figure:
    """Rows = layers, columns = runs: histogram heat-maps on one range and one colour scale."""
    fig, axes = panel_table(len(layers), len(runs), (2.7, 2.0), right=1.3)
    shared = {layer: shared_hist(runs, layer) for layer in layers}
    values = [a for s in shared.values() if s for h, u, o in s[2].values()
              for a in (h, u, o) if a is not None and a.size]
    pos = [v[v > 0] for v in values]
    pos = [p for p in pos if p.size]
    vmax = max((float(p.max()) for p in pos), default=1.0)
    vmin = max(min((float(p.min()) for p in pos), default=1e-4), vmax * 1e-6)
    norm = LogNorm(vmin=vmin, vmax=max(vmax, vmin * 10))
    x_end = max((float(x_of(v, np.array([v.n_batches - 1]), x)[0]) for _, v in runs
                 if v.n_batches), default=1.0)
    for r, layer in enumerate(layers):
        s = shared[layer]
        for c, (label, view) in enumerate(runs):
            ax = axes[r, c]
            if s is None or c not in s[2]:
                _empty(ax, "not recorded")
            else:
                h, u, o = s[2][c]
                draw_heatmap(ax, x_of(view, view.telemetry.iters, x), h, s[0], s[1], u, o,
                             norm=norm)
                ax.set_xlim(0, x_end)
                ax.tick_params(labelsize="x-small")
            if r == 0:
                ax.set_title(plain(label), fontsize="small", color=run_colours(len(runs))[c])
            if c == 0:
                ax.set_ylabel(plain(layer), fontsize="x-small")
            if r == len(layers) - 1:
                ax.set_xlabel(X_LABELS[x], fontsize="x-small")
    outer_x_ticks(list(axes.ravel()), len(runs))  # every panel spans [0, x_end]
    w, h = fig.get_size_inches()
    cax = fig.add_axes((1 - 1.0 / w, 0.5 - 0.3 * (1 - 0.9 / h), 0.15 / w, 0.6 * (1 - 0.9 / h)))
    bar = fig.colorbar(_mappable(norm), cax=cax)
    bar.set_label("share of samples per bin (log)", fontsize="small")
    return fig


def _mappable(norm: LogNorm):
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap="viridis")


def plot_compare_channel_dead(runs: Runs, layers: Sequence[str]) -> Figure:
    """Rows = layers, columns = runs: channels by epoch, dark where a channel never fired."""
    fig, axes = panel_table(len(layers), len(runs), (2.5, 2.0))
    for r, layer in enumerate(layers):
        for c, (label, view) in enumerate(runs):
            ax, t = axes[r, c], view.telemetry
            if t is None or t.channel_dead is None or layer not in t.names:
                _empty(ax, "not recorded")
            else:
                k = t.names.index(layer)
                summary = draw_channel_dead(ax, t.channel_epochs, t.channel_dead[k],
                                            int(t.n_channels[k]))
                ax.set_title(plain(f"{label}: {summary}"), fontsize="x-small")
                ax.tick_params(labelsize="x-small")
            if c == 0:
                ax.set_ylabel(plain(layer), fontsize="x-small")
            if r == len(layers) - 1:
                ax.set_xlabel("epoch", fontsize="x-small")
    return fig
