"""Data-parallel training on torch.distributed: torchrun + DistributedDataParallel, as a Callback.

Run the same script on every process (``torchrun --nproc_per_node 2 train.py`` or
``actscope fit --nproc 2``). Under torchrun, ``DistributedCallback`` initialises the process group,
wraps the model in DDP for the training phase, and gives each rank its rows of every global batch;
without torchrun it does nothing, so one script serves both. See docs/distributed.md.
"""

from __future__ import annotations

import atexit
import os
from datetime import timedelta
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from actscope.callback import Callback
from actscope.callbacks.ddp_comm import GradWeight, weighted_allreduce
from actscope.callbacks.sharding import ShardedBatches
from actscope.dist import DistEnv, sync_buffers, unwrap_model
from actscope.errors import UsageError

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["DistributedCallback", "ShardedBatches"]  # ShardedBatches: re-exported, see sharding.py


def _destroy_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class DistributedCallback(Callback):
    """Under torchrun: process group, DDP for the training phase, per-rank shards of each batch.

    Args:
        backend: "gloo" or "nccl"; default nccl when CUDA is available, else gloo.
        timeout: how long a collective waits for the other ranks before raising (no hangs).
        sync_bn: convert torch BatchNorm layers to SyncBatchNorm (GPU only, a torch limit).
        shard: "batch" (rows rank::W of each global batch, exact match with one process), "loader"
            (the loader's own ``shard(rank, world_size)``), or None (the data is already sharded).
        shard_valid: shard validation too (metrics must then be reduced: MetricsCallback does).
        exact_mean: weight unequal shards so the step equals one process's mean-loss step.
        buffers: after each training phase, "average" the float buffers (BatchNorm running
            stats) over ranks, or "broadcast" rank 0's; either way all ranks agree.
    """

    order = -30
    prepares_batch = True  # shards the batch and wraps the model: also during lr_find

    def __init__(self, backend: str | None = None, timeout: float | timedelta = 300.0,
                 sync_bn: bool = False, shard: str | None = "batch", shard_valid: bool = True,
                 exact_mean: bool = True, buffers: str = "average",
                 find_unused_parameters: bool = False) -> None:
        if buffers not in ("average", "broadcast"):
            raise UsageError(f"buffers must be 'average' or 'broadcast', got {buffers!r}")
        if shard not in ("batch", "loader", None):
            raise UsageError(f"shard must be 'batch', 'loader' or None, got {shard!r}")
        if backend not in (None, "gloo", "nccl"):
            raise UsageError(f"backend must be 'gloo', 'nccl' or None (auto), got {backend!r}")
        self.backend, self.sync_bn, self.shard = backend, sync_bn, shard
        self.shard_valid = shard_valid
        self.timeout = timeout if isinstance(timeout, timedelta) else timedelta(seconds=timeout)
        self.exact_mean, self.find_unused_parameters = exact_mean, find_unused_parameters
        self.buffers = buffers
        self.env: DistEnv | None = None
        self.ddp: DistributedDataParallel | None = None
        self._weight = GradWeight()
        self._replaced_bns: list[tuple[nn.Module, str, nn.Module]] = []

    @property
    def active(self) -> bool:
        """True while training runs on more than one process."""
        return self.env is not None and self.env.world_size > 1

    def before_fit(self, learn: Learner) -> None:
        self.env = DistEnv.from_env()
        if self.env is None and dist.is_available() and dist.is_initialized():
            # the user initialised the group themselves: use it, and leave it to them
            self.env = DistEnv(dist.get_rank(), dist.get_world_size(),
                               int(os.environ.get("LOCAL_RANK", 0)))
        if self.env is None:
            return
        backend = self.backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            # set before DeviceCallback (-20) runs, so that "cuda" means this rank's GPU
            torch.cuda.set_device(self.env.local_rank)
        if not dist.is_initialized():
            dist.init_process_group(backend, timeout=self.timeout)
            # Kept for later fits in this process (lr_find, then fit; staged training) and
            # destroyed at exit: under torchrun a second init after a destroy reads the first
            # group's stale addresses from the agent's store and fails to connect.
            atexit.register(_destroy_group)

    def _wrap(self, learn: Learner) -> DistributedDataParallel:
        # Built at the first training phase, not in before_fit: callbacks that look at the model
        # in before_fit (device move, telemetry hooks, checkpoint resume) see the plain module.
        model = learn.model
        if self.sync_bn:
            self._convert_sync_bn(model)
        device = next(model.parameters()).device
        ddp = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=self.find_unused_parameters)
        if self.exact_mean:
            ddp.register_comm_hook(self._weight, weighted_allreduce)
        return ddp

    def _convert_sync_bn(self, model: nn.Module) -> None:
        device = next(model.parameters()).device
        if device.type == "cpu":
            raise UsageError("sync_bn=True needs a GPU: torch's SyncBatchNorm has no CPU kernel; "
                             "use DistributedCallback(sync_bn=False) on CPU")
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
                        child, nn.SyncBatchNorm):
                    # the SyncBatchNorm shares the original's parameters and buffers, so putting
                    # the original back at the end keeps everything it learned
                    self._replaced_bns.append((parent, name, child))
                    setattr(parent, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))

    def _shard(self, learn: Learner) -> None:
        assert self.env is not None
        if self.shard == "batch":
            learn.dl = ShardedBatches(learn.dl, self.env.rank, self.env.world_size)
        elif self.shard == "loader":
            if not hasattr(learn.dl, "shard"):
                raise TypeError(f"shard='loader' needs a loader with shard(rank, world_size); "
                                f"{type(learn.dl).__name__} has none: use shard='batch'")
            learn.dl = learn.dl.shard(self.env.rank, self.env.world_size)
            if hasattr(learn.dl, "set_epoch"):
                learn.dl.set_epoch(learn.epoch)

    def before_train(self, learn: Learner) -> None:
        if not self.active:
            return
        if self.ddp is None:
            self.ddp = self._wrap(learn)
        learn.model = self.ddp
        self._shard(learn)

    def before_batch(self, learn: Learner) -> None:
        if not (self.active and learn.training and isinstance(learn.dl, ShardedBatches)):
            return
        n, world = learn.dl.global_rows, learn.dl.world_size
        self._weight.value = learn.xb.shape[0] * world / n if n else 1.0

    def after_train(self, learn: Learner) -> None:
        if not self.active:
            return
        learn.model = unwrap_model(learn.model)  # validation, checkpoints: the plain module
        sync_buffers(learn.model, average=self.buffers == "average")

    def before_validate(self, learn: Learner) -> None:
        if self.active and self.shard_valid:
            self._shard(learn)

    def after_fit(self, learn: Learner) -> None:
        learn.model = unwrap_model(learn.model)
        for parent, name, original in reversed(self._replaced_bns):
            setattr(parent, name, original)
        self._replaced_bns.clear()
        self.ddp = None
