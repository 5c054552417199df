"""``ActscopeCallback`` for Lightning: activation telemetry and a report from ``trainer.fit``.

    from actscope.integrations.lightning import ActscopeCallback
    trainer = lightning.Trainer(callbacks=[ActscopeCallback()])
    trainer.fit(model, train_dl)   # -> <trainer.log_dir>/actscope/report.html

Built on the same on-device accumulator as ``actscope.watch()`` and actscope's own Learner, so
the same cost (no host sync per batch) and the same files. Lightning's conventions:

- one record per optimizer step (``trainer.global_step``), so gradient accumulation records one
  step, not one per micro-batch; validation and the sanity check run in eval mode and are not
  recorded;
- only global rank 0 watches and writes; the other ranks register no hook at all;
- the recording is part of Lightning checkpoints (``state_dict`` / ``load_state_dict``), so
  ``trainer.fit(..., ckpt_path=...)`` continues it;
- it prints one line (where the report is) only when the progress bar is on;
- its hooks come off on fit end, on an exception and on teardown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actscope.errors import UsageError
from actscope.integrations import REPORT_SUBDIR, require
from actscope.integrations.recording import StepRecorder
from actscope.telemetry.record import Telemetry

require("lightning", "lightning")

import lightning.pytorch as pl  # noqa: E402  (after the check that names the extra)

__all__ = ["ActscopeCallback"]


class ActscopeCallback(pl.Callback):
    """Records activation telemetry during ``trainer.fit`` and writes the report at its end.

    Args:
        out_dir: where the report goes; default ``<trainer.log_dir>/actscope``.
        modules: what to watch (a list, a type, a name pattern or ``model -> modules``); default
            the model's repeated blocks (``actscope.telemetry.modules.default_modules``).
        every: record every ``every``-th optimizer step.
        report: write telemetry.npz, findings.json, plots/ and report.html at fit end.
        **telemetry_kwargs: the accumulator's settings (bins, hist_range, grads, output, ...).
    """

    def __init__(self, out_dir: str | Path | None = None, modules: Any = None, every: int = 1,
                 report: bool = True, **telemetry_kwargs: Any) -> None:
        self.recorder = StepRecorder("ActscopeCallback", modules, every, **telemetry_kwargs)
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.write = report
        self.report_path: Path | None = None
        self._dir: Path | None = None
        self._step = -1  # global_step at the current batch's start

    @property
    def state_key(self) -> str:
        # Two callbacks writing to different folders keep separate states in one checkpoint.
        return self._generate_state_key(out_dir=None if self.out_dir is None else str(self.out_dir))

    # ---- set-up and tear-down ------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # trainer.log_dir broadcasts from rank 0: every rank must ask, so ask before the rank test.
        log_dir = Path(trainer.log_dir or trainer.default_root_dir)
        self._dir = self.out_dir or log_dir / REPORT_SUBDIR
        self.report_path = None
        if trainer.is_global_zero:  # the other ranks register no hook at all
            if self.write:
                self.recorder.check_report_target(self._dir)
            self.recorder.attach(pl_module)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        self._step = trainer.global_step
        self.recorder.begin(self._step)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        # One record per optimizer step: with accumulate_grad_batches=k, global_step moves on
        # every k-th batch only, and the micro-batches in between belong to that step's record.
        if trainer.global_step != self._step:
            self.recorder.end()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.recorder.end_epoch(trainer.current_epoch)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.recorder.remove()
        if self.write and trainer.is_global_zero and self.recorder.n_records:
            self.report_path = self.recorder.report(self._dir)
            if trainer.progress_bar_callback is not None:  # quiet with enable_progress_bar=False
                print(f"actscope: report written to {self.report_path}")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        # The recording so far stays readable through result() / report(); only the hooks go.
        self.recorder.remove()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.recorder.remove()

    def remove(self) -> None:
        """Take the hooks off the model (idempotent); the recording stays readable."""
        self.recorder.remove()

    # ---- results -------------------------------------------------------------------------
    def result(self) -> Telemetry:
        """The telemetry recorded so far (on global rank 0; the others record nothing)."""
        return self.recorder.result()

    def report(self, out_dir: str | Path | None = None) -> Path:
        """Write the report now (e.g. after an interrupted fit); returns report.html's path."""
        target = Path(out_dir) if out_dir is not None else self._dir
        if target is None:
            raise UsageError("ActscopeCallback.report() has no folder before a fit started; "
                             "pass one: report('runs/my-run')")
        return self.recorder.report(target)

    # ---- Lightning checkpoints -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The recording so far, saved in Lightning checkpoints (empty where nothing recorded)."""
        return self.recorder.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the checkpointed recording (applied when the hooks go on, if not on yet)."""
        # Lightning restores callbacks before on_fit_start for most strategies, after it for
        # others: the recorder keeps the state until its hooks exist.
        self.recorder.load_state_dict(state_dict, f"Lightning checkpoint [{self.state_key}]")
