"""How are the column maxima of staged outputs taken? Together, at the batch's end, by a kept plan.

A staged layer (``staging.py``) whose channels are recorded (``channels.py``) only notes in its
hook that its column max is pending. ``StagedColumns.reduce`` takes them all before the commit,
per group of layers sharing a staging buffer, an output shape and the reduced dims: one permuted
copy of the group's rows, so that the max runs over the leading dim (on a CPU ``amax`` over a
middle dim with a short inner one, 16 features, is ~6x slower), one ``amax`` and one
``_foreach_copy_`` into the layers' slot columns. Exact: a max.

The same layers are pending batch after batch, so the plan (the groups, their buffers, the
views of their result rows and, per slot, of the destination columns) is kept while the pending
entries are the same, and rebuilt when they change (a new shape, a layer not run, the device
memory dropped). Made per batch, those views and groups cost more than the ops (64 layers:
~150 us per batch against ~60).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["StagedColumns"]


class _Group:
    """The layers of one (stage, output shape, reduced dims), and what their max is made in."""

    __slots__ = ("stage", "layers", "index", "shape", "tbuf", "out", "srcs", "dests")

    def __init__(self, stage: Any, layers: list[int], shape: torch.Size, keep: int,
                 n_layers: int) -> None:
        self.stage, self.layers = stage, layers
        # most of the stage's layers: reduce all its rows (the others' results go unused)
        # rather than gather the pending ones first
        every = 2 * len(layers) >= n_layers
        self.index = None if every else stage.layer_index(tuple(layers))
        rows = n_layers if every else len(layers)
        reduced, cols = shape[:keep].numel(), shape[keep:]
        self.shape = (rows, reduced, cols.numel())
        buf = stage.buf
        self.tbuf = torch.empty((reduced, rows, cols.numel()), dtype=buf.dtype, device=buf.device)
        out = torch.empty((rows, *cols), dtype=buf.dtype, device=buf.device)
        self.out = out.view(rows, cols.numel())  # amax's out=; srcs: its rows, column-shaped
        picked = layers if every else range(len(layers))
        parts = out.unbind(0)
        self.srcs = [parts[i] for i in picked]
        self.dests: dict[int, list[torch.Tensor]] = {}  # slot -> the layers' column views


class StagedColumns:
    """The kept plan of the staged column maxima, and its per-batch reduction."""

    def __init__(self) -> None:
        self.key: tuple[Any, ...] = ()
        self.layout: object | None = None
        self.groups: list[_Group] = []

    def reduce(self, pending: dict[int, tuple[Any, torch.Size, Any]],
               views: Sequence[Any], slot: int, n_layers: int, layout: object) -> None:
        """Every pending layer's column max into its column of ``slot``.

        ``pending``: layer -> (stage, output shape, LayerState); ``views``: per layer the slot
        views (``SampleSlots.views``, the columns at index 3); ``layout``: the slots' token,
        replaced when their device memory is dropped."""
        key = tuple(pending.values())
        if key != self.key or layout is not self.layout:
            self._plan(pending, n_layers)
            self.key, self.layout = key, layout
        for g in self.groups:
            rows = g.stage.buf if g.index is None else g.stage.buf.index_select(0, g.index)
            g.tbuf.copy_(rows.view(g.shape).transpose(0, 1))
            torch.amax(g.tbuf, 0, out=g.out)
            dests = g.dests.get(slot)
            if dests is None:
                dests = g.dests[slot] = [views[i][3][slot] for i in g.layers]
            torch._foreach_copy_(dests, g.srcs)

    def _plan(self, pending: dict[int, tuple[Any, torch.Size, Any]], n_layers: int) -> None:
        groups: dict[tuple[int, torch.Size, int], list[int]] = {}
        stages: dict[int, Any] = {}
        for layer, (stage, shape, st) in pending.items():
            groups.setdefault((id(stage), shape, st.keep), []).append(layer)
            stages[id(stage)] = stage
        self.groups = [_Group(stages[sid], sorted(layers), shape, keep, n_layers)
                       for (sid, shape, keep), layers in groups.items()]
