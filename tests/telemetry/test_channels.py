"""ChannelMaxima: per-channel maxima over an epoch become dead flags at the epoch's end."""

from __future__ import annotations

import math

import torch

from actscope.telemetry.channels import ChannelMaxima
from actscope.telemetry.settings import TelemetrySettings


def test_columns_fold_to_channels_and_close_an_epoch():
    ch = ChannelMaxima(1, TelemetrySettings(chunk=2, dead_threshold=0.5))
    assert ch.width(0, 2) and not ch.width(0, 3)  # a changed channel count is refused
    cols = ch.column_views(0, torch.Size([2, 3]), torch.device("cpu"))  # C=2, 3 positions
    assert len(cols) == 2  # one column max per slot of the chunk
    cols[0].copy_(torch.tensor([[0.1, 0.2, 0.0], [0.0, 0.9, 0.1]]))
    cols[1].copy_(torch.tensor([[0.3, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    ch.fold_columns(0, 2)
    assert ch.layer_max(0).tolist() == [0.30000001192092896, 0.8999999761581421]
    ch.ep_seen = True
    ch.end_epoch(0)
    (epoch, row), = ch.epochs
    assert epoch == 0 and row.tolist() == [[1.0, 0.0]]  # channel 0 never reached 0.5
    assert ch.next_epoch == 1 and not ch.ep_seen
    assert ch.col_run[0].eq(-math.inf).all()  # the next epoch starts from nothing


def test_all_fired_is_read_on_cpu_only_and_state_round_trips():
    settings = TelemetrySettings(chunk=1, dead_threshold=0.5)
    ch = ChannelMaxima(1, settings)
    ch.width(0, 1)
    ch.column_views(0, torch.Size([1, 2]), torch.device("cpu"))[0].fill_(1.0)
    ch.check_all_fired(1, torch.device("meta"))
    assert ch.all_fired == [False]  # reading the flag would be a sync there
    ch.check_all_fired(1, torch.device("cpu"))
    assert ch.all_fired == [True]
    again = ChannelMaxima(1, settings)
    again.load_state_dict(ch.state_dict(0))
    assert again.ep_max[0].tolist() == [1.0] and again.widths == [1]
