"""figures.py: one list of figures; what a run's data allows; each drawn once."""

from __future__ import annotations

import pytest

from actscope.report import figures
from actscope.report.run_view import RunView
from actscope.runs.files import RunFolderError
from tests.telemetry.fakes import telemetry

PNG = b"\x89PNG\r\n\x1a\n"


def test_one_list_names_each_figure_once_with_a_caption():
    names = figures.plot_names()
    assert len(names) == len(set(names)) == 9
    assert all(figures.CAPTIONS[n] for n in names)


def test_what_the_data_allows(tmp_path):
    assert figures.figure_names(RunView(path=tmp_path)) == []
    view = RunView(path=tmp_path, telemetry=telemetry(channels=4))
    assert figures.figure_names(view) == ["stats.png", "hist_heatmap.png", "dead_share.png",
                                          "channel_dead.png"]


def test_each_figure_is_drawn_once(tmp_path, monkeypatch):
    from actscope.report import plots

    calls = []
    real = plots.plot_stats
    monkeypatch.setattr(plots, "plot_stats", lambda t: calls.append(1) or real(t))
    pngs = figures.draw_figures(RunView(path=tmp_path, telemetry=telemetry()))
    assert calls == [1] and all(p[:8] == PNG for p in pngs.values())
    paths = figures.save_figures(tmp_path, pngs)
    assert [p.read_bytes() for p in paths] == list(pngs.values())


def test_save_run_plots_of_an_empty_folder_writes_nothing(tmp_path):
    assert figures.save_run_plots(tmp_path) == []
    with pytest.raises(RunFolderError):
        figures.save_run_plots(tmp_path / "missing")
