"""RecordBuffers: the accumulator's device memory: this batch's values, the chunk, the records.

Per recorded batch the hooks write with ``out=`` into one small ``(L, K + 2)`` tensor for the
current batch (K samples, the sum, the sum of squares per layer) and into one running column max
per layer (one sample's worth of positions: ``C*H*W`` for a conv, ``F`` for a Linear or a
transformer block). ``commit`` copies the current batch into its slot of the chunk and folds the
column maxima into the epoch's, two device ops for all layers. Every hook op thus writes into a
view made once per fit: in the middle of a real forward each op costs 20-40 us on a CPU (cold
caches), so the hot path is as few ops as possible. A flush turns the chunk into records (mean,
std, histograms with overflow counts, dead share, mad) for all layers at once; the per-channel
max is reduced from the column max once per epoch. Everything stays on the device until
``result``.
"""

from __future__ import annotations

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


def _per_channel(col: torch.Tensor, width: int) -> torch.Tensor:
    """A column max ``(width * positions,)`` reduced to ``(width,)`` channels."""
    return col.view(width, -1).amax(dim=1)


class RecordBuffers:
    """The current batch, the chunk of recorded batches, the records, the per-channel maxima."""

    def __init__(self, n_layers: int, acc: TelemetryAccumulator) -> None:
        self.L, self.acc = n_layers, acc
        self.cur: torch.Tensor | None = None  # (L, K + 2): this batch, written by the hooks
        self.slab: torch.Tensor | None = None  # (L, chunk, K + 2): the chunk's batches
        self.gsums: torch.Tensor | None = None
        self.counts: list[list[int | None]] = [[None] * acc.chunk for _ in range(n_layers)]
        self.gcounts: list[list[int | None]] = [[None] * acc.chunk for _ in range(n_layers)]
        self.ran = [False] * n_layers  # which layers wrote into ``cur`` in this batch
        # Per channel: the hook writes one batch's column max into col_cur, commit folds it into
        # col_run (the epoch's); ep_max holds channels folded from an earlier column shape or
        # restored from a checkpoint.
        self.col_cur: list[torch.Tensor | None] = [None] * n_layers
        self.col_run: list[torch.Tensor | None] = [None] * n_layers
        self.ep_max: list[torch.Tensor | None] = [None] * n_layers  # (C,)
        self.fold: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        self.widths = [0] * n_layers  # channels per layer (0: not seen yet)
        self.ep_seen = False
        self.epochs: list[tuple[int, torch.Tensor]] = []  # (epoch, (L, Cmax) dead flags)
        self.slot, self.n, self.step, self.wrote = 0, 0, 0, False
        self.iters: list[int] = []
        self.bufs: dict[str, torch.Tensor] = {}
        self.lo: torch.Tensor | None = None
        self.hi: torch.Tensor | None = None
        self.cached: Telemetry | None = None
        self.scratch = stats.Scratch()  # the flush's temporaries, kept between flushes

    @property
    def n_records(self) -> int:
        """Committed records (flushed or still in the chunk)."""
        return len(self.iters)

    # ---- per batch -----------------------------------------------------------------------
    def begin(self, step: int) -> None:
        """A recorded batch starts: its records go into the current slot."""
        self.step, self.wrote = step, False
        self.ran = [False] * self.L

    def _alloc(self, device: torch.device) -> None:
        L, k = self.L, self.acc.k
        self.cur = torch.full((L, k + 2), float("nan"), device=device)
        self.slab = torch.full((L, self.acc.chunk, k + 2), float("nan"), device=device)
        # One view per layer and quantity, made once (not per batch: a view costs an op).
        self.cur_samples = [row[:k] for row in self.cur]
        self.cur_sum = [row[k] for row in self.cur]
        self.cur_sq = [row[k + 1] for row in self.cur]

    def record(self, hook: Hook, x: torch.Tensor, flat: torch.Tensor, idx: torch.Tensor,
               n: int) -> None:
        """The hot path: samples, sum, sum of squares, column max of one module's output."""
        if self.cur is None:
            self._alloc(flat.device)
        layer = hook.layer
        torch.index_select(flat, 0, idx, out=self.cur_samples[layer])
        torch.sum(flat, 0, out=self.cur_sum[layer])
        torch.dot(flat, flat, out=self.cur_sq[layer])
        self.counts[layer][self.slot] = n
        if hook.chan_ndim != x.ndim:
            self._channel_setup(hook, x)
        if hook.n_chan:
            # flat is contiguous in x's logical order, so both views are free
            rows = flat.view(x.shape[0], -1) if hook.chan_first else flat.view(-1, hook.n_chan)
            col = self.col_cur[layer]
            if col is None or col.shape[0] != rows.shape[1] or self.ran[layer]:
                col = self._columns(layer, rows.shape[1], hook.n_chan, flat.device)
            torch.amax(rows, dim=0, out=col)  # a column max over contiguous rows: vectorised
        self.ran[layer] = self.wrote = True

    def _channel_setup(self, hook: Hook, x: torch.Tensor) -> None:
        """Which dim holds the channels of this output (``hook.n_chan`` 0: not recorded)."""
        hook.chan_ndim, hook.n_chan = x.ndim, 0
        if not self.acc.want_channels or x.ndim < 2:
            return
        d = channel_dim(hook.module, x.ndim)
        c, layer = x.shape[d], hook.layer
        if self.widths[layer] == 0:
            self.widths[layer] = c
        # a module whose channel count changes between batches is not recorded per channel
        if self.widths[layer] == c:
            hook.chan_first, hook.n_chan = d == 1, c

    def _columns(self, layer: int, n_cols: int, width: int, device: torch.device
                 ) -> torch.Tensor:
        """The layer's column-max buffer for ``n_cols`` columns, after folding what it holds.

        Called on first use, when the spatial size changes (the old columns are folded into
        per-channel ``ep_max``), and when a module runs twice in one batch (the first run is
        folded into the epoch's so that the second does not overwrite it).
        """
        cur, run = self.col_cur[layer], self.col_run[layer]
        if cur is not None and run is not None:
            torch.maximum(run, cur, out=run)
            if run.shape[0] == n_cols:
                return cur
            m = _per_channel(run, width)
            prev = self.ep_max[layer]
            self.ep_max[layer] = m if prev is None else torch.maximum(prev.to(m.device), m)
        self.col_cur[layer] = torch.full((n_cols,), float("-inf"), device=device)
        self.col_run[layer] = torch.full((n_cols,), float("-inf"), device=device)
        pairs = [(r, c) for r, c in zip(self.col_run, self.col_cur, strict=True)
                 if r is not None and c is not None]
        self.fold = ([r for r, _ in pairs], [c for _, c in pairs])
        return self.col_cur[layer]

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
        assert self.cur is not None and self.slab is not None
        self.wrote = False
        if not all(self.ran):  # a layer that did not run this batch: no values (NaN), not stale
            for layer, ran in enumerate(self.ran):
                if not ran:
                    self.cur[layer].fill_(float("nan"))
        self.slab[:, self.slot].copy_(self.cur)
        if self.fold[0]:  # stale columns of a layer that did not run are already in the max
            torch._foreach_maximum_(self.fold[0], self.fold[1])
        self.iters.append(self.step)
        self.slot += 1
        self.ep_seen, self.cached = True, None
        if self.lo is None:
            self._fix_range()
        if self.slot == self.acc.chunk:
            self.flush()

    def _fix_range(self) -> None:
        # From the first recorded batch only: the same range whatever the flush cadence.
        assert self.slab is not None
        acc = self.acc
        if acc.hist_range is None:
            self.lo, self.hi = stats.data_hist_range(self.slab[:, :1, : acc.k])
        else:
            dev = self.slab.device
            self.lo = torch.full((self.L,), float(acc.hist_range[0]), device=dev)
            self.hi = torch.full((self.L,), float(acc.hist_range[1]), device=dev)

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
        self.n += n
        self.slot = 0
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
        out: list[torch.Tensor | None] = []
        for layer, prev in enumerate(self.ep_max):
            run = self.col_run[layer]
            m = None if run is None else _per_channel(run, self.widths[layer])
            if prev is not None:
                m = prev if m is None else torch.maximum(prev.to(m.device), m)
            out.append(m)
        return out

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
        if not self.ep_seen:
            return
        row = self._dead_rows()
        if row is not None:
            self.epochs.append((epoch, row))
        self.ep_max = [None] * self.L
        for col in (*self.col_cur, *self.col_run):  # the next epoch starts from nothing
            if col is not None:
                col.fill_(float("-inf"))
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
                epochs.append((epochs[-1][0] + 1 if epochs else 0, row))
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
            meta=meta, **ch)
        return self.cached

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
            "ep_seen": self.ep_seen, "widths": list(self.widths)}
        if self.lo is not None:
            state["range"] = torch.stack([self.lo, self.hi]).cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``; recording then continues after the restored records."""
        self.iters = list(state["iters"])
        self.n = len(self.iters)
        self.bufs = {k: v.clone() for k, v in state["bufs"].items()}
        self.lo, self.hi = ((state["range"][0], state["range"][1]) if "range" in state
                            else (None, None))
        self.epochs = [(int(e), r.clone()) for e, r in state.get("epochs", [])]
        saved = state.get("ep_max") or [None] * self.L
        self.ep_max = [m.clone() if m is not None else None for m in saved]
        self.col_cur, self.col_run = [None] * self.L, [None] * self.L  # remade on next forward
        self.fold = ([], [])
        self.ep_seen = bool(state.get("ep_seen", False))
        self.widths = list(state.get("widths", self.widths))
        self.slot, self.cached, self.wrote = 0, None, False
        self.counts = [[None] * self.acc.chunk for _ in range(self.L)]
