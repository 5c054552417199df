"""Issue 22's report side: scalars as metrics, readable histograms, panels per context, titles,
speed benchmark, notebook HTML and ``actscope report --open``."""

from __future__ import annotations

import numpy as np

from benchmarks.report_speed import synthetic  # the repo root is on sys.path, not benchmarks/


def test_signals_panel_drawn_with_update_ratio_guide(tmp_path):
    from actscope.report.plots_signals import UPDATE_RATIO_GUIDE, plot_signals

    fig = plot_signals(synthetic(3, 60))
    titles = [ax.get_title() for ax in fig.axes]
    assert "gradient norm per layer" in titles and "max |x| per layer" in titles
    ur = fig.axes[titles.index("update ratio ||dW||/||W|| per layer")]
    assert any(np.allclose(ln.get_ydata(), UPDATE_RATIO_GUIDE) for ln in ur.lines)
