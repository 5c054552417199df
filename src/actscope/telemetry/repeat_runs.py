"""RepeatRuns: the statistics of a module's later runs in one batch, folded into its record.

A module can run more than once in a training step: an ``nn.RNNCell``/``LSTMCell`` called once
per time step, a block shared across depth (ALBERT, a weight-tied encoder), a module applied to
two views of a batch. Its record then covers every run: the exact sum and sum of squares (so
the mean and std are those of all its outputs together), the element count, and the min and max.
The histogram samples (and so the near-zero share) stay those of the first run: a record has one
fixed-size sample, and the runs of one step are alike enough for a histogram (docs/telemetry.md,
"Hooks").

The first run takes the usual path (in the hook, staged, or deferred to the batch's end); each
later run is reduced at once into a per-layer row here (device ops, no host read), and
``fold`` adds the rows into the slot at the batch's commit, after the first runs' values are in.
"""

from __future__ import annotations

import torch

__all__ = ["RepeatRuns"]


class RepeatRuns:
    """Per layer, the (sum, sum of squares, min, max) of its later runs in this batch."""

    __slots__ = ("buf", "layers")

    def __init__(self) -> None:
        self.buf: torch.Tensor | None = None  # (L, 4), on the outputs' device
        self.layers: list[int] = []  # the layers with a later run in this batch

    def add(self, layer: int, n_layers: int, flat: torch.Tensor) -> None:
        """One more run of ``layer`` in this batch: its output's four numbers into its row."""
        buf = self.buf
        if buf is None or buf.device != flat.device or buf.shape[0] != n_layers:
            buf = self.buf = torch.zeros((n_layers, 4), device=flat.device)
        lo, hi = torch.aminmax(flat)
        v = torch.stack((flat.sum(), torch.dot(flat, flat), lo, hi))
        row = buf[layer]
        if layer not in self.layers:
            self.layers.append(layer)
            row.copy_(v)
            return
        row[:2] += v[:2]
        torch.minimum(row[2:3], v[2:3], out=row[2:3])
        torch.maximum(row[3:], v[3:], out=row[3:])

    def fold(self, views: list, slot: int, extremes: torch.Tensor | None) -> None:
        """Add the later runs into ``slot``: each layer's sum and sum of squares (its ``views``
        1 and 2, as ``SampleSlots.views``), and its (min, max) into ``extremes`` (L, chunk,
        >= 2) when given; then forget them."""
        if not self.layers:
            return
        assert self.buf is not None
        for layer in self.layers:
            row, v = self.buf[layer], views[layer]
            v[1][slot].add_(row[0])
            v[2][slot].add_(row[1])
            if extremes is not None:
                ext = extremes[layer, slot]
                torch.minimum(ext[0:1], row[2:3], out=ext[0:1])
                torch.maximum(ext[1:2], row[3:], out=ext[1:2])
        self.layers.clear()

    def clear(self) -> None:
        """Forget this batch's later runs (a batch that never committed)."""
        self.layers.clear()
