"""hist_range.ranges_after_batch: a layer's range is taken from the first batch it ran in."""

from __future__ import annotations

import math

import pytest
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


def _sorted_ladder_need(x: torch.Tensor) -> list[float | None]:
    """The rule by sorting: 2**ceil(log2) of the finite |x| at rank ceil(0.999 (n-1)) + 1."""
    out: list[float | None] = []
    for row in x:
        fin = row[torch.isfinite(row)].abs().double().sort().values
        if fin.numel() == 0:
            out.append(None)
            continue
        v = float(fin[-(-(fin.numel() - 1) * 999 // 1000)])
        out.append(2.0 ** -60 if v == 0 else
                   2.0 ** max(-60, math.ceil(math.log2(v))))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_ladder_need_counts_exponents_like_the_sorted_order_statistic(seed: int) -> None:
    from actscope.telemetry.hist_range import _ladder_need

    g = torch.Generator().manual_seed(seed)
    m = int(torch.randint(1, 3000, (), generator=g))
    x = torch.randn(4, m, generator=g) * torch.exp2(
        torch.randint(-30, 30, (4, 1), generator=g).float())
    x[1] = x[1].relu()  # zeros
    x[2, : m // 2] = float("nan")
    x[3, ::3] = float("inf")
    if seed % 5 == 0:
        x[0] = torch.exp2(torch.randint(-8, 8, (m,), generator=g).float())  # exact powers of 2
    need, seen = _ladder_need(x)
    want = _sorted_ladder_need(x)
    for layer, w in enumerate(want):
        assert bool(seen[layer]) == (w is not None)
        if w is not None:
            assert float(need[layer]) == w
