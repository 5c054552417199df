"""TelemetryAccumulator: attach, batches, epochs, result, state, against numpy recomputations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from actscope.errors import UsageError
from actscope.telemetry.accumulator import TelemetryAccumulator


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def run(acc: TelemetryAccumulator, model: nn.Module, steps: int) -> list[torch.Tensor]:
    outs = []
    keep = lambda m, i, o: outs.append(o.detach().clone())  # noqa: E731
    handle = model[0].register_forward_hook(keep)
    for step in range(steps):
        acc.begin_batch(step)
        model(torch.randn(5, 4))
        acc.end_batch()
    handle.remove()
    return outs


def test_every_and_exact_mean_std():
    model = mlp()
    acc = TelemetryAccumulator(every=2, sample_size=8, chunk=2)
    assert acc.attach(model, [model[0], model[2]]) == ["0 Linear", "2 Linear"]
    outs = run(acc, model, 5)
    t = acc.result()
    assert t.iters.tolist() == [0, 2, 4] and acc.n_records == 3
    recorded = [outs[i].numpy() for i in (0, 2, 4)]
    np.testing.assert_allclose(t.mean[0], [o.mean() for o in recorded], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t.std[0], [o.std(ddof=1) for o in recorded], rtol=1e-4)
    assert t.meta["every"] == 2 and t.meta["sample_size"] == 8
    assert t.meta["forward_order"] == [0, 1]


def test_eval_mode_and_inference_mode_are_not_recorded():
    model = mlp()
    acc = TelemetryAccumulator()
    acc.attach(model)
    acc.begin_batch(0)
    model.eval()
    model(torch.randn(2, 4))
    with torch.inference_mode():
        model.train()
        model(torch.randn(2, 4))
    acc.end_batch()
    assert acc.n_records == 0 and not acc.trained_in_batch
    with pytest.raises(RuntimeError, match="no telemetry recorded yet"):
        acc.result()
    assert "training mode" in acc.why_nothing()


def test_state_dict_round_trip_continues_the_record():
    model = mlp()
    a = TelemetryAccumulator(sample_size=8, chunk=3)
    a.attach(model, [model[0]])
    run(a, model, 4)
    state = a.state_dict()
    b = TelemetryAccumulator(sample_size=8, chunk=3)
    b.attach(model, [model[0]])
    b.load_state_dict(state)
    assert b.n_records == 4 and b.result().iters.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(b.result().mean, a.result().mean)
    other = TelemetryAccumulator()
    other.attach(model, [model[2]])
    with pytest.raises(UsageError, match="resume with the same model"):
        other.load_state_dict(state)


def test_bytes_per_record_counts_the_optional_records():
    plain, both = TelemetryAccumulator(bins=10), TelemetryAccumulator(bins=10, mad=True,
                                                                      grads=True)
    # + the signals (default on): absmax, grad norm, update ratio, attention max logit/entropy
    assert plain.bytes_per_record() == 8 + 40 + 8 + 4 + 12 + 8
    assert both.bytes_per_record() == plain.bytes_per_record() + 12
