"""report/plots_base.py: thinning keeps spikes, panels come in the asked numbers, PNGs are PNGs."""

from __future__ import annotations

import numpy as np
import pytest

from actscope.report.plots_base import (
    DRAW_RC,
    MAX_POINTS,
    draw_png,
    envelope_bands,
    figure_png,
    finite,
    grid,
    label_fontsize,
    layer_colours,
    layer_lines,
    outer_x_ticks,
    panel_points,
    panel_table,
    plain,
    run_colours,
    save_figure,
    smooth,
    thin,
    thin_columns,
)

PNG = b"\x89PNG\r\n\x1a\n"


def test_finite_turns_infinities_into_gaps():
    out = finite(np.array([1.0, np.inf, -np.inf, np.nan]))
    assert out[0] == 1.0 and np.isnan(out[1:]).all()


def test_thin_keeps_the_one_spike_and_bounds_the_points():
    y = np.zeros(100_000)
    y[54_321] = 99.0
    xs, ys = thin(np.arange(len(y)), y, max_points=200)
    assert len(xs) == len(ys) == 200
    assert ys.max() == 99.0 and np.all(np.diff(xs) >= 0)
    x, same = thin(np.arange(5), np.arange(5.0))
    assert same.tolist() == [0, 1, 2, 3, 4]


def test_thin_columns_averages_buckets():
    a = np.arange(8.0)[None, :].repeat(2, 0)
    np.testing.assert_allclose(thin_columns(a, 4), [[0.5, 2.5, 4.5, 6.5]] * 2)
    assert thin_columns(a, 10) is a


def test_grid_gives_exactly_n_panels_with_at_most_max_cols_a_row():
    fig, axes = grid(7, max_cols=3)
    assert len(axes) == 7 and len(fig.axes) == 7
    assert len({ax.get_position().x0 for ax in axes}) == 3
    assert len(grid(0)[1]) == 1


def test_panel_table_shape():
    fig, axes = panel_table(2, 3)
    assert axes.shape == (2, 3) and len(fig.axes) == 6


def test_colours_and_labels():
    assert run_colours(12)[10] == run_colours(12)[0] and len(set(run_colours(8))) == 8
    assert len(set(map(str, layer_colours(15)))) == 15 and len(layer_colours(3)) == 3
    assert plain("cost $5") == r"cost \$5"
    assert (label_fontsize(10), label_fontsize(11)) == ("small", "x-small")


def test_smooth_skips_gaps_and_is_debiased():
    out = smooth(np.array([2.0, np.nan, 2.0, np.inf]))
    assert out[0] == pytest.approx(2.0) and out[2] == pytest.approx(2.0)
    assert np.isnan(out[1]) and np.isnan(out[3])


def test_figures_become_png_bytes_and_files(tmp_path):
    fig, (ax,) = grid(1)
    ax.plot([0, 1], [1, 0])
    assert figure_png(fig).startswith(PNG)
    path = save_figure(fig, tmp_path / "sub" / "a.png")
    assert path.read_bytes().startswith(PNG)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.png"]


def test_lines_are_thinned_to_the_panel_s_pixels_and_many_layers_are_one_collection():
    fig, (ax,) = grid(1, panel=(3.0, 2.0))
    n = panel_points(ax)
    width_px = ax.get_position().width * fig.get_figwidth() * 90
    assert n == 2 * np.ceil(width_px) < MAX_POINTS  # a min and a max per pixel column
    x = np.arange(50_000)
    rows = np.random.default_rng(0).normal(size=(32, 50_000))
    rows[7, 31_337] = 1e3  # one spike in one layer of 32 must survive the thinning
    layer_lines(ax, x, rows, layer_colours(32), [f"l{i}" for i in range(32)])
    (bands,) = ax.collections  # thinned: each layer's envelope as one filled band
    paths = bands.get_paths()
    assert not ax.lines and len(paths) == 32
    assert all(len(path.vertices) <= 2 * n + 1 for path in paths)
    assert paths[7].vertices[:, 1].max() == 1e3 and ax.get_ylim()[1] >= 1e3
    fig2, (ax2,) = grid(1)
    layer_lines(ax2, x, rows[:3], layer_colours(3), ["a", "b", "c"])
    assert [ln.get_label() for ln in ax2.lines] == ["a", "b", "c"] and not ax2.collections


def test_small_multiples_keep_x_ticks_on_the_bottom_panel_of_each_column():
    fig, axes = grid(7, max_cols=3)
    for ax in axes:
        ax.set_xlabel("batch")
        ax.plot([0, 10], [0, 1])
    outer_x_ticks(axes, 3)
    figure_png(fig)
    has_x = [len(ax.get_xticks()) > 0 and ax.get_xlabel() == "batch" for ax in axes]
    assert has_x == [False, False, False, False, True, True, True]  # 3 columns; 7th is lowest
    assert all(len(ax.get_yticks()) <= 6 for ax in axes)


def test_figures_are_built_with_fixed_title_positions():
    seen = []

    def draw():
        fig, (ax,) = grid(1)
        seen.append(ax._autotitlepos)  # what matplotlib reads to re-measure the ticks
        return fig

    assert draw_png(draw)[:8] == PNG and seen == [False] and DRAW_RC["axes.titley"] == 1.0


def test_envelope_bands_cover_thin_s_min_max_and_break_at_gaps():
    rng = np.random.default_rng(0)
    y = rng.normal(size=4_000)
    y[1_000:1_500] = np.nan  # a stretch where the layer did not run
    xs, ys = thin(np.arange(4_000), y, 80)
    lo, hi = ys[0::2], ys[1::2]
    bands = envelope_bands(np.arange(4_000), y, 80)
    assert len(bands) == 2  # one band each side of the gap
    tops = np.concatenate([b[: len(b) // 2, 1][::2] for b in bands])
    bottoms = np.concatenate([b[len(b) // 2:, 1][::-1][::2] for b in bands])
    ok = np.isfinite(lo)
    np.testing.assert_array_equal(tops, hi[ok])
    np.testing.assert_array_equal(bottoms, lo[ok])


def test_a_log_axis_row_with_zeros_stays_a_line_with_gaps():
    fig, (ax,) = grid(1)
    ax.set_yscale("log")
    rows = np.abs(np.random.default_rng(0).normal(size=(12, 5_000))) + 1e-3
    rows[3, ::7] = 0.0  # a frozen layer's update ratio: 0, which log cannot show
    layer_lines(ax, np.arange(5_000), rows, layer_colours(12), [str(i) for i in range(12)])
    assert len(ax.lines) == 1 and len(ax.collections[0].get_paths()) == 11
