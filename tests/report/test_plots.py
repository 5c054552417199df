"""Plots: each returns a Figure with the expected panels and data, saves a PNG, works headless."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from actscope.report import plots
from actscope.report.figures import save_run_plots
from actscope.telemetry.record import Telemetry

PNG = b"\x89PNG\r\n\x1a\n"


def telemetry(n_layers: int = 3, n: int = 50) -> Telemetry:
    rng = np.random.default_rng(0)
    hist = rng.integers(0, 100, (n_layers, n, 40)).astype(np.int32)
    return Telemetry(names=[f"{i} Sequential" for i in range(n_layers)], iters=np.arange(n) * 2,
                     mean=rng.random((n_layers, n), np.float32),
                     std=rng.random((n_layers, n), np.float32), hist=hist,
                     hist_range=np.tile([0.0, 8.0], (n_layers, 1)),
                     dead=rng.random((n_layers, n), np.float32))


def test_only_plot_modules_import_matplotlib_and_never_pyplot():
    """The whole package: only plot modules (plot.py, plots.py, plots_*.py) import matplotlib,
    and none imports pyplot (global state, a display backend).

    So ``import actscope`` and every non-plotting command never load matplotlib.
    """
    from pathlib import Path

    import actscope

    package = Path(actscope.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert len(files) > 20  # the scan really walks the package
    plot_modules = []
    for f in files:
        text = f.read_text()
        assert "matplotlib.pyplot" not in text and "import pyplot" not in text, f
        if re.fullmatch(r"plots?(_\w+)?\.py", f.name):
            plot_modules.append(f.relative_to(package).as_posix())
        else:
            assert "import matplotlib" not in text and "from matplotlib" not in text, f
    assert "report/plots.py" in plot_modules


def test_plot_stats_has_four_panels_and_zoom():
    t = telemetry()
    fig = plots.plot_stats(t, zoom=10)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    whole, zoom = fig.axes[0], fig.axes[1]
    assert len(whole.lines) == 3 and len(whole.lines[0].get_xdata()) == 50
    assert list(zoom.lines[0].get_xdata()) == [0, 2, 4, 6, 8]  # iters < 10
    np.testing.assert_allclose(fig.axes[2].lines[1].get_ydata(), t.std[1])


def test_hist_heatmap_one_panel_per_layer_with_range():
    t = telemetry()
    fig = plots.plot_hist_heatmap(t)
    assert len([a for a in fig.axes if a.images]) == 3
    img = fig.axes[0].images[0]
    assert img.get_extent()[2:] == [0.0, 8.0]
    assert img.get_array().shape == (40, 50)
    with pytest.raises(ValueError, match="one panel per layer"):
        plots.plot_hist_heatmap(t, ax=fig.axes[0])


def test_dead_share_on_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    out = plots.plot_dead_share(telemetry(), ax=ax)
    assert out is fig and ax.get_ylim() == (0.0, 1.0) and len(ax.lines) == 3


def test_lr_loss_and_lr_find(tmp_path):
    lrs = np.linspace(0.01, 0.1, 30)[:, None]
    fig = plots.plot_lr_loss(lrs, np.linspace(2, 0.5, 30))
    assert [a.get_title() for a in fig.axes] == ["learning rate", "training loss"]
    sweep = np.geomspace(1e-5, 1, 40)
    loss = 2 - np.exp(-((np.log10(sweep) + 2) ** 2))
    fig2 = plots.plot_lr_find(sweep, loss, suggestion=1e-2)
    ax = fig2.axes[0]
    assert ax.get_xscale() == "log" and ax.lines[1].get_xdata()[0] == pytest.approx(1e-2)
    path = plots.save_figure(fig2, tmp_path / "sub" / "lr.png")
    assert path.read_bytes()[:8] == PNG
    assert not list(path.parent.glob(".*tmp"))


def test_save_run_plots_only_what_exists(tmp_path):
    assert save_run_plots(tmp_path) == []
    np.savez(tmp_path / "recorder.npz", lrs=np.full((20, 1), 0.1), losses=np.linspace(2, 1, 20))
    assert [p.name for p in save_run_plots(tmp_path)] == ["lr_loss.png"]
    telemetry().save(tmp_path / "telemetry.npz")
    np.savez(tmp_path / "lr_find.npz", lrs=np.geomspace(1e-4, 1, 20), losses=np.ones(20),
             suggestion=np.array(0.01))
    names = sorted(p.name for p in save_run_plots(tmp_path))
    assert names == ["dead_share.png", "hist_heatmap.png", "lr_find.png", "lr_loss.png",
                     "stats.png"]
    assert all(p.read_bytes()[:8] == PNG for p in (tmp_path / "plots").glob("*.png"))


def test_non_finite_values_leave_gaps_instead_of_failing(tmp_path):
    """A diverged run (NaN/Inf stats and losses) still gets its plots."""
    t = telemetry()
    t.mean[1, 20:] = np.inf
    t.std[:, 30:] = np.nan
    t.hist[:] = 0
    losses = np.linspace(2, 1, 50)
    losses[40:] = np.inf
    for fig in (plots.plot_stats(t), plots.plot_dead_share(t), plots.plot_hist_heatmap(t),
                plots.plot_lr_loss(np.full((50, 1), 0.9), losses),
                plots.plot_lr_find(np.geomspace(1e-4, 10, 50), losses, 1e-2)):
        assert plots.save_figure(fig, tmp_path / "f.png").read_bytes()[:8] == PNG


def test_channel_dead_picture_is_channels_by_epoch():
    from tests.telemetry.fakes import telemetry as fake

    t = fake(3, 20, channels=8, epochs=4)
    t.channel_dead[0] = 0.0
    t.channel_dead[0, -1, :3] = 1.0  # three channels of layer 0 died in the last epoch
    fig = plots.plot_channel_dead(t)
    panels = [a for a in fig.axes if a.images]
    assert len(panels) == 3
    assert [a.images[0].get_array().shape for a in panels] == [(8, 4), (7, 4), (6, 4)]
    assert "3 of 8 dead" in panels[0].get_title()
    with pytest.raises(ValueError, match="no per-channel"):
        plots.plot_channel_dead(telemetry())


def test_metrics_plot_validation_and_training_per_epoch():
    rows = [{"epoch": 0, "train_loss": 1.0, "valid_loss": 0.8, "valid_accuracy": 0.7},
            {"epoch": 1, "train_loss": 0.5, "valid_loss": 0.6, "valid_accuracy": 0.8}]
    acc, loss = plots.plot_metrics(rows).axes
    assert len(acc.lines) == 1 and list(acc.lines[0].get_ydata()) == [0.7, 0.8]
    assert [list(line.get_ydata()) for line in loss.lines] == [[0.8, 0.6], [1.0, 0.5]]


def test_report_shows_lr_finder_and_channel_plots(tmp_path):
    from actscope.report.page import render_report
    from tests.telemetry.fakes import run_folder
    from tests.telemetry.fakes import telemetry as fake

    run = run_folder(tmp_path / "r", fake(2, 30, channels=4))
    np.savez(run / "lr_find.npz", lrs=np.geomspace(1e-4, 1, 20), losses=np.ones(20),
             suggestion=np.array(0.0123))
    names = [p.name for p in save_run_plots(run)]
    assert names == ["lr_loss.png", "metrics.png", "stats.png", "hist_heatmap.png",
                     "dead_share.png", "channel_dead.png", "lr_find.png"]
    text = render_report(run)
    assert "LR finder suggestion: 0.0123" in text
    assert text.count("<img ") == 7
