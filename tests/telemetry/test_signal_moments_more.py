"""SignalMoments: scalars are checked (one clear error), written only on recorded batches, host
step scalars merged per step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actscope.errors import UsageError
from actscope.telemetry.accumulator import TelemetryAccumulator
from actscope.telemetry.signal_moments import check_scalars


@pytest.mark.parametrize("bad", [{"loss": torch.ones(2)}, {"loss": "0.5"}, {"loss": True}])
def test_check_scalars_refuses_what_is_not_one_number(bad):
    with pytest.raises(UsageError, match="1-element tensor"):
        check_scalars(bad)
    check_scalars({"loss": torch.ones(1), "lr": 0.1, "n": 3})


def test_scalars_land_on_recorded_batches_only_and_step_scalars_merge():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    acc = TelemetryAccumulator(every=2, chunk=4, sample_size=8)
    acc.attach(model)
    for step in range(4):
        acc.begin_batch(step)
        model(torch.randn(2, 3))
        acc.record_scalars({"loss": torch.tensor(float(step))})
        acc.end_batch()
        acc.add_step_scalars(step, {"eval": 10.0 + step})
    t = acc.result()
    assert t.iters.tolist() == [0, 2]
    assert t.scalar("loss").tolist() == [0.0, 2.0] and t.scalar("eval").tolist() == [10.0, 12.0]
