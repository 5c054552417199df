"""compare/page.py: the compare page's HTML from validated runs (figures inline, text escaped)."""

from __future__ import annotations

from actscope.report.compare.data import load_runs
from actscope.report.compare.page import compare_page, findings_table, settings_table
from tests.telemetry.fakes import run_folder, telemetry


def test_page_sections_and_tables(tmp_path):
    runs = load_runs([run_folder(tmp_path / "a", telemetry(n_layers=1), lr=0.4),
                      run_folder(tmp_path / "b<x>", None, lr=0.2)])
    settings = settings_table(runs)
    assert 'id="settings"' in settings and '<td class="text">0.4</td>' in settings
    table = findings_table(runs)
    assert '<p class="note">no telemetry</p>' in table and "b&lt;x&gt;" in table
    page = compare_page(runs, "batch")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>actscope compare: A: a, B: b&lt;x&gt;" in page
    assert "data-runs='2'" in page and 'src="data:image/png;base64,' in page
