"""Issue 22's report side: scalars as metrics, readable histograms, panels per context, titles,
speed benchmark, notebook HTML and ``actscope report --open``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from actscope.report.hist_view import in_range_share, layer_picture
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
