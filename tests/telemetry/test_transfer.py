"""transfer.DeviceToHost: records reach the sink in flush order; on a GPU, without a wait."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actscope.telemetry.transfer import DeviceToHost


def _run(device: str) -> list[tuple[dict, dict]]:
    got: list[tuple[dict, dict]] = []
    t = DeviceToHost(lambda dev, known: got.append((dev, known)))
    src = torch.zeros(3, device=device)
    for i in range(3):
        src.fill_(i)  # the copy must hold the value at push time, not a later one
        t.push({"x": src}, {"i": np.array([i])})
    t.drain(wait=True)
    assert len(t) == 0
    return got


def test_cpu_copies_arrive_at_once_in_order():
    got = _run("cpu")
    assert [k["i"][0] for _, k in got] == [0, 1, 2]
    assert [float(d["x"][0]) for d, _ in got] == [0.0, 1.0, 2.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_copies_are_asynchronous_and_ordered():
    torch.cuda.set_sync_debug_mode("error")
    try:
        got = _run("cuda")
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert [float(d["x"][0]) for d, _ in got] == [0.0, 1.0, 2.0]
