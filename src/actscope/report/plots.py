"""Plots of one run. Each returns a Figure, never shows it; ``figures.py`` lists the report's.

Only the ``plots*`` modules import matplotlib (never pyplot). Functions that draw one panel take
``ax=None``. Every plot stays legible with up to 32 layers (small multiples, colour by depth) and
100k batches (thinned for drawing only, see ``plots_base.thin``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from actscope.report.hist_view import layer_picture
from actscope.report.plots_base import (
    finite,
    fixed_figure,
    grid,
    label_fontsize,
    layer_colours,
    layer_lines,
    outer_x_ticks,
    plain,
    save_figure,
    smooth,
    thin,
)
from actscope.report.plots_layers import draw_channel_dead, draw_heatmap
from actscope.report.scalars import wants_log_scale
from actscope.telemetry.record import Telemetry

__all__ = ["plot_stats", "plot_hist_heatmap", "plot_dead_share", "plot_channel_dead",
           "plot_metrics", "plot_lr_loss", "plot_lr_find", "save_figure", "zero_floored"]


def _fig_ax(ax: Axes | None, size: tuple[float, float] = (6, 4)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = fixed_figure(size)
    return fig, fig.add_subplot()


def _scope(t: Telemetry) -> str:
    """A title suffix naming the rank of a DDP run's telemetry (rank 0's shard), else ""."""
    scope = str(t.meta.get("scope", "single process"))
    return "" if scope == "single process" else plain(f" [{scope}]")


def _layer_lines(ax: Axes, x: np.ndarray, arr: np.ndarray, names: Sequence[str]) -> None:
    layer_lines(ax, x, arr, layer_colours(len(names)), names)


def _layer_key(fig: Figure, axes: Sequence[Axes], names: Sequence[str]) -> None:
    """A legend for up to 10 layers; beyond, a depth colour bar (32 legend entries are noise)."""
    if len(names) <= 10:
        axes[0].legend(fontsize=label_fontsize(len(names)))
        return
    sm = ScalarMappable(norm=Normalize(0, len(names) - 1), cmap="viridis")
    bar = fig.colorbar(sm, ax=list(axes), shrink=0.8)
    bar.set_label(plain(f"layer (0 = {names[0]}, {len(names) - 1} = {names[-1]})"),
                  fontsize="small")


def plot_stats(t: Telemetry, zoom: int = 30, axes: Sequence[Axes] | None = None) -> Figure:
    """Mean and std per layer over the iterations, plus a zoom on the first ``zoom`` batches."""
    if axes is None:
        fig = fixed_figure((11, 7), right=1.4 if len(t.names) > 10 else 0.2, top=0.5)
        axes = fig.subplots(2, 2).ravel()
    fig = axes[0].figure
    early = t.iters < t.iters[0] + zoom if len(t.iters) else np.zeros(0, bool)
    for col, (sel, where) in enumerate(((slice(None), "whole run"), (early, f"first {zoom}"))):
        for row, (arr, what) in enumerate(((t.mean, "mean"), (t.std, "std"))):
            ax = axes[2 * row + col]
            log = what == "std" and wants_log_scale(arr[:, sel])
            if log:  # a sane run beside a diverging one: linear flattens it to 0
                ax.set_yscale("log")
            _layer_lines(ax, t.iters[sel], arr[:, sel], t.names)
            ax.set_title(f"activation {what} ({where}{', log' if log else ''}){_scope(t)}")
            ax.set_xlabel("training batch")
    _layer_key(fig, axes, t.names)
    return fig


def plot_hist_heatmap(t: Telemetry, ax: Axes | None = None) -> Figure:
    """Per layer: iterations on x, histogram bins on y, log counts (the lesson's picture).

    The y range is the recorded ``hist_range`` (per-record ranges: their union, ``hist_view``);
    counts outside it (``hist_under``/``hist_over``,
    when recorded) are the bands beyond the dashed lines.
    """
    L = t.n_layers
    if ax is not None and L != 1:
        raise ValueError(f"plot_hist_heatmap draws one panel per layer ({L}); pass ax=None")
    cols = min(L, 5)
    if ax is None:
        fig, axes = grid(L, max_cols=cols, panel=(3.2, 2.4))
    else:
        fig, axes = ax.figure, [ax]
    under, over = t.hist_under, t.hist_over
    for i, ax_i in enumerate(axes):
        counts, lo, hi = layer_picture(t, i)  # per-record ranges mapped onto one shared range
        draw_heatmap(ax_i, t.iters, counts, lo, hi,
                     None if under is None else under[i], None if over is None else over[i])
        ax_i.set_title(plain(t.names[i]), fontsize="small")
        ax_i.set_xlabel("training batch", fontsize="small")
        ax_i.tick_params(labelsize="x-small")
    outer_x_ticks(axes, cols)  # every panel spans the same batches (draw_heatmap's x range)
    axes[0].set_ylabel("activation value")
    if _scope(t) and ax is None:
        fig.suptitle(f"activation histograms{_scope(t)}", fontsize="small")
    return fig


def zero_floored(t: Telemetry) -> list[bool] | None:
    """Per layer, whether dead units can exist there (ReLU-family / zero-floored output), from
    ``meta["context"]["layers"]``; None for files without a context (old recordings)."""
    layers = (t.meta.get("context") or {}).get("layers") if isinstance(t.meta, dict) else None
    if not isinstance(layers, dict):
        return None
    return [bool((layers.get(n) or {}).get("zero_floored", False)) for n in t.names]


def plot_dead_share(t: Telemetry, ax: Axes | None = None) -> Figure:
    """The share of activations near zero, per layer, over the iterations (y from 0 to 1).

    With a recorded context, "dead share" is drawn only for zero-floored layers (where a unit
    can die); the others' curve is labelled "near-zero share", a separate panel.
    """
    floored = zero_floored(t)
    groups = ([("dead share per layer", "share near zero", list(range(t.n_layers)))]
              if floored is None else
              [(title, ylabel, idx) for title, ylabel, idx in (
                  ("dead share (zero-floored layers)", "share of dead units",
                   [i for i, f in enumerate(floored) if f]),
                  ("near-zero share (layers that cannot die)", "share near zero",
                   [i for i, f in enumerate(floored) if not f])) if idx])
    if ax is not None and len(groups) != 1:
        raise ValueError("this telemetry needs two dead-share panels; pass ax=None")
    if ax is None:
        fig = fixed_figure((7 * len(groups), 4), right=1.4 if t.n_layers > 10 else 0.2)
        axes = list(np.atleast_1d(fig.subplots(1, len(groups))))
    else:
        fig, axes = ax.figure, [ax]
    colours = layer_colours(t.n_layers)
    for ax_g, (title, ylabel, idx) in zip(axes, groups, strict=True):
        layer_lines(ax_g, t.iters, t.dead[idx], [colours[i] for i in idx],
                    [t.names[i] for i in idx])
        ax_g.set_ylim(0, 1)
        ax_g.set_xlabel("training batch")
        ax_g.set_ylabel(ylabel)
        ax_g.set_title(f"{title}{_scope(t)}")
    _layer_key(fig, axes, t.names)
    return fig


def has_channel_dead(t: Telemetry | None) -> bool:
    """True when ``t`` recorded per-channel dead units for at least one epoch."""
    return t is not None and t.channel_dead is not None and t.channel_dead.shape[1] > 0 \
        and t.n_layers > 0



def plot_channel_dead(t: Telemetry, layers: Sequence[int] | None = None) -> Figure:
    """Per layer (``layers``: those indices, default all): channels by epoch, dark where a
    channel never fired during that epoch."""
    if not has_channel_dead(t):
        raise ValueError("this telemetry has no per-channel dead units (channel_dead is None)")
    layers = list(range(t.n_layers)) if layers is None else list(layers)
    if not layers:
        raise ValueError("no layer to draw per-channel dead units for")
    cols = min(len(layers), 6)
    fig, axes = grid(len(layers), max_cols=cols, panel=(2.6, 2.4))
    for i, ax in zip(layers, axes, strict=True):
        summary = draw_channel_dead(ax, t.channel_epochs, t.channel_dead[i],
                                    int(t.n_channels[i]))
        ax.set_title(plain(f"{t.names[i]}\n{summary} (last epoch)"), fontsize="x-small")
        ax.set_xlabel("epoch", fontsize="x-small")
        ax.tick_params(labelsize="x-small")
    outer_x_ticks(axes, cols, integer_y=True)  # the same epochs in every panel; channels
    axes[0].set_ylabel("channel")
    return fig


def plot_metrics(rows: Sequence[dict[str, float]]) -> Figure:
    """Accuracy and loss per epoch (validation solid, training dashed) from metrics.csv rows."""
    fig = fixed_figure((10, 3.5))
    axes = fig.subplots(1, 2)
    epochs = np.array([r.get("epoch", i) for i, r in enumerate(rows)], np.float64)
    for ax, what in zip(axes, ("accuracy", "loss"), strict=True):
        for split, style in (("valid", "-o"), ("train", "--")):
            col = f"{split}_{what}"
            if rows and col in rows[0]:
                ax.plot(epochs, finite([r[col] for r in rows]), style, ms=3,
                        label="validation" if split == "valid" else "training")
        ax.set_title(f"{what} per epoch")
        ax.set_xlabel("epoch")
        if ax.lines:
            ax.legend(fontsize="small")
    return fig


def plot_lr_loss(lrs: np.ndarray, losses: np.ndarray, axes: Sequence[Axes] | None = None
                 ) -> Figure:
    """Learning rate (first param group) and training loss per batch (raw faint, smoothed)."""
    if axes is None:
        fig = fixed_figure((10, 3.5))
        axes = fig.subplots(1, 2)
    fig = axes[0].figure
    lrs = finite(lrs)
    lr = lrs[:, 0] if lrs.ndim == 2 else lrs
    axes[0].plot(*thin(np.arange(len(lr)), lr))
    axes[0].set_title("learning rate")
    steps = np.arange(len(losses))
    axes[1].plot(*thin(steps, losses), lw=0.6, alpha=0.35, label="per batch")
    axes[1].plot(*thin(steps, smooth(losses)), lw=1.2, label="smoothed")
    axes[1].set_title("training loss")
    axes[1].legend(fontsize="small")
    for ax in axes:
        ax.set_xlabel("training batch")
    return fig


def plot_lr_find(lrs: np.ndarray, losses: np.ndarray, suggestion: float | None = None,
                 ax: Axes | None = None) -> Figure:
    """The LR-finder curve (log x) with the suggested learning rate marked."""
    fig, ax = _fig_ax(ax)
    lrs, losses = finite(lrs), finite(losses)
    ax.plot(lrs, losses)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss (smoothed)")
    ok = np.isfinite(lrs) & np.isfinite(losses) & (lrs > 0)
    if suggestion is not None and np.isfinite(suggestion) and suggestion > 0 and ok.any():
        y = np.interp(np.log(suggestion), np.log(lrs[ok]), losses[ok])
        ax.plot([suggestion], [y], "ro", label=f"suggestion {suggestion:.2g}")
        ax.legend()
    ax.set_title("LR finder")
    return fig
