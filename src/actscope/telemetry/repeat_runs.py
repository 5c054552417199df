"""RepeatRuns: the statistics of a module's later runs in one batch, folded into its record.

A module can run more than once in a training step: an ``nn.RNNCell``/``LSTMCell`` called once
per time step, a block shared across depth (ALBERT, a weight-tied encoder), a module applied to
two views of a batch. Its record then covers every run: the exact sum and sum of squares (so
the mean and std are those of all its outputs together), the element count, and the min and max.
The histogram samples (and so the near-zero share) stay those of the first run: a record has one
fixed-size sample, and the runs of one step are alike enough for a histogram (docs/telemetry.md,
"Hooks").

The first run takes the usual path (in the hook, staged, or deferred to the batch's end). Each
later run is one copy into a per-layer block of rows (a copy, not a reference: the output may
change in place later), and a full block, or the batch's commit, reduces the block in four ops
into the layer's running (sum, sum of squares, min, max). ``fold`` adds those into the slot at
the commit, after the first runs' values are in. An LSTM cell over 32 time steps pays one op per
step this way, where reducing each run at once cost ~10 (1.30x against 1.15x a plain loop).
"""

from __future__ import annotations

import torch

__all__ = ["RepeatRuns"]

# Elements of a layer's block of kept runs (16 MiB of float32): a long sequence's runs are
# reduced block by block, so the memory stays bounded whatever the number of steps.
BLOCK_ELEMS = 1 << 22


class RepeatRuns:
    """Per layer, its later runs in this batch: kept rows, and their running reductions."""

    __slots__ = ("acc", "layers", "blocks", "kept")

    def __init__(self) -> None:
        self.acc: torch.Tensor | None = None  # (L, 4): sum, sum of squares, min, max
        self.layers: list[int] = []  # the layers with a later run in this batch (acc set)
        self.blocks: dict[int, torch.Tensor] = {}  # layer -> (rows, n) copies of later runs
        self.kept: dict[int, int] = {}  # layer -> rows of its block in use

    def add(self, layer: int, n_layers: int, flat: torch.Tensor) -> None:
        """One more run of ``layer`` in this batch (``flat``: its float32 output, flattened)."""
        n = flat.shape[0]
        rows = min(64, BLOCK_ELEMS // max(n, 1))
        if rows < 2:  # a large output: a copy would cost what reducing it costs
            self._reduce(layer, n_layers)
            self._combine(layer, n_layers, flat)
            return
        block = self.blocks.get(layer)
        if block is None or block.shape[1] != n or block.device != flat.device:
            self._reduce(layer, n_layers)  # runs of another size: the kept ones first
            block = self.blocks[layer] = torch.empty((rows, n), device=flat.device)
            self.kept[layer] = 0
        k = self.kept[layer]
        block[k].copy_(flat)
        self.kept[layer] = k + 1
        if k + 1 == block.shape[0]:
            self._reduce(layer, n_layers)

    def _reduce(self, layer: int, n_layers: int) -> None:
        """The layer's kept rows into its running reductions (four ops for the whole block)."""
        k = self.kept.get(layer, 0)
        if k == 0:
            return
        self.kept[layer] = 0
        self._combine(layer, n_layers, self.blocks[layer][:k].view(-1))

    def _combine(self, layer: int, n_layers: int, rows: torch.Tensor) -> None:
        """The (sum, sum of squares, min, max) of ``rows`` into the layer's running ones."""
        lo, hi = torch.aminmax(rows)
        v = torch.stack((rows.sum(), torch.dot(rows, rows), lo, hi))
        acc = self.acc
        if acc is None or acc.device != rows.device or acc.shape[0] != n_layers:
            acc = self.acc = torch.zeros((n_layers, 4), device=rows.device)
            self.layers.clear()  # (a new buffer holds none of the old rows)
        row = acc[layer]
        if layer not in self.layers:
            self.layers.append(layer)
            row.copy_(v)
            return
        row[:2] += v[:2]
        torch.minimum(row[2:3], v[2:3], out=row[2:3])
        torch.maximum(row[3:], v[3:], out=row[3:])

    def fold(self, views: list, slot: int, extremes: torch.Tensor | None,
             n_layers: int) -> None:
        """Add the later runs into ``slot``: each layer's sum and sum of squares (its ``views``
        1 and 2, as ``SampleSlots.views``), and its (min, max) into ``extremes`` (L, chunk,
        >= 2) when given; then forget them."""
        for layer in [k for k, used in self.kept.items() if used]:
            self._reduce(layer, n_layers)
        if not self.layers:
            return
        assert self.acc is not None
        for layer in self.layers:
            row, v = self.acc[layer], views[layer]
            v[1][slot].add_(row[0])
            v[2][slot].add_(row[1])
            if extremes is not None:
                ext = extremes[layer, slot]
                torch.minimum(ext[0:1], row[2:3], out=ext[0:1])
                torch.maximum(ext[1:2], row[3:], out=ext[1:2])
        self.layers.clear()

    def clear(self) -> None:
        """Forget this batch's later runs (a batch that never committed); the blocks stay."""
        self.layers.clear()
        for layer in self.kept:
            self.kept[layer] = 0
