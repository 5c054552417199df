"""Issue 22's report side: scalars as metrics, readable histograms, panels per context, titles,
speed benchmark, notebook HTML and ``actscope report --open``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from actscope.report.scalars import metrics_rows_from_scalars, wants_log_scale
from benchmarks.report_speed import synthetic  # the repo root is on sys.path, not benchmarks/


def test_metrics_rows_from_scalars_end_at_eval_points():
    t = synthetic(2, 100)
    ev = np.full(100, np.nan)
    ev[[49, 99]] = [0.9, 0.7]
    t = dataclasses.replace(t, scalar_names=["loss", "eval_loss"],
                            scalars=np.stack([np.linspace(2, 1, 100), ev]))
    rows = metrics_rows_from_scalars(t)
    assert [r["epoch"] for r in rows] == [0, 1]
    assert [r["valid_loss"] for r in rows] == [0.9, 0.7]
    assert rows[0]["train_loss"] == pytest.approx(np.linspace(2, 1, 100)[:50].mean())

def test_log_scale_when_values_span_more_than_two_decades():
    assert wants_log_scale(np.array([1e-3, 1.0]))
    assert not wants_log_scale(np.array([0.5, 20.0]))
    assert not wants_log_scale(np.array([0.0, 1e4]))  # a log axis cannot show 0
    from actscope.report.plots import plot_stats

    t = synthetic(2, 50, per_record=False)
    t = dataclasses.replace(t, std=np.stack([np.full(50, 1e-3), np.full(50, 10.0)]).astype("f4"))
    assert "log" in [ax.get_yscale() for ax in plot_stats(t).axes]
