"""ChannelMaxima: per-channel maxima over an epoch, the dead-unit record by channel.

Per layer, the hot path writes one column max over the batch dims per recorded batch (``D``
positions of one sample: ``C*H*W`` for a conv, ``F`` for a Linear or a transformer block): kept
per slot of the chunk (``col_slot``, folded at the flush) or, for large maps, written into
``col_cur`` and folded at once into the epoch's running column max ``col_run``. At the epoch's
end the columns are reduced to channels and each channel is marked dead (never reached
``dead_threshold``) or not. On a CPU a layer whose every channel has fired is skipped until the
epoch ends (``all_fired``): reading that flag costs nothing there, on a GPU it would be a sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from actscope.telemetry.settings import TelemetrySettings

__all__ = ["ChannelMaxima", "SLOT_COLUMNS_MAX_BYTES", "can_read_flags"]

# A layer keeps one column max per recorded batch of the chunk (reduced at the flush) while that
# costs at most this many bytes; above it (large conv maps) the hook folds into a running max.
SLOT_COLUMNS_MAX_BYTES = 4 << 20


def can_read_flags(device: torch.device) -> bool:
    """Whether reading a device flag costs nothing: on a CPU it does not wait for anything."""
    return device.type == "cpu"


def _per_channel(col: torch.Tensor, width: int) -> torch.Tensor:
    """A column max ``(width * positions,)`` reduced to ``(width,)`` channels."""
    return col.view(width, -1).amax(dim=1)


class ChannelMaxima:
    """The column and per-channel maxima of every layer, and the closed epochs' dead flags."""

    def __init__(self, n_layers: int, settings: TelemetrySettings) -> None:
        self.L, self.settings = n_layers, settings
        # Per layer: col_slot (chunk, D) one column max per batch of the chunk, or None when
        # that is too big, then col_cur (D,) is written and folded at once; col_run (D,) the
        # epoch's column max; ep_max (C,) channels folded from an earlier column shape or
        # restored from a checkpoint.
        self.col_slot: list[torch.Tensor | None] = [None] * n_layers
        self.col_cur: list[torch.Tensor | None] = [None] * n_layers
        self.col_run: list[torch.Tensor | None] = [None] * n_layers
        self.ep_max: list[torch.Tensor | None] = [None] * n_layers
        self.widths = [0] * n_layers  # channels per layer (0: not seen yet)
        # all_fired[l]: every channel of layer l has fired in this epoch, so no later batch can
        # change its record and the hook skips the column max until the epoch ends.
        self.all_fired = [False] * n_layers
        self.adopted = [False] * n_layers  # column buffers taken over from an earlier fit
        self.ep_batches = 0  # recorded batches in this epoch
        self.ep_seen = False
        self.next_epoch = 0  # the label of the epoch being recorded (one past the last closed)
        self.epochs: list[tuple[int, torch.Tensor]] = []  # (epoch, (L, Cmax) dead flags)

    # ---- device memory -------------------------------------------------------------------
    def adopt(self, old: ChannelMaxima) -> None:
        """Take over ``old``'s column buffers (refilled), not its maxima or records."""
        self.col_slot, self.col_cur, self.col_run = old.col_slot, old.col_cur, old.col_run
        self.adopted = [True] * self.L  # checked against each layer's first output
        for col in (*self.col_slot, *self.col_run):
            if col is not None:
                col.fill_(float("-inf"))
        old.col_slot, old.col_cur, old.col_run = [None] * old.L, [None] * old.L, [None] * old.L

    def drop(self) -> None:
        """Forget the column buffers (remade on the next forward, on its device)."""
        self.col_slot, self.col_cur = [None] * self.L, [None] * self.L
        self.col_run, self.adopted = [None] * self.L, [False] * self.L

    def drop_layer(self, layer: int) -> None:
        """Forget one layer's column buffers (an adopted shape that does not fit)."""
        self.col_slot[layer] = self.col_cur[layer] = self.col_run[layer] = None

    def width(self, layer: int, channels: int) -> bool:
        """Note ``layer``'s channel count on first sight; False if it changed since (a layer
        whose channel count changes between batches is not recorded per channel)."""
        if self.widths[layer] == 0:
            self.widths[layer] = channels
        return self.widths[layer] == channels

    def column_views(self, layer: int, shape: torch.Size, device: torch.device
                     ) -> Sequence[torch.Tensor]:
        """Per slot, the ``out=`` tensor of this layer's column max for outputs of ``shape``."""
        if self.col_run[layer] is None or self.col_run[layer].numel() != shape.numel():
            self._new_columns(layer, shape.numel(), device)
        cs, cur = self.col_slot[layer], self.col_cur[layer]
        return (cs.view(-1, *shape).unbind(0) if cs is not None
                else [cur.view(shape)] * self.settings.chunk)

    def _new_columns(self, layer: int, n_cols: int, device: torch.device) -> None:
        """Column buffers for ``n_cols`` positions; what the old ones held goes to ``ep_max``."""
        chunk = self.settings.chunk
        self.fold_columns(layer, chunk)  # every slot: unwritten ones hold -inf
        run = self.col_run[layer]
        if run is not None:
            m = _per_channel(run, self.widths[layer])
            prev = self.ep_max[layer]
            self.ep_max[layer] = m if prev is None else torch.maximum(prev.to(m.device), m)
        per_slot = chunk * n_cols * 4 <= SLOT_COLUMNS_MAX_BYTES
        self.col_slot[layer] = (torch.full((chunk, n_cols), float("-inf"), device=device)
                                if per_slot else None)
        self.col_cur[layer] = None if per_slot else torch.empty(n_cols, device=device)
        self.col_run[layer] = torch.full((n_cols,), float("-inf"), device=device)

    # ---- folding -------------------------------------------------------------------------
    def fold_slot(self, layer: int, slot: int) -> None:
        """Fold one slot's column max into the epoch's (before a second run overwrites it)."""
        cs, run = self.col_slot[layer], self.col_run[layer]
        if cs is not None and run is not None:  # made together, same size (_new_columns)
            torch.maximum(run, cs[slot], out=run)

    def fold_columns(self, layer: int, n: int) -> None:
        """Fold the first ``n`` slots' column maxima into the epoch's and clear the slots."""
        cs, run = self.col_slot[layer], self.col_run[layer]
        if cs is None or run is None or n == 0:
            return
        torch.maximum(run, cs[:n].amax(dim=0), out=run)
        cs.fill_(float("-inf"))

    def check_all_fired(self, n_slots: int, device: torch.device | None) -> None:
        """On CPU, mark the layers whose every channel has fired in this epoch (all_fired)."""
        if device is None or not can_read_flags(device) or all(self.all_fired):
            return
        for layer in range(self.L):
            if self.all_fired[layer]:  # settled for this epoch: nothing to fold or compare
                continue
            self.fold_columns(layer, n_slots)
            m = self.layer_max(layer)
            if m is not None:
                self.all_fired[layer] = bool((m >= self.settings.dead_threshold).all())

    def layer_max(self, layer: int) -> torch.Tensor | None:
        """One layer's per-channel max so far in the epoch (its slots already folded), or None."""
        prev, run = self.ep_max[layer], self.col_run[layer]
        # width 0: the layer has not run since the attach (its buffers may be adopted ones)
        m = None if run is None or not self.widths[layer] else _per_channel(
            run, self.widths[layer])
        if prev is not None:
            m = prev if m is None else torch.maximum(prev.to(m.device), m)
        return m

    def maxima(self, n_slots: int) -> list[torch.Tensor | None]:
        """Per layer, the epoch's per-channel max so far ((C,), -inf: never ran), or None."""
        for layer in range(self.L):
            self.fold_columns(layer, n_slots)
        return [self.layer_max(layer) for layer in range(self.L)]

    # ---- epochs --------------------------------------------------------------------------
    def dead_rows(self, n_slots: int) -> torch.Tensor | None:
        """(L, Cmax) of this epoch so far: 1 never fired, 0 fired, NaN padding/not run."""
        maxima = self.maxima(n_slots)
        cmax = max((m.shape[0] for m in maxima if m is not None), default=0)
        if cmax == 0:
            return None
        dev = next(m for m in maxima if m is not None).device
        out = torch.full((self.L, cmax), float("nan"), device=dev)
        for i, m in enumerate(maxima):
            if m is not None:
                ran = m > float("-inf")  # -inf: the channel's layer never ran
                fired = (m >= self.settings.dead_threshold).float()
                out[i, : m.shape[0]] = torch.where(ran, 1.0 - fired, float("nan"))
        return out

    def end_epoch(self, epoch: int) -> None:
        """Close the epoch's record (if anything was recorded in it); the next starts empty.
        The chunk must have been flushed (no slot left to fold)."""
        self.next_epoch = epoch + 1
        if not self.ep_seen:
            return
        row = self.dead_rows(0)
        if row is not None:
            self.epochs.append((epoch, row))
        self.ep_max = [None] * self.L
        for col in self.col_run:
            if col is not None:
                col.fill_(float("-inf"))
        self.all_fired, self.ep_batches = [False] * self.L, 0
        self.ep_seen = False

    def all_epochs(self, n_slots: int) -> list[tuple[int, torch.Tensor]]:
        """The closed epochs' rows and, if open, the current epoch's so far (a cancelled fit,
        a loop without end_epoch)."""
        epochs = list(self.epochs)
        if self.ep_seen:
            row = self.dead_rows(n_slots)
            if row is not None:
                epochs.append((max(self.next_epoch, epochs[-1][0] + 1 if epochs else 0), row))
        return epochs

    # ---- checkpoints ---------------------------------------------------------------------
    def state_dict(self, n_slots: int) -> dict[str, Any]:
        """The per-channel state on the host."""
        return {"epochs": [(e, r.cpu()) for e, r in self.epochs],
                "ep_max": [m.cpu() if m is not None else None for m in self.maxima(n_slots)],
                "ep_seen": self.ep_seen, "widths": list(self.widths),
                "next_epoch": self.next_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``; the column buffers are remade on the next forward."""
        self.epochs = [(int(e), r.clone()) for e, r in state.get("epochs", [])]
        saved = state.get("ep_max") or [None] * self.L
        self.ep_max = [m.clone() if m is not None else None for m in saved]
        self.all_fired, self.ep_batches = [False] * self.L, 0
        self.col_slot, self.col_cur = [None] * self.L, [None] * self.L
        self.col_run = [None] * self.L
        self.ep_seen = bool(state.get("ep_seen", False))
        self.next_epoch = int(state.get("next_epoch", self.epochs[-1][0] + 1 if self.epochs else 0))
        self.widths = list(state.get("widths", self.widths))
