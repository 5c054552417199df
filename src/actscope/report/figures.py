"""The report's figures: one list, each figure drawn once, the same PNG bytes for plots/ and page.

``FIGURES`` says, per figure, its file name in plots/, the run file it is drawn from, its caption
in report.html, when the run's data allows it, and how it is drawn. ``draw_figures`` draws every
allowed figure once into PNG bytes; the writer saves those bytes to plots/ and embeds the same
bytes in the page (nothing is read back from disk). matplotlib is imported only when a figure is
drawn (``import actscope`` must not load it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actscope.atomic import atomic_write
from actscope.diagnosis.activations import zero_floored
from actscope.report.run_view import RUN_FILES, RunView, read_run
from actscope.runs.layout import (
    LR_FIND_FILE,
    METRICS_FILE,
    PLOTS_DIR,
    RECORDER_FILE,
    TELEMETRY_FILE,
)
from actscope.telemetry.record import Telemetry

__all__ = ["FIGURES", "CAPTIONS", "Fig", "plot_names", "figure_names", "draw_figures",
           "save_figures", "save_run_plots", "n_dead_channels", "channel_layers"]


def _plots() -> Any:
    from actscope.report import plots  # matplotlib: only when a figure is drawn

    return plots


def _has_telemetry(v: RunView) -> bool:
    t = v.telemetry
    return t is not None and bool(len(t.iters)) and bool(t.n_layers)


def channel_layers(t: Telemetry) -> list[int]:
    """The layers whose per-channel dead units mean something: zero-floored ones per the run
    context (the diagnosis' rule), every layer in files without a context. A reconstruction's
    border pixels or a pre-activation Linear sit below 0 without being dead units."""
    ctx = t.meta.get("context") if isinstance(t.meta, dict) else None
    return [i for i, name in enumerate(t.names) if zero_floored(ctx or {}, name)]


def n_dead_channels(t: Telemetry | None) -> tuple[int, int]:
    """(channels dead in the last epoch, channels), over the ``channel_layers``; (0, 0) when
    nothing per-channel was recorded."""
    if t is None or t.channel_dead is None or t.channel_dead.shape[1] == 0 or not t.n_layers:
        return 0, 0
    layers = channel_layers(t)
    dead = sum(int(np.nansum(t.channel_dead[i, -1, : int(t.n_channels[i])])) for i in layers)
    return dead, sum(int(t.n_channels[i]) for i in layers)


def _has_channel_dead(v: RunView) -> bool:
    """The per-channel picture only when some channel of a ``channel_layers`` layer is dead
    (else the page's one line)."""
    t = v.telemetry
    return (t is not None and t.channel_dead is not None and t.channel_dead.shape[1] > 0
            and t.n_layers > 0
            and any(bool(np.nansum(t.channel_dead[i]) > 0) for i in channel_layers(t)))


def _has_metrics_curve(v: RunView) -> bool:
    """metrics.csv draws something: a validation value, or a training curve of 2+ epochs. The
    one row a watch()/Lightning/HF run without evaluation writes would be empty axes (its loss
    curve is scalars.png)."""
    def n_finite(col: str) -> int:
        return sum(1 for r in v.metrics or [] if np.isfinite(r.get(col, np.nan)))

    return bool(v.metrics) and (
        any(n_finite(f"valid_{w}") for w in ("loss", "accuracy"))
        or any(n_finite(f"train_{w}") >= 2 for w in ("loss", "accuracy")))


def _has_scalars(v: RunView) -> bool:
    t = v.telemetry
    return (t is not None and t.scalars is not None and bool(len(t.iters))
            and bool(np.isfinite(t.scalars).any()))


def _signals() -> Any:
    from actscope.report import plots_signals  # matplotlib: only when a figure is drawn

    return plots_signals


@dataclass(frozen=True)
class Fig:
    """One figure of the report."""

    name: str  # its file in plots/ (and, without .png, its alt text)
    source: str  # the run file it is drawn from
    caption: str
    shown: Callable[[RunView], bool]  # whether the run's data allows it
    draw: Callable[[RunView], Any]  # the matplotlib Figure


# In the order they are drawn and saved; the page places each in its section.
FIGURES: tuple[Fig, ...] = (
    Fig("lr_loss.png", RECORDER_FILE, "Learning rate and training loss per batch (raw, faint; "
        "smoothed, solid).",
        lambda v: v.recorder is not None and bool(len(v.recorder["losses"])),
        lambda v: _plots().plot_lr_loss(v.recorder["lrs"], v.recorder["losses"])),
    Fig("metrics.png", METRICS_FILE, "Accuracy and loss per epoch (validation solid, training "
        "dashed).",
        _has_metrics_curve, lambda v: _plots().plot_metrics(v.metrics)),
    Fig("scalars.png", TELEMETRY_FILE, "The run's scalars per training batch as the trainer "
        "gave them (loss raw faint, smoothed solid; eval metrics as points; log scale where "
        "values span more than two decades).",
        _has_scalars, lambda v: _signals().plot_scalars(v.telemetry)),
    Fig("stats.png", TELEMETRY_FILE, "Mean and std of each watched layer's output (whole run, "
        "and the first batches).",
        _has_telemetry, lambda v: _plots().plot_stats(v.telemetry)),
    Fig("hist_heatmap.png", TELEMETRY_FILE, "Histogram of each layer's activations over "
        "training (log counts): the lesson's picture of activations growing and collapsing. "
        "Bands beyond the dashed lines count the values below and above the recorded range.",
        _has_telemetry, lambda v: _plots().plot_hist_heatmap(v.telemetry)),
    Fig("signals.png", TELEMETRY_FILE, "Diagnosis signals: gradient norm and update ratio "
        "per layer (dashed: the healthy 1e-3), max |x|, attention max logit and entropy, output "
        "log-sum-exp, as recorded.",
        lambda v: bool(_signals().signal_panels(v.telemetry)),
        lambda v: _signals().plot_signals(v.telemetry)),
    Fig("dead_share.png", TELEMETRY_FILE, "Share of each layer's sampled activations near zero: "
        "dead units where a layer is zero-floored (ReLU family), else only a near-zero share.",
        _has_telemetry, lambda v: _plots().plot_dead_share(v.telemetry)),
    Fig("channel_dead.png", TELEMETRY_FILE, "Per-channel dead units: dark where a channel "
        "never fired (was never above the dead threshold) during an epoch.",
        _has_channel_dead,
        lambda v: _plots().plot_channel_dead(v.telemetry, channel_layers(v.telemetry))),
    Fig("lr_find.png", LR_FIND_FILE, "LR finder: loss against learning rate, with the "
        "suggestion marked.",
        lambda v: v.lr_find is not None and bool(len(v.lr_find["lrs"])),
        lambda v: _plots().plot_lr_find(v.lr_find["lrs"], v.lr_find["losses"],
                                        v.lr_find["suggestion"])),
)
CAPTIONS = {f.name: f.caption for f in FIGURES}


def plot_names() -> tuple[str, ...]:
    """The file names a report's plots can get in plots/."""
    return tuple(f.name for f in FIGURES)


def figure_names(view: RunView) -> list[str]:
    """The figures ``view``'s data allows (nothing is drawn)."""
    return [f.name for f in FIGURES if f.shown(view)]


def draw_figures(view: RunView) -> dict[str, bytes]:
    """Every figure ``view``'s data allows, drawn once, as PNG bytes (nothing is written)."""
    from actscope.report.plots_base import draw_png

    return {f.name: draw_png(lambda f=f: f.draw(view)) for f in FIGURES if f.shown(view)}


def save_figures(run_dir: str | Path, pngs: dict[str, bytes]) -> list[Path]:
    """``pngs`` as plots/<name> in ``run_dir``, each written atomically; the paths."""
    out = Path(run_dir) / PLOTS_DIR
    paths = []
    for name, data in pngs.items():
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / name, "wb") as f:
            f.write(data)
        paths.append(out / name)
    return paths


def save_run_plots(run_dir: str | Path, view: RunView | None = None) -> list[Path]:
    """Every plot the run folder's files allow (or ``view``'s, if given: then no file is read),
    as ``plots/*.png``; returns the written paths."""
    run_dir = Path(run_dir)
    if view is None:
        has_files = run_dir.is_dir() and any((run_dir / f).is_file() for f in RUN_FILES)
        view = read_run(run_dir) if has_files or not run_dir.is_dir() else RunView(run_dir)
    return save_figures(run_dir, draw_figures(view))
