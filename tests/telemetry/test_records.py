"""RecordStore: commit, flush, read-back and checkpoint state of the records."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from actscope.telemetry.layer_state import LayerState
from actscope.telemetry.records import RecordStore
from actscope.telemetry.settings import TelemetrySettings


def write(store: RecordStore, states: list[LayerState], step: int, xs: list[torch.Tensor | None]):
    store.slots.begin(step)
    for st, x in zip(states, xs, strict=True):
        if x is not None:
            flat = x.reshape(-1)
            idx = torch.arange(store.settings.k) % flat.shape[0]
            store.slots.record(st, x, flat, idx, flat.shape[0])
    store.commit()


def test_flush_every_chunk_and_a_layer_that_did_not_run_is_nan():
    settings = TelemetrySettings(sample_size=4, chunk=2, channels=False, bins=4)
    store = RecordStore(2, settings)
    states = [LayerState(i, nn.Identity()) for i in range(2)]
    write(store, states, 0, [torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.ones(4)])
    assert store.n == 1 and store.n_records == 1  # the first flush comes after one batch
    write(store, states, 1, [torch.tensor([2.0, 2.0, 2.0, 2.0]), None])
    assert store.n == 1 and store.n_records == 2  # then after 2: in the chunk, not flushed yet
    write(store, states, 2, [torch.tensor([2.0, 2.0, 2.0, 2.0]), None])
    assert store.n == 3 and store.slots.slot == 0  # a full chunk is flushed at once
    t = store.result(["a", "b"], {})
    assert t.iters.tolist() == [0, 1, 2] and t.mean[0].tolist() == [2.5, 2.0, 2.0]
    assert np.isnan(t.mean[1, 1]) and t.ran.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert t.hist.shape == (2, 3, 4) and t.hist[0, 0].sum() + t.hist_over[0, 0] == 4
    assert store.result(["a", "b"], {}) is t  # cached until new records


def test_state_round_trip_and_memory_adopted_by_the_next_attach():
    settings = TelemetrySettings(sample_size=4, chunk=4)
    store = RecordStore(1, settings)
    st = LayerState(0, nn.Identity())
    write(store, [st], 0, [torch.randn(3, 2)])
    state = store.state_dict()
    again = RecordStore(1, settings)
    again.load_state_dict(state)
    assert again.n_records == 1 and again.r is not None
    np.testing.assert_array_equal(again.result(["a"], {}).mean, store.result(["a"], {}).mean)
    slab = store.slots.slab
    fresh = RecordStore(1, settings, reuse=store)
    assert fresh.slots.slab is slab and store.slots.slab is None and fresh.n_records == 0
