"""ShardedBatches: each rank's rows of every global batch, so W ranks together see one process's
batches (the data side of DistributedCallback)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from actscope.errors import UsageError

__all__ = ["ShardedBatches"]


class ShardedBatches:
    """Rank ``rank``'s rows ``rank::world_size`` of every batch of ``loader`` (the global batch).

    Every rank walks the same global batches (the loader's shuffle is a pure function of its seed
    and epoch), so W ranks together see exactly the batches one process would, and all ranks run
    the same number of steps (DDP needs that). A final batch with fewer rows than ranks is skipped
    on every rank, since some rank would get no rows.
    """

    def __init__(self, loader: Any, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise UsageError(f"rank must be in [0, {world_size}), got {rank}")
        self.loader, self.rank, self.world_size = loader, rank, world_size
        self.global_rows = 0  # rows of the current global batch; read by the gradient weighting

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch on to the wrapped loader (its shuffle seed)."""
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)

    def batches(self, start: int = 0) -> Iterator[tuple[Any, Any]]:
        """This rank's share of the global batches from index ``start`` on (resume)."""
        if start and hasattr(self.loader, "batches"):
            it = self.loader.batches(start)
        else:
            it = iter(self.loader)
            for _ in range(start):
                next(it, None)
        for batch in it:
            xb, yb = batch[0], batch[1]
            n = xb.shape[0]  # a Python int: no host sync
            if n < self.world_size:
                continue
            self.global_rows = n
            yield xb[self.rank::self.world_size], yb[self.rank::self.world_size]

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return self.batches(0)
