"""TensorBoardCallback: loss, lr, epoch metrics and activation statistics into TensorBoard.

Optional extra: ``pip install "actscope[tensorboard]"``. ``torch.utils.tensorboard`` is imported
only when a fit starts, so importing actscope never needs TensorBoard. Everything is written once
per epoch (one read-back), never per batch: the per-batch loss stays on the device until then.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from actscope.callback import Callback
from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.callbacks.metrics import MetricsCallback
from actscope.errors import UsageError
from actscope.oserrors import write_error
from actscope.pathtext import user_path
from actscope.telemetry.record import Telemetry

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["TensorBoardCallback", "summary_writer"]


def summary_writer(log_dir: str | os.PathLike[str], what: str) -> Any:
    """A ``SummaryWriter`` for ``log_dir``; one-line errors (``what`` names the argument).

    The folder is a path like every other actscope path: ``~`` expanded (TensorBoard itself
    would make a folder named "~"), UTF-8. A file in the way, or a folder that cannot be made
    (a file above it, a read-only disk, no permission), is one ActscopeError, not a traceback.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # tensorboard is an optional extra
        raise UsageError(f"{what} needs the tensorboard package: "
                         'pip install "actscope[tensorboard]" (or pip install tensorboard)') from e
    path = user_path(log_dir, what)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {os.fspath(log_dir)!r}: {path} is a file, not a folder; pass "
                         "a folder for the event files")
    try:
        return SummaryWriter(log_dir=str(path))
    except OSError as e:
        raise write_error(path, e) from None


class TensorBoardCallback(Callback):
    """Writes train/loss and train/lr per batch, epoch metrics, and per-layer activation stats.

    Activation statistics come from an ``ActivationStatsCallback`` in the same Learner (if any),
    through its public ``n_records`` and ``result()``: per layer, the mean/std/dead-share scalars
    of every record and one histogram per epoch.
    """

    order = 25  # after MetricsCallback (10) and RecorderCallback (20) have finished their epoch

    def __init__(self, log_dir: str | Path = "runs/tensorboard", histograms: bool = True) -> None:
        self.log_dir, self.histograms = str(log_dir), histograms
        self.writer: Any = None

    def before_fit(self, learn: Learner) -> None:
        self.writer = summary_writer(self.log_dir, "TensorBoardCallback(log_dir=...)")
        self._losses: list[torch.Tensor] = []
        self._lrs: list[float] = []
        self._steps: list[int] = []
        self._written = 0  # telemetry records already written

    def after_step(self, learn: Learner) -> None:
        self._losses.append(learn.loss.detach())  # stays on the device until the epoch ends
        self._lrs.append(learn.opt.param_groups[0]["lr"])  # a Python float: no sync
        self._steps.append(learn.train_iter - 1)  # 0-based batch index, like Telemetry.iters

    def after_epoch(self, learn: Learner) -> None:
        self._write_batches()
        self._write_metrics(learn)
        self._write_activations(learn)
        self.writer.flush()

    def after_fit(self, learn: Learner) -> None:
        if self.writer is None:
            return
        self._write_batches()  # whatever a cancelled epoch left
        self.writer.close()
        self.writer = None

    def _write_batches(self) -> None:
        if not self._losses:
            return
        losses = torch.stack(self._losses).float().cpu().numpy()  # one read-back per epoch
        for step, loss, lr in zip(self._steps, losses, self._lrs, strict=True):
            self.writer.add_scalar("train/loss", float(loss), step)
            self.writer.add_scalar("train/lr", lr, step)
        self._losses, self._lrs, self._steps = [], [], []

    def _write_metrics(self, learn: Learner) -> None:
        metrics = learn.find_cb(MetricsCallback)
        if metrics is None or not metrics.history:
            return
        row = metrics.history[-1]
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and np.isfinite(value):
                self.writer.add_scalar(f"epoch/{key}", value, row.get("epoch", learn.epoch))

    def _write_activations(self, learn: Learner) -> None:
        stats_cb = learn.find_cb(ActivationStatsCallback)
        if stats_cb is None or stats_cb.n_records == 0:
            return
        t = stats_cb.result()
        new = slice(self._written, len(t.iters))
        for i, name in enumerate(t.names):
            tag = re.sub(r"[^0-9A-Za-z_.-]+", "_", name)  # "0 conv 1→8" -> "0_conv_1_8"
            for j, step in enumerate(t.iters[new], start=self._written):
                self.writer.add_scalar(f"activations/{tag}/mean", t.mean[i, j], int(step))
                self.writer.add_scalar(f"activations/{tag}/std", t.std[i, j], int(step))
                self.writer.add_scalar(f"activations/{tag}/dead_share", t.dead[i, j], int(step))
            if self.histograms and len(t.iters) > self._written:
                self._histogram(f"activations/{tag}", t, i, len(t.iters) - 1)
        self._written = len(t.iters)

    def _histogram(self, tag: str, t: Telemetry, layer: int, rec: int) -> None:
        counts = t.hist[layer, rec].astype(np.float64)
        lo, hi = (float(v) for v in t.hist_range[layer, rec])
        edges = np.linspace(lo, hi, len(counts) + 1)
        n = counts.sum()
        mean, std = float(t.mean[layer, rec]), float(t.std[layer, rec])
        if n == 0 or not np.isfinite(mean) or not np.isfinite(std):
            return
        self.writer.add_histogram_raw(
            tag, min=lo, max=hi, num=int(n), sum=mean * n, sum_squares=(std ** 2 + mean ** 2) * n,
            bucket_limits=edges[1:].tolist(), bucket_counts=counts.tolist(),
            global_step=int(t.iters[rec]))
