"""The partial state of a metric object (torchmetrics or alike), for an exact mid-epoch resume.

A torchmetrics ``Metric`` keeps its running state in the attributes named by ``_defaults``
(``metric_state``); its ``state_dict()`` holds only the states registered ``persistent=True``,
which by default is none. So a checkpoint saves ``metric_state`` itself (and the update count),
and a resume puts those tensors back: ``compute()`` then sees exactly the batches seen so far.
"""

from __future__ import annotations

from typing import Any

import torch

from actscope.dist import get_world_size
from actscope.errors import UsageError

__all__ = ["object_state", "load_object_state"]


def _clone(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.detach().clone()
    if isinstance(v, list):  # a torchmetrics "cat" state: one tensor per update
        return [_clone(t) for t in v]
    return v


def object_state(m: Any) -> dict[str, Any]:
    """A metric object's partial state: torchmetrics' states exactly, else its state_dict()."""
    if hasattr(m, "metric_state") and hasattr(m, "_defaults"):  # a torchmetrics.Metric
        # Under torchrun gather the ranks' states first (torchmetrics' own sync): rank 0 saves
        # the job's state, as for the sums above. sync() is a no-op without a process group.
        synced = get_world_size() > 1 and not m._is_synced
        if synced:
            m.sync()
        try:
            return {"states": {k: _clone(v) for k, v in m.metric_state.items()},
                    "update_count": int(m._update_count)}
        finally:
            if synced and m._is_synced:
                m.unsync()
    if callable(getattr(m, "state_dict", None)) and callable(getattr(m, "load_state_dict", None)):
        return {"state_dict": m.state_dict()}
    raise UsageError(f"metric object {type(m).__name__} has neither torchmetrics' states nor "
                     "state_dict()/load_state_dict(): a checkpoint cannot keep its partial epoch; "
                     "give it those two methods or use a function metric")


def load_object_state(m: Any, saved: dict[str, Any]) -> None:
    """Inverse of ``object_state``: put the saved states back into ``m``."""
    if "states" in saved:
        for k, v in saved["states"].items():
            setattr(m, k, _clone(v))
        m._update_count = saved["update_count"]
        m._computed = None  # a cached compute() of the old state must not be returned
    else:
        m.load_state_dict(saved["state_dict"])
