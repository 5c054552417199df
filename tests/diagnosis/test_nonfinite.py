"""nonfinite.py: the first real inf/NaN, in forward order; an overflowed std is not one."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis import diagnose
from actscope.diagnosis.nonfinite import non_finite
from tests.diagnosis.synth import kinds, tel
from tests.telemetry.fakes import telemetry


def test_blames_the_first_real_nonfinite_not_the_overflowed_std():
    L, N = 7, 20
    std = np.ones((L, N), np.float32)
    absmax = np.ones((L, N), np.float32)
    nonfinite = np.zeros((L, N), np.uint8)
    std[2:, 12:] = np.inf  # block 2's float32 sum of squares overflows: values ~1e21, finite
    absmax[2:5, 12:] = 1.7e21
    absmax[5:, 12:] = np.inf
    nonfinite[5:, 12:] = 1
    (f, *_) = diagnose(tel(n_layers=L, n=N, std=std, absmax=absmax, nonfinite=nonfinite))
    assert f.kind == "non_finite" and f.layer == "blocks.5 Block" and f.first_iter == 12
    assert f.evidence["absmax_before"]["blocks.2 Block"] == np.float32(1.7e21)
    # without the nonfinite flag the absmax says the same
    (g, *_) = diagnose(tel(n_layers=L, n=N, std=std, absmax=absmax))
    assert g.layer == "blocks.5 Block"


def test_forward_order_decides_and_layers_that_did_not_run_are_not_nan():
    absmax = np.ones((3, 20), np.float32)
    absmax[:, 10:] = np.nan
    t = tel(n_layers=3, n=20, absmax=absmax)
    t.meta["forward_order"] = [2, 0, 1]
    (f,) = [f for f in diagnose(t) if f.kind == "non_finite"]
    assert f.layer == "blocks.2 Block"
    ran = np.ones((3, 20), np.uint8)
    ran[:, 10:] = 0  # NaN where the layers did not run: no value, not a NaN
    assert "non_finite" not in kinds(diagnose(tel(n_layers=3, n=20, absmax=absmax, ran=ran)))


def test_only_records_before_the_blow_up_are_judged_for_every_field():
    absmax = np.ones((4, 30), np.float32)
    absmax[0, 20:] = np.inf
    u = np.full((4, 30), 1e-3)
    u[:, 20:] = 5.0  # garbage after the blow-up
    assert kinds(diagnose(tel(n=30, absmax=absmax, update_ratio=u))) == ["non_finite"]


def test_non_finite_names_the_first_bad_record():
    t = telemetry(n_layers=2)
    assert non_finite(t) == []
    t.mean[1, 7] = np.nan  # a NaN in the values (no absmax recorded: the mean says it)
    (f,) = non_finite(t)
    assert f.kind == "non_finite" and f.evidence["record"] == 7
