"""SignalSlots: the chunk's device memory for the diagnosis signals, one column per record slot.

Beside ``slots.SampleSlots`` (samples and sums), each record slot holds, on the device:

- per layer (``layer``, (L, chunk, 6)): min and max of the output (the hook's one extra op,
  ``torch.aminmax(..., out=)``; max |x| is folded from them at flush), the gradient norm, the
  update/weight ratio, the attention max logit and entropy;
- per record (``root``, (3, chunk)): the output's mean log-sum-exp, min and max logit (max
  |logit| is folded from them at flush);
- named scalars (``scalars``, (S, chunk), float64; float32 on MPS): loss, lr, a trainer's metrics.

Everything is written with device ops (``copy_``/``fill_`` into a slot), nothing is read back; a
flush hands the columns to ``RecordStore`` as per-record fields (``take``) and resets them to NaN,
so a signal that did not arrive in a batch reads NaN there, never a stale value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["SignalSlots", "LAYER_FIELDS", "ROOT_FIELDS"]

# Columns of ``layer`` after the (min, max) pair, and of ``root``.
LAYER_FIELDS = ("grad_norm", "update_ratio", "attn_logit_max", "attn_entropy")
ROOT_FIELDS = ("out_lse", "out_absmax")
_NAN = float("nan")


class SignalSlots:
    """Device columns of the diagnosis signals for the chunk's record slots (see module doc)."""

    def __init__(self, n_layers: int, chunk: int) -> None:
        self.L, self.chunk = n_layers, chunk
        self.layer: torch.Tensor | None = None  # (L, chunk, 2 + len(LAYER_FIELDS))
        self.root: torch.Tensor | None = None  # (3, chunk): lse, min, max
        self._root_views: tuple[tuple[torch.Tensor, ...], ...] | None = None
        self.scalars: torch.Tensor | None = None  # (S capacity, chunk)
        self.scalar_names: list[str] = []
        self._scalar_row: dict[str, int] = {}
        # 0-d views of every (row, slot) of ``scalars``, and the buffer they view: an index
        # per write costs more than the fill itself in the middle of a step
        self._scalar_views: list[Sequence[torch.Tensor]] = []
        self._views_of: torch.Tensor | None = None
        # per layer: the (min views, max views) of every slot, made once (no view on the hot path)
        self._ext_views: list[tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]] | None] = (
            [None] * n_layers)
        # per field: its (L,) view in every slot, made once (``layer_out``)
        self._field_views: dict[str, Sequence[torch.Tensor]] = {}
        self.dirty = False  # a signal was written into the current slot

    # ---- memory --------------------------------------------------------------------------
    def _layer_buf(self, device: torch.device) -> torch.Tensor:
        if self.layer is None:
            self.layer = torch.full((self.L, self.chunk, 2 + len(LAYER_FIELDS)), _NAN,
                                    device=device)
        return self.layer

    def _root_buf(self, device: torch.device) -> torch.Tensor:
        if self.root is None or self.root.device != device:
            self.root = (torch.full((3, self.chunk), _NAN, device=device) if self.root is None
                         else self.root.to(device))  # restored on the CPU: keep its columns
            self._root_views = tuple(row.unbind(0) for row in self.root)
        return self.root

    # ---- the hot path: one op per layer per recorded batch -------------------------------
    def record_extremes(self, layer: int, slot: int, flat: torch.Tensor) -> None:
        """min and max of a layer's output (NaN/inf propagate) into the slot: one ``aminmax``."""
        torch.aminmax(flat, out=self.extreme_outs(layer, slot, flat.device))

    def extreme_rows(self, layer: int) -> tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]
                                                ] | None:
        """The kept (min, max) per-slot views of a layer (None: not made yet, or remade)."""
        return self._ext_views[layer]

    def extreme_outs(self, layer: int, slot: int, device: torch.device
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The (min, max) out= views of a layer's slot, for ``aminmax`` now or at the batch's
        end (``deferred``)."""
        views = self._ext_views[layer]
        if views is None or views[0][0].device != device:
            if self.layer is not None and self.layer.device != device:
                self.move(device)
            rows = self._layer_buf(device)[layer]
            views = self._ext_views[layer] = (rows[:, 0].unbind(0), rows[:, 1].unbind(0))
        return views[0][slot], views[1][slot]

    def extremes_buf(self, device: torch.device) -> torch.Tensor:
        """The (L, chunk, 2 + fields) layer buffer on ``device``: (min, max) in its first two
        columns (the staged small outputs write theirs at the batch's end)."""
        if self.layer is not None and self.layer.device != device:
            self.move(device)
        return self._layer_buf(device)

    def not_ran(self, layer: int, slot: int) -> None:
        """A layer that did not run in the slot's batch: no extremes (NaN), not stale ones."""
        if self.layer is not None:
            self.layer[layer, slot, :2] = _NAN

    # ---- per optimizer step / per batch --------------------------------------------------
    def write_layers(self, field: str, slot: int, values: torch.Tensor) -> None:
        """(L,) values of ``field`` (one of LAYER_FIELDS) into the slot."""
        if self.layer is not None and self.layer.device != values.device:
            self.move(values.device)  # restored on the CPU: a device-side write, no read-back
        buf = self._layer_buf(values.device)
        buf[:, slot, 2 + LAYER_FIELDS.index(field)].copy_(values, non_blocking=True)
        self.dirty = True

    def layer_out(self, field: str, slot: int, device: torch.device) -> torch.Tensor:
        """The (L,) column of ``field`` (one of LAYER_FIELDS) in ``slot`` on ``device``, to
        write into with ``out=`` (no temporary, no copy; the views are made once)."""
        if self.layer is not None and self.layer.device != device:
            self.move(device)
        views = self._field_views.get(field)
        if views is None:
            col = self._layer_buf(device)[:, :, 2 + LAYER_FIELDS.index(field)]
            views = self._field_views[field] = col.unbind(1)
        self.dirty = True
        return views[slot]

    def record_output(self, slot: int, logits: torch.Tensor) -> None:
        """Mean log-sum-exp and min/max of float32 ``logits`` into the slot: three ops, each
        writing with ``out=`` (each op costs 10-40 us in the middle of a step on a CPU)."""
        self._root_buf(logits.device)
        lse, lo, hi = (v[slot] for v in self._root_views)
        torch.mean(torch.logsumexp(logits, -1), out=lse)
        torch.aminmax(logits, out=(lo, hi))
        self.dirty = True

    def write_scalar(self, name: str, slot: int, value: float | torch.Tensor,
                     device: torch.device) -> None:
        """A named scalar (python number or tensor: kept on the device) into the slot;
        ``device``: where numbers go (a tensor stays on its own device)."""
        if isinstance(value, torch.Tensor):
            device = value.device
        row = self._scalar_row.get(name)
        if row is None:
            row = self._add_scalar(name, device)
        if self.scalars.device != device:  # restored on the CPU, or the run moved: once
            self.scalars = self.scalars.to(device)
        if self._views_of is not self.scalars:  # per-slot views, made once per buffer
            self._views_of = self.scalars
            self._scalar_views = [r.unbind(0) for r in self.scalars]
        dst = self._scalar_views[row][slot]
        if isinstance(value, torch.Tensor):
            # a 1-element tensor; a device copy, not a read (CPU -> GPU copies asynchronously)
            dst.copy_(value.detach().reshape(()), non_blocking=True)
        else:
            dst.fill_(value)  # a fill with the number as argument: no host-device transfer
        self.dirty = True

    def _add_scalar(self, name: str, device: torch.device) -> int:
        row = len(self.scalar_names)
        self.scalar_names.append(name)
        self._scalar_row[name] = row
        dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64
        if self.scalars is None or self.scalars.shape[0] <= row:
            new = torch.full((max(4, 2 * row), self.chunk), _NAN, dtype=dtype, device=device)
            if self.scalars is not None:
                new[: self.scalars.shape[0]] = self.scalars.to(device)
            self.scalars = new
        return row

    def set_scalar_names(self, names: Sequence[str]) -> None:
        """The restored recording's scalar names, in their rows' order (after a resume)."""
        self.scalar_names, self._scalar_row = [], {}
        self.scalars = None
        for name in names:
            self._add_scalar(str(name), torch.device("cpu"))

    def clear_slot(self, slot: int) -> None:
        """Forget what an uncommitted batch wrote into ``slot`` (its slot is reused)."""
        if self.layer is not None:
            self.layer[:, slot, 2:] = _NAN
        if self.root is not None:
            self.root[:, slot] = _NAN
        if self.scalars is not None:
            self.scalars[:, slot] = _NAN
        self.dirty = False

    # ---- flush ---------------------------------------------------------------------------
    def take(self, n: int, extremes: bool, fields: Sequence[str]) -> dict[str, torch.Tensor]:
        """The first ``n`` slots as per-record fields (dim 1 = records), then reset to NaN.

        ``absmax`` (L, n) from the (min, max) pair; ``fields`` the enabled LAYER_FIELDS and
        ROOT_FIELDS ((1, n) each); ``scalars`` (S, n) when any scalar was given.
        """
        out: dict[str, torch.Tensor] = {}
        if self.layer is not None:
            lay = self.layer[:, :n]
            if extremes:
                out["absmax"] = torch.maximum(lay[..., 1], lay[..., 0].neg())
            for i, f in enumerate(LAYER_FIELDS):
                if f in fields:
                    out[f] = lay[..., 2 + i].clone()
            self.layer[:, :, 2:] = _NAN
        if self.root is not None:
            root = self.root[:, :n]
            if "out_lse" in fields:
                out["out_lse"] = root[0:1].clone()
            if "out_absmax" in fields:
                out["out_absmax"] = torch.maximum(root[2:3], root[1:2].neg())
            self.root.fill_(_NAN)
        if self.scalars is not None and self.scalar_names:
            out["scalars"] = self.scalars[: len(self.scalar_names), :n].clone()
            self.scalars.fill_(_NAN)
        self.dirty = False
        return out

    def move(self, device: torch.device) -> None:
        """Move the layer columns to ``device`` keeping their values (a chunk restored from a
        checkpoint on the CPU, then recorded on a GPU); the views are remade."""
        if self.layer is not None:
            self.layer = self.layer.to(device)
        self._ext_views = [None] * self.L
        self._field_views = {}

    # ---- checkpoints (the chunk is saved unflushed, records.RecordStore.state_dict) -------
    def state_dict(self, n: int) -> dict[str, Any]:
        """The first ``n`` slots' columns on the host, and the scalar names."""
        def cut(t: torch.Tensor | None, rows: int | None = None) -> torch.Tensor | None:
            return None if t is None or n == 0 else t[:rows, :n].cpu().clone()
        return {"layer": cut(self.layer), "root": cut(self.root),
                "scalars": cut(self.scalars, len(self.scalar_names)),
                "scalar_names": list(self.scalar_names)}

    def load_state_dict(self, state: dict[str, Any], n: int) -> None:
        """Restore ``state_dict()`` into fresh CPU columns (moved on the next write)."""
        self.layer = self.root = self._root_views = None
        self._ext_views = [None] * self.L
        self._field_views = {}
        self.set_scalar_names(state.get("scalar_names", []))
        cpu = torch.device("cpu")
        if state.get("layer") is not None:
            self._layer_buf(cpu)[:, :n] = state["layer"]
        if state.get("root") is not None:
            self._root_buf(cpu)[:, :n] = state["root"]
        if state.get("scalars") is not None and self.scalars is not None:
            self.scalars[: state["scalars"].shape[0], :n] = state["scalars"].to(self.scalars.dtype)
        self.dirty = False

    def drop(self) -> None:
        """Forget the device buffers (remade on the next write, on its device)."""
        self.layer = self.root = self._root_views = None
        if self.scalars is not None:
            self.scalars = None
            names, self.scalar_names = self.scalar_names, []
            self._scalar_row = {}
            for name in names:
                self._add_scalar(name, torch.device("cpu"))
        self._ext_views = [None] * self.L
        self._field_views = {}
