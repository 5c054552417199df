"""RecorderCallback: hypers per param group and the loss of every training batch.

Hypers are Python floats in the optimizer's param groups, so recording them costs no sync. The
loss is written into a preallocated buffer on the loss's device (doubling when full, so appends
are amortised O(1)); it crosses to the host only when ``.losses`` is read.

Under torchrun each rank's loss is the mean over its own shard of the global batch. The recorder
keeps the job's loss instead: it stores ``loss * rows`` per step and, at points every rank reaches
together (the end of each training phase, a checkpoint, the end of the fit), sums the pending
steps and their row counts over the ranks in one all-reduce and divides: the row-weighted mean,
equal to one process's loss on the whole batch. No collective and no host sync per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from actscope.callback import Callback
from actscope.callbacks.schedule import get_hyper
from actscope.config import positive_int
from actscope.dist import all_reduce_sum_, collective_device, get_world_size

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["RecorderCallback"]


class RecorderCallback(Callback):
    """Records ``hyper_names`` (default lr and momentum) per param group and the loss per batch.

    Only training batches that reached the optimizer step are recorded, so ``lrs[i]`` is the lr
    that produced the update whose loss is ``losses[i]``. Recording restarts at each fit.
    """

    order = 20

    def __init__(self, hyper_names: Sequence[str] = ("lr", "momentum"),
                 initial_capacity: int = 1024) -> None:
        positive_int(initial_capacity, "initial_capacity")
        self.hyper_names = tuple(hyper_names)
        self.initial_capacity = initial_capacity
        self._reset()

    def _reset(self) -> None:
        self._hypers: dict[str, list[list[Any]]] = {n: [] for n in self.hyper_names}
        self._buf: torch.Tensor | None = None
        self._n = 0
        self._world = 1
        self._pending_rows: list[int] = []  # rows of the steps not yet reduced over the ranks

    def before_fit(self, learn: Learner) -> None:
        self._reset()
        self._world = get_world_size()  # DistributedCallback (order -30) set up the group

    def after_step(self, learn: Learner) -> None:
        groups = learn.opt.param_groups
        for name, rows in self._hypers.items():
            rows.append([get_hyper(g, name) for g in groups])
        loss = learn.loss.detach()
        if self._world > 1:
            rows = learn.yb.shape[0]  # host metadata: no sync
            loss = loss * rows
            self._pending_rows.append(rows)
        buf = self._buf
        if buf is None:
            buf = self._buf = torch.empty(self.initial_capacity, dtype=torch.float32,
                                          device=loss.device)
        elif buf.device != loss.device:  # e.g. restored on the CPU, now training on a GPU
            buf = self._buf = buf.to(loss.device)
        if self._n == buf.numel():
            grown = torch.empty(2 * buf.numel(), dtype=buf.dtype, device=buf.device)
            grown[:self._n] = buf
            buf = self._buf = grown
        buf[self._n] = loss  # a device-side copy: no host sync
        self._n += 1

    def after_train(self, learn: Learner) -> None:
        self._reduce_pending()

    def after_fit(self, learn: Learner) -> None:
        self._reduce_pending()  # a fit cancelled mid-epoch skips after_train

    def _reduce_pending(self) -> None:
        """Turn the pending ``loss * rows`` into the job's mean losses (one all-reduce)."""
        k = len(self._pending_rows)
        if k == 0 or self._buf is None:
            return
        start, device = self._n - k, collective_device()
        packed = torch.stack([self._buf[start:self._n].to(device, torch.float64),
                              torch.tensor(self._pending_rows, dtype=torch.float64,
                                           device=device)])
        all_reduce_sum_(packed)
        self._buf[start:self._n] = (packed[0] / packed[1]).to(self._buf)
        self._pending_rows.clear()

    # ---- read back on request --------------------------------------------------------------
    @property
    def losses(self) -> np.ndarray:
        """The loss of each recorded batch, ``[n_batches]`` (one device-to-host copy)."""
        if self._buf is None:
            return np.zeros(0, dtype=np.float32)
        return self._buf[:self._n].cpu().numpy().copy()

    def hypers(self, name: str) -> np.ndarray:
        """Recorded values of ``name``, ``[n_batches, n_groups]`` (NaN where a group lacks it)."""
        if name not in self._hypers:
            raise KeyError(f"hyper {name!r} was not recorded; recorded: {list(self._hypers)}. "
                           f"Pass RecorderCallback(hyper_names=(..., {name!r}))")
        rows = self._hypers[name]
        if not rows:
            return np.zeros((0, 0), dtype=np.float64)
        return np.array([[np.nan if v is None else float(v) for v in r] for r in rows],
                        dtype=np.float64)

    @property
    def lrs(self) -> np.ndarray:
        """The lr of each recorded batch per param group, ``[n_batches, n_groups]``."""
        return self.hypers("lr")

    # ---- checkpoint protocol ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything recorded so far, for resume (under torchrun: the job's losses)."""
        self._reduce_pending()  # every rank calls state_dict at a checkpoint
        return {"hypers": {n: [[None if v is None else float(v) for v in r] for r in rows]
                           for n, rows in self._hypers.items()},
                "losses": torch.from_numpy(self.losses)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s output; idempotent."""
        self._hypers = {n: [list(r) for r in rows] for n, rows in state["hypers"].items()}
        for n in self.hyper_names:
            self._hypers.setdefault(n, [])
        losses = state["losses"].float()
        self._n = losses.numel()
        self._buf = torch.empty(max(self.initial_capacity, 2 * self._n), dtype=torch.float32)
        self._buf[:self._n] = losses
