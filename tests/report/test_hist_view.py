"""Issue 22's report side: scalars as metrics, readable histograms, panels per context, titles,
speed benchmark, notebook HTML and ``actscope report --open``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from actscope.report.hist_view import _rebin_each, in_range_share, layer_picture, rebin
from benchmarks.report_speed import synthetic  # the repo root is on sys.path, not benchmarks/


def growing(layers: int = 2, steps: int = 300, per_record: bool = True):
    """A run whose activations grow 20x; the old fixed range (first chunk's) overflows."""
    rng = np.random.default_rng(0)
    scale = np.linspace(1, 20, steps)
    bins, hist, ranges = 20, [], []
    under = np.zeros((layers, steps), np.int32)
    over = np.zeros((layers, steps), np.int32)
    for i in range(layers):
        h, r = [], []
        for j in range(steps):
            x = rng.normal(0, scale[j], 500)
            # the store re-fits each 25-record chunk's range to what that chunk saw
            s = 4 * scale[min(j // 25 * 25 + 24, steps - 1)] if per_record else 4.0
            lo, hi = -s, s
            h.append(np.histogram(x, bins, (lo, hi))[0])
            under[i, j], over[i, j] = (x < lo).sum(), (x >= hi).sum()
            r.append((lo, hi))
        hist.append(h)
        ranges.append(r)
    t = synthetic(layers, steps, bins)
    rng_arr = np.asarray(ranges, np.float32)
    return dataclasses.replace(t, hist=np.asarray(hist, np.int32), hist_under=under,
                               hist_over=over,
                               hist_range=rng_arr if per_record else rng_arr[:, 0])

def test_per_record_ranges_keep_90_percent_in_range_and_old_fixed_ranges_do_not():
    assert (in_range_share(growing(per_record=True)) >= 0.9).all()
    assert (in_range_share(growing(per_record=False)) < 0.9).all()  # the bug the issue shows

def test_per_record_ranges_are_mapped_onto_one_shared_range_exactly_in_total():
    t = growing(1, 250)
    counts, lo, hi = layer_picture(t, 0)
    assert lo == pytest.approx(float(t.hist_range[0, :, 0].min()))
    assert hi == pytest.approx(float(t.hist_range[0, :, 1].max()))
    np.testing.assert_allclose(counts.sum(axis=1), t.hist[0].sum(axis=1), rtol=1e-9)


def _ranged(n: int = 400, bins: int = 8, chunk: int = 50, seed: int = 0):
    """(hist (n, bins), ranges (n, 2)): a range re-fitted every ``chunk`` records."""
    rng = np.random.default_rng(seed)
    hist = rng.integers(0, 30, (n, bins)).astype(np.float64)
    scale = np.repeat(rng.uniform(0.5, 4.0, -(-n // chunk)), chunk)[:n]
    return hist, np.stack([-scale, scale * rng.uniform(0.5, 1.0)], axis=1)


def test_rebin_runs_of_shared_ranges_equal_the_record_by_record_map():
    hist, ranges = _ranged()
    fast = rebin(hist, ranges, -5.0, 5.0, 12)  # 8 runs of 50 records: 8 matrix products
    each = _rebin_each(hist, ranges, np.linspace(-5.0, 5.0, 13))
    np.testing.assert_allclose(fast, each, atol=1e-9)
    np.testing.assert_allclose(fast.sum(axis=1), hist.sum(axis=1), rtol=1e-12)  # all inside
    # ranges that change every record take the vectorised path, with the same answer
    jitter = ranges * (1 + np.arange(len(ranges))[:, None] * 1e-4)
    np.testing.assert_allclose(rebin(hist, jitter, -5.0, 5.0, 12),
                               _rebin_each(hist, jitter, np.linspace(-5.0, 5.0, 13)), atol=1e-9)


def test_rebin_is_bin_for_bin_exact_on_the_doubling_ladder_and_drops_unusable_ranges():
    hist = np.array([[1.0, 2, 3, 4], [5, 6, 7, 8], [9, 9, 9, 9]])
    ranges = np.array([[-1.0, 1.0], [-2.0, 2.0], [np.nan, 1.0]])
    out = rebin(hist, ranges, -2.0, 2.0, 4)
    np.testing.assert_array_equal(out, [[0, 3, 7, 0], [5, 6, 7, 8], [0, 0, 0, 0]])


def test_compare_draws_a_layer_from_the_report_s_own_rebinning(tmp_path):
    # One function re-bins for both pages: compare's shares are the report's counts, divided by
    # each record's total (in range + overflow).
    from actscope.report.compare.data import load_runs
    from actscope.report.compare.plots import shared_hist
    from tests.telemetry.fakes import run_folder

    t = growing(2, 120)
    runs = load_runs([run_folder(tmp_path / "a", t)])
    lo, hi, per_run = shared_hist(runs, t.names[1])
    counts, lo_r, hi_r = layer_picture(t, 1)
    assert (lo, hi) == (lo_r, hi_r)
    total = counts.sum(axis=1) + t.hist_under[1] + t.hist_over[1]
    np.testing.assert_allclose(per_run[0][0], counts / total[:, None], rtol=1e-6)
    assert not hasattr(t, "layer_hist")  # the second re-binning is gone
