"""host_view: host fields -> Telemetry; old files (one range per layer, no spans) still load;
flush listeners see each flush's new records."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from actscope.telemetry.accumulator import TelemetryAccumulator
from actscope.telemetry.record import Telemetry


def test_an_old_file_with_one_range_per_layer_loads(tmp_path):
    L, N, B = 2, 3, 4
    old = {"names": np.array(["a", "b"]), "iters": np.arange(N), "mean": np.zeros((L, N), "f4"),
           "std": np.ones((L, N), "f4"), "hist": np.ones((L, N, B), "i4"),
           "hist_range": np.array([[-1.0, 1.0], [0.0, 2.0]], "f4"),
           "dead": np.zeros((L, N), "f4")}
    np.savez(tmp_path / "old.npz", **old)
    t = Telemetry.load(tmp_path / "old.npz")
    assert t.hist_range.shape == (L, N, 2) and t.layer_range(1) == (0.0, 2.0)
    assert t.iter_end is None and t.span_end().tolist() == [0, 1, 2]
    t.save(tmp_path / "new.npz")
    u = Telemetry.load(tmp_path / "new.npz")
    np.testing.assert_array_equal(u.hist_range, t.hist_range)


def test_flush_listeners_get_only_the_new_records():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    acc = TelemetryAccumulator(chunk=4, sample_size=16)
    acc.attach(model)
    got: list[Telemetry] = []
    acc.add_flush_listener(got.append)
    for step in range(11):
        acc.begin_batch(step)
        model(torch.randn(3, 4))
        acc.end_batch()
    t = acc.result()
    assert [c.iters.tolist() for c in got] == [[0], [1, 2], [3, 4, 5, 6], [7, 8, 9, 10]]
    np.testing.assert_array_equal(np.concatenate([c.mean for c in got], axis=1), t.mean)
    assert all(c.names == t.names for c in got)


def test_flush_listeners_get_the_signals_and_named_scalars():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    acc = TelemetryAccumulator(chunk=4, sample_size=16)
    acc.attach(model)
    got: list[Telemetry] = []
    acc.add_flush_listener(got.append)
    for step in range(7):
        acc.begin_batch(step)
        model(torch.randn(3, 4))
        acc.record_scalars({"loss": float(step)} if step < 3 else {"loss": 1.0, "lr": 0.5})
        acc.end_batch()
    t = acc.result()
    assert got[0].scalar_names == ["loss"] and got[0].scalar("loss").tolist() == [0.0]
    assert got[-1].scalar_names == ["loss", "lr"] and got[-1].scalar("lr").tolist() == [0.5] * 4
    np.testing.assert_array_equal(np.concatenate([c.absmax for c in got], axis=1), t.absmax)
    assert np.isnan(t.scalar("lr")[:3]).all() and t.scalar("loss")[:3].tolist() == [0, 1, 2]


def _flush_points(listen: bool, steps: int = 20) -> list[int]:
    """After which recorded batches a flush ran (chunk 8), with or without a listener."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
    acc = TelemetryAccumulator(chunk=8)
    if listen:
        acc.add_flush_listener(lambda chunk: None)
    acc.attach(m, [m[0]])
    points, flush = [], acc.buf.flush

    def counted() -> None:
        points.append(acc.buf.committed)
        flush()

    acc.buf.flush = counted
    for step in range(steps):
        acc.begin_batch(step)
        m(torch.randn(3, 4))
        acc.end_batch()
    return points


def test_early_flushes_only_for_a_listener():
    # a listener sees the first records after 1, 2, 4, ... batches; without one (each flush
    # costs ~2 ms on a CPU) the chunk just fills
    assert _flush_points(True) == [1, 3, 7, 15]
    assert _flush_points(False) == [8, 16]
