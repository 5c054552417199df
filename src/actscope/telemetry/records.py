"""RecordStore: the records of a recording: commit, flush to the host, read-back, checkpoints.

It owns the chunk (``slots.SampleSlots``, device memory for ``chunk`` recorded batches), the
per-channel maxima (``channels``) and the host store (``host_store``, bounded, coarsening).
``commit`` keeps a batch's slot (no device op); a flush, every ``chunk`` recorded batches (and
after 1, 2, 4, ... first when someone listens: ``early``), fits each layer's histogram range
to the chunk (``hist_range``'s ladder) and turns the chunk into records (sums, histograms with
overflow counts, dead share, mad) for all layers at once on the device, then moves them to the
host store (``transfer``: an asynchronous copy on a GPU, no sync). So device memory is O(chunk)
and host memory O(``max_records``), whatever the run length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from actscope.telemetry import reductions
from actscope.telemetry.channels import ChannelMaxima
from actscope.telemetry.hist_range import ladder_ranges
from actscope.telemetry.host_store import HostStore
from actscope.telemetry.host_view import chunk_fields, to_telemetry
from actscope.telemetry.record import Telemetry
from actscope.telemetry.settings import TelemetrySettings
from actscope.telemetry.signal_slots import SignalSlots
from actscope.telemetry.slots import SampleSlots
from actscope.telemetry.transfer import DeviceToHost

__all__ = ["RecordStore"]

Listener = Callable[[dict[str, np.ndarray]], None]


def _mean(sums: torch.Tensor, counts: list[list[int | None]], n: int) -> torch.Tensor:
    """(L, n) per-batch means from ``sums`` (L, n, 2) and host-known counts (fills only: no
    list-to-tensor copy, so no host-device transfer)."""
    dev = sums.device
    rows = []
    for layer in counts:
        cs = [float(c) if c is not None else 1.0 for c in layer[:n]]
        rows.append(torch.full((n,), cs[0], device=dev) if len(set(cs)) == 1 else
                    torch.stack([torch.full((), c, device=dev) for c in cs]))
    return sums[..., 0] / torch.stack(rows)


class RecordStore:
    """The chunk, the histogram ranges, the per-channel maxima and the host records of one
    attach."""

    def __init__(self, n_layers: int, settings: TelemetrySettings,
                 reuse: RecordStore | None = None, listener: Listener | None = None) -> None:
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
        self.host = HostStore(settings.max_records, settings.keep_first)
        self.transfer = DeviceToHost(self._arrived)
        self.listener = listener  # called with each flush's new host records
        self.committed = 0  # recorded batches committed (flushed or in the chunk)
        self.target = 1  # flush when the chunk holds this many: 1, 2, 4, ..., chunk
        # Whether those early flushes happen: only for a listener (a logger, a live view) that
        # wants the first records soon; each costs ~2 ms on a CPU whatever its size, so
        # without one the chunk just fills (6 fewer flushes in a 160-batch fit).
        self.early = True
        self.chunk_iters: list[int] = []
        # Host-side, no device op: slot -> which layers ran, for slots where not all did (a layer
        # skipped by stochastic depth, a branch not taken, a module in eval mode).
        self.partial: dict[int, list[bool]] = {}
        self.r: torch.Tensor | None = None  # (L,) the ladder's R of the last chunk
        self.floored: torch.Tensor | None = None  # (L,) bool: never went below 0
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
        """Committed recorded batches (in the host store, on their way there, or in the chunk)."""
        return self.committed

    @property
    def n(self) -> int:
        """Records in the host store (coarsened ones count once)."""
        return len(self.host)

    # ---- per batch -----------------------------------------------------------------------
    def commit(self) -> None:
        """The batch is over: keep its slot (if a watched module ran), flush a full chunk."""
        slots, ch = self.slots, self.channels
        if not slots.wrote:
            if self.sig.dirty:  # signals of a batch that recorded nothing: its slot is reused
                self.sig.clear_slot(slots.slot)
            return
        assert slots.slab is not None
        # the small outputs staged by the hooks, reduced together now (staging.py)
        slots.flush_staged(self.sig.extremes_buf(slots.slab.device)
                           if self.settings.extremes else None)
        self.sig.dirty = False
        slots.wrote = False
        if not all(slots.ran):  # a layer that did not run this batch: no values (NaN), not stale
            for layer, ran in enumerate(slots.ran):
                if not ran:
                    slots.slab[layer, slots.slot].fill_(float("nan"))
                    self.sig.not_ran(layer, slots.slot)
            self.partial[slots.slot] = list(slots.ran)
        self.chunk_iters.append(slots.step)
        self.committed += 1
        slots.slot += 1
        ch.ep_batches += 1
        ch.ep_seen, self.cached = True, None
        if ch.ep_batches in (1, 2, 4) or ch.ep_batches % 16 == 0:
            ch.check_all_fired(slots.slot, slots.slab.device)
        if slots.slot >= (min(self.target, self.settings.chunk) if self.early
                          else self.settings.chunk):
            self.flush()
            self.target = min(2 * self.target, self.settings.chunk)

    # ---- flush (device ops, then an asynchronous copy to the host) -----------------------
    def _ranges(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This chunk's (lo, hi) per layer: the fixed setting, or the ladder fitted to it."""
        fixed = self.settings.hist_range
        if fixed is not None:
            return (torch.full((self.L,), float(fixed[0]), device=s.device),
                    torch.full((self.L,), float(fixed[1]), device=s.device))
        lo, hi, self.r, self.floored = ladder_ranges(s, self.r, self.floored)
        return lo, hi

    def flush(self) -> None:
        """Turn the chunk's slots into records (device ops only), send them to the host."""
        slots, st = self.slots, self.settings
        n = slots.slot
        if n == 0:
            return
        if slots.slab is None:  # restored from a checkpoint, no forward since
            slots.slab = slots.restored
        assert slots.slab is not None
        s = slots.slab[:, :n, : st.k]  # (L, n, K)
        lo, hi = self._ranges(s)
        hist, under, over = reductions.split_histograms(s, lo, hi, st.bins, self.scratch)
        if st.dead_bins is None:
            thresh = torch.full_like(lo, st.dead_threshold)
        else:
            thresh = st.dead_bins * (hi - lo) / st.bins
        counted = hist.sum(dim=2) + under + over
        dev = {"sums": slots.slab[:, :n, st.k:], "hist": hist, "hist_under": under,
               "hist_over": over, "n_samp": counted, "lo": lo, "hi": hi,
               "dead": reductions.near_zero_share(s, thresh, counted=counted,
                                                  scratch=self.scratch)}
        if st.mad:
            dev["mad"] = reductions.mean_abs_dev(s, _mean(dev["sums"], slots.counts, n))
        dev.update(self.sig.take(n, st.extremes, self.sig_fields))  # absmax, gradients, ...
        known = self._known(n)
        if st.grads and slots.gsums is not None:
            dev["gsums"] = slots.gsums[:, :n].clone()
            slots.gsums.fill_(float("nan"))
            known["g_n"] = self._counts(slots.gcounts, n)
        dev["sums"] = dev["sums"].clone()  # the slab's slots are rewritten by the next batches
        self.transfer.push(dev, known)
        for layer in range(self.L):
            self.channels.fold_columns(layer, n)
        slots.slot, self.chunk_iters, self.partial = 0, [], {}
        slots.counts, slots.gcounts = slots.no_counts(), slots.no_counts()

    def _counts(self, counts: list[list[int | None]], n: int) -> np.ndarray:
        return np.array([[c or 0 for c in row[:n]] for row in counts], dtype=np.float64)

    def _known(self, n: int) -> dict[str, np.ndarray]:
        """What the host knows of the chunk without reading the device: spans, counts, ran."""
        it = np.asarray(self.chunk_iters[:n], dtype=np.int64)[None, :]
        ran = np.ones((self.L, n), dtype=np.int64)
        for j, r in self.partial.items():
            ran[:, j] = r
        return {"iters": it, "iter_end": it.copy(), "n_steps": np.ones_like(it),
                "n": self._counts(self.slots.counts, n), "ran": ran}

    def _arrived(self, dev: dict[str, np.ndarray], known: dict[str, np.ndarray]) -> None:
        """A flush's records reached the host: into the store, then to the listener."""
        rec = chunk_fields(dev, known)
        self.host.append(rec)
        if self.listener is not None:
            self.listener(rec)

    def end_epoch(self, epoch: int) -> None:
        """Close the epoch's per-channel record (if anything was recorded in it)."""
        self.flush()
        if self.channels.ep_seen:
            self.cached = None
        self.channels.end_epoch(epoch)

    # ---- read-back -----------------------------------------------------------------------
    def result(self, names: list[str], meta: dict[str, Any]) -> Telemetry:
        """Flush and take everything to the host (waits for the copies); cached until new
        records."""
        if self.cached is not None:
            return self.cached
        self.flush()
        self.transfer.drain(wait=True)
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
        self.cached = to_telemetry(self.host.arrays(), names, meta,
                                   scalar_names=list(self.sig.scalar_names), **ch)
        return self.cached

    # ---- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The host records, the device chunk and the range state, on the host (one read-back).

        Bounded: ``max_records`` records plus one chunk, whatever the run length. The chunk is
        saved unflushed, so a resumed run flushes (and fits ranges) where the uninterrupted one
        does, and its telemetry is the same.
        """
        self.transfer.drain(wait=True)
        slots, n = self.slots, self.slots.slot
        slab = slots.slab if slots.slab is not None else slots.restored
        state: dict[str, Any] = {
            # tensors, not numpy: checkpoints are read with torch.load(weights_only=True)
            "format": 2, "host": {"fields": {k: torch.from_numpy(v) for k, v in
                                             self.host.state_dict()["fields"].items()},
                                  "total_steps": self.host.total_steps},
            "committed": self.committed,
            "target": self.target, "chunk_iters": list(self.chunk_iters),
            "partial": {j: list(r) for j, r in self.partial.items()},
            "slab": None if slab is None or n == 0 else slab[:, :n].cpu().clone(),
            "gsums": None if slots.gsums is None or n == 0 else slots.gsums[:, :n].cpu().clone(),
            "counts": [list(r[:n]) for r in slots.counts],
            "gcounts": [list(r[:n]) for r in slots.gcounts],
            **self.channels.state_dict(n),
            "ever": list(slots.ever),
            # the chunk's signal columns (absmax, gradients, ..., scalars), unflushed like it
            "sig": self.sig.state_dict(n)}
        if self.r is not None and self.floored is not None:
            state["ladder"] = (self.r.cpu().clone(), self.floored.cpu().clone())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``; recording then continues where it stopped."""
        from actscope.errors import UsageError

        if state.get("format") != 2:
            raise UsageError("this checkpoint's telemetry was saved by an older actscope (before "
                             "the bounded record store); resume without it (drop the "
                             "'telemetry' entry of the checkpoint) or finish with that version")
        self.transfer.drain(wait=True)
        host = state["host"]
        self.host.load_state_dict({"total_steps": host["total_steps"], "fields": {
            k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in host["fields"].items()}})
        self.committed, self.target = int(state["committed"]), int(state["target"])
        self.chunk_iters = [int(i) for i in state["chunk_iters"]]
        self.partial = {int(j): [bool(v) for v in r] for j, r in state["partial"].items()}
        self.r, self.floored = state.get("ladder", (None, None))
        self.channels.load_state_dict(state)
        slots, k, chunk = self.slots, self.settings.k, self.settings.chunk
        slots.views = [None] * self.L  # column buffers and their views: remade on next forward
        slots.ever = [bool(v) for v in state.get("ever", [True] * self.L)]
        slots.slab, slots.gsums, slots.restored = None, None, None
        slots.slot, slots.wrote, self.cached = len(self.chunk_iters), False, None
        self.sig.load_state_dict(state.get("sig", {}), slots.slot)
        slots.counts, slots.gcounts = slots.no_counts(), slots.no_counts()
        for rows, saved in ((slots.counts, state["counts"]), (slots.gcounts, state["gcounts"])):
            for layer, row in enumerate(saved):
                rows[layer][: len(row)] = row
        if state["slab"] is not None:
            slab = torch.full((self.L, chunk, k + 2), float("nan"))
            slab[:, : slots.slot] = state["slab"]
            slots.restored = slab
        if state["gsums"] is not None:
            slots.gsums = torch.full((self.L, chunk, 2), float("nan"))
            slots.gsums[:, : slots.slot] = state["gsums"]
