"""ProgressCallback: a rich progress bar over batches and a table row after each epoch."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from actscope.callback import Callback
from actscope.callbacks.metrics import MetricsCallback

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["ProgressCallback", "format_epoch_row"]

# (history key, header, width); accuracy columns fall back to the first metric of the phase.
_COLUMNS = (("epoch", "epoch", 5), ("train_loss", "train_loss", 10), ("train_acc", "train_acc", 9),
            ("valid_loss", "valid_loss", 10), ("valid_acc", "valid_acc", 9), ("seconds", "time", 7))


def _metric_of(row: dict[str, Any], phase: str) -> Any:
    if f"{phase}_accuracy" in row:
        return row[f"{phase}_accuracy"]
    others = [k for k in row if k.startswith(phase + "_") and k != f"{phase}_loss"]
    return row[others[0]] if others else math.nan


def format_epoch_row(row: dict[str, Any]) -> list[str]:
    """The table cells for one MetricsCallback history row."""
    values = {"epoch": row.get("epoch"), "train_loss": row.get("train_loss", math.nan),
              "train_acc": _metric_of(row, "train"), "valid_loss": row.get("valid_loss", math.nan),
              "valid_acc": _metric_of(row, "valid"), "seconds": row.get("seconds", math.nan)}
    cells = []
    for key, _, width in _COLUMNS:
        v = values[key]
        if key == "epoch":
            cells.append(f"{v:>{width}}")
        elif key == "seconds":
            cells.append(f"{v:>{width - 1}.1f}s")
        else:
            cells.append(f"{v:>{width}.4f}")
    return cells


class ProgressCallback(Callback):
    """Shows a bar over each phase's batches and prints one table row per epoch.

    The bar is off when the console is not a terminal (logs, CI) or ``show_bar=False``. The table
    reads MetricsCallback's history, which is already on the host: no extra sync.
    """

    order = 80

    def __init__(self, show_bar: bool = True, print_table: bool = True,
                 console: Console | None = None) -> None:
        self.show_bar, self.print_table = show_bar, print_table
        self.console = console if console is not None else Console()
        self._progress: Progress | None = None
        self._task: Any = None
        # Set here, not only in before_fit: after_fit runs even when an earlier callback's
        # before_fit failed, and must not hide that error behind an AttributeError.
        self._header_done, self._printed = False, 0

    def before_fit(self, learn: Learner) -> None:
        self._header_done, self._printed = False, 0
        if self.show_bar and self.console.is_terminal:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeRemainingColumn(),
                                      console=self.console, transient=True)
            self._progress.start()

    def _phase_start(self, learn: Learner, name: str) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        total = len(learn.dl) if hasattr(learn.dl, "__len__") else None
        self._task = self._progress.add_task(f"epoch {learn.epoch} {name}", total=total)

    def before_train(self, learn: Learner) -> None:
        self._phase_start(learn, "train")

    def before_validate(self, learn: Learner) -> None:
        self._phase_start(learn, "valid")

    def after_batch(self, learn: Learner) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def after_epoch(self, learn: Learner) -> None:
        metrics = learn.find_cb(MetricsCallback)
        if metrics is None:
            self._print_rows([{"epoch": learn.epoch}])
        else:
            self._print_new_rows(metrics)

    def _print_new_rows(self, metrics: MetricsCallback) -> None:
        self._print_rows(metrics.history[self._printed:])
        self._printed = len(metrics.history)

    def _print_rows(self, rows: list[dict[str, Any]]) -> None:
        if not self.print_table or not rows:
            return
        if not self._header_done:
            self.console.print("  ".join(f"{h:>{w}}" for _, h, w in _COLUMNS), highlight=False)
            self._header_done = True
        for row in rows:
            self.console.print("  ".join(format_epoch_row(row)), highlight=False)

    def after_fit(self, learn: Learner) -> None:
        # A callback that stops the fit in after_epoch (early stopping) runs before this one:
        # print the rows that epoch's after_epoch did not reach.
        metrics = learn.find_cb(MetricsCallback)
        if metrics is not None:
            self._print_new_rows(metrics)
        if self._progress is not None:
            self._progress.stop()
            self._progress, self._task = None, None
