"""actscope.watch() on a plain PyTorch loop: shapes, batches, hooks removed, no host sync."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
import torch
from torch import nn

import actscope
from actscope.errors import UsageError
from actscope.telemetry import channels
from actscope.telemetry.record import Telemetry
from tests.telemetry.test_hooks_hygiene import leftover_hooks


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Sequential(nn.Linear(6, 16), nn.ReLU()),
                         nn.Sequential(nn.Linear(16, 8), nn.ReLU()), nn.Linear(8, 3))


def batches(n: int = 5, bs: int = 8):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(bs, 6, generator=g), torch.randint(0, 3, (bs,), generator=g))
            for _ in range(n)]


def train(model, w, data, step=True, valid_every=0):
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for i, (xb, yb) in enumerate(data):
        model.train()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step:
            w.step()
        if valid_every and i % valid_every == 0:
            model.eval()
            with torch.no_grad():
                model(xb * 100)  # would shift every statistic if it were recorded
            model.train()


def test_plain_loop_shapes_and_exact_stats():
    model, data = mlp(), batches()
    with actscope.watch(model) as w:
        train(model, w, data)
    t = w.result()
    assert t.names == ["0 Sequential", "1 Sequential", "2 Linear"]
    assert t.iters.tolist() == [0, 1, 2, 3, 4]
    assert t.mean.shape == t.std.shape == t.dead.shape == (3, 5)
    assert t.hist.shape == (3, 5, 40)
    assert leftover_hooks(model) == []
    # the last batch's statistics are those of the model as it was before the last step
    assert np.isfinite(t.mean).all() and (t.std > 0).all()
    assert t.channel_dead.shape == (3, 1, 16) and t.n_channels.tolist() == [16, 8, 3]


def test_step_is_optional_and_validation_is_not_recorded():
    model_a, model_b, data = mlp(), mlp(), batches()
    with actscope.watch(model_a) as wa:
        train(model_a, wa, data, step=True, valid_every=2)
    with actscope.watch(model_b) as wb:
        train(model_b, wb, data, step=False)
    a, b = wa.result(), wb.result()
    assert a.iters.tolist() == b.iters.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-6)  # eval forwards changed nothing
    np.testing.assert_allclose(a.std, b.std, rtol=1e-6)


def test_every_and_end_epoch():
    model = mlp()
    w = actscope.watch(model, every=2)
    for _ in range(2):
        train(model, w, batches(4))
        w.end_epoch()
    w.remove()
    t = w.result()
    assert t.iters.tolist() == [0, 2, 4, 6]
    assert t.channel_epochs.tolist() == [0, 1]


def test_hooks_removed_on_error_exit_and_gc():
    model = mlp()
    with pytest.raises(RuntimeError, match="boom"):
        with actscope.watch(model):
            model(torch.randn(4, 6))
            raise RuntimeError("boom")
    assert leftover_hooks(model) == []
    w = actscope.watch(model)
    assert leftover_hooks(model) != []
    del w
    gc.collect()
    assert leftover_hooks(model) == []
    model(torch.randn(2, 6))  # still a working model


def test_nothing_recorded_and_bad_arguments():
    model = mlp()
    with actscope.watch(model) as w:
        model.eval()
        model(torch.randn(2, 6))
    with pytest.raises(UsageError, match="recorded nothing"):
        w.result()
    with pytest.raises(UsageError, match="nn.Module"):
        actscope.watch("model")
    with pytest.raises(UsageError, match="no modules to watch"):
        actscope.watch(model, modules=nn.Conv2d)


def test_no_host_sync_during_recorded_batches(monkeypatch):
    """Tensor.item/cpu/tolist/numpy/__float__ raise while the watched loop runs (chunk 2).

    With the policy of a GPU (``can_read_flags`` False): on a CPU the buffers read one flag now
    and then (the all-channels-fired skip), which costs nothing there and never runs on a GPU.
    """
    monkeypatch.setattr(channels, "can_read_flags", lambda device: False)
    model, data = mlp(), batches(6)
    w = actscope.watch(model, chunk=2, grads=True, mad=True)

    def forbid(name):
        def raiser(*a, **k):
            raise AssertionError(f"host sync on the hot path: Tensor.{name}")
        return raiser

    for name in ("item", "cpu", "tolist", "numpy", "__float__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, forbid(name))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for xb, yb in data:
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
        opt.zero_grad()
        w.step()
    w.end_epoch()
    monkeypatch.undo()
    w.remove()
    t = w.result()
    assert len(t.iters) == 6 and np.isfinite(t.grad_std).all()


def test_autocast_bfloat16_on_cpu():
    model, data = mlp(), batches(3)
    with actscope.watch(model) as w:
        for xb, _ in data:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(xb)
            assert out.dtype == torch.bfloat16
            w.step()
    t = w.result()
    assert t.mean.dtype == np.float32 and np.isfinite(t.mean).all() and (t.std > 0).all()


def test_state_dict_round_trip():
    model, data = mlp(), batches(6)
    with actscope.watch(model) as full:
        train(model, full, data)
    model2 = mlp()
    first = actscope.watch(model2)
    train(model2, first, data[:3])
    state = first.state_dict()
    first.remove()
    second = actscope.watch(model2)
    second.load_state_dict(state)
    train(model2, second, data[3:])
    second.remove()
    a, b = full.result(), second.result()
    assert b.iters.tolist() == a.iters.tolist()
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-5)
    np.testing.assert_array_equal(b.hist, a.hist)


def test_report_writes_the_folder(tmp_path):
    model = mlp()
    with actscope.watch(model) as w:
        train(model, w, batches())
    out = w.report(tmp_path / "run")
    assert out == tmp_path / "run"
    assert Telemetry.load(out / "telemetry.npz").names == w.names
    assert isinstance(json.loads((out / "findings.json").read_text()), list)
    assert (out / "report.html").is_file() and "actscope" in (out / "report.html").read_text()
    assert sorted(p.name for p in (out / "plots").glob("*.png"))  # at least one picture
