"""Per-channel deadness on every path of the buffers, against a reference taken from the outputs.

The accumulator keeps one column max per batch of the chunk (small maps) or folds a running max in
the hook (large maps: forced here with ``SLOT_COLUMNS_MAX_BYTES = 0``), and on a CPU skips a layer
once every channel of it has fired in the epoch (never, as on a GPU: ``never-skip``). All, across
chunk boundaries, spatial sizes that change, a module run twice in one batch, a layer that skips a
batch and a checkpoint in the middle of an epoch, must give exactly the channels whose max over
every input of the epoch stayed below the threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from actscope.telemetry import channels
from actscope.telemetry.accumulator import TelemetryAccumulator

THRESH = 0.05


class Net(nn.Module):
    """A conv block and a (B, T, F) block; ``twice`` runs the conv block twice per forward."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU())
        self.seq = nn.Sequential(nn.Linear(6, 5), nn.ReLU())
        self.twice = False
        with torch.no_grad():  # inputs are <= 0: channel 3 always fires, 4 never, 0-2 and 5
            conv = self.conv[0]  # only on a batch with a strong pixel
            conv.weight.copy_(0.3 * torch.rand(conv.weight.shape))
            conv.bias.copy_(torch.tensor([-0.2, -0.2, -0.3, 2.0, -100.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        if self.twice:
            h = h + self.conv(x.clamp(max=0))  # the strong pixels only in the first run
        return self.seq(h.flatten(2).transpose(1, 2))  # (N, H*W, 6) -> (N, H*W, 5)


def batch(i: int, size: int = 8) -> torch.Tensor:
    """Mostly negative inputs; now and then one strong pixel, so channels fire rarely."""
    g = torch.Generator().manual_seed(i)
    x = -torch.rand(4, 2, size, size, generator=g)
    if i % 5 == 0:
        x[i % 4, i % 2, i % size, (2 * i) % size] = 30.0
    return x


def run(net: Net, acc: TelemetryAccumulator, epochs: list[list[int]], sizes=lambda i: 8,
        skip=lambda i: False, on_batch=None) -> list[list[np.ndarray]]:
    """Feed the batches; return the reference per-channel max per epoch and layer."""
    seen: dict[str, list[torch.Tensor]] = {"conv": [], "seq": []}

    def keep(name):
        def hook(mod, inp, out):
            rows = out.detach().transpose(0, 1).reshape(out.shape[1], -1) if name == "conv" \
                else out.detach().reshape(-1, out.shape[-1]).T
            seen[name].append(rows.amax(1))
        return hook

    handles = [net.conv.register_forward_hook(keep("conv")),
               net.seq.register_forward_hook(keep("seq"))]
    ref = []
    step = 0
    for e, ids in enumerate(epochs):
        seen["conv"].clear(), seen["seq"].clear()
        for i in ids:
            acc.begin_batch(step)
            if skip(i):
                net.seq(torch.randn(3, 7, 6))  # the conv block does not run in this batch
            else:
                net(batch(i, sizes(i)))
            acc.end_batch()
            step += 1
            if on_batch is not None:
                acc = on_batch(acc, step) or acc
        acc.end_epoch(e)
        ref.append([torch.stack(seen[k]).amax(0).numpy() for k in ("conv", "seq")])
    for h in handles:
        h.remove()
    return ref


def check(t, ref) -> None:
    assert t.channel_epochs.tolist() == list(range(len(ref)))
    assert t.n_channels.tolist() == [6, 5]
    for e, per_layer in enumerate(ref):
        for layer, m in enumerate(per_layer):
            want = (m < THRESH).astype(np.float32)
            np.testing.assert_array_equal(t.channel_dead[layer, e, : len(m)], want,
                                          err_msg=f"epoch {e} layer {layer}")


@pytest.fixture(params=["per-slot", "folded", "never-skip"])
def path(request, monkeypatch):
    if request.param == "folded":
        monkeypatch.setattr(channels, "SLOT_COLUMNS_MAX_BYTES", 0)
    if request.param == "never-skip":  # as on a GPU: the column max runs on every batch
        monkeypatch.setattr(channels, "can_read_flags", lambda device: False)
    return request.param


def accumulator(net: Net, chunk: int = 3) -> TelemetryAccumulator:
    acc = TelemetryAccumulator(chunk=chunk, dead_threshold=THRESH, sample_size=64)
    acc.attach(net, [net.conv, net.seq])
    return acc


def test_every_input_counts_across_chunks(path):
    net = Net()
    acc = accumulator(net)
    ref = run(net, acc, [list(range(0, 11)), list(range(11, 18)), [21, 22]])
    t = acc.result()
    check(t, ref)
    dead = t.channel_dead[0]
    assert dead[:, 3].tolist() == [0, 0, 0] and dead[:, 4].tolist() == [1, 1, 1]
    assert dead[:, 0].tolist() == [0, 0, 1]  # the last epoch has no strong pixel


def test_spatial_size_that_changes_within_an_epoch(path):
    net = Net()
    acc = accumulator(net)
    ref = run(net, acc, [list(range(0, 9)), list(range(9, 16))],
              sizes=lambda i: 8 if i % 3 else 5)
    check(acc.result(), ref)


def test_a_module_run_twice_in_one_batch_counts_both_runs(path):
    net = Net()
    net.twice = True
    acc = accumulator(net)
    ref = run(net, acc, [list(range(0, 10))])
    check(acc.result(), ref)


def test_a_layer_that_skips_a_batch_records_nan_not_stale_values(path):
    net = Net()
    acc = accumulator(net)
    ref = run(net, acc, [list(range(0, 7))], skip=lambda i: i == 4)
    t = acc.result()
    check(t, ref)
    assert np.isnan(t.mean[0, 4]) and np.isfinite(t.mean[0, [3, 5]]).all()
    assert t.hist[0, 4].sum() == 0 and t.hist[0, 3].sum() == 64
    assert np.isfinite(t.mean[1]).all()


def test_a_checkpoint_in_the_middle_of_an_epoch_changes_nothing(path):
    epochs = [list(range(0, 8)), list(range(8, 13))]
    net = Net()
    whole = accumulator(net)
    run(net, whole, epochs)

    net2 = Net()

    def restart(acc, step):
        if step in (4, 10):  # mid-chunk, mid-epoch: a fresh accumulator takes over
            state = acc.state_dict()
            acc.remove()
            fresh = accumulator(net2)
            fresh.load_state_dict(state)
            return fresh
        return None

    acc = accumulator(net2)
    holder = {}

    def on_batch(a, step):
        new = restart(a, step)
        holder["acc"] = new or a
        return new

    ref = run(net2, acc, epochs, on_batch=on_batch)
    t, u = holder["acc"].result(), whole.result()
    check(t, ref)
    np.testing.assert_array_equal(t.channel_dead, u.channel_dead)
    np.testing.assert_allclose(t.mean, u.mean, rtol=1e-6)
    np.testing.assert_array_equal(t.hist, u.hist)


def test_a_layer_whose_channels_all_fired_skips_the_max_until_the_epoch_ends(monkeypatch):
    calls = {"n": 0}
    real_amax = torch.amax

    def counting_amax(*args, **kwargs):
        out, ext = kwargs.get("out"), acc.buf.sig.layer
        if out is None or ext is None or out.data_ptr() < ext.data_ptr() or (
                out.data_ptr() >= ext.data_ptr() + ext.numel() * ext.element_size()):
            calls["n"] += 1  # a column max, not the staged outputs' max into the extremes
        return real_amax(*args, **kwargs)

    net = nn.Sequential(nn.Linear(4, 6), nn.Tanh())  # Gaussian inputs: every unit fires at once
    torch.manual_seed(0)
    acc = TelemetryAccumulator(chunk=4, dead_threshold=THRESH, sample_size=16)
    acc.attach(net, [net])
    monkeypatch.setattr(torch, "amax", counting_amax)
    for epoch in range(2):
        before = calls["n"]
        for i in range(20):
            acc.begin_batch(epoch * 20 + i)
            net(torch.randn(32, 4))
            acc.end_batch()
        assert acc.buf.channels.all_fired == [True]
        assert calls["n"] - before <= 3, "the column max must stop once all channels fired"
        acc.end_epoch(epoch)
        assert acc.buf.channels.all_fired == [False]  # each epoch starts over
    monkeypatch.setattr(torch, "amax", real_amax)
    t = acc.result()
    assert t.channel_epochs.tolist() == [0, 1] and (t.channel_dead[0] == 0).all()


def fields(t) -> dict[str, np.ndarray]:
    return {"mean": t.mean, "std": t.std, "hist": t.hist, "dead": t.dead,
            "channel_dead": t.channel_dead, "iters": t.iters, "range": t.hist_range}


def assert_same(t, u) -> None:
    for key, val in fields(t).items():
        np.testing.assert_array_equal(val, fields(u)[key], err_msg=key)


def test_a_second_attach_reuses_the_memory_and_records_afresh(path):
    """Re-attaching (a new fit) takes over the device buffers; records, range and per-channel
    state start from nothing, exactly as in a fresh accumulator."""
    epochs = [list(range(0, 8)), list(range(8, 12))]
    net = Net()
    acc = accumulator(net)
    run(net, acc, [list(range(20, 27))])  # a first fit, other data: nothing of it may leak
    slab = acc.buf.slots.slab
    acc.attach(net, [net.conv, net.seq])
    assert acc.buf.slots.slab is slab and acc.n_records == 0
    ref = run(net, acc, epochs)
    t = acc.result()
    check(t, ref)
    net2 = Net()
    fresh = accumulator(net2)
    run(net2, fresh, epochs)
    assert_same(t, fresh.result())


def test_a_second_attach_on_other_modules_remakes_what_does_not_fit(path):
    """Same number of layers, other shapes and channel counts: the adopted column buffers that do
    not fit are dropped, the rest is used; the result equals a fresh accumulator's."""
    net = Net()
    acc = accumulator(net)
    run(net, acc, [list(range(0, 5))])
    other = nn.Sequential(nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU()), nn.Flatten(),
                          nn.Linear(3 * 36, 7))

    def fit(a):
        torch.manual_seed(1)
        for i in range(7):
            a.begin_batch(i)
            other(torch.randn(4, 2, 8, 8))
            a.end_batch()
        a.end_epoch(0)
        return a.result()

    acc.attach(other, [other[0], other[2]])
    t = fit(acc)
    fresh = TelemetryAccumulator(chunk=3, dead_threshold=THRESH, sample_size=64)
    fresh.attach(other, [other[0], other[2]])
    u = fit(fresh)
    assert t.n_channels.tolist() == [3, 7]
    assert_same(t, u)


def test_memory_adopted_from_another_device_is_dropped(monkeypatch):
    """A slab on another device (the model moved between fits) is remade on the output's."""
    net = Net()
    acc = accumulator(net)
    run(net, acc, [list(range(0, 4))])
    acc.attach(net, [net.conv, net.seq])
    acc.buf.slots.slab = acc.buf.slots.slab.to("meta")  # stands for "another device"
    ref = run(net, acc, [list(range(4, 9))])
    assert acc.buf.slots.slab.device.type == "cpu"
    check(acc.result(), ref)


def test_a_layer_that_does_not_run_after_a_second_attach(path):
    """A layer that ran in the first fit but not in the second holds adopted column buffers and
    no channel count: it reads as "never ran" (NaN), like a fresh accumulator's, not a crash."""
    def seq_only(a):
        torch.manual_seed(2)
        for i in range(7):  # only the (B, T, F) block runs
            a.begin_batch(i)
            net.seq(torch.randn(3, 7, 6))
            a.end_batch()
        a.end_epoch(0)
        return a.result()

    net = Net()
    acc = accumulator(net)
    run(net, acc, [list(range(0, 5))])
    acc.attach(net, [net.conv, net.seq])
    t = seq_only(acc)
    u = seq_only(accumulator(net))
    assert np.isnan(t.channel_dead[0]).all() and not np.isnan(t.channel_dead[1, 0, :5]).any()
    assert_same(t, u)
