"""report/plots_layers.py: heatmaps keep overflow visible, dead channels are counted."""

from __future__ import annotations

import numpy as np

from actscope.report.plots_base import grid
from actscope.report.plots_layers import draw_channel_dead, draw_heatmap, heat_values


def test_heat_values_as_shares_of_each_batch():
    hist = np.array([[1, 3], [0, 0]])
    h, u, o = heat_values(hist, np.array([2, 0]), np.array([4, 0]), share=True)
    np.testing.assert_allclose(h, [[0.1, 0.3], [0, 0]])
    np.testing.assert_allclose(u, [0.2, 0])
    np.testing.assert_allclose(o, [0.4, 0])
    h, u, o = heat_values(hist, None, None, share=False)
    assert h.dtype == np.float64 and u is None and o is None
    np.testing.assert_array_equal(h, hist)


def test_heatmap_with_overflow_bands_extends_the_y_range():
    fig, (ax,) = grid(1)
    hist = np.ones((5, 10))
    draw_heatmap(ax, np.arange(5), hist, -1.0, 1.0, under=np.ones(5), over=np.ones(5))
    assert ax.get_ylim() == (-1.4, 1.4)  # two bins of 0.2 on each side
    assert ax.get_xlim() == (0.0, 5.0)
    assert len(ax.images) == 3 and len(ax.lines) == 2  # body, two bands; two dashed edges


def test_heatmap_without_overflow_and_with_a_broken_range():
    fig, (ax,) = grid(1)
    draw_heatmap(ax, np.arange(3), np.ones((3, 4)), float("nan"), 1.0)
    assert ax.get_ylim() == (0.0, 1.0) and len(ax.images) == 1 and not ax.lines


def test_channel_dead_counts_the_last_epoch():
    fig, (ax,) = grid(1)
    dead = np.array([[1, 0, 0, np.nan], [1, 1, 0, np.nan]])
    assert draw_channel_dead(ax, np.array([0, 1]), dead, 3) == "2 of 3 dead"
    assert ax.images[0].get_array().shape == (3, 2)
