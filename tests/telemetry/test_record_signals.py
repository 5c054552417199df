"""Telemetry's diagnosis-signal fields: saved and loaded, optional (older files load), validated,
and the host scalars merged per optimizer step (the HF Trainer's log history)."""

from __future__ import annotations

import numpy as np
import pytest

from actscope.telemetry.record import Telemetry, TelemetryFileError, with_step_scalars
from tests.telemetry.test_record import telemetry

L, N = 2, 5


def with_signals() -> Telemetry:
    t = telemetry(L, N)
    rng = np.random.default_rng(1)
    per = {f: rng.random((L, N)).astype(np.float32)
           for f in ("absmax", "grad_norm", "update_ratio", "attn_logit_max", "attn_entropy")}
    per["absmax"][1, 3] = np.inf
    t.absmax, t.grad_norm, t.update_ratio = per["absmax"], per["grad_norm"], per["update_ratio"]
    t.attn_logit_max, t.attn_entropy = per["attn_logit_max"], per["attn_entropy"]
    t.nonfinite = (~np.isfinite(t.absmax)).astype(np.uint8)
    t.out_lse, t.out_absmax = np.arange(N, dtype=np.float32), np.ones(N, np.float32)
    t.scalar_names, t.scalars = ["loss", "lr"], rng.random((2, N))
    return t


FIELDS = ("absmax", "nonfinite", "grad_norm", "update_ratio", "attn_logit_max", "attn_entropy",
          "out_lse", "out_absmax", "scalars")


def test_every_signal_field_round_trips(tmp_path):
    t = with_signals()
    u = Telemetry.load(t.save(tmp_path / "t.npz"))
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(u, f), getattr(t, f), err_msg=f)
        assert getattr(u, f).dtype == getattr(t, f).dtype, f
    assert u.scalar_names == ["loss", "lr"] and u.nonfinite[1, 3] == 1
    np.testing.assert_array_equal(u.scalar("lr"), t.scalars[1])
    assert u.scalar("accuracy") is None


def test_a_file_without_them_loads_with_none(tmp_path):
    u = Telemetry.load(telemetry(L, N).save(tmp_path / "old.npz"))
    for f in (*FIELDS, "scalar_names"):
        assert getattr(u, f) is None, f
    assert u.scalar("loss") is None


@pytest.mark.parametrize("change, match", [
    (lambda t: setattr(t, "grad_norm", np.ones((L, N + 1), np.float32)), "grad_norm has shape"),
    (lambda t: setattr(t, "out_lse", np.ones((L, N), np.float32)), "out_lse has shape"),
    (lambda t: setattr(t, "scalars", np.ones((3, N))), "scalars has shape"),
    (lambda t: setattr(t, "scalar_names", None), "present together"),
])
def test_bad_signal_arrays_are_refused(tmp_path, change, match):
    t = with_signals()
    change(t)
    path = t.save(tmp_path / "bad.npz")
    with pytest.raises(TelemetryFileError, match=match):
        Telemetry.load(path)


def test_step_scalars_land_on_the_records_of_their_steps():
    t = with_signals()
    t.iters = np.array([0, 2, 4, 6, 8])
    u = with_step_scalars(t, {2: {"eval_loss": 1.5, "loss": 9.0}, 3: {"eval_loss": 7.0}})
    assert u.scalar_names == ["loss", "lr", "eval_loss"]
    assert u.scalar("loss")[1] == 9.0 and u.scalar("loss")[0] == t.scalars[0, 0]
    ev = u.scalar("eval_loss")
    assert ev[1] == 1.5 and np.isnan(ev[[0, 2, 3, 4]]).all()  # step 3 was not recorded
    assert with_step_scalars(t, {}) is t


def test_first_cuts_every_per_record_field_alike():
    t = with_signals()
    u = t.first(3)
    assert u.iters.tolist() == [0, 1, 2] and u.hist.shape[:2] == (L, 3)
    for f in ("mean", "absmax", "nonfinite", "grad_norm", "update_ratio", "attn_entropy",
              "hist_under"):
        assert getattr(u, f).shape == (L, 3), f
    assert u.out_lse.shape == (3,) and u.scalars.shape == (2, 3)
    assert u.scalar_names == t.scalar_names and u.channel_dead is t.channel_dead
    assert u.hist_range.shape == (L, 3, 2)  # per-record ranges cut alike (the store's spans)


def test_first_cuts_the_spans_too():
    t = with_signals()
    t.iter_end, t.n_steps = t.iters + 1, np.full(N, 2)
    u = t.first(2)
    assert u.iter_end.tolist() == [1, 2] and u.n_steps.tolist() == [2, 2]


def test_step_scalars_of_a_coarsened_record_average_over_its_span():
    t = with_signals()
    t.iters, t.iter_end = np.array([0, 4, 6, 7, 8]), np.array([3, 5, 6, 7, 8])
    u = with_step_scalars(t, {1: {"eval_loss": 1.0}, 3: {"eval_loss": 3.0},
                              5: {"eval_loss": 5.0}, 9: {"eval_loss": 9.0}})
    ev = u.scalar("eval_loss")
    assert ev[0] == 2.0 and ev[1] == 5.0 and np.isnan(ev[2:]).all()  # step 9: no record
