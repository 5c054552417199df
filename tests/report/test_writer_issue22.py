"""Issue 22's report side: scalars as metrics, readable histograms, panels per context, titles,
speed benchmark, notebook HTML and ``actscope report --open``."""

from __future__ import annotations

import dataclasses
import runpy
from pathlib import Path

import numpy as np

from actscope.report.figures import figure_names
from actscope.report.page import render_view
from actscope.report.run_view import RunView, read_run
from actscope.report.writer import write_run_report
from benchmarks.report_speed import synthetic  # the repo root is on sys.path, not benchmarks/


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
    assert "none of the 4 channels was dead" in render_view(view)  # blocks.0: zero-floored

def test_title_is_the_given_run_name_else_the_folder(tmp_path):
    page = write_run_report(tmp_path / "myrun", synthetic(2, 30, per_record=False), writer="watch")
    assert "<h1>actscope run: myrun</h1>" in page.read_text()
    page = write_run_report(tmp_path / "myrun", synthetic(2, 30, per_record=False),
                            writer="watch", title="lightning_logs/version_3")
    assert "<h1>actscope run: lightning_logs/version_3</h1>" in page.read_text()

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
