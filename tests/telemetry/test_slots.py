"""SampleSlots: the hot path writes samples, sum and sum of squares into the current slot."""

from __future__ import annotations

import torch
from torch import nn

from actscope.telemetry.channels import ChannelMaxima
from actscope.telemetry.layer_state import LayerState
from actscope.telemetry.settings import TelemetrySettings
from actscope.telemetry.slots import SampleSlots


def make(channels: bool = True) -> tuple[SampleSlots, LayerState]:
    settings = TelemetrySettings(sample_size=4, chunk=3, channels=channels)
    slots = SampleSlots(1, settings, ChannelMaxima(1, settings))
    return slots, LayerState(layer=0, module=nn.Conv2d(2, 2, 1))


def test_record_writes_samples_and_sums_into_the_slot():
    slots, st = make()
    x = torch.arange(16, dtype=torch.float32).view(2, 2, 2, 2)
    flat = x.reshape(-1)
    idx = torch.tensor([0, 5, 10, 15])
    slots.begin(7)
    slots.record(st, x, flat, idx, 16)
    row = slots.slab[0, 0]
    assert row[:4].tolist() == [0.0, 5.0, 10.0, 15.0]
    assert row[4].item() == flat.sum().item() and row[5].item() == (flat * flat).sum().item()
    assert slots.counts[0][0] == 16 and slots.ran == [True] and slots.wrote and slots.ever == [True]
    assert slots.step == 7 and torch.isnan(slots.slab[0, 1]).all()  # other slots untouched
    # the column max over the batch dim: one value per (C, H, W) position
    col = slots.views[0][3][0]
    assert torch.equal(col, x.amax(dim=0))


def test_channels_off_records_no_column_max():
    slots, st = make(channels=False)
    x = torch.randn(2, 2, 2, 2)
    slots.begin(0)
    slots.record(st, x, x.reshape(-1), torch.arange(4), 16)
    assert st.n_chan == 0 and slots.views[0][3] is None


def test_record_grad_and_drop():
    slots, st = make()
    g = torch.tensor([1.0, 2.0, 3.0])
    slots.begin(0)
    slots.record_grad(0, g)
    assert slots.gsums[0, 0].tolist() == [6.0, 14.0] and slots.gcounts[0][0] == 3
    slots.drop()
    assert slots.slab is None and slots.gsums is None and slots.views == [None]
