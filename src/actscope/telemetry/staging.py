"""Staged small outputs: one copy per hook, the reductions of all small layers batched per batch.

For a small output (at most ``STAGE_MAX`` elements) the per-op dispatch, not the arithmetic, is
the cost of recording: the per-hook path's four or five ops (samples, sum, sum of squares,
min/max) cost ~10-40 us each in the middle of a real forward on a CPU. Such a layer's hook issues
one ``copy_`` of its output into its row of a per-size staging buffer ``(L, n)`` instead, and at
the end of the batch (``flush``, before ``RecordStore.commit``) every layer staged with that size
is reduced together: the K sample positions of every row (the same positions for every output
of ``n`` elements, as on the per-hook path), row sums, row sums of squares, row min and max, and
one copy each into the chunk and the signal slots (an ``index_select`` of the rows that ran and
``index_copy_`` when not all layers were staged). About ten ops per distinct size instead of
five per layer.

A copy, not a reference: the output may be changed in place after the hook (``ReLU(inplace=
True)`` after a ``Linear``), and a reference would keep the activation alive until the step's
end. The memory cost is the staging buffers only: ``L * n * 4`` bytes per distinct small size
(at most 2 MiB for 64 layers), reused every batch. Numbers: the same statistics as the per-hook
path (sums in a different order: equal to float32 rounding, see tests/telemetry/test_staging.py).
"""

from __future__ import annotations

import torch

__all__ = ["MIN_STAGED", "STAGE_MAX", "Stage", "StagedOutputs"]

# Outputs of at most this many elements are staged (32 KiB per row). Above it an output's own
# reductions cost more than their dispatch, and a copy would only add memory traffic.
STAGE_MAX = 8192
# Staging is kept only when an attach's first recorded batch has at least this many small layers
# (``TelemetryAccumulator.min_staged``): with fewer, its copies cost more than they save.
MIN_STAGED = 4


class Stage:
    """The staging rows of every layer whose output has ``n`` elements on one device."""

    __slots__ = ("n", "device", "buf", "rows", "idx", "layers", "owner", "_lidx")

    def __init__(self, owner: StagedOutputs, n: int, idx: torch.Tensor, n_layers: int) -> None:
        self.owner, self.n, self.idx, self.device = owner, n, idx, idx.device
        self.buf = torch.empty((n_layers, n), device=idx.device)
        self.rows = self.buf.unbind(0)  # one view per layer, made once
        self.layers: list[int] = []  # the layers staged in the current batch, in order
        self._lidx: dict[tuple[int, ...], torch.Tensor] = {}

    def layer_index(self, layers: tuple[int, ...]) -> torch.Tensor:
        """The device tensor of ``layers`` (cached: the same layers run every batch)."""
        t = self._lidx.get(layers)
        if t is None:
            t = self._lidx[layers] = torch.tensor(layers, dtype=torch.long, device=self.device)
        return t


class StagedOutputs:
    """Per (size, device) staging buffers and the batched reductions at the end of a batch."""

    def __init__(self, n_layers: int, k: int) -> None:
        self.L, self.k = n_layers, k
        self.stages: dict[tuple[int, torch.device], Stage] = {}

    def stage_for(self, n: int, idx: torch.Tensor) -> Stage:
        """The stage of outputs of ``n`` elements on ``idx``'s device (made on first use)."""
        key = (n, idx.device)
        st = self.stages.get(key)
        if st is None:
            st = self.stages[key] = Stage(self, n, idx, self.L)
        return st

    def clear(self) -> None:
        """A new batch: nothing staged yet (a batch begun and never committed leaves nothing)."""
        for st in self.stages.values():
            st.layers.clear()

    def drop(self) -> None:
        """Forget every buffer (remade on the next forward, on its device)."""
        for st in self.stages.values():
            st.owner = None  # a LayerState still pointing at it makes a new one
        self.stages = {}

    def flush(self, slab: torch.Tensor, slot: int, extremes: torch.Tensor | None) -> None:
        """Reduce every staged output into ``slab[:, slot]`` (samples, sum, sum of squares) and
        ``extremes[:, slot]`` ((min, max) per layer; None: not recorded). Device ops only."""
        for st in self.stages.values():
            if not st.layers:
                continue
            # sorted rows (a layer run twice in the batch: its row holds its last output, as on
            # the per-hook path)
            layers = tuple(sorted(set(st.layers)))
            st.layers.clear()
            full = len(layers) == self.L and layers == _arange(self.L)
            if full:  # every layer: each result straight into its strided slot column
                _reduce_into(st, slab[:, slot], self.k,
                             None if extremes is None else extremes[:, slot])
                continue
            sub = st.buf.index_select(0, st.layer_index(layers))
            # index_select along dim 1 into a fresh tensor: into a strided out= view it is 14x
            # slower on a CPU; one cat, then one copy (or index_copy_) per destination
            vals = torch.cat((torch.index_select(sub, 1, st.idx), sub.sum(1, keepdim=True),
                              torch.linalg.vecdot(sub, sub).unsqueeze(1)), 1)
            _put(slab[:, slot], vals, full, st, layers)
            if extremes is not None:  # amin + amax: 10x faster than aminmax(dim=1) on a CPU
                _put(extremes[:, slot, :2], torch.stack((sub.amin(1), sub.amax(1)), 1), full,
                     st, layers)


def _reduce_into(st: Stage, dst: torch.Tensor, k: int, ext: torch.Tensor | None) -> None:
    """Every layer's row of ``st`` reduced into ``dst`` (L, k + 2) and ``ext`` (L, >= 2) with
    ``out=``: no concatenation and no second copy (about half the ops' time on a CPU).

    Samples: an output of ``n <= k`` elements has every element sampled, cycled to fill ``k``
    (``reductions.sample_indices``), so the rows are written as ``k // n`` broadcast copies
    and the remainder (3x faster than ``index_select`` + copy); larger ones by ``index_select``.
    """
    buf, n = st.buf, st.n
    if n <= k:
        reps, rem = divmod(k, n)
        dst[:, :reps * n].view(-1, reps, n).copy_(buf.unsqueeze(1).expand(-1, reps, n))
        if rem:
            dst[:, reps * n:k].copy_(buf[:, :rem])
    else:
        dst[:, :k].copy_(torch.index_select(buf, 1, st.idx))
    torch.sum(buf, 1, out=dst[:, k])
    torch.linalg.vecdot(buf, buf, out=dst[:, k + 1])
    if ext is not None:  # amin + amax: 10x faster than aminmax(dim=1) on a CPU
        torch.amin(buf, 1, out=ext[:, 0])
        torch.amax(buf, 1, out=ext[:, 1])


def _put(dst: torch.Tensor, vals: torch.Tensor, full: bool, st: Stage,
         layers: tuple[int, ...]) -> None:
    """``vals`` (one row per staged layer) into the rows of ``dst`` of those layers."""
    if full:
        dst.copy_(vals)
    else:
        dst.index_copy_(0, st.layer_index(layers), vals)


_ARANGES: dict[int, tuple[int, ...]] = {}


def _arange(n: int) -> tuple[int, ...]:
    """``tuple(range(n))``, made once per n."""
    t = _ARANGES.get(n)
    if t is None:
        t = _ARANGES[n] = tuple(range(n))
    return t
