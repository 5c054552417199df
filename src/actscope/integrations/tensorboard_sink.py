"""``TensorBoardSink``: ``watch()``'s per-layer scalars and histograms into a TensorBoard writer.

A flush listener (``loggers.FlushFeed``): each chunk of new records becomes, per due record (one
per ``log_every`` steps), the ``actscope/<layer>/...`` scalars of ``loggers.LayerScalars`` and
one histogram per layer, ``actscope/<layer>/hist``, written with ``add_histogram_raw`` from the
recorded sample counts (the in-range bins; the under/overflow counts are logged as the scalar
``actscope/<layer>/out_of_range``). ``torch.utils.tensorboard`` is imported only when a sink is
made, so importing actscope never needs TensorBoard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from actscope.callbacks.tensorboard import summary_writer
from actscope.errors import UsageError
from actscope.integrations.loggers import LayerScalars, layer_tag
from actscope.telemetry.record import Telemetry

__all__ = ["TensorBoardSink", "histogram_args"]


def histogram_args(counts: np.ndarray, lo: float, hi: float) -> dict[str, Any] | None:
    """``add_histogram_raw``'s arguments for ``counts`` over equal bins on [lo, hi]; None if empty.

    sum and sum of squares are taken at the bin centres (the samples themselves are gone).
    """
    counts = np.asarray(counts, dtype=np.float64)
    num = counts.sum()
    if not np.isfinite(lo) or not np.isfinite(hi) or num <= 0:
        return None
    edges = np.linspace(lo, hi, counts.shape[0] + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    filled = np.nonzero(counts)[0]
    return {"min": float(edges[filled[0]]), "max": float(edges[filled[-1] + 1]),
            "num": int(num), "sum": float((centres * counts).sum()),
            "sum_squares": float((centres * centres * counts).sum()),
            "bucket_limits": edges[1:].tolist(), "bucket_counts": counts.tolist()}


class TensorBoardSink:
    """Writes chunks of records to a ``SummaryWriter`` (given, or made for a folder and owned)."""

    def __init__(self, writer_or_dir: Any, log_every: int = 50, histograms: bool = True) -> None:
        if isinstance(writer_or_dir, (str, Path)):
            self.writer, self.owned = summary_writer(writer_or_dir, "watch(tensorboard=...)"), True
        elif callable(getattr(writer_or_dir, "add_scalar", None)):
            self.writer, self.owned = writer_or_dir, False
        else:
            raise UsageError(f"tensorboard= takes a folder or a SummaryWriter, got "
                             f"{type(writer_or_dir).__name__}; e.g. tensorboard='runs/tb'")
        self.scalars = LayerScalars(log_every)
        self.histograms = histograms

    def __call__(self, chunk: Telemetry) -> None:
        """Write the due records of ``chunk`` (a flush listener)."""
        record = {s: j for j, s in enumerate(chunk.iters.tolist())}  # step -> record index
        for step, metrics in self.scalars.points(chunk):
            for tag, value in metrics.items():
                self.writer.add_scalar(tag, value, step)
            if self.histograms:
                self._histograms(chunk, record[step], step)
        self.writer.flush()

    def _histograms(self, t: Telemetry, j: int, step: int) -> None:
        prefix = self.scalars.prefix
        for i, name in enumerate(t.names):
            tag = f"{prefix}/{layer_tag(name)}"
            rng = t.hist_range[i, j] if t.hist_range.ndim == 3 else t.hist_range[i]
            lo, hi = float(rng[0]), float(rng[1])  # per record (L, N, 2) or per layer (L, 2)
            args = histogram_args(t.hist[i, j], lo, hi)
            if args is not None:
                self.writer.add_histogram_raw(f"{tag}/hist", global_step=step, **args)
            if t.hist_under is not None and t.hist_over is not None:
                out = float(t.hist_under[i, j]) + float(t.hist_over[i, j])
                self.writer.add_scalar(f"{tag}/out_of_range", out, step)

    def close(self) -> None:
        """Flush; close the writer if the sink made it."""
        self.writer.flush()
        if self.owned:
            self.writer.close()
