"""Pure reductions in telemetry/reductions.py against numpy recomputations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actscope.telemetry import reductions as stats


def test_sample_indices_stratified_sorted_and_in_range():
    idx = stats.sample_indices(100_000, 4096, "cpu", seed=1)
    assert idx.shape == (4096,) and idx.dtype == torch.int64
    assert int(idx.min()) >= 0 and int(idx.max()) < 100_000
    assert bool((idx[1:] > idx[:-1]).all())  # one per stratum: strictly increasing, no repeats
    # Random within strata: not a plain stride (which would alias with the C,H,W layout).
    assert len(set(np.diff(idx.numpy()).tolist())) > 10
    assert torch.equal(idx, stats.sample_indices(100_000, 4096, "cpu", seed=1))
    small = stats.sample_indices(10, 32, "cpu")
    assert sorted(set(small.tolist())) == list(range(10))
    with pytest.raises(ValueError, match="numel > 0"):
        stats.sample_indices(0, 4, "cpu")


def test_histograms_match_numpy_and_clamp_to_edges():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(2, 3, 500, generator=g) * 2
    lo, hi = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 4.0])
    h = stats.histograms(s, lo, hi, 8)
    assert h.shape == (2, 3, 8) and h.dtype == torch.int32
    for li in range(2):
        for n in range(3):
            x = np.clip(s[li, n].numpy(), lo[li].item(), hi[li].item() - 1e-6)
            ref, _ = np.histogram(x, bins=8, range=(lo[li].item(), hi[li].item()))
            np.testing.assert_array_equal(h[li, n].numpy(), ref)
    assert (h.sum(-1) == 500).all()  # nothing dropped


def test_histograms_skip_nan_and_put_inf_in_edge_bins():
    s = torch.tensor([[[0.1, float("nan"), float("inf"), 0.9, float("-inf")]]])
    h = stats.histograms(s, torch.tensor([0.0]), torch.tensor([1.0]), 2)
    assert h.tolist() == [[[2, 2]]]


def test_near_zero_share_and_mad():
    s = torch.tensor([[[0.0, 0.05, 0.5, -0.01, float("nan")]]])
    share = stats.near_zero_share(s, torch.tensor([0.1]))
    assert share.item() == pytest.approx(3 / 4)
    counted = torch.tensor([[8]])
    assert stats.near_zero_share(s, torch.tensor([0.1]), counted).item() == pytest.approx(3 / 8)
    x = torch.tensor([[[1.0, 3.0]]])
    assert stats.mean_abs_dev(x, torch.tensor([[2.0]])).item() == pytest.approx(1.0)


def test_near_zero_share_matches_a_float64_count_with_edges_and_scratch():
    # values at the threshold, +-inf and NaN, per-layer thresholds, a reused scratch buffer
    g = torch.Generator().manual_seed(3)
    s = torch.randn(3, 5, 64, generator=g) * torch.tensor([0.1, 1.0, 10.0]).view(3, 1, 1)
    s[0, 0, :4] = torch.tensor([0.05, -0.05, float("inf"), float("-inf")])
    s[1, 2, :] = float("nan")  # a record with no counted sample: NaN, not 0
    s[2, 1, 10:20] = float("nan")
    thresh = torch.tensor([0.05, 0.5, 2.0])
    d = s.double()
    counted = (~torch.isnan(d)).sum(2)
    want = ((d.abs() < thresh.double().view(3, 1, 1)).sum(2) / counted.clamp_min(1)).float()
    scratch = stats.Scratch()
    for _ in range(2):  # the second call reuses (and must not be misled by) the scratch
        got = stats.near_zero_share(s, thresh, scratch=scratch)
        assert got.dtype == torch.float32
        assert torch.isnan(got[1, 2])
        ok = ~torch.isnan(got)
        assert ok.sum() == 14
        assert torch.equal(got[ok], want[ok])


def test_blocked_cpu_histograms_count_what_one_pass_counts(monkeypatch):
    g = torch.Generator().manual_seed(7)
    s = torch.randn(3, 7, 50, generator=g) * 3
    s[0, 0, :5] = torch.tensor([float("nan"), float("inf"), float("-inf"), 0.0, 2.0])
    lo, hi = torch.tensor([-2.0, 0.0, -1.0]), torch.tensor([2.0, 4.0, 1.0])
    one = stats.split_histograms(s, lo, hi, 8)  # 1,050 elements: one pass
    monkeypatch.setattr(stats, "CPU_BLOCK", 120)  # 2 rows per block, 11 blocks, a remainder
    blocked = stats.split_histograms(s, lo, hi, 8, stats.Scratch())
    for a, b in zip(one, blocked, strict=True):
        assert a.dtype == b.dtype == torch.int32 and torch.equal(a, b)
    assert one[0].sum() + one[1].sum() + one[2].sum() == 3 * 7 * 50 - 1  # NaN not counted
