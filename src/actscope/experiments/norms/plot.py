"""The norms bar chart: the one module of the experiments that imports matplotlib.

It stays here rather than in telemetry/plots.py because it plots this experiment's table (its
rows and the lesson's figures), not a run's telemetry; keeping it apart means running or testing
the experiments without a plot imports no matplotlib until ``write_results`` draws.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actscope.atomic import atomic_write
from actscope.experiments.norms.table import EXPERIMENTS

__all__ = ["plot_norms"]


def plot_norms(summary: list[dict[str, Any]], path: Path) -> None:
    """A bar chart of ``summarise(rows)``: ours per experiment, the lesson's figure as a marker."""
    import matplotlib  # local: plotting is the only reason this module needs matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 0.5 * len(summary) + 1.5))
    ax = fig.add_subplot()
    ys = range(len(summary))
    ax.barh(list(ys), [100 * s["mean"] for s in summary],
            xerr=[100 * (s["std"] or 0.0) for s in summary], color="tab:blue", label="ours")
    lesson = [(y, 100 * EXPERIMENTS[s["name"]].lesson_acc) for y, s in zip(ys, summary,
              strict=True) if EXPERIMENTS[s["name"]].lesson_acc is not None]
    if lesson:
        ax.scatter([v for _, v in lesson], [y for y, _ in lesson], marker="|", s=300,
                   color="tab:red", label="the lesson", zorder=3)
    ax.set_yticks(list(ys), [s["name"] for s in summary])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("validation accuracy (%)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
