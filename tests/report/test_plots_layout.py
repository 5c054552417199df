"""Pictures that fit the data: the recorded range, overflow bands, one shared scale in compare,
and legible figures with 32 layers and 100k batches (thinned for drawing, never in the data)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from matplotlib.figure import Figure

from actscope.report import plots
from actscope.report.compare.data import load_runs
from actscope.report.compare.page import compare_page
from actscope.report.compare.plots import plot_compare_heatmaps, shared_hist
from actscope.report.hist_view import rebin
from actscope.report.plots_base import MAX_POINTS, figure_png, thin, thin_columns
from actscope.report.plots_layers import draw_heatmap, heat_values
from tests.telemetry.fakes import run_folder, telemetry

PNG = b"\x89PNG\r\n\x1a\n"


def timed_png(fig: Figure) -> tuple[bytes, float]:
    start = time.process_time()  # CPU time: the box is shared, wall time is noise
    png = figure_png(fig)
    return png, time.process_time() - start


def png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_heatmap_uses_the_recorded_range_and_shows_overflow_at_the_edges():
    hist = np.ones((5, 4), np.int32)
    ax = Figure().add_subplot()
    draw_heatmap(ax, np.arange(5), hist, 0.0, 4.0, under=np.full(5, 3), over=np.full(5, 7))
    (image,) = ax.images  # one image: two overflow rows below and above the 4 bins
    assert image.get_extent()[2:] == [-2.0, 6.0]  # the recorded range, bins of width 1, + bands
    assert ax.get_ylim() == (-2.0, 6.0)
    rows = image.get_array()
    assert rows.shape[0] == 8
    np.testing.assert_array_equal(rows[:2], 3)
    np.testing.assert_array_equal(rows[-2:], 7)
    np.testing.assert_array_equal(rows[2:6], 1)
    # The per-run plot draws each layer on its own recorded range (a GeneralRelu's -0.4..6).
    t = telemetry(2, 30, lo=-0.5, hi=6.0, overflow=True)
    fig = plots.plot_hist_heatmap(t)
    assert [a.get_ylim() for a in fig.axes if a.images] != []
    for a in fig.axes:
        if a.images:
            lo, hi = a.images[0].get_extent()[2:]
            band = 2 * 6.5 / t.hist.shape[2]  # two bins of the recorded range each side
            assert (lo, hi) == pytest.approx((-0.5 - band, 6.0 + band))
    assert all(len(a.images) == 1 for a in fig.axes if a.images)


def test_share_per_batch_counts_overflow_too():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 10_000))  # 6 batches of N(0, 1) samples
    edges = np.linspace(-2, 2, 21)
    hist = np.stack([np.histogram(b, edges)[0] for b in x])
    under, over = (x < -2).sum(1), (x >= 2).sum(1)
    h, u, o = heat_values(hist, under, over, share=True)
    np.testing.assert_allclose(h.sum(1) + u + o, 1.0)
    assert u.mean() == pytest.approx(0.0228, abs=0.005)  # P(X < -2) for N(0, 1)


def test_rebinning_keeps_mass_where_it_was():
    # Uniform on [0, 1] in 10 bins, moved onto [-2, 2] in 10 bins of 0.4.
    moved = rebin(np.full((1, 10), 0.1), np.array([[0.0, 1.0]]), -2.0, 2.0, 10)[0]
    np.testing.assert_allclose(moved, [0, 0, 0, 0, 0, 0.4, 0.4, 0.2, 0, 0], atol=1e-12)


def test_compare_puts_every_run_on_one_range_and_one_colour_scale(tmp_path):
    a = run_folder(tmp_path / "a", telemetry(2, 20, lo=0.0, hi=1.0, bins=10, seed=1))
    b = run_folder(tmp_path / "b", telemetry(2, 30, lo=-2.0, hi=2.0, bins=20, seed=2))
    runs = load_runs([a, b])
    lo, hi, per_run = shared_hist(runs, "0 conv 0→8")
    assert (lo, hi) == (-2.0, 2.0) and per_run[0][0].shape == (20, 20)
    # Run a's mass lies only where its data was: [0, 1] of the shared [-2, 2].
    centres = np.linspace(-2, 2, 21)[:-1] + 0.1
    assert per_run[0][0][:, (centres < 0) | (centres > 1)].sum() == pytest.approx(0)
    fig = plot_compare_heatmaps(runs, ["0 conv 0→8", "1 conv 8→16"])
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 4
    assert len({ax.images[0].norm for ax in panels}) == 1  # one colour scale for all
    assert {tuple(ax.get_ylim()) for ax in panels} == {(-2.0, 2.0)}


def test_thin_keeps_every_spike_and_never_touches_the_data():
    y = np.sin(np.arange(100_000) / 500.0)
    y[77_777] = 50.0
    before = y.copy()
    xs, ys = thin(np.arange(100_000), y)
    assert len(xs) <= MAX_POINTS and ys.max() == 50.0
    np.testing.assert_array_equal(y, before)
    assert thin_columns(np.ones((3, 100_000))).shape == (3, MAX_POINTS)


@pytest.mark.slow
def test_32_layers_stay_legible():
    t = telemetry(32, 2_000, overflow=True, channels=64, epochs=6)
    for fig, panels in ((plots.plot_stats(t), 4), (plots.plot_hist_heatmap(t), 32),
                        (plots.plot_dead_share(t), 1), (plots.plot_channel_dead(t), 32)):
        drawn = [ax for ax in fig.axes if (ax.lines or ax.images or ax.collections)
                 and ax.get_label() != "<colorbar>"]
        assert len(drawn) == panels
        width, height = fig.get_size_inches()
        assert width <= 17 and height <= 19
        assert all(ax.get_legend() is None for ax in fig.axes)  # 32 entries: a colour bar
        png, cpu = timed_png(fig)
        assert png[:8] == PNG and max(png_size(png)) <= 1800 and cpu < 30


@pytest.mark.slow
def test_100k_batches_are_thinned_for_drawing_only():
    t = telemetry(4, 100_000, bins=20, overflow=True)
    t.mean[2, 54_321] = 1e3  # one exploding batch must stay visible
    saved = {k: getattr(t, k).copy() for k in ("mean", "std", "dead", "hist", "hist_under")}
    figs = [plots.plot_stats(t), plots.plot_hist_heatmap(t), plots.plot_dead_share(t),
            plots.plot_lr_loss(np.full(100_000, 0.1), np.linspace(2, 0.1, 100_000))]
    for fig in figs:
        for ax in fig.axes:
            assert all(len(line.get_xdata()) <= MAX_POINTS for line in ax.lines)
            assert all(len(seg) <= MAX_POINTS for c in ax.collections
                       if hasattr(c, "get_segments") for seg in c.get_segments())
            assert all(im.get_array().shape[1] <= MAX_POINTS for im in ax.images)
        png, cpu = timed_png(fig)
        assert png[:8] == PNG and cpu < 30
    assert max(max(line.get_ydata()) for line in figs[0].axes[0].lines) == 1e3
    for k, v in saved.items():
        np.testing.assert_array_equal(getattr(t, k), v)


@pytest.mark.slow
def test_compare_page_with_32_layers_splits_pictures(tmp_path):
    runs = [run_folder(tmp_path / f"r{i}", telemetry(32, 60, channels=16, seed=i), lr=0.1 * i)
            for i in range(1, 3)]
    start = time.process_time()
    text = compare_page(load_runs(runs), "batch")
    assert time.process_time() - start < 120
    alts = [a[:a.index('"')] for a in text.split('<img alt="')[1:]]
    # metrics, 4 heat-map images of 8 layers each, dead/mean/std grids, 4 channel images
    assert alts == ["metrics", *(f"histograms {i}" for i in range(1, 5)),
                    "dead share per layer", "mean per layer", "std per layer",
                    *(f"dead channels {i}" for i in range(1, 5))]
