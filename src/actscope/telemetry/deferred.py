"""DeferredReductions: a CPU layer's per-batch reductions, run together at the batch's end.

On a CPU, an op issued in the middle of a training step costs 10-40 us whatever its size: the
model's own work has just evicted the caches that the Python interpreter and the dispatcher
need. Four ops (samples, sum, sum of squares, min/max) in each watched layer's hook are thus
paid cold five times per batch for the lesson's CNN; run back to back at the batch's end
(``RecordStore.commit``), the same ops share warm caches: ~0.1-0.15 ms less per batch there
(2-3% of a bs-64 MNIST step; measured at the model's forward end instead: no better, at bs 64
or 512, so no extra hook for it).

So on a CPU the hook only keeps the output (no copy) and the views its values go to; ``run``
(from ``RecordStore.commit``) does the reductions. That is sound only if nothing changes the
output in place between the hook and the batch's end (``ReLU(inplace=True)`` after the watched
module, ``out += identity`` in a residual block). The tensor's version counter says whether
that happened:

- a layer's first recorded output is reduced in its hook, as on a GPU, and its version is
  checked at the batch's end: unchanged, the layer defers from its next output on;
  changed, it never defers;
- a deferred output whose version changed after all (a model whose in-place use varies) has
  lost its values: that batch records nothing for the layer (like a layer that did not run)
  and the layer goes back to reducing in its hook.

A write through ``.data`` bypasses the version counter; no module we know changes its output
that way, and the ones that use ``inplace=True`` or ``+=`` are caught.

A GPU needs none of this: its ops are queued asynchronously and cost the host little.
"""

from __future__ import annotations

import torch

from actscope.telemetry.layer_state import LayerState

__all__ = ["DEFER_MAX", "DeferredReductions"]

# Outputs of more elements are reduced in their hook even on a CPU: there the passes over the
# data cost more than the ops' fixed cost, and at the batch's end the data has left the caches
# (bs 512 on the lesson's CNN: deferring its 0.8M-element first map cost 1 % of a step).
DEFER_MAX = 1 << 17


class DeferredReductions:
    """The outputs kept by this batch's hooks and the out= views their reductions fill."""

    __slots__ = ("entries", "probes")

    def __init__(self) -> None:
        # (flat, its version, state, sample index, samples/sum/sumsq outs, (min, max) or None,
        # column max or None: (output, its batch dims, out, the running max to fold it into
        # or None))
        self.entries: list[tuple] = []
        # layers reduced in their hook on their first output: (flat, version, state)
        self.probes: list[tuple[torch.Tensor, int, LayerState]] = []

    def add(self, st: LayerState, flat: torch.Tensor, idx: torch.Tensor,
            outs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
            ext: tuple[torch.Tensor, torch.Tensor] | None, chan: tuple | None = None) -> None:
        """Keep ``flat`` (a CPU output, not copied) for ``run``; ``chan``: its column max, as
        (output, batch dims, out, running max or None), or None."""
        self.entries.append((flat, flat._version, st, idx, outs, ext, chan))

    def probe(self, st: LayerState, flat: torch.Tensor) -> None:
        """``flat`` was reduced in the hook; ``run`` decides from its version whether ``st``
        defers from now on."""
        self.probes.append((flat, flat._version, st))

    def run(self, ran: list[bool]) -> None:
        """The kept reductions, back to back (at the batch's end, or before a layer's second
        run in it); ``ran[layer] = False`` for a layer whose output changed in place since its
        hook (its values are gone)."""
        if self.probes:
            for flat, version, st in self.probes:
                st.defer = flat._version == version
            self.probes.clear()
        if not self.entries:
            return
        index_select, total, dot, aminmax = torch.index_select, torch.sum, torch.dot, torch.aminmax
        for flat, version, st, idx, (samples, s, sq), ext, chan in self.entries:
            if flat._version != version:
                st.defer, st.plan = False, None
                ran[st.layer] = False
                continue
            index_select(flat, 0, idx, out=samples)
            total(flat, 0, out=s)
            dot(flat, flat, out=sq)
            if ext is not None:
                aminmax(flat, out=ext)
            if chan is not None:  # as SampleSlots.record does it in the hook
                x, dims, col, running = chan
                torch.amax(x, dims, out=col)
                if running is not None:
                    torch.maximum(running, col.view(-1), out=running)
        self.entries.clear()

    def clear(self) -> None:
        """Forget what was kept (a batch that never committed, a new fit)."""
        self.entries.clear()
        self.probes.clear()
