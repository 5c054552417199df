"""benchmarks/_timing.py: the steady-state per-batch time and the per-fit fixed cost, on a fake
clock (the figures issue 21 asks the front-end benchmarks to print)."""

from __future__ import annotations

import pytest

from benchmarks._timing import Marks, PairStats, compare


def _fit(batch_s: list[list[float]], setup_s: float = 0.0, readback_s: float = 0.0,
         end_marks: bool = True) -> Marks:
    """Marks of a fit on a fake clock: ``setup_s``, epochs of batches of the given lengths,
    then ``readback_s``."""
    now = [0.0]
    marks = Marks("cpu")
    marks.now = lambda: now[0]
    marks.fit_start()
    now[0] += setup_s
    for epoch in batch_s:
        for s in epoch:
            marks.batch()
            now[0] += s
        if end_marks:
            marks.epoch_end()
        now[0] += 0.5  # per-epoch work between the epochs: not a batch's
    now[0] += readback_s
    marks.fit_end()
    return marks


def test_steady_is_the_mean_batch_after_the_warm_up_and_fixed_the_rest_of_the_fit():
    # 8 slow warm-up batches, then 1 s each, across two epochs
    t = _fit([[3.0] * 8 + [1.0] * 4, [1.0] * 6], setup_s=2.0, readback_s=1.0).timing()
    assert t.steady_s == pytest.approx(1.0)
    assert (t.n_batches, t.n_steady) == (18, 10)
    # whole fit 2 + 24 + 4 + 6 + 2 * 0.5 + 1 = 38; minus 18 batches at 1 s
    assert t.fixed_s == pytest.approx(20.0)


def test_a_loop_without_epoch_end_marks_leaves_each_epochs_last_batch_out():
    t = _fit([[1.0] * 10 + [9.0]], end_marks=False).timing()
    assert t.n_steady == 2  # batches 8 and 9; batch 10 has no end
    assert t.steady_s == pytest.approx(1.0)


def test_too_few_batches_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="time more batches"):
        _fit([[1.0] * 8]).timing()


def test_pairs_give_the_ratio_of_steady_times_and_the_difference_of_fixed_costs():
    stats = PairStats()
    plain = _fit([[1.0] * 20], setup_s=1.0)
    watched = _fit([[1.1] * 20], setup_s=1.3, readback_s=0.2)
    line = compare(watched, plain, stats)
    steady, fixed = stats.medians()
    assert steady == pytest.approx(1.1)
    assert fixed == pytest.approx(0.5)
    assert "steady=1.100" in line and "fixed_s=0.500" in line
