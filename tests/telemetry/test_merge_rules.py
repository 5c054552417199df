"""merge_rules: the merge table, and exact re-binning on the power-of-two ladder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actscope.telemetry.merge_rules import RULES, merge_pairs, rebin, union_range
from actscope.telemetry.reductions import split_histograms


def test_contract_fields_have_rules():
    for key in ("absmax", "nonfinite", "grad_norm", "update_ratio", "attn_logit_max",
                "attn_entropy", "out_lse", "out_absmax", "scalars", "hist", "dead"):
        assert key in RULES


@pytest.mark.parametrize(("src", "dst"), [((-1.0, 1.0), (-2.0, 2.0)), ((-1.0, 1.0), (-8.0, 8.0)),
                                          ((0.0, 1.0), (0.0, 4.0)), ((0.0, 1.0), (-2.0, 2.0))])
def test_ladder_rebinning_is_exact(src, dst):
    """A histogram on R re-binned onto 2^k R equals the histogram taken on 2^k R directly."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 1, 5000, generator=g) * (src[1] - src[0]) + src[0]) * 0.999
    t = lambda v: torch.tensor([v])  # noqa: E731
    h_src = split_histograms(x, t(src[0]), t(src[1]), 40)[0].numpy()
    h_dst = split_histograms(x, t(dst[0]), t(dst[1]), 40)[0].numpy()
    one = np.ones((1, 1))
    moved = rebin(h_src, src[0] * one, src[1] * one, dst[0] * one, dst[1] * one)
    np.testing.assert_array_equal(moved, h_dst)


def test_union_range_stays_on_the_ladder():
    lo, hi = union_range(np.array([0.0]), np.array([4.0]), np.array([-1.0]), np.array([1.0]))
    assert (lo[0], hi[0]) == (-4.0, 4.0)
    lo, hi = union_range(np.array([-0.4]), np.array([10.0]), np.array([-0.4]), np.array([10.0]))
    assert (lo[0], hi[0]) == (-0.4, 10.0)  # a fixed range stays as it is


def test_merge_rules_max_rms_and_weighted_means():
    f = {"absmax": np.array([[1.0, 5.0, np.nan, 2.0]]), "ran": np.array([[1, 3, 0, 1]]),
         "grad_norm": np.array([[3.0, 4.0, np.nan, 1.0]]),
         "update_ratio": np.array([[1.0, 2.0, 9.0, np.nan]])}
    m = merge_pairs(f, np.array([0, 2]), np.array([1, 3]))
    assert m["absmax"].tolist() == [[5.0, 2.0]] and m["ran"].tolist() == [[4, 1]]
    np.testing.assert_allclose(m["grad_norm"], [[np.sqrt((9 + 3 * 16) / 4), 1.0]])
    np.testing.assert_allclose(m["update_ratio"][0, 0], (1 + 3 * 2) / 4)
    assert np.isnan(m["update_ratio"][0, 1])  # a layer that did not run contributes nothing
