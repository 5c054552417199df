"""LayerState: everything the recording hot path knows about one watched layer, declared once.

One per watched module, made by ``TelemetryAccumulator.attach`` and carried by the layer's
hooks (``Hook.state``), so the hook finds its row, its sample positions and its channel layout
with plain attribute reads: no dict lookup and no ``getattr`` on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["FastRecord", "LayerState", "PlannedRecord"]


@dataclass(slots=True, eq=False)
class LayerState:
    """One watched layer's row and what its first outputs taught the recorder."""

    layer: int  # the row of this layer in every buffer
    module: nn.Module
    # The forward order is noted once per layer (for the diagnosis).
    ordered: bool = False
    # The K sample positions for outputs of ``idx_n`` elements (-1: none chosen yet).
    idx: torch.Tensor | None = None
    idx_n: int = -1
    # Channel layout, set on the first forward and again when the output's rank changes:
    # chan_ndim the rank it was set for (-1: not yet), n_chan the channels (0: not recorded
    # per channel), keep the leading dims reduced away (one column max is x.shape[keep:]),
    # red_dims those dims as a tuple for torch.amax.
    chan_ndim: int = -1
    n_chan: int = 0
    keep: int = 1
    red_dims: tuple[int, ...] = field(default_factory=tuple)
    # The staging rows of its current output size (``staging.Stage``; None: not staged yet).
    stage: Any = None
    # A staged layer's fast path (``SampleSlots.record_fast``), set by a full ``record``.
    fast: FastRecord | None = None
    # On a CPU, whether its reductions wait for the batch's end (``deferred``); None: its
    # first output has not told yet whether anything changes it in place.
    defer: bool | None = None
    # A deferring layer's fast path (``SampleSlots.record_planned``), set after a full record.
    plan: PlannedRecord | None = None


class FastRecord:
    """What a staged layer's last full record settled, for the next outputs like it: one copy.

    Valid while the output keeps ``shape``, ``dtype`` and ``device`` (``Tensor.get_device()``),
    and while the slots' device memory is the one of ``layout`` (``SampleSlots.layout``)."""

    __slots__ = ("shape", "dtype", "device", "row", "stage", "pending", "n", "layout")

    def __init__(self, shape: torch.Size, dtype: torch.dtype, device: int, row: torch.Tensor,
                 stage: Any, pending: tuple[Any, torch.Size, LayerState] | None, n: int,
                 layout: object) -> None:
        self.shape, self.dtype, self.device = shape, dtype, device
        self.row = row  # its staging row, viewed in the output's shape: no reshape per call
        self.stage = stage  # the staging.Stage of outputs of n elements
        self.pending = pending  # its column-max entry (SampleSlots.chan_pending), or None
        self.n, self.layout = n, layout


class PlannedRecord:
    """What a deferring CPU layer's full record settled, for the next float32 outputs of the
    same shape: the sample positions and every slot's out= views (``SampleSlots.views`` and
    ``SignalSlots`` extremes rows; valid while those objects are still the kept ones)."""

    __slots__ = ("shape", "n", "idx", "views", "ext")

    def __init__(self, shape: torch.Size, n: int, idx: torch.Tensor, views: Any,
                 ext: Any) -> None:
        self.shape, self.n, self.idx, self.views, self.ext = shape, n, idx, views, ext
