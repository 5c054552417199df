"""DeviceCallback: default device, batch moves, clear errors for missing devices."""

from __future__ import annotations

import pytest
import torch

from actscope.callbacks.device import DeviceCallback, default_device, to_device
from actscope.callbacks.metrics import MetricsCallback, accuracy


def test_device_callback_defaults_and_moves_batches():
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert DeviceCallback("cpu").device == torch.device("cpu")
    nested = to_device({"a": (torch.ones(2), [torch.zeros(1)]), "b": 3}, torch.device("cpu"))
    assert nested["b"] == 3 and isinstance(nested["a"], tuple) and nested["a"][1][0].shape == (1,)
    with pytest.raises(ValueError, match="unknown device"):
        DeviceCallback("warp-drive")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU-only machine")
def test_device_callback_asks_for_missing_cuda_clearly(make_synth_learner):
    learn = make_synth_learner(cbs=[DeviceCallback("cuda")])
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        learn.fit(1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_device_callback_trains_on_gpu(make_synth_learner):
    metrics = MetricsCallback(accuracy)
    learn = make_synth_learner(cbs=[DeviceCallback("cuda"), metrics])
    learn.fit(2)
    assert next(learn.model.parameters()).is_cuda and metrics.history[-1]["valid_accuracy"] > 0.8
