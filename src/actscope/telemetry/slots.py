"""SampleSlots: the chunk's device memory that the hooks write into, and the hot path itself.

Per recorded batch and layer the hook writes with ``out=`` into views of one slot, made once per
fit (one ``unbind`` per buffer): K samples, the sum and the sum of squares (in the ``slab``), and
a column max over the batch dims (``channels.ChannelMaxima``). In the middle of a real forward
every op costs 10-40 us on a CPU (cold caches), so the hot path is as few ops as possible: four,
plus the fold of a large column max. Nothing here reads a device value back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from actscope.telemetry.channels import ChannelMaxima
from actscope.telemetry.deferred import DEFER_MAX, DeferredReductions
from actscope.telemetry.layer_state import FastRecord, LayerState, PlannedRecord
from actscope.telemetry.modules import channel_dim
from actscope.telemetry.repeat_runs import RepeatRuns
from actscope.telemetry.settings import TelemetrySettings
from actscope.telemetry.staged_columns import StagedColumns
from actscope.telemetry.staging import StagedOutputs

__all__ = ["SampleSlots"]

# Per layer: the out= views of every slot: (samples, sum, sum of squares, column max or None).
Views = tuple[Sequence[torch.Tensor], ...]


class SampleSlots:
    """The chunk of recorded batches on the device: samples and sums per (layer, slot)."""

    def __init__(self, n_layers: int, settings: TelemetrySettings,
                 channels: ChannelMaxima) -> None:
        self.L, self.settings, self.channels = n_layers, settings, channels
        self.slab: torch.Tensor | None = None  # (L, chunk, K + 2): samples, sum, sum of squares
        self.gsums: torch.Tensor | None = None  # (L, chunk, 2): the output gradient's sums
        # a checkpoint's unflushed chunk (host), moved to the device by the first forward
        self.restored: torch.Tensor | None = None
        self.counts: list[list[int | None]] = self.no_counts()
        self.gcounts: list[list[int | None]] = self.no_counts()
        # made on first use and kept: the hot path then makes no view of its own
        self.views: list[Views | None] = [None] * n_layers
        self.ran = [False] * n_layers  # which layers wrote in this batch
        self.gran = [False] * n_layers  # ... and got an output gradient (record_grad)
        self.ever = [False] * n_layers  # which layers have recorded at least once
        self.slot, self.step, self.wrote = 0, 0, False
        self.staged = StagedOutputs(n_layers, settings.k)  # small outputs, reduced at commit
        # replaced whenever device memory is dropped: a LayerState.fast made before is stale
        self.layout = object()
        # staged layers whose column max is taken at commit: layer -> (stage, shape, state)
        self.chan_pending: dict[int, tuple[Any, torch.Size, LayerState]] = {}
        self.columns = StagedColumns()  # their batched reduction, its plan kept across batches
        self.deferred = DeferredReductions()  # CPU outputs reduced at commit (deferred.py)
        self.repeats = RepeatRuns()  # a module's later runs in a batch (repeat_runs.py)

    def no_counts(self) -> list[list[int | None]]:
        """Per layer and slot, the element count of the output written there (None: none)."""
        return [[None] * self.settings.chunk for _ in range(self.L)]

    # ---- device memory -------------------------------------------------------------------
    def adopt(self, old: SampleSlots) -> None:
        """Take over the device memory of a previous recording (a new ``fit``).

        Made per fit, the slab, the column buffers and their thousands of ``out=`` views cost
        ~5 ms (allocation, page faults, ``unbind``): 1% of a short epoch. Only memory moves
        over; the contents need no reset (every slot a flush reads is rewritten) except the
        column maxima, refilled by ``ChannelMaxima.adopt``.
        """
        self.slab, self.gsums, self.views = old.slab, old.gsums, old.views
        self.channels.adopt(old.channels)
        if self.gsums is not None:  # a slot without a backward must read as NaN
            self.gsums.fill_(float("nan"))
        old.slab, old.gsums, old.views = None, None, [None] * old.L  # no longer the old's

    def drop(self) -> None:
        """Forget all device buffers (they are remade on the next forward, on its device)."""
        self.slab, self.gsums, self.views = None, None, [None] * self.L
        self.deferred.clear()
        self.channels.drop()
        self.staged.drop()
        self.layout = object()

    # ---- per batch -----------------------------------------------------------------------
    def begin(self, step: int) -> None:
        """A recorded batch starts: its records go into the current slot."""
        self.step, self.wrote = step, False
        self.ran = [False] * self.L
        self.gran = [False] * self.L  # which layers got an output gradient in this batch
        self.staged.clear()
        self.deferred.clear()  # a batch that never committed: its outputs are not this one's
        self.repeats.clear()
        self.chan_pending.clear()

    def record_fast(self, st: LayerState, t: torch.Tensor, stage_max: int) -> bool:
        """A staged layer's output of the shape, dtype and device of its last one, written once
        in this batch: one ``copy_`` into its staging row (and its column max noted for the
        commit). False, writing nothing, where that does not hold: then ``record``.

        Everything ``record`` checks per output is settled by that last one (channel layout,
        views, stage, sample positions): ~5 us less per layer and batch on a CPU."""
        fast = st.fast
        layer = st.layer
        if (fast is None or fast.layout is not self.layout or t.shape != fast.shape
                or t.dtype is not fast.dtype or t.get_device() != fast.device
                or fast.n > stage_max or self.ran[layer]):
            return False
        fast.row.copy_(t.detach())  # a copy: the output may change in place after the hook
        fast.stage.layers.append(layer)
        if fast.pending is not None and not self.channels.all_fired[layer]:
            self.chan_pending[layer] = fast.pending
        self.counts[layer][self.slot] = fast.n
        self.ran[layer] = self.wrote = self.ever[layer] = True
        return True

    def record_planned(self, st: LayerState, plan: PlannedRecord, t: torch.Tensor,
                       ext: Any) -> bool:
        """A deferring layer's float32 CPU output of its plan's shape, written once in this
        batch: kept for ``deferred.run`` with its column max if one is due (no op now). False,
        doing nothing, where that does not hold: then ``record``. ``ext``: the layer's
        extremes rows now (``SignalSlots.extreme_rows``), which must still be the plan's."""
        layer = st.layer
        if (self.ran[layer] or t.dtype is not torch.float32 or not t.is_cpu
                or t.shape != plan.shape or self.views[layer] is not plan.views
                or ext is not plan.ext):
            return False
        x = t.detach()
        flat = x.reshape(-1)
        slot, v, ch = self.slot, plan.views, self.channels
        chan = None
        if st.n_chan and not ch.all_fired[layer]:
            if v[3] is None:
                return False
            # a large map folds into its running max at once (col is reused per slot)
            chan = (x, st.red_dims, v[3][slot],
                    ch.col_run[layer] if ch.col_slot[layer] is None else None)
        self.deferred.add(st, flat, plan.idx, (v[0][slot], v[1][slot], v[2][slot]),
                          None if ext is None else (ext[0][slot], ext[1][slot]), chan)
        self.counts[layer][slot] = plan.n
        self.ran[layer] = self.wrote = self.ever[layer] = True
        return True

    def record(self, st: LayerState, x: torch.Tensor, flat: torch.Tensor, idx: torch.Tensor,
               n: int, stage: bool = False, t: torch.Tensor | None = None,
               ext: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """The hot path: samples, sum, sum of squares, column max of one module's output.

        ``stage`` (the accumulator's choice for a small output, ``staging.STAGE_MAX``): copy it
        into its staging row instead, reduced with the other small ones by ``flush_staged``;
        ``t`` (the output as the module returned it) then sets up ``record_fast``. ``ext``:
        the (min, max) outs of ``SignalSlots.extreme_outs`` (an unstaged output's extremes).
        On a CPU the reductions of a layer that nothing changes in place wait for the batch's
        end (``deferred``)."""
        layer, slot, ch = st.layer, self.slot, self.channels
        repeat = self.ran[layer]  # a later run in this batch: folded into the record
        if not repeat:  # (a repeat leaves the first run's fast path to the next batch)
            st.fast = None
        if repeat and self.deferred.entries:  # the first run's values (and column max) now
            self.deferred.run(self.ran)
            repeat = self.ran[layer]  # False: the first run's output changed in place, lost
        if repeat:
            stage = False  # its first run may sit in the staging row: reduced on its own
        if st.chan_ndim != x.ndim:
            self._channel_setup(st, x)
        views = self.views[layer]
        if views is None or (st.n_chan and (
                views[3] is None or views[3][0].shape != x.shape[st.keep:])):
            views = self._layer_views(st, x, flat.device)
        chan = st.n_chan and not ch.all_fired[layer]
        if chan and self.ran[layer]:  # a second run in this batch: keep the first one's max
            if layer in self.chan_pending:  # the first run's column max, now
                self._pending_column_max(layer, views[3][slot])
            ch.fold_slot(layer, slot)
        if stage:  # one op now; the reductions once per batch for all small layers
            stage = st.stage
            if stage is None or stage.owner is not self.staged or stage.n != n or (
                    stage.device != flat.device):
                stage = st.stage = self.staged.stage_for(n, idx)
            stage.rows[layer].copy_(flat)
            stage.layers.append(layer)
        elif repeat:  # sums, min and max added at commit; the samples stay the first run's
            self.repeats.add(layer, self.L, flat)
        else:
            outs = (views[0][slot], views[1][slot], views[2][slot])
            if st.defer and n <= DEFER_MAX and flat.is_cpu:  # at the batch's end
                self.deferred.add(st, flat, idx, outs, ext)
            else:
                torch.index_select(flat, 0, idx, out=outs[0])
                torch.sum(flat, 0, out=outs[1])
                torch.dot(flat, flat, out=outs[2])
                if ext is not None:
                    torch.aminmax(flat, out=ext)
                if st.defer is None and n <= DEFER_MAX and flat.is_cpu:
                    self.deferred.probe(st, flat)
        if chan and stage and ch.col_slot[layer] is not None:  # taken at commit, batched
            self.chan_pending[layer] = (st.stage, x.shape, st)
        elif chan:
            col = views[3][slot]
            # over the batch (and sequence) dims: contiguous rows, a vectorised column max
            torch.amax(x, st.red_dims, out=col)
            run = ch.col_run[layer]
            if ch.col_slot[layer] is None:  # a large map: fold now (col is reused per slot)
                torch.maximum(run, col.view(-1), out=run)
        self.counts[layer][slot] = n + (self.counts[layer][slot] or 0 if repeat else 0)
        self.ran[layer] = self.wrote = self.ever[layer] = True
        if stage and t is not None and (not st.n_chan or ch.col_slot[layer] is not None):
            st.fast = FastRecord(t.shape, t.dtype, t.get_device(), stage.rows[layer].view(t.shape),
                                 stage, (stage, x.shape, st) if st.n_chan else None, n,
                                 self.layout)

    def flush_staged(self, extremes: torch.Tensor | None) -> None:
        """The batch's deferred and staged outputs into the current slot (before
        ``RecordStore.commit``); ``extremes`` the signal slots' (L, chunk, >= 2) buffer, or
        None."""
        self.deferred.run(self.ran)
        if self.slab is not None:
            if self.chan_pending:
                self.columns.reduce(self.chan_pending, self.views, self.slot, self.L,
                                    self.layout)
                self.chan_pending.clear()
            self.staged.flush(self.slab, self.slot, extremes)
            self.repeats.fold(self.views, self.slot, extremes, self.L)

    def _pending_column_max(self, layer: int, col: torch.Tensor) -> None:
        """One staged layer's column max into ``col`` (its first run, before a second)."""
        stage, shape, st = self.chan_pending.pop(layer)
        if col.shape == shape[st.keep:]:
            torch.amax(stage.rows[layer].view(shape), st.red_dims, out=col)

    def record_grad(self, layer: int, g: torch.Tensor) -> None:
        """The output gradient's sum and sum of squares, into the current slot."""
        if self.gsums is None:
            self.gsums = torch.full((self.L, self.settings.chunk, 2), float("nan"),
                                    device=g.device)
        elif self.gsums.device != g.device:  # restored from a checkpoint
            self.gsums = self.gsums.to(g.device)
        row = self.gsums[layer, self.slot]
        if self.gran[layer]:  # a module run more than once: its gradients add up too
            row += torch.stack((g.sum(), torch.dot(g, g)))
            self.gcounts[layer][self.slot] = (self.gcounts[layer][self.slot] or 0) + g.shape[0]
            return
        self.gran[layer] = True
        torch.sum(g, 0, out=row[0])
        torch.dot(g, g, out=row[1])
        self.gcounts[layer][self.slot] = g.shape[0]

    # ---- layout, on a layer's first output (or a new shape) --------------------------------
    def _channel_setup(self, st: LayerState, x: torch.Tensor) -> None:
        """Which dim holds the channels of this output (``st.n_chan`` 0: not recorded)."""
        st.chan_ndim, st.n_chan = x.ndim, 0
        ch = self.channels
        if self.slab is not None and self.slab.device != x.device and not ch.ep_seen:
            self.drop()  # adopted from a fit on another device
        if self.settings.channels and x.ndim >= 2:
            d = channel_dim(st.module, x.ndim)
            if ch.width(st.layer, x.shape[d]):
                st.n_chan = x.shape[d]
                st.keep = 1 if d == 1 else x.ndim - 1  # one column max's dims: x.shape[keep:]
                st.red_dims = tuple(range(st.keep))
        if ch.adopted[st.layer]:
            self._fit_adopted(st, x)

    def _fit_adopted(self, st: LayerState, x: torch.Tensor) -> None:
        """Keep a layer's adopted column buffers only if they fit this output's column shape."""
        layer = st.layer
        self.channels.adopted[layer] = False
        views = self.views[layer]
        if views is not None and views[3] is not None and (
                not st.n_chan or views[3][0].shape != x.shape[st.keep:]):
            self.channels.drop_layer(layer)
            self.views[layer] = (*views[:3], None)

    def _layer_views(self, st: LayerState, x: torch.Tensor, device: torch.device) -> Views:
        """The out= views of every slot of this layer (made with one ``unbind`` each, in C++),
        after sizing the column buffers for this output's shape."""
        layer, k = st.layer, self.settings.k
        if self.slab is None and self.restored is not None:  # a checkpoint's chunk continues
            self.slab, self.restored = self.restored.to(device), None
        if self.slab is None:
            self.slab = torch.full((self.L, self.settings.chunk, k + 2), float("nan"),
                                   device=device)
        cols = (self.channels.column_views(layer, x.shape[st.keep:], device) if st.n_chan
                else None)
        old = self.views[layer]
        if old is not None:  # the slot views of the slab stay valid: only the columns changed
            views = (*old[:3], cols)
        else:
            rows = self.slab[layer]
            views = (rows[:, :k].unbind(0), rows[:, k].unbind(0), rows[:, k + 1].unbind(0), cols)
        self.views[layer] = views
        return views
