"""step_scalars.py: a trainer's per-step host scalars, bounded by the records' budget, exact per
record."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import actscope
from actscope.telemetry.step_scalars import StepScalars


def test_memory_stays_within_the_budget_and_each_record_mean_is_exact():
    # issue 24: the HF callback kept one dict per logged step until the read-back
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with actscope.watch(model, max_records=16, keep_first=0, chunk=4) as w:
        for step in range(400):
            model(torch.randn(8, 4)).sum().backward()
            w.step()
            # logged after the record, as the Trainer's log history (one entry per step)
            w.acc.add_step_scalars(step, {"eval": step * 0.5, "odd": step % 2})
            assert len(w.acc.step_scalars) <= 2 * 16
    t = w.result()
    assert len(t.iters) <= 16 and t.span_end()[-1] == 399
    for j, (a, b) in enumerate(zip(t.iters, t.span_end(), strict=True)):
        steps = np.arange(a, b + 1)
        assert t.scalar("eval")[j] == np.mean(steps * 0.5)
        assert t.scalar("odd")[j] == np.mean(steps % 2)


def test_a_repeated_step_counts_once_merged_or_not():
    s = StepScalars(2)
    spans = (np.array([0, 4]), np.array([3, 7]))  # two records of four steps
    for step in range(8):
        s.add(step, {"loss": float(step)}, lambda: spans)
    s.add(8, {"loss": 8.0}, lambda: spans)
    # the Trainer's train-end pass over log_history repeats every step
    for step in range(9):
        s.add(step, {"loss": float(step)}, lambda: spans)
    assert s.means() == {0: {"loss": 1.5}, 4: {"loss": 5.5}, 8: {"loss": 8.0}}
    assert s.by_step()[0]["loss"] == (6.0, 4)


def test_steps_no_record_covers_are_dropped_and_sparse_pending_ones_merge_in_pairs():
    s = StepScalars(2)
    spans = (np.array([0, 2]), np.array([0, 2]))  # every=2: steps 0 and 2 recorded so far
    for step in range(8):
        s.add(step, {"x": 1.0}, lambda: spans)
    # step 1 is in no record: dropped; 3..7 are past the last record: pending, and more than
    # half the budget, so they merge in pairs
    assert s.by_step()[0] == {"x": (1.0, 1)} and s.by_step()[2] == {"x": (1.0, 1)}
    assert 1 not in s.by_step() and len(s) <= 4
    assert sum(c for e in s.by_step().values() for _, c in e.values()) == 7


def test_json_round_trip_and_the_older_format():
    s = StepScalars(8)
    s.add(3, {"val_loss": 0.5})
    t = StepScalars(8)
    t.load_json(s.to_json())
    assert t.by_step() == {3: {"val_loss": (0.5, 1)}}
    t.load_json('{"5": {"loss": 2.0}}', legacy=True)
    assert t.means() == {5: {"loss": 2.0}}
