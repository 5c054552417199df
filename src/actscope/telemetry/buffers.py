"""RecordBuffers: the accumulator's device memory: the chunk of recorded batches, the records.

Per recorded batch and layer the hooks write with ``out=`` into views of one slot, made once per
fit (one ``unbind`` per buffer): K samples, the sum and sum of squares (in the ``slab``), and a
column max over the batch dims (one sample's positions: ``C*H*W`` for a conv, ``F`` for a Linear
or a transformer block), kept per slot or, for large maps, folded into a running max in the hook.
In the middle of a real forward every op costs 10-40 us on a CPU (cold caches), so the hot path is
as few ops as possible and ``commit`` makes none. A flush turns the chunk into records (mean, std,
histograms with overflow counts, dead share, mad) for all layers at once and folds the column
maxima into the epoch's; per-channel maxima are reduced from them once per epoch. Everything
stays on the device until ``result`` (on a CPU, ``commit`` reads one flag now and then: the
all-channels-fired skip).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from actscope.telemetry import stats
from actscope.telemetry.modules import channel_dim
from actscope.telemetry.record import Telemetry

if TYPE_CHECKING:
    from actscope.telemetry.accumulator import TelemetryAccumulator
    from actscope.telemetry.hooks import Hook

__all__ = ["RecordBuffers"]


def _grow(buf: torch.Tensor, need: int) -> torch.Tensor:
    """``buf`` with room for ``need`` records along dim 1, doubling (device-side copy only)."""
    if need <= buf.shape[1]:
        return buf
    new = buf.new_zeros((buf.shape[0], max(need, 2 * buf.shape[1]), *buf.shape[2:]))
    new[:, : buf.shape[1]] = buf
    return new


def can_read_flags(device: torch.device) -> bool:
    """Whether reading a device flag costs nothing: on a CPU it does not wait for anything."""
    return device.type == "cpu"


def _per_channel(col: torch.Tensor, width: int) -> torch.Tensor:
    """A column max ``(width * positions,)`` reduced to ``(width,)`` channels."""
    return col.view(width, -1).amax(dim=1)


# A layer keeps one column max per recorded batch of the chunk (reduced at the flush) while that
# costs at most this many bytes; above it (large conv maps) the hook folds into a running max.
SLOT_COLUMNS_MAX_BYTES = 4 << 20


class RecordBuffers:
    """The chunk of recorded batches, the records, the per-channel maxima."""

    def __init__(self, n_layers: int, acc: TelemetryAccumulator,
                 reuse: RecordBuffers | None = None) -> None:
        self.L, self.acc = n_layers, acc
        self.slab: torch.Tensor | None = None  # (L, chunk, K + 2): samples, sum, sum of squares
        self.gsums: torch.Tensor | None = None
        self.counts: list[list[int | None]] = [[None] * acc.chunk for _ in range(n_layers)]
        self.gcounts: list[list[int | None]] = [[None] * acc.chunk for _ in range(n_layers)]
        # Per layer, the out= views of every slot: (samples, sum, sum of squares, column max),
        # made on first use and kept: the hot path then makes no view of its own.
        self.views: list[tuple[Sequence[torch.Tensor], ...] | None] = [None] * n_layers
        self.ran = [False] * n_layers  # which layers wrote in this batch
        # Per channel, per layer: col_slot (chunk, D) one column max per batch of the chunk, or
        # None when that is too big, then col_cur (D,) is written and folded at once; col_run
        # (D,) the epoch's column max; ep_max (C,) channels folded from an earlier column shape
        # or restored from a checkpoint. D = one sample's positions (C*H*W, or F).
        self.col_slot: list[torch.Tensor | None] = [None] * n_layers
        self.col_cur: list[torch.Tensor | None] = [None] * n_layers
        self.col_run: list[torch.Tensor | None] = [None] * n_layers
        self.ep_max: list[torch.Tensor | None] = [None] * n_layers
        self.widths = [0] * n_layers  # channels per layer (0: not seen yet)
        # all_fired[l]: every channel of layer l has fired in this epoch, so no later batch can
        # change its dead-unit record and the hook skips the column max until the epoch ends.
        # Checked on CPU only (reading the flag on a GPU would be a host sync).
        self.all_fired = [False] * n_layers
        self.ep_batches = 0  # recorded batches in this epoch
        self.ep_seen = False
        self.next_epoch = 0  # the label of the epoch being recorded (one past the last closed)
        self.ever = [False] * n_layers  # which layers have recorded at least once
        self.epochs: list[tuple[int, torch.Tensor]] = []  # (epoch, (L, Cmax) dead flags)
        self.slot, self.n, self.step, self.wrote = 0, 0, 0, False
        self.iters: list[int] = []
        # Host-side, no device op: record index -> which layers ran, for records where not all
        # did (a layer skipped by stochastic depth, a branch not taken, a module in eval mode).
        self.partial: dict[int, list[bool]] = {}
        self.bufs: dict[str, torch.Tensor] = {}
        self.lo: torch.Tensor | None = None
        self.hi: torch.Tensor | None = None
        self.has_range = [False] * n_layers  # the layer's range is fixed (see _fix_range)
        self.cached: Telemetry | None = None
        self.scratch = stats.Scratch()  # the flush's temporaries, kept between flushes
        self.adopted = [False] * n_layers  # column buffers taken over from an earlier fit
        if reuse is not None and reuse.L == n_layers and reuse.acc is acc:
            self._adopt_memory(reuse)

    def _adopt_memory(self, old: RecordBuffers) -> None:
        """Take over the device memory of the accumulator's previous recording (a new ``fit``).

        Made per fit, the slab, the column buffers and their thousands of ``out=`` views cost
        ~5 ms (allocation, page faults, ``unbind``): 1% of a short epoch. Only memory moves
        over: no record, range or per-channel state; the contents need no reset (every slot
        a flush reads is rewritten, see ``flush``) except the column maxima, refilled here.
        ``_channel_setup`` drops it all if the model has moved to another device.
        """
        self.slab, self.gsums, self.views = old.slab, old.gsums, old.views
        self.col_slot, self.col_cur, self.col_run = old.col_slot, old.col_cur, old.col_run
        self.scratch = old.scratch
        self.adopted = [True] * self.L  # checked against each layer's first output
        for col in (*self.col_slot, *self.col_run):
            if col is not None:
                col.fill_(float("-inf"))
        if self.gsums is not None:  # a slot without a backward must read as NaN
            self.gsums.fill_(float("nan"))
        old.slab, old.gsums, old.views = None, None, [None] * old.L  # no longer the old's
        old.col_slot, old.col_cur, old.col_run = [None] * old.L, [None] * old.L, [None] * old.L

    def _fit_adopted(self, hook: Hook, x: torch.Tensor) -> None:
        """Keep a layer's adopted column buffers only if they fit this output's column shape."""
        layer = hook.layer
        self.adopted[layer] = False
        views = self.views[layer]
        if views is not None and views[3] is not None and (
                not hook.n_chan or views[3][0].shape != x.shape[hook.keep:]):
            self.col_slot[layer] = self.col_cur[layer] = self.col_run[layer] = None
            self.views[layer] = (*views[:3], None)

    def _drop_device_memory(self) -> None:
        """Forget all device buffers (they are remade on the next forward, on its device)."""
        self.slab, self.gsums, self.views = None, None, [None] * self.L
        self.col_slot, self.col_cur = [None] * self.L, [None] * self.L
        self.col_run, self.adopted = [None] * self.L, [False] * self.L

    def ever_ran(self, layer: int) -> bool:
        """Whether ``layer`` recorded at least once since the attach (or the restored state)."""
        return self.ever[layer]

    @property
    def n_records(self) -> int:
        """Committed records (flushed or still in the chunk)."""
        return len(self.iters)

    # ---- per batch -----------------------------------------------------------------------
    def begin(self, step: int) -> None:
        """A recorded batch starts: its records go into the current slot."""
        self.step, self.wrote = step, False
        self.ran = [False] * self.L

    def record(self, hook: Hook, x: torch.Tensor, flat: torch.Tensor, idx: torch.Tensor,
               n: int) -> None:
        """The hot path: samples, sum, sum of squares, column max of one module's output.

        In the middle of a real forward every op costs 10-40 us on a CPU (the caches are cold
        after the model's own kernels), so this is as few ops as possible: four, plus the
        fold of a large column max.
        """
        layer, slot = hook.layer, self.slot
        if hook.chan_ndim != x.ndim:
            self._channel_setup(hook, x)
        views = self.views[layer]
        if views is None or (hook.n_chan and (
                views[3] is None or views[3][0].shape != x.shape[hook.keep:])):
            views = self._layer_views(hook, x, flat.device)
        chan = hook.n_chan and not self.all_fired[layer]
        if chan and self.ran[layer]:  # a second run in this batch: keep the first one's max
            self._fold_slot(layer, slot)
        torch.index_select(flat, 0, idx, out=views[0][slot])
        torch.sum(flat, 0, out=views[1][slot])
        torch.dot(flat, flat, out=views[2][slot])
        if chan:
            col = views[3][slot]
            # over the batch (and sequence) dims: contiguous rows, a vectorised column max
            torch.amax(x, hook.red_dims, out=col)
            run = self.col_run[layer]
            if self.col_slot[layer] is None:  # a large map: fold now (col is reused per slot)
                torch.maximum(run, col.view(-1), out=run)
        self.counts[layer][slot] = n
        self.ran[layer] = self.wrote = self.ever[layer] = True

    def _channel_setup(self, hook: Hook, x: torch.Tensor) -> None:
        """Which dim holds the channels of this output (``hook.n_chan`` 0: not recorded)."""
        hook.chan_ndim, hook.n_chan = x.ndim, 0
        if self.slab is not None and self.slab.device != x.device and not self.ep_seen:
            self._drop_device_memory()  # adopted from a fit on another device
        if self.acc.want_channels and x.ndim >= 2:
            d = channel_dim(hook.module, x.ndim)
            c, layer = x.shape[d], hook.layer
            if self.widths[layer] == 0:
                self.widths[layer] = c
            # a module whose channel count changes between batches is not recorded per channel
            if self.widths[layer] == c:
                hook.n_chan = c
                hook.keep = 1 if d == 1 else x.ndim - 1  # one column max's dims: x.shape[keep:]
                hook.red_dims = tuple(range(hook.keep))
        if self.adopted[hook.layer]:
            self._fit_adopted(hook, x)

    def _layer_views(self, hook: Hook, x: torch.Tensor, device: torch.device
                     ) -> tuple[Sequence[torch.Tensor], ...]:
        """The out= views of every slot of this layer (made with one ``unbind`` each, in C++),
        after sizing the column buffers for this output's shape."""
        layer, k = hook.layer, self.acc.k
        if self.slab is None:
            self.slab = torch.full((self.L, self.acc.chunk, k + 2), float("nan"), device=device)
        cols: Sequence[torch.Tensor] | None = None
        if hook.n_chan:
            shape = x.shape[hook.keep:]
            if self.col_run[layer] is None or self.col_run[layer].numel() != shape.numel():
                self._new_columns(layer, shape.numel(), device)
            cs, cur = self.col_slot[layer], self.col_cur[layer]
            cols = (cs.view(-1, *shape).unbind(0) if cs is not None
                    else [cur.view(shape)] * self.acc.chunk)
        old = self.views[layer]
        if old is not None:  # the slot views of the slab stay valid: only the columns changed
            views = (*old[:3], cols)
        else:
            rows = self.slab[layer]
            views = (rows[:, :k].unbind(0), rows[:, k].unbind(0), rows[:, k + 1].unbind(0), cols)
        self.views[layer] = views
        return views

    def _fold_slot(self, layer: int, slot: int) -> None:
        """Fold one slot's column max into the epoch's (before a second run overwrites it)."""
        cs, run = self.col_slot[layer], self.col_run[layer]
        if cs is not None and run is not None:  # made together, same size (_new_columns)
            torch.maximum(run, cs[slot], out=run)

    def _new_columns(self, layer: int, n_cols: int, device: torch.device) -> None:
        """Column buffers for ``n_cols`` positions; what the old ones held goes to ``ep_max``."""
        self._fold_columns(layer, self.acc.chunk)  # every slot: unwritten ones hold -inf
        run = self.col_run[layer]
        if run is not None:
            m = _per_channel(run, self.widths[layer])
            prev = self.ep_max[layer]
            self.ep_max[layer] = m if prev is None else torch.maximum(prev.to(m.device), m)
        chunk = self.acc.chunk
        per_slot = chunk * n_cols * 4 <= SLOT_COLUMNS_MAX_BYTES
        self.col_slot[layer] = (torch.full((chunk, n_cols), float("-inf"), device=device)
                                if per_slot else None)
        self.col_cur[layer] = None if per_slot else torch.empty(n_cols, device=device)
        self.col_run[layer] = torch.full((n_cols,), float("-inf"), device=device)
        views = self.views[layer]  # the old columns' views are stale now, the slab's are not
        self.views[layer] = None if views is None else (*views[:3], None)

    def _fold_columns(self, layer: int, n: int) -> None:
        """Fold the first ``n`` slots' column maxima into the epoch's and clear the slots."""
        cs, run = self.col_slot[layer], self.col_run[layer]
        if cs is None or run is None or n == 0:
            return
        torch.maximum(run, cs[:n].amax(dim=0), out=run)
        cs.fill_(float("-inf"))

    def record_grad(self, layer: int, g: torch.Tensor) -> None:
        """The output gradient's sum and sum of squares, into the current slot."""
        if self.gsums is None:
            self.gsums = torch.full((self.L, self.acc.chunk, 2), float("nan"), device=g.device)
        row = self.gsums[layer, self.slot]
        torch.sum(g, 0, out=row[0])
        torch.dot(g, g, out=row[1])
        self.gcounts[layer][self.slot] = g.shape[0]

    def commit(self) -> None:
        """The batch is over: keep its slot (if a watched module ran), flush a full chunk."""
        if not self.wrote:
            return
        assert self.slab is not None
        self.wrote = False
        if not all(self.ran):  # a layer that did not run this batch: no values (NaN), not stale
            for layer, ran in enumerate(self.ran):
                if not ran:
                    self.slab[layer, self.slot].fill_(float("nan"))
            self.partial[len(self.iters)] = list(self.ran)
        self.iters.append(self.step)
        self.slot += 1
        self.ep_batches += 1
        self.ep_seen, self.cached = True, None
        if not all(self.has_range):
            self._fix_range()
        if self.ep_batches in (1, 2, 4) or self.ep_batches % 16 == 0:
            self._check_all_fired()
        if self.slot == self.acc.chunk:
            self.flush()

    def _check_all_fired(self) -> None:
        """On CPU, mark the layers whose every channel has fired in this epoch (see all_fired)."""
        if self.slab is None or not can_read_flags(self.slab.device) or all(self.all_fired):
            return
        for layer in range(self.L):
            if self.all_fired[layer]:  # settled for this epoch: nothing to fold or compare
                continue
            self._fold_columns(layer, self.slot)
            m = self._layer_channel_max(layer)
            if m is not None:
                self.all_fired[layer] = bool((m >= self.acc.dead_threshold).all())

    def _fix_range(self) -> None:
        """Each layer's histogram range, from the first recorded batch in which it ran (the
        same range whatever the flush cadence); a layer that has not run yet gets it later."""
        assert self.slab is not None
        acc = self.acc
        if acc.hist_range is not None:
            dev = self.slab.device
            self.lo = torch.full((self.L,), float(acc.hist_range[0]), device=dev)
            self.hi = torch.full((self.L,), float(acc.hist_range[1]), device=dev)
            self.has_range = [True] * self.L
            return
        new = [layer for layer in range(self.L) if self.ran[layer] and not self.has_range[layer]]
        if not new:
            return
        slot = self.slot - 1  # the batch just committed
        lo, hi = stats.data_hist_range(self.slab[:, slot:slot + 1, : acc.k])
        if self.lo is None:
            self.lo, self.hi = lo, hi  # the others are replaced when they first run
        else:
            if self.lo.device != lo.device:  # restored from a checkpoint on the host
                self.lo, self.hi = self.lo.to(lo.device), self.hi.to(lo.device)
            for layer in new:  # device copies by a host index: no sync
                self.lo[layer], self.hi[layer] = lo[layer], hi[layer]
        for layer in new:
            self.has_range[layer] = True

    # ---- flush (device only) -------------------------------------------------------------
    def flush(self) -> None:
        """Turn the chunk's slots into records (device ops only) and reset the slots."""
        n = self.slot
        if n == 0 or self.slab is None:
            return
        acc = self.acc
        s = self.slab[:, :n, : acc.k]  # (L, n, K)
        if self.lo is not None and self.lo.device != s.device:  # restored from a checkpoint
            self.lo, self.hi = self.lo.to(s.device), self.hi.to(s.device)
        vm = self._var_mean(self.slab[:, :n, acc.k:], self.counts, n)
        hist, under, over = stats.split_histograms(s, self.lo, self.hi, acc.bins, self.scratch)
        if acc.dead_bins is None:
            thresh = torch.full_like(self.lo, acc.dead_threshold)
        else:
            thresh = acc.dead_bins * (self.hi - self.lo) / acc.bins
        counted = hist.sum(dim=2) + under + over
        new = {"var_mean": vm, "hist": hist, "hist_under": under, "hist_over": over,
               "dead": stats.near_zero_share(s, thresh, counted=counted, scratch=self.scratch)}
        if acc.want_mad:
            new["mad"] = stats.mean_abs_dev(s, vm[..., 1])
        if acc.want_grads and self.gsums is not None:
            new["grad_var_mean"] = self._var_mean(self.gsums[:, :n], self.gcounts, n)
            self.gsums.fill_(float("nan"))
        for key, val in new.items():
            buf = self.bufs.get(key)
            if buf is not None and buf.device != val.device:
                buf = buf.to(val.device)
            if buf is None:
                buf = val.new_zeros((val.shape[0], max(4 * n, 64), *val.shape[2:]))
                if key == "grad_var_mean":  # grads may start later than the other records
                    buf = _grow(buf, self.n + n)
                    buf[:, : self.n] = float("nan")
            buf = _grow(buf, self.n + n)
            buf[:, self.n: self.n + n] = val
            self.bufs[key] = buf
        for layer in range(self.L):
            self._fold_columns(layer, n)
        self.n += n
        self.slot = 0  # a slot's rows are all rewritten: by the hooks, or NaN by commit
        self.counts = [[None] * acc.chunk for _ in range(self.L)]
        self.gcounts = [[None] * acc.chunk for _ in range(self.L)]

    @staticmethod
    def _var_mean(sums: torch.Tensor, counts: list[list[int | None]], n: int) -> torch.Tensor:
        """(L, n, 2) var/mean from ``sums`` (L, n, 2: sum, sum of squares) and host-known counts.

        The counts are Python ints (shapes), turned into device tensors by fills only: no
        list-to-tensor copy, so a flush makes no host-device transfer at all.
        """
        dev = sums.device
        rows = []
        for layer in counts:
            cs = [float(c) if c is not None else 1.0 for c in layer[:n]]
            rows.append(torch.full((n,), cs[0], device=dev) if len(set(cs)) == 1 else
                        torch.stack([torch.full((), c, device=dev) for c in cs]))
        cnt = torch.stack(rows)  # (L, n)
        mean = sums[..., 0] / cnt
        # E[x^2] - E[x]^2 in float32: fine while |mean| / std stays below ~1e3 (see docs).
        var = (sums[..., 1] / cnt - mean * mean).clamp_min(0)
        var = var * cnt / (cnt - 1).clamp_min(1)  # unbiased, like torch.std
        return torch.stack([var, mean], dim=-1)

    # ---- epochs --------------------------------------------------------------------------
    def _channel_max(self) -> list[torch.Tensor | None]:
        """Per layer, the epoch's per-channel max so far ((C,), -inf: never ran), or None."""
        for layer in range(self.L):
            self._fold_columns(layer, self.slot)
        return [self._layer_channel_max(layer) for layer in range(self.L)]

    def _layer_channel_max(self, layer: int) -> torch.Tensor | None:
        """One layer's per-channel max so far in the epoch (its slots already folded), or None."""
        prev, run = self.ep_max[layer], self.col_run[layer]
        # width 0: the layer has not run since the attach (its buffers may be adopted ones)
        m = None if run is None or not self.widths[layer] else _per_channel(
            run, self.widths[layer])
        if prev is not None:
            m = prev if m is None else torch.maximum(prev.to(m.device), m)
        return m

    def _dead_rows(self) -> torch.Tensor | None:
        """(L, Cmax) of this epoch so far: 1 never fired, 0 fired, NaN padding/not run."""
        maxima = self._channel_max()
        cmax = max((m.shape[0] for m in maxima if m is not None), default=0)
        if cmax == 0:
            return None
        dev = next(m for m in maxima if m is not None).device
        out = torch.full((self.L, cmax), float("nan"), device=dev)
        for i, m in enumerate(maxima):
            if m is not None:
                ran = m > float("-inf")  # -inf: the channel's layer never ran
                fired = (m >= self.acc.dead_threshold).float()
                out[i, : m.shape[0]] = torch.where(ran, 1.0 - fired, float("nan"))
        return out

    def end_epoch(self, epoch: int) -> None:
        """Close the epoch's per-channel record (if anything was recorded in it)."""
        self.flush()
        self.next_epoch = epoch + 1
        if not self.ep_seen:
            return
        row = self._dead_rows()
        if row is not None:
            self.epochs.append((epoch, row))
        self.ep_max = [None] * self.L
        for col in self.col_run:  # the next epoch starts from nothing
            if col is not None:
                col.fill_(float("-inf"))
        self.all_fired, self.ep_batches = [False] * self.L, 0
        self.ep_seen, self.cached = False, None

    # ---- read-back -----------------------------------------------------------------------
    def result(self, names: list[str], meta: dict[str, Any]) -> Telemetry:
        """Flush and read everything back to the host (one sync); cached until new records."""
        if self.cached is not None:
            return self.cached
        self.flush()
        n = self.n
        host = {k: v[:, :n].cpu().numpy() for k, v in self.bufs.items()}
        var, mean = host["var_mean"][..., 0], host["var_mean"][..., 1]
        grads = host.get("grad_var_mean")
        epochs = list(self.epochs)
        if self.ep_seen:  # the open epoch so far (a cancelled fit, a loop without end_epoch)
            row = self._dead_rows()
            if row is not None:
                epochs.append((max(self.next_epoch, epochs[-1][0] + 1 if epochs else 0), row))
        ch: dict[str, Any] = {}
        if epochs:
            width = max(r.shape[1] for _, r in epochs)
            cd = np.full((self.L, len(epochs), width), np.nan, dtype=np.float32)
            for e, (_, r) in enumerate(epochs):
                cd[:, e, : r.shape[1]] = r.cpu().numpy()
            ch = {"channel_dead": cd,
                  "channel_epochs": np.array([e for e, _ in epochs], dtype=np.int64),
                  "n_channels": np.array(self.widths, dtype=np.int64)}
        self.cached = Telemetry(
            names=list(names), iters=np.asarray(self.iters[:n], dtype=np.int64),
            mean=mean.astype(np.float32), std=np.sqrt(np.maximum(var, 0)).astype(np.float32),
            hist=host["hist"], hist_range=torch.stack([self.lo, self.hi], 1).cpu().numpy(),
            dead=host["dead"].astype(np.float32), mad=host.get("mad"),
            grad_mean=None if grads is None else grads[..., 1],
            grad_std=None if grads is None else np.sqrt(np.maximum(grads[..., 0], 0)),
            hist_under=host.get("hist_under"), hist_over=host.get("hist_over"),
            meta=meta, ran=self._ran_array(n), **ch)
        return self.cached

    def _ran_array(self, n: int) -> np.ndarray | None:
        """(L, n) uint8 of which layers ran per record; None when all ran in every record."""
        rows = {j: r for j, r in self.partial.items() if j < n}
        if not rows:
            return None
        ran = np.ones((self.L, n), dtype=np.uint8)
        for j, r in rows.items():
            ran[:, j] = r
        return ran

    # ---- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Records, range and per-channel state on the host (flushes; one read-back)."""
        self.flush()
        n = self.n
        state: dict[str, Any] = {
            "iters": list(self.iters[:n]),
            "bufs": {k: v[:, :n].cpu() for k, v in self.bufs.items()},
            "epochs": [(e, r.cpu()) for e, r in self.epochs],
            "ep_max": [m.cpu() if m is not None else None for m in self._channel_max()],
            "ep_seen": self.ep_seen, "widths": list(self.widths),
            "next_epoch": self.next_epoch, "ever": list(self.ever),
            "partial": {j: list(r) for j, r in self.partial.items() if j < n}}
        if self.lo is not None:
            state["range"] = torch.stack([self.lo, self.hi]).cpu()
            state["has_range"] = list(self.has_range)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``; recording then continues after the restored records."""
        self.iters = list(state["iters"])
        self.n = len(self.iters)
        self.partial = {int(j): [bool(v) for v in r]
                        for j, r in state.get("partial", {}).items()}
        self.bufs = {k: v.clone() for k, v in state["bufs"].items()}
        self.lo, self.hi = ((state["range"][0], state["range"][1]) if "range" in state
                            else (None, None))
        self.has_range = [bool(v) for v in state.get(
            "has_range", [self.lo is not None] * self.L)]
        self.epochs = [(int(e), r.clone()) for e, r in state.get("epochs", [])]
        saved = state.get("ep_max") or [None] * self.L
        self.ep_max = [m.clone() if m is not None else None for m in saved]
        self.all_fired, self.ep_batches = [False] * self.L, 0
        # column buffers and their views are remade on the next forward
        self.col_slot, self.col_cur = [None] * self.L, [None] * self.L
        self.col_run = [None] * self.L
        self.views = [None] * self.L
        self.ep_seen = bool(state.get("ep_seen", False))
        self.next_epoch = int(state.get("next_epoch", self.epochs[-1][0] + 1 if self.epochs else 0))
        self.ever = [bool(v) for v in state.get("ever", [True] * self.L)]
        self.widths = list(state.get("widths", self.widths))
        self.slot, self.cached, self.wrote = 0, None, False
        self.counts = [[None] * self.acc.chunk for _ in range(self.L)]
