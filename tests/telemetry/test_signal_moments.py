"""SignalMoments: scalar checks, forwarding the moments to the SignalSet, and the run context."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from actscope.errors import UsageError
from actscope.telemetry.settings import TelemetrySettings
from actscope.telemetry.signal_moments import SignalMoments, check_scalars
from actscope.telemetry.signal_set import SignalSet
from actscope.telemetry.signal_slots import SignalSlots
from actscope.telemetry.step_scalars import StepScalars


class Moments(SignalMoments):
    """The accumulator's state that SignalMoments reads, without the rest of the accumulator."""

    def __init__(self, model: nn.Module | None, layers: list[nn.Module], chunk: int = 2) -> None:
        slots = SignalSlots(len(layers), chunk)
        self.signals = SignalSet(model, layers, TelemetrySettings(), slots) if layers else None
        self.buf = SimpleNamespace(sig=slots, slots=SimpleNamespace(slot=0))
        self.recording = True
        self.modules, self.names = layers, [str(i) for i in range(len(layers))]
        self.context, self._context_restored = None, False
        self.step_scalars = StepScalars(4096)


def test_check_scalars_accepts_numbers_and_one_element_tensors_only():
    check_scalars({"loss": 1, "lr": 0.5, "t": torch.tensor([2.0]), "s": torch.tensor(3)})
    with pytest.raises(UsageError, match=r"loss= .*shape \(2,\).*step\(loss=loss\)"):
        check_scalars({"loss": torch.ones(2)})
    for bad in (True, "0.1", None, [1.0]):
        with pytest.raises(UsageError, match="must be a number"):
            check_scalars({"x": bad})


def test_record_scalars_writes_the_current_slot_only_when_recording():
    m = Moments(None, [nn.Linear(2, 2)])
    m.buf.slots.slot = 1
    m.record_scalars({"loss": torch.tensor(0.25), "lr": 0.1})
    m.recording = False
    m.record_scalars({"loss": 9.0})  # a batch `every` skips: ignored, but still checked
    with pytest.raises(UsageError):
        m.record_scalars({"loss": torch.ones(3)})
    out = m.buf.sig.take(2, False, ())["scalars"]
    assert m.buf.sig.scalar_names == ["loss", "lr"]
    assert out[:, 1].tolist() == [0.25, pytest.approx(0.1)]
    assert out[:, 0].isnan().all()


def test_moments_reach_the_signal_set():
    torch.manual_seed(0)
    lin = nn.Linear(3, 2)
    m = Moments(nn.Sequential(lin), [lin])
    m.signals.begin(True, 0)
    out = lin(torch.randn(4, 3))
    m.record_output(out)
    out.sum().backward()
    m.before_optimizer_step()
    with torch.no_grad():
        lin.weight.mul_(2.0)
        lin.bias.mul_(2.0)
    m.after_optimizer_step()
    rec = m.buf.sig.take(1, False, ("grad_norm", "update_ratio", "out_lse"))
    want = torch.cat([lin.weight.grad.flatten(), lin.bias.grad.flatten()]).norm()
    assert rec["grad_norm"][0, 0].item() == pytest.approx(want.item(), rel=1e-5)
    assert rec["update_ratio"][0, 0].item() == pytest.approx(0.5, rel=1e-5)  # |2W-W|/|2W|
    assert rec["out_lse"][0, 0].item() == pytest.approx(out.logsumexp(-1).mean().item())
    none = Moments(None, [])  # no signals (switched off): every moment is a no-op
    none.before_optimizer_step()
    none.after_optimizer_step()
    none.record_output(out)
    none.record_scalars({"loss": 1.0})
    assert none.buf.sig.scalars is None


def test_context_is_built_once_and_a_restored_one_is_kept():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    m = Moments(model, list(model))
    m.build_context(None)
    assert m.context is None
    m.build_context(model, grad_clip=1.0)
    assert set(m.context["layers"]) == {"0", "1"} and m.context["grad_clip"] == 1.0
    m._context_restored = True
    m.build_context(model, grad_clip=5.0)
    m.set_context({"other": 1})
    assert m.context["grad_clip"] == 1.0


def test_add_step_scalars_merges_host_numbers_per_step():
    m = Moments(None, [])
    m.add_step_scalars(3, {"val_loss": 1})
    m.add_step_scalars(torch.tensor(3).item(), {"acc": 0.5, "val_loss": 0.75})
    m.add_step_scalars(4, {})
    assert m.step_scalars.means() == {3: {"val_loss": 0.75, "acc": 0.5}, 4: {}}
    assert isinstance(m.step_scalars.means()[3]["val_loss"], float)
