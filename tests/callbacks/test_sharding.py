"""callbacks/sharding.py: W ranks' shards of each global batch together are that batch."""

from __future__ import annotations

import pytest
import torch

from actscope.callbacks.sharding import ShardedBatches
from actscope.errors import UsageError
from tests.conftest import TensorBatches

X, Y = torch.arange(10.0)[:, None], torch.arange(10)


def test_the_shards_interleave_back_into_the_global_batch():
    loader = TensorBatches(X, Y, 4)  # batches of 4, 4, 2
    shards = [list(ShardedBatches(loader, r, 2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 3
    for (x0, y0), (_x1, y1), (_xg, yg) in zip(*shards, loader, strict=True):
        merged = torch.stack([y0, y1], 1).flatten()
        assert torch.equal(merged, yg) and torch.equal(x0[:, 0].long(), y0)


def test_a_last_batch_smaller_than_the_world_is_skipped_on_every_rank():
    loader = TensorBatches(X, Y, 4)  # the last batch has 2 rows
    for r in range(3):
        got = list(ShardedBatches(loader, r, 3))
        assert len(got) == 2
        assert got[0][1].tolist() == list(range(r, 4, 3))


def test_global_rows_and_start_and_len():
    sb = ShardedBatches(TensorBatches(X, Y, 4), 1, 2)
    assert len(sb) == 3
    got = list(sb.batches(start=1))
    assert [yb.tolist() for _, yb in got] == [[5, 7], [9]]
    assert sb.global_rows == 2


def test_set_epoch_is_passed_on():
    class Loader(TensorBatches):
        epoch = None

        def set_epoch(self, e):
            self.epoch = e

    loader = Loader(X, Y, 5)
    ShardedBatches(loader, 0, 1).set_epoch(7)
    assert loader.epoch == 7
    ShardedBatches(TensorBatches(X, Y, 5), 0, 1).set_epoch(3)  # a loader without it is fine


def test_a_rank_outside_the_world_is_refused():
    with pytest.raises(UsageError, match=r"rank must be in \[0, 2\), got 2"):
        ShardedBatches(TensorBatches(X, Y, 4), 2, 2)
