"""report/compare/plots.py: runs side by side, one panel per layer and run, one shared range."""

from __future__ import annotations

import numpy as np
import pytest

from actscope.report.compare.plots import (
    X_LABELS,
    plot_compare_channel_dead,
    plot_compare_heatmaps,
    plot_compare_lines,
    plot_compare_metrics,
    shared_hist,
    x_of,
)
from actscope.report.run_view import RunView
from tests.telemetry.fakes import telemetry


def _runs(tmp_path, **kw):
    a = RunView(tmp_path / "a", telemetry=telemetry(n_layers=2, lo=0.0, hi=4.0, **kw))
    b = RunView(tmp_path / "b", telemetry=telemetry(n_layers=3, lo=-2.0, hi=8.0, **kw))
    return [("A: a", a), ("B: b", b)]


def test_x_of_batch_and_fraction(tmp_path):
    view = RunView(tmp_path, recorder={"lrs": np.ones(10), "losses": np.ones(10)})
    np.testing.assert_array_equal(x_of(view, np.array([0, 9]), "batch"), [0, 9])
    np.testing.assert_allclose(x_of(view, np.array([0, 9]), "fraction"), [0.1, 1.0])


def test_shared_hist_spans_all_runs_and_keeps_shares(tmp_path):
    runs = _runs(tmp_path)
    layer = runs[0][1].telemetry.names[0]
    lo, hi, per_run = shared_hist(runs, layer)
    assert (lo, hi) == (-2.0, 8.0) and set(per_run) == {0, 1}
    shares = per_run[0][0]
    np.testing.assert_allclose(shares.sum(axis=1)[shares.sum(axis=1) > 0], 1.0)
    assert shared_hist(runs, "no such layer") is None


def test_lines_one_panel_per_layer_one_line_per_run(tmp_path):
    runs = _runs(tmp_path)
    layers = runs[0][1].telemetry.names
    fig = plot_compare_lines(runs, layers, "mean", "means")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == layers
    assert all(len(ax.lines) == 2 for ax in panels)
    assert panels[0].get_xlabel() == X_LABELS["batch"]


def test_heatmaps_rows_layers_columns_runs(tmp_path):
    runs = _runs(tmp_path)
    layers = runs[1][1].telemetry.names  # the third is missing from run A
    fig = plot_compare_heatmaps(runs, layers, x="fraction")
    panels = fig.axes[:-1]  # the last is the colour bar
    assert len(panels) == 6 and fig.axes[-1].get_ylabel().startswith("share of samples")
    assert [panels[c].get_title() for c in range(2)] == ["A: a", "B: b"]
    assert [t.get_text() for t in panels[4].texts] == ["not recorded"]
    assert panels[5].images


def test_channel_dead_panels_say_how_many_died(tmp_path):
    runs = _runs(tmp_path, channels=4)
    layers = runs[0][1].telemetry.names
    fig = plot_compare_channel_dead(runs, layers)
    assert len(fig.axes) == 4
    assert all(" dead" in ax.get_title() for ax in fig.axes)


def test_metrics_without_data_say_not_recorded(tmp_path):
    fig = plot_compare_metrics([("A", RunView(tmp_path))])
    assert len(fig.axes) == 3
    assert all([t.get_text() for t in ax.texts] == ["not recorded"] for ax in fig.axes)


def test_metrics_overlay_one_line_per_run(tmp_path):
    rows = [{"epoch": 0, "valid_loss": 1.0, "valid_accuracy": 0.5},
            {"epoch": 1, "valid_loss": 0.5, "valid_accuracy": 0.8}]
    rec = {"lrs": np.ones(20), "losses": np.linspace(2, 0.5, 20)}
    runs = [(k, RunView(tmp_path / k, metrics=rows, recorder=rec)) for k in "AB"]
    acc, loss, train = plot_compare_metrics(runs).axes[:3]
    assert len(acc.lines) == len(loss.lines) == 2 and len(train.lines) == 4  # raw + smoothed
    assert acc.lines[0].get_ydata().tolist() == pytest.approx([0.5, 0.8])
    assert acc.get_xlabel() == X_LABELS["batch"]


def test_scale_panels_go_log_when_the_runs_span_more_than_two_decades(tmp_path):
    # Issue 22: a sane run beside a diverging one must not be a flat line at 0.
    sane = telemetry(n_layers=2, seed=1)
    wild = telemetry(n_layers=2, seed=2)
    sane.std[:] = 0.5 + sane.std  # 0.5 .. 1.5 in both layers
    wild.std[:] = 0.5 + wild.std
    wild.std[0] *= np.logspace(0, 4, wild.std.shape[1])  # layer 0 diverges 10^4-fold
    runs = [("A: a", RunView(tmp_path / "a", telemetry=sane)),
            ("B: b", RunView(tmp_path / "b", telemetry=wild))]
    fig = plot_compare_lines(runs, sane.names, "std", "std")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_yscale() for ax in panels] == ["log", "linear"]
    assert panels[0].get_title().endswith("(log)") and "(log)" not in panels[1].get_title()
    # the mean is not a scale: never log, whatever its span
    mean = plot_compare_lines(runs, sane.names, "mean", "mean")
    assert {ax.get_yscale() for ax in mean.axes if ax.get_title()} == {"linear"}


def test_compare_page_draws_max_abs_x_when_a_run_recorded_it(tmp_path):
    from actscope.report.compare.page import compare_page

    a, b = telemetry(n_layers=2, seed=1), telemetry(n_layers=2, seed=2)
    b.absmax = np.logspace(0, 3, b.std.size).reshape(b.std.shape).astype(np.float32)
    runs = [("A: a", RunView(tmp_path / "a", telemetry=a)),
            ("B: b", RunView(tmp_path / "b", telemetry=b))]
    html = compare_page(runs, "batch")
    assert 'alt="absmax per layer"' in html and "Max |x| per layer" in html
    assert 'alt="absmax per layer"' not in compare_page(runs[:1], "batch")
