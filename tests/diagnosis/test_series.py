"""series.py: windows, medians and layer groups; every rule skips what is not there."""

from __future__ import annotations

import warnings

import numpy as np

from actscope.diagnosis import Thresholds, diagnose
from actscope.diagnosis.series import early, groups, late, rolling_median, start, window
from tests.diagnosis.synth import tel

TH = Thresholds()


def test_windows_and_medians_ignore_nan():
    assert window(100, TH) == 10 and window(30, TH) == 3 and window(4, TH) == 1
    x = np.array([np.nan, 1.0, 2.0, 3.0] + [5.0] * 20 + [9.0, np.nan, 9.0, 9.0])
    assert early(x, TH) == 2.0 and late(x, TH) == 9.0 and start(x, TH) == 1.0
    assert np.isnan(early(np.full(5, np.nan), TH))
    np.testing.assert_allclose(rolling_median(np.array([1.0, 9.0, 2.0, 3.0]), 3),
                               [1.0, 5.0, 2.0, 3.0])


def test_groups_by_type_in_forward_order_without_the_output():
    t = tel(n_layers=4, names=["0 Block", "1 Block", "2 Linear", "3 Block"])
    t.meta["forward_order"] = [3, 0, 1, 2]
    assert groups(t, {}) == [[3, 0, 1]]
    ctx = {"layers": {"3 Block": {"type": "Block", "kind": "output"}}}
    assert groups(t, ctx) == [[0, 1]]


def test_every_rule_skips_missing_or_empty_signals_without_warnings():
    nan = np.full((4, 1), np.nan)
    t = tel(n=1, absmax=nan, nonfinite=np.zeros((4, 1), np.uint8), grad_norm=nan,
            update_ratio=nan, attn_logit_max=nan, attn_entropy=nan, out_lse=np.full(1, np.nan),
            out_absmax=np.full(1, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert diagnose(t) == []
        assert diagnose(tel(n=40)) == []


def test_rolling_median_fast_paths_match_the_nan_aware_one():
    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    ref = np.array([np.median(x[max(0, j - 4):j + 1]) for j in range(60)])
    np.testing.assert_allclose(rolling_median(x, 5), ref)
    y = x.copy()
    y[:2] = np.nan  # no previous weights on the first records
    out = rolling_median(y, 5)
    assert np.isnan(out[:2]).all()
    np.testing.assert_allclose(out[2:], rolling_median(x[2:], 5))
    z = x.copy()
    z[30] = np.nan  # a hole in the middle: the NaN-aware path
    assert np.isfinite(rolling_median(z, 5)).all()
