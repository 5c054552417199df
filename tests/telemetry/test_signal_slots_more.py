"""SignalSlots: the chunk's signal columns; take() folds absmax and resets to NaN; scalar rows
grow; clear_slot forgets an uncommitted batch; the checkpoint state round-trips (unflushed)."""

from __future__ import annotations

import math

import torch

from actscope.telemetry.signal_slots import SignalSlots


def filled(L: int = 2, chunk: int = 4) -> SignalSlots:
    s = SignalSlots(L, chunk)
    for slot in range(2):
        s.record_extremes(0, slot, torch.tensor([-3.0 - slot, 1.0]))
        s.record_extremes(1, slot, torch.tensor([0.5, 2.0]))
        s.write_layers("grad_norm", slot, torch.tensor([1.0, 2.0]) * (slot + 1))
        s.write_scalar("loss", slot, 0.5 + slot, torch.device("cpu"))
        s.record_output(slot, torch.tensor([[0.0, 4.0], [-6.0, 1.0]]))
    return s


def test_take_folds_absmax_and_resets_the_columns():
    s = filled()
    out = s.take(2, True, ("grad_norm", "out_absmax"))
    assert out["absmax"].tolist() == [[3.0, 4.0], [2.0, 2.0]]
    assert out["grad_norm"].tolist() == [[1.0, 2.0], [2.0, 4.0]]
    assert out["out_absmax"].tolist() == [[6.0, 6.0]] and "out_lse" not in out
    assert out["scalars"].tolist() == [[0.5, 1.5]] and out["scalars"].dtype == torch.float64
    again = s.take(2, True, ("grad_norm",))
    assert torch.isnan(again["grad_norm"]).all() and torch.isnan(again["scalars"]).all()


def test_scalar_rows_grow_and_a_late_name_is_nan_before():
    s = SignalSlots(1, 2)
    for i, name in enumerate(["a", "b", "c", "d", "e"]):
        s.write_scalar(name, 1, float(i), torch.device("cpu"))
    out = s.take(2, False, ())["scalars"]
    assert s.scalar_names == ["a", "b", "c", "d", "e"] and out.shape == (5, 2)
    assert out[:, 1].tolist() == [0, 1, 2, 3, 4] and torch.isnan(out[:, 0]).all()


def test_clear_slot_forgets_an_uncommitted_batch():
    s = filled()
    s.clear_slot(1)
    out = s.take(2, False, ("grad_norm",))
    g = out["grad_norm"]
    assert g[:, 0].tolist() == [1.0, 2.0] and torch.isnan(g[:, 1]).all()
    assert math.isnan(out["scalars"][0, 1]) and not s.dirty


def test_state_round_trips_the_unflushed_slots():
    s = filled()
    state = s.state_dict(2)
    t = SignalSlots(2, 4)
    t.load_state_dict(state, 2)
    fields = ("grad_norm", "out_lse", "out_absmax")
    a, b = s.take(2, True, fields), t.take(2, True, fields)
    assert a.keys() == b.keys() and t.scalar_names == ["loss"]
    for k in a:
        torch.testing.assert_close(b[k], a[k], equal_nan=True)
    empty = SignalSlots(2, 4)
    empty.load_state_dict(SignalSlots(2, 4).state_dict(0), 0)
    assert empty.take(0, True, fields) == {}
