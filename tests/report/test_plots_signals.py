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


def test_scalar_panels_share_duplicates_and_leave_constants_out():
    import dataclasses

    from actscope.report.plots_signals import plot_scalars, scalar_panels

    t = synthetic(2, 60)
    loss = np.linspace(2.0, 0.5, len(t.iters))
    lr = np.full(len(t.iters), 1e-3)
    eval_loss = np.full(len(t.iters), np.nan)
    eval_loss[::20] = [1.5, 1.0, 0.8]
    # Lightning: training_step's loss and the same value self.log()ged as train_loss; fixed lr
    t = dataclasses.replace(t, scalar_names=["train_loss", "lr", "loss", "eval_loss"],
                            scalars=np.stack([loss, lr, loss, eval_loss]))
    panels, constants = scalar_panels(t)
    assert panels == [("loss", "loss = train_loss"), ("eval_loss", "eval_loss")]
    assert constants == {"lr": 1e-3}
    fig = plot_scalars(t)
    assert [ax.get_title() for ax in fig.axes] == ["loss = train_loss", "eval_loss"]
    assert "lr = 0.001" in fig._suptitle.get_text()


def test_signals_measured_every_fourth_record_are_drawn_as_lines():
    # signal_every=4 leaves NaN in 3 of 4 records: without joining, every point is isolated and
    # a line plot shows nothing.
    from actscope.report.plots_signals import joined, plot_signals

    t = synthetic(3, 60)
    t.grad_norm[:, np.arange(60) % 4 != 0] = np.nan
    t.grad_norm[1, 20] = np.inf  # a blow-up stays a gap, never smoothed over
    fig = plot_signals(t)
    gn = next(ax for ax in fig.axes if ax.get_title() == "gradient norm per layer")
    y = gn.lines[0].get_ydata()
    assert np.isfinite(y).sum() == 57  # 0..56 measured or between measured values; 57..59 not
    assert np.isnan(gn.lines[1].get_ydata()[20])
    x = np.arange(8.0)
    row = np.array([np.nan, 1.0, np.nan, np.nan, 4.0, np.nan, 2.0, np.nan])
    np.testing.assert_array_equal(joined(x, row), [np.nan, 1, 2, 3, 4, 3, 2, np.nan])
