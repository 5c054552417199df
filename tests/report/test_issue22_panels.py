"""Issue 22's report side: scalars as metrics, readable histograms, panels per context, titles,
speed benchmark, notebook HTML and ``actscope report --open``."""

from __future__ import annotations

import dataclasses
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from actscope.report.figures import figure_names
from actscope.report.hist_view import in_range_share, layer_picture
from actscope.report.notebook import ReportFolder
from actscope.report.page import render_view
from actscope.report.run_view import RunView, read_run
from actscope.report.scalars import metrics_rows_from_scalars, wants_log_scale
from actscope.report.writer import write_run_report

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from report_speed import synthetic  # noqa: E402


def growing(layers: int = 2, steps: int = 300, per_record: bool = True):
    """A run whose activations grow 20x; the old fixed range (first chunk's) overflows."""
    rng = np.random.default_rng(0)
    scale = np.linspace(1, 20, steps)
    bins, hist, ranges = 20, [], []
    under = np.zeros((layers, steps), np.int32)
    over = np.zeros((layers, steps), np.int32)
    for i in range(layers):
        h, r = [], []
        for j in range(steps):
            x = rng.normal(0, scale[j], 500)
            # the store re-fits each 25-record chunk's range to what that chunk saw
            s = 4 * scale[min(j // 25 * 25 + 24, steps - 1)] if per_record else 4.0
            lo, hi = -s, s
            h.append(np.histogram(x, bins, (lo, hi))[0])
            under[i, j], over[i, j] = (x < lo).sum(), (x >= hi).sum()
            r.append((lo, hi))
        hist.append(h)
        ranges.append(r)
    t = synthetic(layers, steps, bins)
    rng_arr = np.asarray(ranges, np.float32)
    return dataclasses.replace(t, hist=np.asarray(hist, np.int32), hist_under=under,
                               hist_over=over,
                               hist_range=rng_arr if per_record else rng_arr[:, 0])


def test_per_record_ranges_keep_90_percent_in_range_and_old_fixed_ranges_do_not():
    assert (in_range_share(growing(per_record=True)) >= 0.9).all()
    assert (in_range_share(growing(per_record=False)) < 0.9).all()  # the bug the issue shows


def test_per_record_ranges_are_mapped_onto_one_shared_range_exactly_in_total():
    t = growing(1, 250)
    counts, lo, hi = layer_picture(t, 0)
    assert lo == pytest.approx(float(t.hist_range[0, :, 0].min()))
    assert hi == pytest.approx(float(t.hist_range[0, :, 1].max()))
    np.testing.assert_allclose(counts.sum(axis=1), t.hist[0].sum(axis=1), rtol=1e-9)


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


def test_watch_like_run_gets_loss_panel_and_metrics_csv_and_compares_with_a_fit_run(tmp_path):
    from actscope.report.compare.write import compare

    page = write_run_report(tmp_path / "w", synthetic(3, 120, per_record=False), writer="watch")
    html = page.read_text()
    assert "scalars" in html and "No metrics.csv is part of this report" not in html
    view = read_run(tmp_path / "w")
    assert view.metrics and "train_loss" in view.metrics[0]
    old = dataclasses.replace(synthetic(3, 80, per_record=False), scalar_names=None, scalars=None)
    write_run_report(tmp_path / "old", old, writer="watch")  # an older recording: no scalars
    assert not (tmp_path / "old" / "metrics.csv").exists()
    out = compare([tmp_path / "old", tmp_path / "w"], tmp_path / "cmp")
    assert 'id="metrics"' in out.read_text()


def test_a_foreign_metrics_csv_is_never_replaced(tmp_path):
    (tmp_path / "metrics.csv").write_text("step,epoch,val_loss\n0,0,1.0\n")
    write_run_report(tmp_path, synthetic(2, 50, per_record=False), writer="watch")
    assert (tmp_path / "metrics.csv").read_text() == "step,epoch,val_loss\n0,0,1.0\n"


def test_dead_share_only_for_zero_floored_layers_and_no_empty_channel_picture(tmp_path):
    t = synthetic(2, 40, per_record=False)
    ctx = {"layers": {"blocks.0": {"zero_floored": True}, "blocks.1": {"zero_floored": False}}}
    t = dataclasses.replace(t, meta={**t.meta, "context": ctx},
                            channel_dead=np.zeros((2, 1, 4), np.float32),
                            channel_epochs=np.zeros(1, np.int64),
                            n_channels=np.array([4, 4]))
    from actscope.report.plots import plot_dead_share

    titles = [ax.get_title() for ax in plot_dead_share(t).axes if ax.get_title()]
    assert any("dead share" in s for s in titles) and any("near-zero" in s for s in titles)
    view = RunView(tmp_path, telemetry=t, findings=[])
    assert "channel_dead.png" not in figure_names(view)
    assert "none of the 8 channels was dead" in render_view(view)


def test_log_scale_when_values_span_more_than_two_decades():
    assert wants_log_scale(np.array([1e-3, 1.0]))
    assert not wants_log_scale(np.array([0.5, 20.0]))
    assert not wants_log_scale(np.array([0.0, 1e4]))  # a log axis cannot show 0
    from actscope.report.plots import plot_stats

    t = synthetic(2, 50, per_record=False)
    t = dataclasses.replace(t, std=np.stack([np.full(50, 1e-3), np.full(50, 10.0)]).astype("f4"))
    assert "log" in [ax.get_yscale() for ax in plot_stats(t).axes]


def test_signals_panel_drawn_with_update_ratio_guide(tmp_path):
    from actscope.report.plots_signals import UPDATE_RATIO_GUIDE, plot_signals

    fig = plot_signals(synthetic(3, 60))
    titles = [ax.get_title() for ax in fig.axes]
    assert "gradient norm per layer" in titles and "max |x| per layer" in titles
    ur = fig.axes[titles.index("update ratio ||dW||/||W|| per layer")]
    assert any(np.allclose(ln.get_ydata(), UPDATE_RATIO_GUIDE) for ln in ur.lines)


def test_title_is_the_given_run_name_else_the_folder(tmp_path):
    page = write_run_report(tmp_path / "myrun", synthetic(2, 30, per_record=False), writer="watch")
    assert "<h1>actscope run: myrun</h1>" in page.read_text()
    page = write_run_report(tmp_path / "myrun", synthetic(2, 30, per_record=False),
                            writer="watch", title="lightning_logs/version_3")
    assert "<h1>actscope run: lightning_logs/version_3</h1>" in page.read_text()


def test_notebook_html_of_telemetry_and_report_folder(tmp_path):
    t = synthetic(2, 40, per_record=False)
    html = t._repr_html_()
    assert "Diagnosis" in html and html.count("data:image/png;base64,") >= 3
    assert "http" not in html  # offline
    page = write_run_report(tmp_path / "r", t, writer="watch")
    folder = ReportFolder(page.parent)
    assert folder == page.parent and "data:image/png;base64," in folder._repr_html_()


def test_report_open_uses_the_browser_or_prints_the_path(tmp_path, monkeypatch, capsys):
    import webbrowser

    from actscope.cli.report import open_page

    page = write_run_report(tmp_path / "r", synthetic(2, 30, per_record=False), writer="watch")
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda uri: opened.append(uri) or True)
    assert open_page(page) and opened == [page.resolve().as_uri()]
    monkeypatch.setattr(webbrowser, "open", lambda uri: False)
    assert not open_page(page)
    assert str(page) in capsys.readouterr().out


def test_speed_benchmark_runs(monkeypatch, capsys):
    mod = runpy.run_path(str(Path(__file__).parents[2] / "benchmarks" / "report_speed.py"))
    assert mod["median_seconds"](synthetic(2, 20), 1) > 0
