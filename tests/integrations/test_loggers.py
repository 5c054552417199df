"""LayerScalars, FlushFeed and records_between on real recordings (no trainer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import actscope
from actscope.errors import UsageError
from actscope.integrations.loggers import (
    FlushFeed,
    LayerScalars,
    check_log_every,
    layer_tag,
    records_between,
)


def recording(steps=12, every=1):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh())
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    with actscope.watch(m, modules=[m[1], m[2], m[3]], every=every, optimizer=opt) as w:
        for _ in range(steps):
            m(torch.randn(8, 4)).sum().backward()
            opt.step()
            opt.zero_grad()
            w.step()
    return w.result()


def test_one_point_per_log_every_steps_across_chunks_and_every():
    t = recording(steps=24, every=3)  # records at steps 0, 3, 6, ..., 21
    s = LayerScalars(log_every=5)
    got = [p[0] for p in s.points(records_between(t, 0, 4))]
    got += [p[0] for p in s.points(records_between(t, 4, 8))]
    assert got == [0, 6, 12, 15, 21]  # the first record at or after each multiple of 5


def test_metrics_are_named_per_layer_and_dead_share_only_where_zero_floored():
    t = recording()
    step, metrics = next(LayerScalars(1).points(t))
    relu, lin, tanh = (layer_tag(n) for n in t.names)
    assert metrics[f"actscope/{relu}/std"] == pytest.approx(float(t.std[0, 0]))
    assert f"actscope/{relu}/dead_share" in metrics
    assert f"actscope/{lin}/dead_share" not in metrics  # pre-activation Linear output
    assert f"actscope/{tanh}/dead_share" not in metrics
    assert f"actscope/{lin}/max_abs" in metrics
    assert all(np.isfinite(v) for v in metrics.values())
    assert layer_tag("0 conv 1→8") == "0_conv_1_8"


def test_nan_values_are_left_out():
    t = recording()
    t.std[1, 0] = np.nan
    metrics = LayerScalars(1).of_record(t, 0)
    assert f"actscope/{layer_tag(t.names[1])}/std" not in metrics
    assert f"actscope/{layer_tag(t.names[0])}/std" in metrics


def test_flush_feed_sends_each_record_once_at_flushes_only():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
    chunks = []
    with actscope.watch(m, chunk=4) as w:
        feed = FlushFeed(w.acc)
        feed.add(lambda c: chunks.append(c.iters.tolist()))
        for _ in range(10):
            m(torch.randn(8, 4))
            w.step()
            feed.poll()
        # the store's flushes: after 1, 2 and 4 recorded batches, then every chunk (4)
        assert chunks == [[0], [1, 2], [3, 4, 5, 6]]
        feed.finish()
    assert chunks[-1] == [7, 8, 9]
    assert sum(chunks, []) == list(range(10))  # each record once


def test_check_log_every():
    assert check_log_every("x", 3) == 3
    for bad in (0, -1, 2.0, True):
        with pytest.raises(UsageError, match="log_every"):
            check_log_every("x", bad)


def test_flush_feed_uses_the_accumulators_own_flush_listeners_where_there_are_some():
    class Acc:  # the host record store's interface: listeners called by the flush itself
        n_records, buf = 3, None

        def __init__(self):
            self.fns, self.results = [], 0

        def add_flush_listener(self, fn):
            self.fns.append(fn)

        def result(self):
            self.results += 1

    acc = Acc()
    feed = FlushFeed(acc)
    feed.add(print)
    assert acc.fns == [print]
    feed.poll()  # nothing to do: the flushes call the listeners
    assert acc.results == 0
    feed.finish()  # flushes the rest, which calls the listeners
    assert acc.results == 1
