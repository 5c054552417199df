"""The DDP communication hook that makes unequal shards give one process's mean-loss step.

DDP averages the ranks' gradients, which is the global mean only when every rank has as many rows.
With ``n_r`` rows of ``n`` on rank r the global mean gradient is ``sum_r (n_r / n) g_r``, so each
rank scales its gradient by ``n_r * W / n`` before the average (DistributedCallback sets the
weight per step from the batch's shapes: Python ints, no host sync).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

__all__ = ["GradWeight", "weighted_allreduce"]


@dataclass
class GradWeight:
    """This rank's share of the global mean for the current step (the comm hook's state)."""

    value: float = 1.0


# No annotations on the hook: DDP checks them against dist.GradBucket, and with postponed
# evaluation (``from __future__ import annotations``) they are strings that fail that check.
def weighted_allreduce(state, bucket):  # noqa: ANN001, ANN202
    # DDP averages the ranks' gradients. With unequal shards (n_r rows of n) the global mean is
    # sum_r (n_r / n) * g_r, so rank r scales its gradient by n_r * W / n before the average.
    if state.value != 1.0:
        bucket.buffer().mul_(state.value)
    return default_hooks.allreduce_hook(None, bucket)
