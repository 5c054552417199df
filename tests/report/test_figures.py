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


def _with_floored(t, floored):
    layers = {n: {"zero_floored": f} for n, f in zip(t.names, floored, strict=True)}
    t.meta = {**t.meta, "context": {"layers": layers}}
    return t


def test_per_channel_picture_only_for_dead_channels_of_zero_floored_layers(tmp_path):
    # an autoencoder's reconstruction (border pixels below 0) or a pre-activation Linear has
    # "channels that never fired" that are not dead units: no picture, no channel count
    t = _with_floored(telemetry(channels=4), [False, False, False])
    assert "channel_dead.png" not in figures.figure_names(RunView(path=tmp_path, telemetry=t))
    assert figures.n_dead_channels(t) == (0, 0)
    t = _with_floored(telemetry(channels=4), [False, True, False])
    assert figures.channel_layers(t) == [1]
    assert "channel_dead.png" in figures.figure_names(RunView(path=tmp_path, telemetry=t))
    assert figures.n_dead_channels(t)[1] == int(t.n_channels[1])
    from actscope.report import plots

    titles = [ax.get_title() for ax in plots.plot_channel_dead(t, [1]).axes if ax.get_title()]
    assert len(titles) == 1 and t.names[1] in titles[0]


def test_metrics_picture_only_when_it_draws_something(tmp_path):
    nan = float("nan")
    one_row = [{"epoch": 0, "train_loss": 0.6, "train_accuracy": nan, "valid_loss": nan,
                "valid_accuracy": nan}]  # a watch()/Lightning/HF run without evaluation
    assert "metrics.png" not in figures.figure_names(RunView(path=tmp_path, metrics=one_row))
    evaluated = [{**one_row[0], "valid_loss": 0.5}]
    assert "metrics.png" in figures.figure_names(RunView(path=tmp_path, metrics=evaluated))
    two_epochs = one_row + [{**one_row[0], "epoch": 1, "train_loss": 0.4}]
    assert "metrics.png" in figures.figure_names(RunView(path=tmp_path, metrics=two_epochs))
