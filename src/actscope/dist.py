"""Where this process sits in a torch.distributed job, and the few collectives actscope needs.

The lowest layer for rank information: telemetry, callbacks, storage and the CLI import these
helpers from here (never from a callback module). Every helper works without a process group
(one process: rank 0 of 1), so the same code runs under torchrun and without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["DistEnv", "TORCHRUN_VARS", "all_reduce_sum_", "all_reduce_max_", "collective_device",
           "get_rank", "get_world_size", "is_main_process", "sync_buffers", "unwrap_model"]

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a torchrun job (read from the variables torchrun sets)."""

    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_env(cls) -> DistEnv | None:
        """The torchrun environment, or None when this process was not started by torchrun."""
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            return None
        missing = [v for v in TORCHRUN_VARS if v not in os.environ]
        if missing:
            raise RuntimeError(f"RANK is set but {', '.join(missing)} is not: start the processes "
                               "with torchrun (or `actscope fit --nproc N`), which sets all of "
                               f"{', '.join(TORCHRUN_VARS)}")
        return cls(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                   int(os.environ["LOCAL_RANK"]))


def get_rank() -> int:
    """This process's rank: the process group's, else torchrun's $RANK, else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    # after the group is destroyed (after fit) a rank is still not rank 0: writes stay on rank 0
    return int(os.environ.get("RANK", 0))


def get_world_size() -> int:
    """The number of processes in the default process group (1 when there is none)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0, and always without a process group: the one process that writes files."""
    return get_rank() == 0


def all_reduce_sum_(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` in place over all ranks (no-op without a process group); returns ``t``."""
    if get_world_size() > 1:  # 1 without a process group
        dist.all_reduce(t, op=dist.ReduceOp.SUM)  # stays on t's device: no host sync
    return t


def all_reduce_max_(t: torch.Tensor) -> torch.Tensor:
    """Max of ``t`` in place over all ranks (no-op without a process group); returns ``t``."""
    if get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def collective_device() -> torch.device:
    """Where tensors for a collective must live: this rank's GPU under nccl, else the CPU."""
    if get_world_size() > 1 and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The user's module inside a DDP / DataParallel or torch.compile wrapper (``model`` itself
    otherwise); wrappers nested in each other are all taken off."""
    while True:
        if isinstance(model, (DistributedDataParallel, nn.DataParallel)):
            model = model.module
            continue
        orig = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if not isinstance(orig, nn.Module):
            return model
        model = orig


def sync_buffers(model: nn.Module, average: bool = True) -> None:
    """Make every rank's buffers equal: float ones averaged (or rank 0's), the others rank 0's."""
    # DDP copies rank 0's buffers into every rank before each training forward, but the last
    # step's update (e.g. BatchNorm running stats) is per rank. Called once per epoch.
    if get_world_size() == 1:
        return
    world = get_world_size()
    for buf in model.buffers():
        if average and buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf.div_(world)
        else:
            dist.broadcast(buf, src=0)
