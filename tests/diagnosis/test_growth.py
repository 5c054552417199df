"""growth.py: growth over time that stays, and growth across depth."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis import diagnose
from tests.diagnosis.synth import ctx, kinds, names, tel


def test_growth_that_stays_fires_with_first_iter_and_evidence():
    std = np.ones((4, 40), np.float32)
    std[3, 10:] = 30.0  # block 3 jumps 30x at step 10 and stays
    (f,) = diagnose(tel(std=std))
    assert f.kind == "growth" and f.layer == "blocks.3 Block"
    assert f.first_iter is not None and 10 <= f.first_iter <= 14
    ev = f.evidence["layers"]["blocks.3 Block"]
    assert ev["std_early"] == 1.0 and ev["std_late"] == 30.0


def test_growth_from_a_small_start_to_a_healthy_scale_is_quiet():
    # a transformer's residual stream learning its way from 0.02 to 0.5: 25x, but healthy
    depth = np.array([[1.0], [1.5], [2.0], [2.5]], np.float32)  # and grows with depth
    std = depth * np.geomspace(0.02, 0.5, 40, dtype=np.float32)
    assert diagnose(tel(std=std)) == []


def test_growth_that_comes_back_and_a_single_spike_are_not_growth():
    std = np.ones((4, 40), np.float32)
    std[2, 5:30] = 50.0  # grew, then came back: not "stayed"
    std[1, 39] = 1e4  # one noisy last record: the late median ignores it
    assert "growth" not in kinds(diagnose(tel(std=std)))


def test_growth_needs_enough_records_and_reads_overflowed_std_as_huge():
    std = np.ones((2, 4), np.float32)
    std[0, 2:] = 100.0
    assert diagnose(tel(n_layers=2, n=4, std=std)) == []  # 4 records: too few to judge
    std = np.ones((2, 20), np.float32)
    std[0, 10:] = np.inf  # float32 sum of squares overflowed, the values are finite
    absmax = np.ones((2, 20), np.float32)
    absmax[0, 10:] = 1e21
    found = diagnose(tel(n_layers=2, n=20, std=std, absmax=absmax))
    assert "non_finite" not in kinds(found)
    (f,) = [f for f in found if f.kind == "growth"]
    assert f.layer == "blocks.0 Block"


def test_depth_growth_over_comparable_layers():
    std = np.tile(np.array([[0.5], [1.5], [4.0], [12.0]], np.float32), (1, 30))
    (f,) = diagnose(tel(n=30, std=std))
    assert f.kind == "depth_growth"
    assert f.layer == "blocks.3 Block"  # 24x the first block (blocks.2: 8x)
    assert f.evidence["ratio"] == 24.0


def test_depth_growth_ends_at_a_reset_stage_and_ignores_other_types():
    # stage 1 grows 30x, stage 2 (normalised shortcut) starts small again
    std = np.tile(np.array([[1.0], [3.0], [9.0], [30.0], [1.0], [1.2]], np.float32), (1, 30))
    (f,) = diagnose(tel(n_layers=6, n=30, std=std))
    assert f.kind == "depth_growth" and "blocks.3 Block" in f.layer and "blocks.5" not in f.layer
    # the same profile across layers of different types is not a depth trend
    mixed = [f"{i} {t}" for i, t in enumerate(["Linear", "Conv2d", "Block", "Head", "A", "B"])]
    assert "depth_growth" not in kinds(diagnose(tel(n_layers=6, n=30, std=std, names=mixed)))


def test_depth_growth_quiet_below_unit_scale_and_without_trend():
    small = np.tile(np.array([[0.01], [0.03], [0.1], [0.3]], np.float32), (1, 30))
    assert "depth_growth" not in kinds(diagnose(tel(n=30, std=small)))
    zigzag = np.tile(np.array([[1.0], [20.0], [2.0], [15.0]], np.float32), (1, 30))
    assert "depth_growth" not in kinds(diagnose(tel(n=30, std=zigzag, context=ctx(names()))))


def test_the_output_layer_is_not_judged_for_growth():
    std = np.ones((4, 40), np.float32)
    std[3, 10:] = 100.0  # a regression head learning targets of scale 100
    c = ctx(names())
    c["layers"]["blocks.3 Block"]["kind"] = "output"
    assert diagnose(tel(std=std, context=c)) == []
    assert kinds(diagnose(tel(std=std))) == ["growth"]  # no context: judged
