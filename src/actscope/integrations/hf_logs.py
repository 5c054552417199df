"""The HF callback's per-layer scalars in the Trainer's ``logs`` (what ``report_to`` sends).

The Trainer calls ``on_log`` on its callbacks in list order, and puts the ``report_to``
integrations (TensorBoard, W&B, MLflow, ...) before the user's callbacks: keys added to ``logs``
by a callback at the end of the list would reach none of them. ``move_first`` therefore puts
actscope's callback at the front of the Trainer's callback list at train begin (the Trainer
gives callbacks no handle on it: it is found on the call stack, as ``_resumed_checkpoint`` finds
the checkpoint). At each ``on_log`` (every ``logging_steps``: the Trainer reads its loss back
there anyway) the latest due record's scalars are added, read back at most once per
``log_every`` optimizer steps; between logs the records arrive through the flush feed.
"""

from __future__ import annotations

import inspect
from typing import Any

from actscope.integrations.loggers import FlushFeed, LayerScalars
from actscope.telemetry.record import Telemetry

__all__ = ["HFLogs", "move_first"]


def move_first(callback: Any) -> bool:
    """Put ``callback`` first in the running Trainer's callback list; whether it was found.

    Called from one of its events: the handler iterating over the list is a caller's ``self``.
    Moving an already-visited entry to the front keeps the iteration's later entries in place.
    """
    frame = inspect.currentframe()
    try:
        while frame is not None:
            handler = frame.f_locals.get("self")
            cbs = getattr(handler, "callbacks", None)
            if type(handler).__name__ == "CallbackHandler" and isinstance(cbs, list):
                if callback in cbs:
                    cbs.remove(callback)
                    cbs.insert(0, callback)
                    return True
            frame = frame.f_back
    finally:
        del frame
    return False


class HFLogs:
    """Latest per-layer scalars, added to the Trainer's ``logs`` at ``on_log``."""

    def __init__(self, feed: FlushFeed, log_every: int) -> None:
        self.feed, self.log_every = feed, log_every
        self.scalars = LayerScalars(log_every)
        self.latest: dict[str, float] = {}
        self.next_read = 0  # the optimizer step from which on_log may read back
        feed.add(self)

    def reset(self) -> None:
        """A new ``train()``."""
        self.scalars, self.latest, self.next_read = LayerScalars(self.log_every), {}, 0

    def __call__(self, chunk: Telemetry) -> None:
        """A flush listener: keep the newest due record's scalars."""
        for _, metrics in self.scalars.points(chunk):
            self.latest = metrics

    def add_to(self, logs: dict[str, Any], step: int) -> None:
        """Add the latest scalars to ``logs`` (reading back new records if ``log_every`` passed)."""
        if not self.latest and step >= self.next_read:
            self.feed.finish()
            self.next_read = step + self.log_every
        logs.update(self.latest)
        self.latest = {}
