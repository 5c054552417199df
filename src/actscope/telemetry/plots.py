"""Plots of a run (the only module that imports matplotlib). Each returns a Figure, never shows it.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no global state, no display), so
they work headless and in threads. Functions that draw one panel take ``ax=None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from actscope.atomic import atomic_write
from actscope.telemetry.activation_stats import Telemetry

__all__ = [
    "plot_stats",
    "plot_hist_heatmap",
    "plot_dead_share",
    "plot_lr_loss",
    "plot_lr_find",
    "save_figure",
    "save_run_plots",
]


def _finite(a: np.ndarray) -> np.ndarray:
    """``a`` as float with +-inf turned into NaN: matplotlib leaves a gap instead of failing."""
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a), a, np.nan)


def _fig_ax(ax: Axes | None, size: tuple[float, float] = (6, 4)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _scope(t: Telemetry) -> str:
    """A title suffix naming the rank of a DDP run's telemetry (rank 0's shard), else ""."""
    scope = t.meta.get("scope", "single process")
    return "" if scope == "single process" else f" [{scope}]"


def plot_stats(t: Telemetry, zoom: int = 30, axes: Sequence[Axes] | None = None) -> Figure:
    """Mean and std per layer over the iterations, plus a zoom on the first ``zoom`` batches."""
    if axes is None:
        fig = Figure(figsize=(11, 7), layout="constrained")
        axes = fig.subplots(2, 2).ravel()
    fig = axes[0].figure
    early = t.iters < t.iters[0] + zoom if len(t.iters) else np.zeros(0, bool)
    for col, (sel, where) in enumerate(((slice(None), "whole run"), (early, f"first {zoom}"))):
        for row, (arr, what) in enumerate(((t.mean, "mean"), (t.std, "std"))):
            ax = axes[2 * row + col]
            for i, name in enumerate(t.names):
                ax.plot(t.iters[sel], _finite(arr[i, sel]), label=name, lw=1)
            ax.set_title(f"activation {what} ({where}){_scope(t)}")
            ax.set_xlabel("training batch")
    axes[0].legend(fontsize="small")
    return fig


def plot_hist_heatmap(t: Telemetry, ax: Axes | None = None) -> Figure:
    """Per layer: iterations on x, histogram bins on y, log counts (the lesson's picture)."""
    L = t.n_layers
    if ax is not None and L != 1:
        raise ValueError(f"plot_hist_heatmap draws one panel per layer ({L}); pass ax=None")
    if ax is None:
        fig = Figure(figsize=(3.2 * L, 3.4), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, L, squeeze=False).ravel())
    else:
        fig, axes = ax.figure, [ax]
    x0, x1 = (t.iters[0], t.iters[-1] + 1) if len(t.iters) else (0, 1)
    for i, ax_i in enumerate(axes):
        counts = t.hist[i].T.astype(np.float64)  # (bins, N)
        lo, hi = t.hist_range[i]
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            lo, hi = 0.0, 1.0  # a range from a diverged run: keep the picture, lose the scale
        norm = LogNorm(vmin=1, vmax=max(counts.max(), 2))
        ax_i.imshow(np.where(counts > 0, counts, np.nan), origin="lower", aspect="auto",
                    norm=norm, cmap="viridis", extent=(x0, x1, lo, hi), interpolation="nearest")
        ax_i.set_title(t.names[i], fontsize="small")
        ax_i.set_xlabel("training batch")
    axes[0].set_ylabel("activation value")
    if _scope(t) and ax is None:
        fig.suptitle(f"activation histograms{_scope(t)}", fontsize="small")
    return fig


def plot_dead_share(t: Telemetry, ax: Axes | None = None) -> Figure:
    """The share of activations near zero, per layer, over the iterations (y from 0 to 1)."""
    fig, ax = _fig_ax(ax)
    for i, name in enumerate(t.names):
        ax.plot(t.iters, _finite(t.dead[i]), label=name, lw=1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("training batch")
    ax.set_ylabel("share near zero")
    ax.set_title(f"dead share per layer{_scope(t)}")
    ax.legend(fontsize="small")
    return fig


def plot_lr_loss(lrs: np.ndarray, losses: np.ndarray, axes: Sequence[Axes] | None = None
                 ) -> Figure:
    """Learning rate (first param group) and training loss per batch, side by side."""
    if axes is None:
        fig = Figure(figsize=(10, 3.5), layout="constrained")
        axes = fig.subplots(1, 2)
    fig = axes[0].figure
    lrs = _finite(lrs)
    axes[0].plot(lrs[:, 0] if lrs.ndim == 2 else lrs)
    axes[0].set_title("learning rate")
    axes[1].plot(_finite(losses), lw=0.8)
    axes[1].set_title("training loss")
    for ax in axes:
        ax.set_xlabel("training batch")
    return fig


def plot_lr_find(lrs: np.ndarray, losses: np.ndarray, suggestion: float | None = None,
                 ax: Axes | None = None) -> Figure:
    """The LR-finder curve (log x) with the suggested learning rate marked."""
    fig, ax = _fig_ax(ax)
    lrs, losses = _finite(lrs), _finite(losses)
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


def save_figure(fig: Figure, path: str | Path, dpi: int = 90) -> Path:
    """Write ``fig`` as a PNG atomically (temp file + fsync + rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    return path


def save_run_plots(run_dir: str | Path) -> list[Path]:
    """Every plot the run folder's files allow, as ``plots/*.png``; returns the written paths."""
    run_dir = Path(run_dir)
    out, written = run_dir / "plots", []
    tel_path = run_dir / "telemetry.npz"
    if tel_path.exists():
        t = Telemetry.load(tel_path)
        if len(t.iters):
            written += [save_figure(plot_stats(t), out / "stats.png"),
                        save_figure(plot_hist_heatmap(t), out / "hist_heatmap.png"),
                        save_figure(plot_dead_share(t), out / "dead_share.png")]
    rec_path = run_dir / "recorder.npz"
    if rec_path.exists():
        with np.load(rec_path) as z:
            if "lrs" in z.files and "losses" in z.files and len(z["losses"]):
                written.append(save_figure(plot_lr_loss(z["lrs"], z["losses"]),
                                           out / "lr_loss.png"))
    lrf_path = run_dir / "lr_find.npz"
    if lrf_path.exists():
        with np.load(lrf_path) as z:
            if len(z["lrs"]):
                sugg = float(z["suggestion"]) if "suggestion" in z.files else None
                written.append(save_figure(plot_lr_find(z["lrs"], z["losses"], sugg),
                                           out / "lr_find.png"))
    return written
