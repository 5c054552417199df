"""SignalSlots: device columns per record slot; extremes, layer fields, output logits, scalars."""

import math

import pytest
import torch

from actscope.telemetry.signal_slots import LAYER_FIELDS, ROOT_FIELDS, SignalSlots

ALL = LAYER_FIELDS + ROOT_FIELDS


def test_extremes_and_layer_fields_come_out_per_slot_then_reset_to_nan():
    torch.manual_seed(0)
    s = SignalSlots(n_layers=2, chunk=4)
    xs = [torch.randn(50) * (i + 1) for i in range(3)]
    for slot, x in enumerate(xs):
        s.record_extremes(0, slot, x)
        s.record_extremes(1, slot, -2 * x)
    s.write_layers("grad_norm", 1, torch.tensor([0.5, 1.5]))
    assert s.dirty
    out = s.take(3, extremes=True, fields=("grad_norm",))
    assert set(out) == {"absmax", "grad_norm"}  # only the enabled fields
    want = torch.stack([torch.stack([x.abs().max() for x in xs]),
                        torch.stack([(2 * x).abs().max() for x in xs])])
    torch.testing.assert_close(out["absmax"], want)
    assert out["grad_norm"].shape == (2, 3)
    torch.testing.assert_close(out["grad_norm"][:, 1], torch.tensor([0.5, 1.5]))
    assert out["grad_norm"][:, [0, 2]].isnan().all()  # not written: NaN, never stale
    assert not s.dirty
    again = s.take(3, extremes=False, fields=("grad_norm",))
    assert "absmax" not in again and again["grad_norm"].isnan().all()


def test_not_ran_clears_a_layers_extremes():
    s = SignalSlots(1, 2)
    s.record_extremes(0, 0, torch.tensor([-3.0, 1.0]))
    s.not_ran(0, 0)
    assert s.take(1, True, ())["absmax"].isnan().all()


def test_record_output_lse_and_absmax():
    torch.manual_seed(1)
    z = torch.randn(8, 5) * 3
    s = SignalSlots(1, 3)
    s.record_output(2, z)
    out = s.take(3, extremes=False, fields=ALL)
    assert out["out_lse"].shape == (1, 3) and out["out_absmax"].shape == (1, 3)
    assert out["out_lse"][0, 2].item() == pytest.approx(torch.logsumexp(z, -1).mean().item(),
                                                         rel=1e-6)
    assert out["out_absmax"][0, 2].item() == pytest.approx(z.abs().max().item())
    assert out["out_lse"][0, :2].isnan().all()
    s.record_output(0, z)
    assert "out_lse" not in s.take(1, False, ("grad_norm",))  # disabled field: not returned


def test_scalars_numbers_and_tensors_grow_rows_in_first_seen_order():
    s = SignalSlots(1, 2)
    names = [f"m{i}" for i in range(6)]  # more than the initial 4 rows: the buffer grows
    for i, n in enumerate(names):
        s.write_scalar(n, 0, float(i), torch.device("cpu"))
    s.write_scalar("m1", 1, torch.tensor([7.5]), torch.device("cpu"))
    assert s.scalar_names == names
    out = s.take(2, False, ())["scalars"]
    assert out.dtype == torch.float64 and out.shape == (6, 2)
    assert out[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert out[1, 1].item() == 7.5 and math.isnan(out[0, 1].item())
    assert s.take(2, False, ())["scalars"].isnan().all()


def test_clear_slot_forgets_an_uncommitted_batch_only():
    s = SignalSlots(2, 2)
    for slot in (0, 1):
        s.write_layers("update_ratio", slot, torch.tensor([1.0, 2.0]))
        s.record_output(slot, torch.zeros(2, 3))
        s.write_scalar("loss", slot, 3.0, torch.device("cpu"))
    s.clear_slot(1)
    assert not s.dirty
    out = s.take(2, False, ALL)
    assert out["update_ratio"][:, 0].tolist() == [1.0, 2.0]
    assert out["update_ratio"][:, 1].isnan().all()
    assert out["out_lse"][0, 0].item() == pytest.approx(math.log(3))
    assert math.isnan(out["out_lse"][0, 1].item())
    assert out["scalars"][0, 0].item() == 3.0 and math.isnan(out["scalars"][0, 1].item())


def test_set_scalar_names_and_drop_keep_the_row_order():
    s = SignalSlots(1, 2)
    s.set_scalar_names(["lr", "loss"])
    s.write_scalar("loss", 0, 2.0, torch.device("cpu"))
    s.write_scalar("acc", 0, 0.5, torch.device("cpu"))
    assert s.scalar_names == ["lr", "loss", "acc"]
    s.write_layers("grad_norm", 0, torch.tensor([1.0]))
    s.drop()
    assert s.layer is None and s.root is None
    assert s.scalar_names == ["lr", "loss", "acc"]  # names survive; values are forgotten
    s.write_scalar("acc", 1, 0.25, torch.device("cpu"))
    out = s.take(2, False, ("grad_norm",))
    assert "grad_norm" not in out  # the layer buffer was dropped and not remade
    assert out["scalars"][2, 1].item() == 0.25 and out["scalars"][:2].isnan().all()
