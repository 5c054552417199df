"""Issue 22's report side: scalars as metrics, readable histograms, panels per context, titles,
speed benchmark, notebook HTML and ``actscope report --open``."""

from __future__ import annotations

from actscope.report.notebook import ReportFolder
from actscope.report.writer import write_run_report
from benchmarks.report_speed import synthetic  # the repo root is on sys.path, not benchmarks/


def test_notebook_html_of_telemetry_and_report_folder(tmp_path):
    t = synthetic(2, 40, per_record=False)
    html = t._repr_html_()
    assert "Diagnosis" in html and html.count("data:image/png;base64,") >= 3
    assert "http" not in html  # offline
    page = write_run_report(tmp_path / "r", t, writer="watch")
    folder = ReportFolder(page.parent)
    assert folder == page.parent and "data:image/png;base64," in folder._repr_html_()
