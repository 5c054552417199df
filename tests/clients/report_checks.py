"""What issue 22 asks of a client's report, read back from its run folder.

- a loss curve: the recorded ``loss`` scalar is finite and metrics.csv has a train loss;
- readable histograms: every histogram panel draws >= 90% of its recorded samples inside its
  range (recomputed here from the counts, ``hist`` against ``hist_under``/``hist_over``, which
  must be kept);
- no meaningless panel: "dead share" only for zero-floored layers, the per-channel picture only
  where a zero-floored layer has a dead channel, the title named after the run.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np

from actscope.telemetry.record import Telemetry

__all__ = ["in_range_shares", "check_report", "findings"]


def in_range_shares(t: Telemetry) -> np.ndarray:
    """(L,) per layer, the share of its sampled values inside the histogram range, all records."""
    assert t.hist_under is not None and t.hist_over is not None, "overflow counts not kept"
    inside = t.hist.astype(np.float64).sum(axis=(1, 2))
    outside = t.hist_under.astype(np.float64).sum(axis=1) + t.hist_over.sum(axis=1)
    assert (inside + outside > 0).all(), "a layer recorded no histogram samples"
    return inside / (inside + outside)


def findings(run: Path) -> list[dict]:
    """The run's findings as written (``findings.json`` holds one message per finding)."""
    return json.loads((run / "findings.json").read_text())


def _panel_titles(t: Telemetry) -> list[str]:
    from actscope.report.plots import plot_dead_share

    return [ax.get_title() for ax in plot_dead_share(t).axes if ax.get_title()]


def check_report(run: Path, title: str) -> Telemetry:
    """Assert issue 22's "done when" on the report folder ``run``; its telemetry."""
    html = (run / "report.html").read_text()
    assert f"<h1>actscope run: {title}</h1>" in html, re.findall(r"<h1>.*?</h1>", html)
    t = Telemetry.load(run / "telemetry.npz")
    # the loss curve
    loss = t.scalar("loss")
    # a curve: >= 10 points (the HF Trainer logs every logging_steps, NaN between)
    assert loss is not None and np.isfinite(loss).sum() >= 10, t.scalar_names
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and rows[-1].get("train_loss"), rows
    plots = {p.name for p in (run / "plots").glob("*.png")}
    assert "scalars.png" in plots and "hist_heatmap.png" in plots, plots
    # readable histograms
    shares = in_range_shares(t)
    assert (shares >= 0.9).all(), dict(zip(t.names, shares.round(3), strict=True))
    # no meaningless panel
    layers = t.meta["context"]["layers"]
    floored = [bool(layers[n]["zero_floored"]) for n in t.names]
    titles = " | ".join(_panel_titles(t))
    assert ("dead share" in titles) == any(floored), titles
    dead_channels = t.channel_dead is not None and any(
        np.nansum(t.channel_dead[i]) > 0 for i, f in enumerate(floored) if f)
    assert ("channel_dead.png" in plots) == dead_channels, plots
    return t
