"""The one-device fast path of ``ParamSignals``: what never changes between steps, made once.

In the middle of a real training step every torch op costs 10-40 us on a CPU and Python runs
10-20x slower than in a micro-benchmark, so a measured step must issue few ops whatever the
model. Everything that depends only on the set of parameters (and of present gradients) is
therefore built once per device and kept here:

- ``GradPlan`` (per pattern of present/sparse grads): which grads are dense, how many of them
  each layer owns, which layers read NaN. A step is ``_foreach_norm`` (one dispatch), one
  ``stack`` straight into float64, one square, one ``segment_reduce`` into the layers, one
  ``sqrt`` written into the record slot: 5 ops.
- ``SamplePlan``: two float32 rows holding the previous and the current weight sample, with a
  view per parameter. Taking a sample is one ``_foreach_copy_`` for the parameters no bigger
  than the sample, and one ``take`` (any shape, any strides, written in place) per bigger one.
  The ratio is then a difference, a float64 copy, a square, one ``segment_reduce`` of the
  (2, n) change/weight squares into the layers, a ``sqrt`` and a division into the slot.

``assign_params`` gives every layer a contiguous run of parameters in depth order, so one
``segment_reduce`` over per-layer lengths (zero for a layer without parameters: its sum is 0,
and 0/0 reads NaN) is exact per layer; ``perm`` puts the layers back in list order when a
watched layer contains another.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["GradPlan", "SamplePlan", "acc_dtype"]


def acc_dtype(device: torch.device) -> torch.dtype:
    """float64, so a square above ~3.4e38 does not overflow (MPS has no float64)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _perm(order: Sequence[int], dev: torch.device) -> torch.Tensor | None:
    """Index putting depth-ordered layer values back in list order (None: already are)."""
    if list(order) == sorted(order):
        return None
    where = [0] * len(order)
    for pos, layer in enumerate(order):
        where[layer] = pos
    return torch.tensor(where, dtype=torch.long, device=dev)


class GradPlan:
    """Per-layer gradient norms for one pattern of present (dense/sparse) grads on one device."""

    def __init__(self, states: Sequence[int], owner: Sequence[int], order: Sequence[int],
                 dev: torch.device, split: bool) -> None:
        # states[k]: 0 no grad, 1 dense, 2 sparse (not worth a densify per step: NaN)
        self.dense = [k for k, s in enumerate(states) if s == 1]
        self.split = split  # a model over several devices: norms gathered on ``dev``
        self.all_dense = len(self.dense) == len(states)
        acc = acc_dtype(dev)
        counts = dict.fromkeys(order, 0)
        bad = dict.fromkeys(order, True)  # no grad seen yet
        for k, s in enumerate(states):
            if s == 1:
                counts[owner[k]] += 1
                bad[owner[k]] = False
        for k, s in enumerate(states):
            if s == 2:
                bad[owner[k]] = True
        self.lengths = torch.tensor([counts[i] for i in order], dtype=torch.long, device=dev)
        self.acc, self.dev = acc, dev
        self.perm = _perm(order, dev)
        # NaN added to the sums of bad layers (list order); None when none is (no op then)
        nan = [float("nan") if bad[i] else 0.0 for i in range(len(order))]
        self.bias = (torch.tensor(nan, dtype=acc, device=dev) if any(bad.values()) else None)
        self.empty = not self.dense

    def run(self, grads: Sequence[torch.Tensor], out: torch.Tensor) -> torch.Tensor:
        """sqrt of each layer's sum of squared grad norms into ``out`` (L,)."""
        if self.empty:
            return out.fill_(float("nan"))
        dense = grads if self.all_dense else [grads[k] for k in self.dense]
        # float32 per-parameter norms (a float64 norm costs 25x on a CPU), summed in float64
        norms = torch._foreach_norm(dense)  # groups by device and dtype itself
        if self.split:
            norms = [n.to(self.dev) for n in norms]
        # stack, then widen: a stack that casts into a float64 ``out=`` costs 5x more
        v = torch.stack(norms).to(self.acc)
        v.mul_(v)
        sums = torch.segment_reduce(v, "sum", lengths=self.lengths, unsafe=True)  # (L,) depth
        if self.perm is not None:
            sums = sums.index_select(0, self.perm)
        if self.bias is not None:
            sums.add_(self.bias)
        return torch.sqrt(sums, out=out)


class SamplePlan:
    """Preallocated weight samples of the parameters on one device, and their ratio."""

    def __init__(self, params: Sequence[nn.Parameter], idx: Sequence[torch.Tensor | None],
                 owner: Sequence[int], order: Sequence[int], dev: torch.device) -> None:
        self.key = (dev, params[0].dtype)
        lengths = [p.numel() if i is None else i.numel() for p, i in zip(params, idx,
                                                                           strict=True)]
        n = sum(lengths)
        self.rows = torch.empty((2, n), dtype=torch.float32, device=dev)  # previous / current
        self.both = torch.empty((2, n), dtype=acc_dtype(dev), device=dev)  # change, weights
        self.small = [p for p, i in zip(params, idx, strict=True) if i is None]
        # (parameter, its indices on its device, whether ``index_select`` can write the row)
        self.big = [(p, i.to(p.device), p.dtype == torch.float32 and p.device == dev)
                    for p, i in zip(params, idx, strict=True) if i is not None]
        self.views: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []
        for row in self.rows:
            parts = row.split(lengths)
            self.views.append((
                [v.view(p.shape) for v, p, i in zip(parts, params, idx, strict=True)
                 if i is None],
                [v for v, i in zip(parts, idx, strict=True) if i is not None]))
        # each layer's run of the sample (contiguous: depth order), in list order; a layer
        # without parameters gets an empty slice: norm 0, and 0/0 reads NaN
        start: dict[int, int] = {}
        end: dict[int, int] = {}
        at = 0
        for i, n_k in zip(owner, lengths, strict=True):
            start.setdefault(i, at)
            at = end[i] = at + n_k
        spans = [(start.get(i, 0), end.get(i, 0)) for i in range(len(order))]
        self._both = self.both.unbind(0)
        self.slices = [row[a:b] for row in self._both for a, b in spans]  # change..., weights...
        self.norms = torch.empty(2 * len(order), dtype=self.both.dtype, device=dev)
        self._halves = self.norms.split(len(order))
        self.prev: int | None = None  # the row holding the previous sample
        self._row = self.rows.unbind(0)  # views made once: indexing is an op per step too

    def take(self) -> int:
        """Sample the weights into the row that is not the previous one; its index."""
        r = 1 if self.prev == 0 else 0
        small, big = self.views[r]
        if self.small:
            # one dispatch, casts to float32 (per-tensor copies where devices differ)
            torch._foreach_copy_(small, self.small)
        for (p, idx, f32), dst in zip(self.big, big, strict=True):
            if f32:  # reshape: a view unless another layout (channels_last) needs a copy
                torch.index_select(p.reshape(-1), 0, idx, out=dst)
            else:  # another dtype or device
                dst.copy_(p.reshape(-1).index_select(0, idx), non_blocking=True)
        return r

    def ratio(self, out: torch.Tensor) -> torch.Tensor:
        """||W_t - W_prev|| / ||W_t|| per layer into ``out`` (L,); NaN without a previous."""
        cur = self.take()
        prev, self.prev = self.prev, cur
        if prev is None:
            return out.fill_(float("nan"))
        row = self._row
        torch.sub(row[cur], row[prev], out=self._both[0])  # the float32 difference, widened
        self._both[1].copy_(row[cur])
        # per-layer norms straight from the slices (one dispatch; float64 squares)
        torch.stack(torch._foreach_norm(self.slices), out=self.norms)
        return torch.div(*self._halves, out=out)
