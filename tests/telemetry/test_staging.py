"""Staged small outputs (staging.py) give the numbers of the per-hook path, whatever the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from actscope.telemetry.accumulator import TelemetryAccumulator
from actscope.telemetry.staging import STAGE_MAX

FIELDS = ("mean", "std", "hist", "hist_under", "hist_over", "dead", "absmax", "nonfinite",
          "channel_dead")


class Net(nn.Module):
    """Small and large outputs, an in-place ReLU after a watched Linear, a layer that runs
    twice in one batch, one that skips odd batches, a non-finite output."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.c = nn.Linear(6, 16), nn.Linear(16, 16), nn.Linear(16, 16)
        self.skip = nn.Linear(16, 16)
        self.big = nn.Linear(16, STAGE_MAX // 4 + 1)  # above the threshold at batch 4
        self.relu = nn.ReLU(inplace=True)  # changes a's output after a's hook
        with torch.no_grad():  # c's first channels never fire: dead in the per-channel record
            self.c.bias[:5] = -100.0

    def forward(self, x: torch.Tensor, step: int) -> torch.Tensor:
        h = self.relu(self.a(x))
        h = self.b(self.b(h) * 0.5)  # b runs twice: its record covers both runs
        if step % 2 == 0:
            h = self.skip(h)
        if step == 3:
            h = h * torch.tensor(float("inf"))
        return self.c(h).sum() + self.big(h).sum()


def record(stage_max: int, steps: int = 6) -> tuple[object, list[torch.Tensor]]:
    torch.manual_seed(1)
    net = Net()
    acc = TelemetryAccumulator(sample_size=32, chunk=4, bins=8)
    acc.stage_max, acc.min_staged = stage_max, 0
    acc.attach(net, [net.a, net.b, net.c, net.skip, net.big])
    outs = []
    net.a.register_forward_hook(lambda m, i, o: outs.append(o.detach().clone()))
    for step in range(steps):
        acc.begin_batch(step)
        net(torch.randn(4, 6), step)
        acc.end_batch()
        if step == 2:  # the per-channel record of an epoch (column maxima)
            acc.end_epoch(0)
    acc.end_epoch(1)
    return acc.result(), outs


def test_staged_equals_per_hook_path():
    staged, outs = record(STAGE_MAX)
    per_hook, _ = record(0)
    for f in FIELDS:
        a, b = getattr(staged, f), getattr(per_hook, f)
        assert a is not None and a.shape == b.shape, f
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=f)
    np.testing.assert_array_equal(np.isnan(staged.mean), np.isnan(per_hook.mean))
    assert (staged.channel_dead[2, 0, :5] == 1).all()  # c's dead channels, from batched maxima
    assert (staged.channel_dead[:4, 0, :16] == 0).any()
    assert np.isnan(staged.mean[3, 1::2]).all() and not np.isnan(staged.mean[3, 0::2]).any()
    assert staged.nonfinite[2, 3] == 1 and staged.nonfinite[:, :3].sum() == 0
    # a's record is its output before the in-place ReLU (the hook's copy), not after
    a = outs[0].numpy()
    assert (a < 0).any()
    np.testing.assert_allclose(staged.mean[0, 0], a.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(staged.absmax[0, 0], np.abs(a).max(), rtol=1e-6)


def test_small_outputs_are_staged_and_large_ones_are_not():
    acc = TelemetryAccumulator(sample_size=8, chunk=4)
    net = Net()
    acc.attach(net, [net.a, net.big])
    acc.begin_batch(0)
    net(torch.randn(4, 6), 1)
    staged = [k[0] for k, st in acc.buf.slots.staged.stages.items() if st.layers]
    assert staged == [4 * 16]  # a's output only: big's is above STAGE_MAX
    acc.end_batch()
    assert all(not st.layers for st in acc.buf.slots.staged.stages.values())
    assert acc.result().mean.shape == (2, 1)


class MapNet(nn.Module):
    """Small conv maps (channels in dim 1) and a sequence output (features in the last dim)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.seq = nn.Linear(4, 6)
        with torch.no_grad():  # a dead channel in each: no layer settles as "all fired"
            self.conv.bias[0], self.seq.bias[0] = -100.0, -100.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)  # (N, 4, 3, 3)
        return self.seq(h.flatten(2).transpose(1, 2)).sum()  # (N, 9, 6): per-position features


def channel_maxima(stage_max: int, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    net = MapNet()
    acc = TelemetryAccumulator(sample_size=16, chunk=8)
    acc.stage_max, acc.min_staged = stage_max, 0
    acc.attach(net, [net.conv, net.seq])
    for step, x in enumerate(xs):
        acc.begin_batch(step)
        net(x)
        acc.end_batch()
    return acc.buf.channels.maxima(acc.buf.slots.slot)


def test_staged_column_maxima_of_maps_and_sequences_equal_the_per_hook_path():
    torch.manual_seed(2)
    xs = [torch.randn(3, 2, 3, 3) for _ in range(3)]
    staged, per_hook = channel_maxima(STAGE_MAX, xs), channel_maxima(0, xs)
    net = MapNet()
    with torch.no_grad():  # recomputed: conv channels over (N, H, W), features over (N, T)
        conv = torch.stack([net.conv(x).amax((0, 2, 3)) for x in xs]).amax(0)
        seq = torch.stack([net.seq(net.conv(x).flatten(2).transpose(1, 2)).amax((0, 1))
                           for x in xs]).amax(0)
    for got in (staged, per_hook):
        assert torch.equal(got[0], conv) and torch.equal(got[1], seq)


def test_the_fast_path_gives_the_full_paths_numbers(monkeypatch):
    # record_fast (one copy per small output like the layer's last one) against the full
    # ``record`` on every output: the Net's in-place ReLU, double run, skipped layer, inf
    from actscope.telemetry.slots import SampleSlots

    calls = {"record": 0}
    full_record = SampleSlots.record

    def counted(self, *args, **kwargs):
        calls["record"] += 1
        return full_record(self, *args, **kwargs)

    monkeypatch.setattr(SampleSlots, "record", counted)
    fast, _ = record(STAGE_MAX, steps=8)
    n_fast = calls["record"]
    monkeypatch.setattr(SampleSlots, "record_fast", lambda self, st, t, m: False)
    calls["record"] = 0
    full, _ = record(STAGE_MAX, steps=8)
    assert n_fast < calls["record"] // 2  # most outputs took the fast path
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(fast, f), getattr(full, f), err_msg=f)


def test_the_fast_path_follows_a_new_shape_and_dtype():
    lin = nn.Linear(4, 8)
    acc = TelemetryAccumulator(sample_size=16, chunk=8)
    acc.min_staged = 0  # one small layer: keep it staged (the fast path is the staged one)
    acc.attach(lin, [lin])
    xs = [torch.randn(5, 4), torch.randn(5, 4), torch.randn(3, 4), torch.randn(5, 4)]
    outs = []
    for step, x in enumerate(xs):
        acc.begin_batch(step)
        if step == 3:  # bfloat16 output: recorded as its float32 values, not a stale dtype
            with torch.autocast("cpu", dtype=torch.bfloat16):
                outs.append(lin(x).detach().float())
        else:
            outs.append(lin(x).detach())
        acc.end_batch()
    assert acc.hooks[0].state.fast is not None
    res = acc.result()
    want = np.array([o.double().mean().item() for o in outs])
    np.testing.assert_allclose(res.mean[0], want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(res.absmax[0], [o.abs().max().item() for o in outs], rtol=1e-6)


@pytest.mark.parametrize("k", [128, 100, 48])  # k a multiple of n = 64, a remainder, k < n
def test_staged_samples_of_a_full_stage_are_the_per_hook_samples(k):
    # every layer staged with one size: the flush writes straight into the slot (_reduce_into)
    def slot0(stage_max: int) -> torch.Tensor:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 16))
        acc = TelemetryAccumulator(sample_size=k, chunk=4)
        acc.stage_max, acc.min_staged = stage_max, 0
        acc.attach(net, [net[0], net[1], net[2]])
        acc.begin_batch(0)
        net(torch.randn(4, 16))
        acc.end_batch()
        return acc.buf.slots.slab[:, 0].clone(), acc.buf.sig.extremes_buf(torch.device("cpu"))

    (staged, s_ext), (per_hook, p_ext) = slot0(STAGE_MAX), slot0(0)
    assert torch.equal(staged[:, :k], per_hook[:, :k])  # the same samples, in the same order
    torch.testing.assert_close(staged[:, k:], per_hook[:, k:], rtol=1e-5, atol=1e-6)
    assert torch.equal(s_ext[:, 0, :2], p_ext[:, 0, :2])  # min and max


def test_staging_stays_off_with_fewer_than_min_staged_small_layers():
    # one or two small layers: after the first batch they reduce in their hooks (the staging's
    # copies cost more than they save); four or more stay staged; the statistics are the same
    def run(n_layers: int) -> tuple[int, object]:
        torch.manual_seed(0)
        net = nn.Sequential(*[nn.Linear(8, 8) for _ in range(n_layers)])
        acc = TelemetryAccumulator(sample_size=16, chunk=4)
        acc.attach(net, list(net))
        for step in range(3):
            acc.begin_batch(step)
            net(torch.randn(5, 8))
            acc.end_batch()
        return acc.stage_max, acc.result()

    few, t_few = run(2)
    many, _ = run(4)
    assert few == 0 and many > 0
    acc = TelemetryAccumulator(sample_size=16, chunk=4)
    acc.min_staged = 0
    torch.manual_seed(0)
    net = nn.Sequential(*[nn.Linear(8, 8) for _ in range(2)])
    acc.attach(net, list(net))
    for step in range(3):
        acc.begin_batch(step)
        net(torch.randn(5, 8))
        acc.end_batch()
    assert acc.stage_max > 0
    np.testing.assert_allclose(acc.result().mean, t_few.mean, rtol=1e-6)
