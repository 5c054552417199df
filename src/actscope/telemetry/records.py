"""RecordStore: the records of a recording, its flush, read-back and checkpoint state.

It owns the chunk (``slots.SampleSlots``) and the per-channel maxima (``channels``). ``commit``
keeps a batch's slot (and makes no device op); every ``chunk`` recorded batches a flush turns
the chunk into records (mean, std, histograms with overflow counts, dead share, mad) for all
layers at once, on the device, and folds the column maxima into the epoch's. Everything stays on
the device until ``result`` or ``state_dict`` (on a CPU, ``commit`` reads one flag now and then:
the all-channels-fired skip).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from actscope.telemetry import reductions
from actscope.telemetry.channels import ChannelMaxima
from actscope.telemetry.hist_range import ranges_after_batch
from actscope.telemetry.record import Telemetry
from actscope.telemetry.settings import TelemetrySettings
from actscope.telemetry.signal_slots import LAYER_FIELDS, ROOT_FIELDS, SignalSlots
from actscope.telemetry.slots import SampleSlots

__all__ = ["RecordStore"]


def _grow(buf: torch.Tensor, need: int, rows: int = 0) -> torch.Tensor:
    """``buf`` with room for ``need`` records along dim 1, doubling (device-side copy only), and
    at least ``rows`` rows (new rows NaN: a scalar first given after earlier records)."""
    if need <= buf.shape[1] and rows <= buf.shape[0]:
        return buf
    new = buf.new_zeros((max(rows, buf.shape[0]), max(need, 2 * buf.shape[1]),
                         *buf.shape[2:]))
    if rows > buf.shape[0]:
        new[buf.shape[0]:] = float("nan")
    new[: buf.shape[0], : buf.shape[1]] = buf
    return new


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


class RecordStore:
    """The records, the histogram ranges, the chunk and the per-channel maxima of one attach."""

    def __init__(self, n_layers: int, settings: TelemetrySettings,
                 reuse: RecordStore | None = None) -> None:
        self.L, self.settings = n_layers, settings
        self.channels = ChannelMaxima(n_layers, settings)
        self.slots = SampleSlots(n_layers, settings, self.channels)
        self.sig = SignalSlots(n_layers, settings.chunk)  # absmax, gradients, ..., scalars
        st = settings
        self.sig_fields = tuple(
            f for f, on in (("grad_norm", st.grad_norms), ("update_ratio", st.update_ratios),
                            ("attn_logit_max", st.attention), ("attn_entropy", st.attention),
                            ("out_lse", st.output_logits), ("out_absmax", st.output_logits))
            if on)
        self.n = 0  # flushed records
        self.iters: list[int] = []
        # Host-side, no device op: record index -> which layers ran, for records where not all
        # did (a layer skipped by stochastic depth, a branch not taken, a module in eval mode).
        self.partial: dict[int, list[bool]] = {}
        self.bufs: dict[str, torch.Tensor] = {}
        self.lo: torch.Tensor | None = None
        self.hi: torch.Tensor | None = None
        self.has_range = [False] * n_layers  # the layer's range is fixed (hist_range.py)
        self.cached: Telemetry | None = None
        self.scratch = reductions.Scratch()  # the flush's temporaries, kept between flushes
        if reuse is not None and reuse.L == n_layers:  # a new fit: keep the device memory
            self.slots.adopt(reuse.slots)
            self.scratch = reuse.scratch

    def ever_ran(self, layer: int) -> bool:
        """Whether ``layer`` recorded at least once since the attach (or the restored state)."""
        return self.slots.ever[layer]

    @property
    def n_records(self) -> int:
        """Committed records (flushed or still in the chunk)."""
        return len(self.iters)

    # ---- per batch -----------------------------------------------------------------------
    def commit(self) -> None:
        """The batch is over: keep its slot (if a watched module ran), flush a full chunk."""
        slots, ch = self.slots, self.channels
        if not slots.wrote:
            if self.sig.dirty:  # signals of a batch that recorded nothing: its slot is reused
                self.sig.clear_slot(slots.slot)
            return
        assert slots.slab is not None
        self.sig.dirty = False
        slots.wrote = False
        if not all(slots.ran):  # a layer that did not run this batch: no values (NaN), not stale
            for layer, ran in enumerate(slots.ran):
                if not ran:
                    slots.slab[layer, slots.slot].fill_(float("nan"))
                    self.sig.not_ran(layer, slots.slot)
            self.partial[len(self.iters)] = list(slots.ran)
        self.iters.append(slots.step)
        slots.slot += 1
        ch.ep_batches += 1
        ch.ep_seen, self.cached = True, None
        if not all(self.has_range):
            slot = slots.slot - 1  # the batch just committed
            self.lo, self.hi, self.has_range = ranges_after_batch(
                self.lo, self.hi, self.has_range, slots.ran,
                slots.slab[:, slot:slot + 1, : self.settings.k], self.settings.hist_range)
        if ch.ep_batches in (1, 2, 4) or ch.ep_batches % 16 == 0:
            ch.check_all_fired(slots.slot, slots.slab.device)
        if slots.slot == self.settings.chunk:
            self.flush()

    # ---- flush (device only) -------------------------------------------------------------
    def flush(self) -> None:
        """Turn the chunk's slots into records (device ops only) and reset the slots."""
        slots, st = self.slots, self.settings
        n = slots.slot
        if n == 0 or slots.slab is None:
            return
        s = slots.slab[:, :n, : st.k]  # (L, n, K)
        if self.lo is not None and self.lo.device != s.device:  # restored from a checkpoint
            self.lo, self.hi = self.lo.to(s.device), self.hi.to(s.device)
        vm = _var_mean(slots.slab[:, :n, st.k:], slots.counts, n)
        hist, under, over = reductions.split_histograms(s, self.lo, self.hi, st.bins,
                                                        self.scratch)
        if st.dead_bins is None:
            thresh = torch.full_like(self.lo, st.dead_threshold)
        else:
            thresh = st.dead_bins * (self.hi - self.lo) / st.bins
        counted = hist.sum(dim=2) + under + over
        new = {"var_mean": vm, "hist": hist, "hist_under": under, "hist_over": over,
               "dead": reductions.near_zero_share(s, thresh, counted=counted,
                                                  scratch=self.scratch)}
        if st.mad:
            new["mad"] = reductions.mean_abs_dev(s, vm[..., 1])
        new.update(self.sig.take(n, st.extremes, self.sig_fields))
        if st.grads and slots.gsums is not None:
            new["grad_var_mean"] = _var_mean(slots.gsums[:, :n], slots.gcounts, n)
            slots.gsums.fill_(float("nan"))
        for key, val in new.items():
            buf = self.bufs.get(key)
            if buf is not None and buf.device != val.device:
                buf = buf.to(val.device)
            if buf is None:
                buf = val.new_zeros((val.shape[0], max(4 * n, 64), *val.shape[2:]))
                if self.n:  # a field that starts later than the other records: NaN before
                    buf = _grow(buf, self.n + n)
                    buf[:, : self.n] = float("nan")
            buf = _grow(buf, self.n + n, val.shape[0])
            buf[:, self.n: self.n + n] = val
            self.bufs[key] = buf
        for layer in range(self.L):
            self.channels.fold_columns(layer, n)
        self.n += n
        slots.slot = 0  # a slot's rows are all rewritten: by the hooks, or NaN by commit
        slots.counts, slots.gcounts = slots.no_counts(), slots.no_counts()

    def end_epoch(self, epoch: int) -> None:
        """Close the epoch's per-channel record (if anything was recorded in it)."""
        self.flush()
        if self.channels.ep_seen:
            self.cached = None
        self.channels.end_epoch(epoch)

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
        signals = self._signal_fields(host, n)
        epochs = self.channels.all_epochs(self.slots.slot)
        ch: dict[str, Any] = {}
        if epochs:
            width = max(r.shape[1] for _, r in epochs)
            cd = np.full((self.L, len(epochs), width), np.nan, dtype=np.float32)
            for e, (_, r) in enumerate(epochs):
                cd[:, e, : r.shape[1]] = r.cpu().numpy()
            ch = {"channel_dead": cd,
                  "channel_epochs": np.array([e for e, _ in epochs], dtype=np.int64),
                  "n_channels": np.array(self.channels.widths, dtype=np.int64)}
        self.cached = Telemetry(
            names=list(names), iters=np.asarray(self.iters[:n], dtype=np.int64),
            mean=mean.astype(np.float32), std=np.sqrt(np.maximum(var, 0)).astype(np.float32),
            hist=host["hist"], hist_range=torch.stack([self.lo, self.hi], 1).cpu().numpy(),
            dead=host["dead"].astype(np.float32), mad=host.get("mad"),
            grad_mean=None if grads is None else grads[..., 1],
            grad_std=None if grads is None else np.sqrt(np.maximum(grads[..., 0], 0)),
            hist_under=host.get("hist_under"), hist_over=host.get("hist_over"),
            meta=meta, ran=self._ran_array(n), **ch, **signals)
        return self.cached

    def _signal_fields(self, host: dict[str, np.ndarray], n: int) -> dict[str, Any]:
        """The diagnosis signals' ``Telemetry`` fields from the read-back buffers."""
        out: dict[str, Any] = {}
        if "absmax" in host:
            absmax = host["absmax"].astype(np.float32)
            ran = self._ran_array(n)
            bad = ~np.isfinite(absmax)
            if ran is not None:  # a layer that did not run reads NaN, but is not non-finite
                bad &= ran.astype(bool)
            out["absmax"], out["nonfinite"] = absmax, bad.astype(np.uint8)
        for f in LAYER_FIELDS:
            if f in host:
                out[f] = host[f].astype(np.float32)
        for f in ROOT_FIELDS:
            if f in host:
                out[f] = host[f][0].astype(np.float32)
        if "scalars" in host:
            S = len(self.sig.scalar_names)
            out["scalar_names"] = list(self.sig.scalar_names)
            out["scalars"] = host["scalars"][:S].astype(np.float64)
        return out

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
            **self.channels.state_dict(self.slots.slot),
            "ever": list(self.slots.ever),
            "scalar_names": list(self.sig.scalar_names),
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
        self.channels.load_state_dict(state)
        self.sig.set_scalar_names(state.get("scalar_names", []))
        slots = self.slots
        slots.views = [None] * self.L  # column buffers and their views: remade on next forward
        slots.ever = [bool(v) for v in state.get("ever", [True] * self.L)]
        slots.slot, slots.wrote, self.cached = 0, False, None
        slots.counts = slots.no_counts()
