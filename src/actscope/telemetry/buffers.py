"""RecordBuffers: the accumulator's device memory: one chunk of per-batch slots, and the records.

Per recorded batch and layer, the hooks write with ``out=`` into preallocated slots: K samples, the
sum and sum of squares, the per-channel max. A flush turns a chunk of slots into records (mean,
std, histograms with overflow counts, dead share, mad) for all layers at once and folds the
per-channel maxima into the running epoch max. Everything stays on the device until ``result``.
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


class RecordBuffers:
    """The slots of the current chunk, the flushed records and the per-channel epoch maxima."""

    def __init__(self, n_layers: int, acc: TelemetryAccumulator) -> None:
        self.L, self.acc = n_layers, acc
        self.samples: torch.Tensor | None = None  # (L, chunk, K), allocated on first use
        self.sums: torch.Tensor | None = None  # (L, chunk, 2): sum, sum of squares; NaN = unset
        self.gsums: torch.Tensor | None = None
        self.counts: list[list[int | None]] = [[None] * acc.chunk for _ in range(n_layers)]
        self.gcounts: list[list[int | None]] = [[None] * acc.chunk for _ in range(n_layers)]
        self.cmax: list[torch.Tensor | None] = [None] * n_layers  # (chunk, C) per layer
        self.ep_max: list[torch.Tensor | None] = [None] * n_layers  # (C,) running epoch max
        self.widths = [0] * n_layers  # channels per layer (0: not seen yet)
        self.ep_seen = False
        self.epochs: list[tuple[int, torch.Tensor]] = []  # (epoch, (L, Cmax) dead flags)
        self.slot, self.n, self.step, self.wrote = 0, 0, 0, False
        self.iters: list[int] = []
        self.bufs: dict[str, torch.Tensor] = {}
        self.lo: torch.Tensor | None = None
        self.hi: torch.Tensor | None = None
        self.cached: Telemetry | None = None

    @property
    def n_records(self) -> int:
        """Committed records (flushed or still in the chunk)."""
        return len(self.iters)

    # ---- per batch -----------------------------------------------------------------------
    def begin(self, step: int) -> None:
        """A recorded batch starts: its records go into the current slot."""
        self.step, self.wrote = step, False

    def _alloc(self, device: torch.device) -> None:
        L, c = self.L, self.acc.chunk
        # One view per (layer, slot), made once: the hook then does no indexing of its own.
        self.sums = torch.full((L, c, 2), float("nan"), device=device)
        self.samples = torch.zeros(L, c, self.acc.k, dtype=torch.float32, device=device)
        # Per-layer views (L of them, not L * chunk: thousands of kept 0-d views fragmented
        # glibc's heap, RSS grew ~0.4 MB per short fit): the hook indexes them by slot only.
        self.layer_samples = list(self.samples.unbind(0))
        self.layer_sums = [(r[:, 0], r[:, 1]) for r in self.sums.unbind(0)]

    def record(self, hook: Hook, x: torch.Tensor, flat: torch.Tensor, idx: torch.Tensor,
               n: int) -> None:
        """The hot path: samples, sum, sum of squares, per-channel max of one module's output."""
        if self.samples is None:
            self._alloc(flat.device)
        layer, slot = hook.layer, self.slot
        torch.index_select(flat, 0, idx, out=self.layer_samples[layer][slot])
        sums, squares = self.layer_sums[layer]
        torch.sum(flat, 0, out=sums[slot])
        torch.dot(flat, flat, out=squares[slot])
        self.counts[layer][slot] = n
        cm = self.cmax[layer]
        if cm is None or hook.chan_ndim != x.ndim:
            cm = self._channel_setup(hook, x)
        if cm is not None:
            if hook.chan_first:  # (N, C, ...): the contiguous inner dims first, then the batch;
                # one amax over dims (0, 2, 3) was 2-10x slower on CPU
                per_row = torch.amax(x.reshape(x.shape[0], hook.n_chan, -1), dim=2)
                torch.amax(per_row, dim=0, out=cm[slot])
            else:  # (..., F): a column max over the rows
                torch.amax(x.reshape(-1, hook.n_chan), dim=0, out=cm[slot])
        self.wrote = True

    def _channel_setup(self, hook: Hook, x: torch.Tensor) -> torch.Tensor | None:
        """The layer's (chunk, C) channel-max buffer, made on first use; None: not recorded."""
        hook.chan_ndim = x.ndim
        if not self.acc.want_channels or x.ndim < 2:
            return None
        d = channel_dim(hook.module, x.ndim)
        hook.chan_first, hook.n_chan = d == 1, x.shape[d]
        layer = hook.layer
        if self.cmax[layer] is None:
            self.cmax[layer] = torch.full((self.acc.chunk, hook.n_chan), float("-inf"),
                                          device=x.device)
            self.widths[layer] = hook.n_chan
        # a module whose channel count changes between batches is not recorded per channel
        return self.cmax[layer] if self.cmax[layer].shape[1] == hook.n_chan else None

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
        self.wrote = False
        self.iters.append(self.step)
        self.slot += 1
        self.ep_seen, self.cached = True, None
        if self.lo is None:
            self._fix_range()
        if self.slot == self.acc.chunk:
            self.flush()

    def _fix_range(self) -> None:
        # From the first recorded batch only: the same range whatever the flush cadence.
        assert self.samples is not None
        acc = self.acc
        if acc.hist_range is None:
            self.lo, self.hi = stats.data_hist_range(self.samples[:, :1])
        else:
            dev = self.samples.device
            self.lo = torch.full((self.L,), float(acc.hist_range[0]), device=dev)
            self.hi = torch.full((self.L,), float(acc.hist_range[1]), device=dev)

    # ---- flush (device only) -------------------------------------------------------------
    def flush(self) -> None:
        """Turn the chunk's slots into records (device ops only) and reset the slots."""
        n = self.slot
        if n == 0 or self.samples is None:
            return
        acc, s = self.acc, self.samples[:, :n]  # (L, n, K)
        if self.lo is not None and self.lo.device != s.device:  # restored from a checkpoint
            self.lo, self.hi = self.lo.to(s.device), self.hi.to(s.device)
        vm = self._var_mean(self.sums, self.counts, n)
        hist, under, over = stats.split_histograms(s, self.lo, self.hi, acc.bins)
        if acc.dead_bins is None:
            thresh = torch.full_like(self.lo, acc.dead_threshold)
        else:
            thresh = acc.dead_bins * (self.hi - self.lo) / acc.bins
        counted = hist.sum(dim=2) + under + over
        new = {"var_mean": vm, "hist": hist, "hist_under": under, "hist_over": over,
               "dead": stats.near_zero_share(s, thresh, counted=counted)}
        if acc.want_mad:
            new["mad"] = stats.mean_abs_dev(s, vm[..., 1])
        if acc.want_grads and self.gsums is not None:
            new["grad_var_mean"] = self._var_mean(self.gsums, self.gcounts, n)
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
        for i, cm in enumerate(self.cmax):
            if cm is not None:
                m, prev = cm[:n].amax(dim=0), self.ep_max[i]
                if prev is not None and prev.device != m.device:  # restored from a checkpoint
                    prev = prev.to(m.device)
                self.ep_max[i] = m if prev is None else torch.maximum(prev, m)
                cm.fill_(float("-inf"))
        self.n += n
        self.slot = 0
        self.sums.fill_(float("nan"))
        self.counts = [[None] * acc.chunk for _ in range(self.L)]
        self.gcounts = [[None] * acc.chunk for _ in range(self.L)]

    @staticmethod
    def _var_mean(sums: torch.Tensor, counts: list[list[int | None]], n: int) -> torch.Tensor:
        """(L, n, 2) var/mean from the slots' (sum, sum of squares) and host-known counts.

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
        mean = sums[:, :n, 0] / cnt
        # E[x^2] - E[x]^2 in float32: fine while |mean| / std stays below ~1e3 (see docs).
        var = (sums[:, :n, 1] / cnt - mean * mean).clamp_min(0)
        var = var * cnt / (cnt - 1).clamp_min(1)  # unbiased, like torch.std
        return torch.stack([var, mean], dim=-1)

    # ---- epochs --------------------------------------------------------------------------
    def _dead_rows(self) -> torch.Tensor | None:
        """(L, Cmax) of this epoch so far: 1 never fired, 0 fired, NaN padding/not run."""
        widths = [m.shape[0] if m is not None else 0 for m in self.ep_max]
        cmax = max(widths, default=0)
        if cmax == 0:
            return None
        dev = next(m for m in self.ep_max if m is not None).device
        out = torch.full((self.L, cmax), float("nan"), device=dev)
        for i, m in enumerate(self.ep_max):
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
            "ep_max": [m.cpu() if m is not None else None for m in self.ep_max],
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
        self.ep_seen = bool(state.get("ep_seen", False))
        self.widths = list(state.get("widths", self.widths))
        self.slot, self.cached, self.wrote = 0, None, False
        if self.sums is not None:
            self.sums.fill_(float("nan"))
        self.counts = [[None] * self.acc.chunk for _ in range(self.L)]
