"""hist_range.ranges_after_batch: a layer's range is taken from the first batch it ran in."""

from __future__ import annotations

import torch

from actscope.telemetry.hist_range import data_hist_range, ranges_after_batch


def test_a_fixed_range_applies_to_every_layer():
    lo, hi, has = ranges_after_batch(None, None, [False, False], [True, False],
                                     torch.randn(2, 1, 8), fixed=(-2.0, 3.0))
    assert lo.tolist() == [-2.0, -2.0] and hi.tolist() == [3.0, 3.0] and has == [True, True]


def test_a_layer_that_did_not_run_gets_its_range_later_and_it_then_stays():
    first = torch.stack([torch.rand(1, 64) * 3, torch.zeros(1, 64)])  # (L=2, 1, K)
    lo, hi, has = ranges_after_batch(None, None, [False, False], [True, False], first, None)
    assert has == [True, False]
    want_lo, want_hi = data_hist_range(first)
    assert lo[0] == want_lo[0] and hi[0] == want_hi[0]
    second = torch.stack([torch.randn(1, 64) * 100, torch.randn(1, 64)])
    lo2, hi2, has2 = ranges_after_batch(lo.clone(), hi.clone(), has, [True, True], second, None)
    assert has2 == [True, True]
    assert lo2[0] == lo[0] and hi2[0] == hi[0]  # layer 0 keeps its first range
    new_lo, new_hi = data_hist_range(second)
    assert lo2[1] == new_lo[1] and hi2[1] == new_hi[1]
    same = ranges_after_batch(lo2, hi2, has2, [True, True], second * 10, None)
    assert same[0] is lo2 and same[1] is hi2  # nothing new: nothing recomputed
