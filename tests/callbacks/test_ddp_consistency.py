"""Two gloo ranks on the CPU: the guard stops every rank at the same batch with the same words,
the recorder keeps the job's loss, and lr_find refuses to run (issue 10, families 13-14).

The ranks are forked processes (no second torch import: seconds instead of a minute on a busy
2-core box) that join a process group of their own, with a short timeout: a rank left behind in
a collective fails the test instead of hanging it. Each rank trains on its rows of every global
batch (ShardedBatches) with lr 0, without DDP: the weights stay equal on both ranks, so the job's
loss must equal one process's exactly, and a NaN on one rank reaches the other only through the
guard's own reduction (no gradient all-reduce carries it). tests/callbacks/test_distributed.py
runs DistributedCallback with DDP under torchrun.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from actscope.callback import Callback
from actscope.callbacks.guards import NaNGuardCallback
from actscope.callbacks.lr_finder import lr_find
from actscope.callbacks.recorder import RecorderCallback
from actscope.callbacks.sharding import ShardedBatches
from actscope.errors import UsageError
from tests.conftest import synth_learner as _one_process_learner

WORLD = 2
DATA = {"n_train": 64, "n_valid": 30, "bs": 15}  # 15 rows: shards of 8 and 7, a last batch of 4


class NaNLossOnRank(Callback):
    """Makes the loss NaN on one rank only, at (epoch, batch) of one phase."""

    order = 0

    def __init__(self, rank: int, epoch: int, batch: int, training: bool) -> None:
        self.rank, self.epoch, self.batch, self.training = rank, epoch, batch, training

    def after_loss(self, learn) -> None:
        if (dist.get_rank(), learn.epoch, learn.iter, learn.training) == (
                self.rank, self.epoch, self.batch, self.training):
            learn.loss = learn.loss * math.nan


def synth_learner(cbs=(), **kw):
    """The synthetic learner at lr 0; inside a rank, on that rank's shards of the batches."""
    learn = _one_process_learner(cbs=cbs, lr=0.0, **kw)
    if dist.is_initialized():
        for phase in ("train", "valid"):
            dl = getattr(learn.dls, phase)
            setattr(learn.dls, phase, ShardedBatches(dl, dist.get_rank(), WORLD))
    return learn


def _guarded_fit(rank_with_nan: int, training: bool) -> dict:
    guard = NaNGuardCallback()
    learn = synth_learner(cbs=[guard, NaNLossOnRank(rank_with_nan, 1, 1, training)], **DATA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        learn.fit(3)
    return {"at": [learn.epoch, learn.iter, learn.training], "message": guard.message}


def _worker(rank: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD, timeout=timedelta(seconds=20))
    try:
        rec = RecorderCallback()
        synth_learner(cbs=[rec], **DATA).fit(2)
        result = {"losses": rec.losses.tolist(),
                  "valid_nan": _guarded_fit(1, training=False),
                  "train_nan": _guarded_fit(1, training=True)}
        try:
            lr_find(synth_learner(**DATA), num_it=10)
        except UsageError as e:
            result["lr_find"] = str(e)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))


@pytest.fixture(scope="module")
def reference() -> list[float]:
    """One process's recorded losses on the same global batches."""
    rec = RecorderCallback()
    synth_learner(cbs=[rec], **DATA).fit(2)
    return rec.losses.tolist()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory, reference) -> list[dict]:
    # after `reference`: the forked ranks inherit torch's lazily imported optimizer machinery
    tmp = tmp_path_factory.mktemp("ddp")
    ctx = mp.start_processes(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD,
                             join=False, start_method="fork")
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=2):  # raises ProcessRaisedException when a rank fails
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the 2-rank job did not finish in 120 s: a rank is stuck in a collective")
    return [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(WORLD)]


def test_recorded_loss_is_the_jobs_loss(ranks, reference):
    for r in ranks:
        assert len(r["losses"]) == len(reference) == 10
        # the row-weighted mean of the shards' losses: one process's loss on the whole batch
        assert r["losses"] == pytest.approx(reference, abs=1e-6)
    assert ranks[0]["losses"] == ranks[1]["losses"]


@pytest.mark.parametrize("case, phase", [("valid_nan", "validation"), ("train_nan", "training")])
def test_nan_on_one_rank_stops_all_ranks_at_the_same_batch(ranks, case, phase):
    # Before the reduction rank 1 stopped alone, and under DDP rank 0 then waited in the next
    # all-reduce until the timeout.
    got = [r[case] for r in ranks]
    assert got[0] == got[1]  # same place, same message
    assert got[0]["at"][:2] == [1, 1]
    assert got[0]["message"].startswith(f"non-finite loss at epoch 1, batch 1 ({phase}) on rank 1 "
                                        "of 2; ")


def test_lr_find_refuses_under_ddp(ranks):
    for rank, r in enumerate(ranks):
        assert r["lr_find"].startswith(f"lr_find runs on one process, but this is rank {rank} "
                                       "of a 2-process job")
