"""callbacks/metric_state.py: a metric object's partial state saved and put back exactly."""

from __future__ import annotations

import pytest
import torch

from actscope.callbacks.metric_state import load_object_state, object_state
from actscope.errors import UsageError


class Summer:
    """A metric with state_dict()/load_state_dict()."""

    def __init__(self) -> None:
        self.total = torch.zeros(())

    def state_dict(self):
        return {"total": self.total.clone()}

    def load_state_dict(self, d):
        self.total = d["total"].clone()


def test_a_state_dict_metric_round_trips():
    m = Summer()
    m.total += 5
    saved = object_state(m)
    m.total += 1
    fresh = Summer()
    load_object_state(fresh, saved)
    assert fresh.total.item() == 5


def test_a_torchmetrics_metric_resumes_mid_epoch():
    tm = pytest.importorskip("torchmetrics")
    m = tm.classification.MulticlassAccuracy(num_classes=3, average="micro")
    m.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
    saved = object_state(m)
    assert saved["update_count"] == 1
    m.update(torch.tensor([0, 0]), torch.tensor([1, 1]))  # changes the live one, not saved
    fresh = tm.classification.MulticlassAccuracy(num_classes=3, average="micro")
    load_object_state(fresh, saved)
    assert fresh.compute().item() == pytest.approx(0.75)
    fresh.update(torch.tensor([0, 0]), torch.tensor([1, 1]))
    assert fresh.compute().item() == pytest.approx(0.5)


def test_saved_tensors_are_copies():
    m = Summer()
    saved = object_state(m)
    m.total += 3
    assert saved["state_dict"]["total"].item() == 0


def test_an_object_without_state_is_refused():
    with pytest.raises(UsageError, match="metric object object has neither .* state_dict"):
        object_state(object())
