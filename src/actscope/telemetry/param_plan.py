"""The fast path of ``ParamSignals``: what never changes between steps, made once per device.

In the middle of a real training step every torch op costs 10-40 us on a CPU and Python runs
10-20x slower than in a micro-benchmark, so a measured step issues a handful of ops whatever the
model, and Python touches each parameter at most once. Both plans lay their values out per
layer, in list order, so no op has to sort values into layers:

- ``GradPlan`` (one per pattern of present/sparse grads): ``_foreach_norm`` of the dense grads
  (one dispatch), one ``stack`` of those norms in a fixed order with constant fillers (0 to pad,
  NaN for a layer without a dense grad), one norm per layer over its row in float64, one copy
  into the record slot. Padded: an (L, K) table, K the most grads a layer has; when padding
  would waste more than it holds (one layer with many parameters among many small ones), a
  flat run per layer and ``_foreach_norm`` over the runs instead.
- ``SamplePlan``: the weight samples in a float32 buffer of four rows, (change, sample) twice,
  one pair per parity so the previous sample is never copied. A sample is one
  ``_foreach_copy_`` for the parameters no bigger than the sample, and one ``index_select``
  per bigger one, from a flat view kept across steps, written in place. The ratio is one
  subtraction, one float64 norm of the (change, sample) pair per layer (padded (2, L, W), or
  runs), and one division into the slot. Padding is zeros in every row, so it adds nothing to
  a norm. A layer without parameters has no entry: norm 0, and 0/0 reads NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter

import torch
from torch import nn

__all__ = ["GradPlan", "SamplePlan", "acc_dtype"]


def acc_dtype(device: torch.device) -> torch.dtype:
    """float64, so a square above ~3.4e38 does not overflow (MPS has no float64)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _padded(longest: int, n_layers: int, total: int) -> bool:
    """Whether an (L, longest) table wastes at most as much as it holds."""
    return n_layers * longest <= 2 * total + 2 * n_layers


def _picker(positions: Sequence[int]) -> Callable[[Sequence], Sequence]:
    """``seq -> [seq[i] for i in positions]`` in one C call (itemgetter of one is no tuple)."""
    if len(positions) == 1:
        only = positions[0]
        return lambda seq: (seq[only],)
    return itemgetter(*positions)


class GradPlan:
    """Per-layer gradient norms for one pattern of present (dense/sparse) grads on one device."""

    def __init__(self, layouts: Sequence[torch.layout | None], owner: Sequence[int],
                 n_layers: int, dev: torch.device, split: bool) -> None:
        # layouts[k]: None without a grad; not strided: sparse (not worth a densify: NaN)
        self.dense = [k for k, lay in enumerate(layouts) if lay == torch.strided]
        self.all_dense = len(self.dense) == len(layouts)
        self.split, self.dev, self.acc = split, dev, acc_dtype(dev)
        runs: list[list[int]] = [[] for _ in range(n_layers)]  # per layer: positions in dense
        for pos, k in enumerate(self.dense):
            runs[owner[k]].append(pos)
        for k, lay in enumerate(layouts):
            if lay is not None and lay != torch.strided:
                runs[owner[k]] = []  # one sparse grad makes the layer's norm NaN
        zero, nan = len(self.dense), len(self.dense) + 1  # the fillers, after the norms
        self.fill = (torch.zeros((), device=dev), torch.full((), float("nan"), device=dev))
        width = max(len(r) for r in runs) if runs else 1
        self.padded = _padded(max(width, 1), n_layers, len(self.dense))
        order: list[int] = []
        if self.padded:
            for r in runs:
                order += (r or [nan]) + [zero] * (max(width, 1) - max(len(r), 1))
            self.shape = (n_layers, max(width, 1))
        else:
            lengths = [max(len(r), 1) for r in runs]
            for r in runs:
                order += r or [nan]
            self.runs = lengths
            self.norms = torch.empty(n_layers, dtype=self.acc, device=dev)
        self.pick = _picker(order)

    def run(self, grads: Sequence[torch.Tensor], out: torch.Tensor) -> torch.Tensor:
        """Each layer's gradient norm into ``out`` (L,)."""
        dense = grads if self.all_dense else [grads[k] for k in self.dense]
        # float32 norm per parameter (a float64 one costs 25x on a CPU); groups by device itself
        norms = torch._foreach_norm(dense) if dense else ()
        if self.split:
            norms = tuple(n.to(self.dev) for n in norms)
        v = torch.stack(self.pick((*norms, *self.fill)))  # layer order, fillers in place
        if self.padded:
            return out.copy_(torch.linalg.vector_norm(v.view(self.shape), dim=1, dtype=self.acc))
        per = torch._foreach_norm(v.split(self.runs), 2, dtype=self.acc)
        return out.copy_(torch.stack(per, out=self.norms))


class SamplePlan:
    """Preallocated weight samples of the parameters on one device, and their ratio."""

    def __init__(self, params: Sequence[nn.Parameter], idx: Sequence[torch.Tensor | None],
                 owner: Sequence[int], n_layers: int, dev: torch.device) -> None:
        self.key = (dev, params[0].dtype)
        self.acc = acc_dtype(dev)
        lengths = [p.numel() if i is None else i.numel() for p, i in zip(params, idx,
                                                                           strict=True)]
        per_layer = [0] * n_layers
        at: list[int] = []  # each parameter's offset within its layer's run
        for i, n_k in zip(owner, lengths, strict=True):
            at.append(per_layer[i])
            per_layer[i] += n_k
        width = max(per_layer)
        self.padded = _padded(width, n_layers, sum(per_layer))
        starts = ([i * width for i in range(n_layers)] if self.padded
                  else [sum(per_layer[:i]) for i in range(n_layers)])
        row_len = n_layers * width if self.padded else sum(per_layer)
        # rows: change A, sample A, change B, sample B; zeros stay in the padding
        self.buf = torch.zeros((4, row_len), dtype=torch.float32, device=dev)
        self.small = [p for p, i in zip(params, idx, strict=True) if i is None]
        # [parameter, its flat view (kept: a reshape per step is an op), its indices on its
        # device, whether ``index_select`` can write the row]
        self.big = [[p, None, i.to(p.device), p.dtype == torch.float32 and p.device == dev]
                    for p, i in zip(params, idx, strict=True) if i is not None]
        self.views: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []
        self.pairs: list[torch.Tensor | list[torch.Tensor]] = []
        for r in (0, 1):
            row = self.buf[2 * r + 1]
            parts = [row[starts[i] + a: starts[i] + a + n_k]
                     for i, a, n_k in zip(owner, at, lengths, strict=True)]
            self.views.append((
                [v.view(p.shape) for v, p, i in zip(parts, params, idx, strict=True)
                 if i is None],
                [v for v, i in zip(parts, idx, strict=True) if i is not None]))
            pair = self.buf[2 * r: 2 * r + 2]  # (change, sample)
            self.pairs.append(pair.view(2, n_layers, width) if self.padded else
                              [pair[j, s: s + n] for j in (0, 1)
                               for s, n in zip(starts, per_layer, strict=True)])
        self.norms = torch.empty((2, n_layers), dtype=self.acc, device=dev)
        self._halves = self.norms.unbind(0)
        self._rows = self.buf.unbind(0)  # views made once: indexing is an op per step too
        self.prev: int | None = None  # the parity holding the previous sample

    def take(self) -> int:
        """Sample the weights into the parity that is not the previous one; that parity."""
        r = 1 if self.prev == 0 else 0
        small, big = self.views[r]
        if self.small:
            # one dispatch, casts to float32 (per-tensor copies where devices differ)
            torch._foreach_copy_(small, self.small)
        for entry, dst in zip(self.big, big, strict=True):
            p, flat, idx, direct = entry
            # the kept view is stale once ``p.data`` was replaced (it keeps the old storage
            # alive, so the address cannot be reused meanwhile)
            if flat is None or flat.data_ptr() != p.data_ptr():
                flat = p.detach().reshape(-1)  # a copy for another layout (channels_last)
                entry[1] = flat if flat.data_ptr() == p.data_ptr() else None
            if direct:
                torch.index_select(flat, 0, idx, out=dst)
            else:  # another dtype or device
                dst.copy_(flat.index_select(0, idx), non_blocking=True)
        return r

    def ratio(self, out: torch.Tensor) -> torch.Tensor:
        """||W_t - W_prev|| / ||W_t|| per layer into ``out`` (L,); NaN without a previous."""
        cur = self.take()
        prev, self.prev = self.prev, cur
        if prev is None:
            return out.fill_(float("nan"))
        rows = self._rows
        torch.sub(rows[2 * cur + 1], rows[2 * prev + 1], out=rows[2 * cur])
        pair = self.pairs[cur]
        if self.padded:  # float64 squares: weights above ~1.8e19 do not overflow
            torch.linalg.vector_norm(pair, dim=2, dtype=self.acc, out=self.norms)
        else:
            torch.stack(torch._foreach_norm(pair, 2, dtype=self.acc), out=self.norms.view(-1))
        return torch.div(*self._halves, out=out)
