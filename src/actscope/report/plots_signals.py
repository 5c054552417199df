"""Plots of the run's scalars (loss, lr, logged metrics) and of the diagnosis signals.

The scalars come from ``Telemetry.scalars`` (``watch().step(loss=...)``, Lightning's logged
metrics, HF's ``log_history``) and are drawn on the telemetry's step axis. The signals
(gradient norm, update ratio with its healthy 1e-3 guide, attention max logit and entropy, max
|x|, output log-sum-exp) get one panel each, only when recorded. A record that stands for many
steps (a coarsened span, ``n_steps`` > 1) is drawn over the steps it covers.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from actscope.report.plots_base import (
    finite,
    grid,
    layer_colours,
    layer_lines,
    plain,
    smooth,
    thin,
)
from actscope.report.scalars import wants_log_scale
from actscope.telemetry.record import Telemetry

__all__ = ["plot_scalars", "plot_signals", "signal_panels", "scalar_panels", "joined",
           "UPDATE_RATIO_GUIDE"]

UPDATE_RATIO_GUIDE = 1e-3  # a healthy ||dW|| / ||W|| per step (Karpathy's rule of thumb)
# (field, title, per layer?): the panels the signals allow, in this order.
_PANELS = (("grad_norm", "gradient norm per layer", True),
           ("update_ratio", "update ratio ||dW||/||W|| per layer", True),
           ("absmax", "max |x| per layer", True),
           ("attn_logit_max", "attention max logit", True),
           ("attn_entropy", "attention entropy (nats)", True),
           ("out_lse", "output log-sum-exp", False),
           ("out_absmax", "output max |logit|", False))


def _spans(t: Telemetry) -> tuple[np.ndarray, np.ndarray] | None:
    """(start, end) steps of records covering more than one step, or None when none does."""
    n = getattr(t, "n_steps", None)
    if n is None:
        return None
    n = np.asarray(n)
    n = n.max(axis=0) if n.ndim == 2 else n
    if not (n > 1).any():
        return None
    end = np.asarray(getattr(t, "iter_end", None) if getattr(t, "iter_end", None) is not None
                     else t.iters + n - 1)
    end = end.max(axis=0) if end.ndim == 2 else end
    many = n > 1
    return np.asarray(t.iters)[many], end[many]


def _mark_spans(ax, t: Telemetry) -> bool:  # noqa: ANN001 - a matplotlib Axes
    spans = _spans(t)
    if spans is None:
        return False
    lo, hi = spans
    ax.axvspan(float(lo.min()), float(hi.max()), color="0.85", zorder=0, lw=0)
    return True


def joined(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``a`` (L, N) or (N,) with each NaN between two measured values linearly interpolated
    along ``x``: a signal measured on every ``signal_every``-th record (NaN in the others) is
    then a line, not isolated invisible points. Nothing beyond the measured values is drawn
    (an interpolated value lies between its neighbours); leading and trailing NaN, and
    infinities, stay as they are (an inf is still a gap once ``finite`` has it)."""
    a = np.array(a, dtype=np.float64)
    for row in np.atleast_2d(a):  # views into ``a``
        known = ~np.isnan(row)
        idx = np.flatnonzero(known)
        if len(idx) < 2 or known[idx[0]:idx[-1] + 1].all():
            continue
        gap = ~known
        gap[:idx[0]] = gap[idx[-1] + 1:] = False
        ok = known & np.isfinite(row)
        if ok.sum() >= 2:
            row[gap] = np.interp(x[gap], x[ok], row[ok])
    return a


def signal_panels(t: Telemetry | None) -> list[str]:
    """The signal fields ``t`` recorded with at least one finite value."""
    if t is None or not len(t.iters):
        return []
    return [f for f, _, _ in _PANELS
            if (a := getattr(t, f, None)) is not None and np.isfinite(finite(a)).any()]


def scalar_panels(t: Telemetry) -> tuple[list[tuple[str, str]], dict[str, float]]:
    """([(scalar, panel title)], {constant scalar: its value}): the scalars worth a panel, loss
    first. A scalar equal to an earlier one (Lightning's ``loss`` and a logged ``train_loss``)
    shares its panel, named in the title; a constant one (a fixed lr) gets no panel, only its
    value in the figure's title: a flat line carries nothing."""
    names = sorted((n for n in (t.scalar_names or [])
                    if np.isfinite(finite(t.scalars[t.scalar_names.index(n)])).any()),
                   key=lambda n: (n != "loss", n))
    rows = {n: finite(t.scalars[t.scalar_names.index(n)]) for n in names}
    panels: dict[str, list[str]] = {}
    constants: dict[str, float] = {}
    for n in names:
        y = rows[n][np.isfinite(rows[n])]
        if len(y) > 1 and np.all(y == y[0]):
            constants[n] = float(y[0])
            continue
        same = next((p for p in panels if np.array_equal(rows[p], rows[n], equal_nan=True)),
                    None)
        panels.setdefault(same or n, []).append(n)
    return [(p, " = ".join(plain(m) for m in ms)) for p, ms in panels.items()], constants


def plot_scalars(t: Telemetry) -> Figure:
    """One panel per recorded scalar (loss first) over the telemetry's steps; sparse scalars
    (eval metrics) as points; duplicates and constants as ``scalar_panels`` says."""
    panels, constants = scalar_panels(t)
    if not panels:  # only constants: one panel still carries them
        panels = [(n, plain(n)) for n in constants]
        constants = {}
    fig, axes = grid(len(panels), max_cols=3, panel=(4.2, 2.8), top=0.7 if constants else 0.45)
    if constants:
        fig.suptitle("constant: " + ", ".join(f"{plain(n)} = {v:.3g}"
                                              for n, v in constants.items()), fontsize="small")
    for ax, (name, title) in zip(axes, panels, strict=True):
        y = finite(t.scalars[t.scalar_names.index(name)])
        ok = np.isfinite(y)
        x = np.asarray(t.iters, np.float64)
        if ok.sum() < 0.5 * len(y) or ok.sum() < 30:  # eval points, or few
            ax.plot(x[ok], y[ok], "-o", ms=3, lw=1)
        else:
            ax.plot(*thin(x[ok], y[ok]), lw=0.6, alpha=0.35)
            ax.plot(*thin(x[ok], smooth(y[ok])), lw=1.2)
        if wants_log_scale(y):
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", useOffset=False)  # no "1e-15+1e-3" offset labels
        ax.set_title(title, fontsize="small")
        ax.set_xlabel("training batch", fontsize="small")
        ax.tick_params(labelsize="x-small")
    return fig


def plot_signals(t: Telemetry) -> Figure:
    """The recorded diagnosis signals, one panel each, layers coloured by depth."""
    fields = signal_panels(t)
    fig, axes = grid(len(fields), max_cols=3, panel=(4.2, 2.8))
    x = np.asarray(t.iters, np.float64)
    colours = layer_colours(t.n_layers)
    spanned = False
    for ax, field in zip(axes, fields, strict=True):
        title, per_layer = next((ti, pl) for f, ti, pl in _PANELS if f == field)
        a = finite(joined(x, getattr(t, field)))
        rows = a if per_layer else a[None, :]
        if field == "update_ratio" or wants_log_scale(rows):
            ax.set_yscale("log")  # before drawing: layer_lines draws for the axis it finds
        if per_layer:
            some = [i for i, row in enumerate(rows) if np.isfinite(row).any()]
            layer_lines(ax, x, rows[some], [colours[i] for i in some],
                        [t.names[i] for i in some])
        else:
            ax.plot(*thin(x, rows[0]), lw=1, color="C0")
        if field == "update_ratio":
            ax.axhline(UPDATE_RATIO_GUIDE, color="0.3", ls="--", lw=0.8)
        spanned = _mark_spans(ax, t) or spanned
        ax.set_title(title, fontsize="small")
        ax.set_xlabel("training batch", fontsize="small")
        ax.tick_params(labelsize="x-small")
    if per_layer_axes := [ax for ax, f in zip(axes, fields, strict=True)
                          if any(f == p and pl for p, _, pl in _PANELS)]:
        if t.n_layers <= 10:
            per_layer_axes[0].legend(fontsize="x-small")
    if spanned:
        fig.suptitle("grey: steps covered by coarsened records (one point stands for a span)",
                     fontsize="x-small")
    return fig
