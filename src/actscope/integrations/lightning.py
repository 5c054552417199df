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

The diagnosis signals: gradient norms in ``on_before_optimizer_step`` (after AMP's unscale,
before Lightning's own gradient clipping: the unclipped norms), update ratios in
``on_train_batch_end`` of a batch that stepped, the model output from forward hooks on the
LightningModule and on the network it wraps (the last one that returns logits wins), the scalars
at each recorded step's end: ``loss`` (the training step's), ``lr`` (the first optimizer's first
param group), and every ``log_every``-th step ``trainer.callback_metrics`` (device tensors, kept on
the device until the read-back; read no more often because Lightning turns its prog_bar values
into Python numbers there, a host sync on a GPU), and ``meta["context"]`` from the trainer's
optimizer, scheduler, clipping, precision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from actscope.errors import UsageError
from actscope.integrations import REPORT_SUBDIR, require
from actscope.integrations.loggers import LayerScalars, check_log_every
from actscope.integrations.recording import StepRecorder, inner_network
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
        log_every: read the trainer's logged metrics (``callback_metrics``) every ``log_every``
            steps, and send the per-layer scalars (``actscope/<layer>/std``, ``max_abs``,
            ``dead_share``, ``grad_norm``, ``update_ratio``) of one record per ``log_every``
            optimizer steps to every logger in ``trainer.loggers``, at each flush.
        loggers: False sends nothing to the trainer's loggers.
        **telemetry_kwargs: the accumulator's settings (bins, hist_range, grads, output, ...).
    """

    def __init__(self, out_dir: str | Path | None = None, modules: Any = None, every: int = 1,
                 report: bool = True, log_every: int = 50, loggers: bool = True,
                 **telemetry_kwargs: Any) -> None:
        self.recorder = StepRecorder("ActscopeCallback", modules, every, **telemetry_kwargs)
        self.log_every = check_log_every("ActscopeCallback", log_every)
        self._scalars = LayerScalars(self.log_every)
        self._loggers: list[Any] = []  # the running fit's trainer.loggers
        self._use_loggers = loggers
        self._listening = False  # _to_loggers is a flush listener (from the first fit with loggers)
        self.out_dir = None if out_dir is None else Path(out_dir)
        self._state_key: tuple[Path | None, str] | None = None  # (out_dir, key): built once
        self.write = report
        self.report_path: Path | None = None
        self._dir: Path | None = None
        self._step = -1  # global_step at the current batch's start

    @property
    def state_key(self) -> str:
        # Two callbacks writing to different folders keep separate states in one checkpoint.
        # Lightning reads the key at every hook call (its profiler's action names): built once.
        if self._state_key is None or self._state_key[0] != self.out_dir:
            key = self._generate_state_key(
                out_dir=None if self.out_dir is None else str(self.out_dir))
            self._state_key = (self.out_dir, key)
        return self._state_key[1]

    # ---- set-up and tear-down ------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # trainer.log_dir broadcasts from rank 0: every rank must ask, so ask before the rank test.
        log_dir = Path(trainer.log_dir or trainer.default_root_dir)
        self._dir = self.out_dir or log_dir / REPORT_SUBDIR
        self.report_path = None
        self._loggers, self._scalars = list(trainer.loggers), LayerScalars(self.log_every)
        if self._use_loggers and self._loggers and not self._listening:
            # only a fit with loggers listens: else each flush would build a chunk for nobody
            self.recorder.feed.add(self._to_loggers)
            self._listening = True
        if trainer.is_global_zero:  # the other ranks register no hook at all
            if self.write:
                self.recorder.check_report_target(self._dir)
            inner = inner_network(pl_module)
            self.recorder.attach(pl_module, output_roots=[inner, pl_module]
                                 if inner is not pl_module else [pl_module],
                                 **lightning_context(trainer))

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        self._step = trainer.global_step
        self.recorder.begin(self._step)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        # One record per optimizer step: with accumulate_grad_batches=k, global_step moves on
        # every k-th batch only, and the micro-batches in between belong to that step's record.
        if trainer.global_step != self._step:
            self.recorder.after_step()
            if self.recorder.acc.recording:  # the metrics only where they are recorded
                # trainer.callback_metrics turns prog_bar values into Python numbers (a host
                # sync on a GPU): read it every log_every-th step only, the loss every step
                logged = self._step % self.log_every == 0
                self.recorder.scalars(step_scalars(trainer, outputs, logged))
            self.recorder.end()

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: Any) -> None:
        self.recorder.before_step()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.recorder.end_epoch(trainer.current_epoch)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Before the loggers' finalize (after fit end): the records still in the chunk.
        if trainer.is_global_zero:
            self.recorder.feed.finish()

    def _to_loggers(self, chunk: Telemetry) -> None:
        """A flush listener: the chunk's due records to every logger of the fit."""
        if not self._loggers:  # a later fit without loggers
            return
        for step, metrics in self._scalars.points(chunk):
            for logger in self._loggers:
                logger.log_metrics(metrics, step)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.recorder.remove()
        if self.write and trainer.is_global_zero and self.recorder.n_records:
            self.report_path = self.recorder.report(self._dir, title=_run_name(trainer))
            if trainer.progress_bar_callback is not None:  # quiet with enable_progress_bar=False
                print(f"actscope: report written to {self.report_path} "
                      f"({self.recorder.report_seconds:.1f} s)")

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


def _precision(trainer: pl.Trainer) -> str | None:
    p = str(getattr(trainer, "precision", ""))
    return "bf16" if p.startswith("bf16") else "fp16" if p.startswith("16") else None


def lightning_context(trainer: pl.Trainer) -> dict[str, Any]:
    """``run_context`` arguments from a Lightning trainer (at fit start: optimizers exist)."""
    opts = list(getattr(trainer, "optimizers", []) or [])
    scheds = list(getattr(trainer, "lr_scheduler_configs", []) or [])
    clip = getattr(trainer, "gradient_clip_val", None)
    return {"optimizer": opts[0] if opts else None, "optimizers": opts,
            "scheduler": scheds[0].scheduler if scheds else None,
            "grad_clip": float(clip) if clip else None,
            "mixed_precision": _precision(trainer),
            "trainer": {"trainer": "lightning", "precision": str(trainer.precision),
                        "accumulate_grad_batches": trainer.accumulate_grad_batches,
                        "gradient_clip_algorithm": getattr(trainer, "gradient_clip_algorithm",
                                                           None),
                        "max_epochs": trainer.max_epochs, "max_steps": trainer.max_steps}}


def step_scalars(trainer: pl.Trainer, outputs: Any, logged: bool = True) -> dict[str, Any]:
    """The step's loss and lr, and (``logged``) the trainer's logged metrics, as numbers or
    1-element tensors. Only ``logged`` reads ``trainer.callback_metrics``, which converts
    prog_bar metrics with ``.item()``: the caller asks for it every ``log_every`` steps."""
    values: dict[str, Any] = {}
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        values["loss"] = loss.detach()
    opts = trainer.optimizers  # a property through the strategy: read once
    if opts:
        lr = opts[0].param_groups[0].get("lr")
        if isinstance(lr, (int, float, torch.Tensor)) and not isinstance(lr, bool):
            values["lr"] = lr
    for name, v in (trainer.callback_metrics.items() if logged else ()):
        if isinstance(v, torch.Tensor) and v.numel() == 1 and v.is_floating_point():
            values.setdefault(str(name), v.detach())
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            values.setdefault(str(name), v)
    return values


def _run_name(trainer: pl.Trainer) -> str | None:
    """The trainer's run name for the report's title: its logger's name and version (e.g.
    "lightning_logs version_3"), else None (the writer then uses the folder's name)."""
    logger = trainer.logger
    if logger is None:
        return None
    name, version = getattr(logger, "name", None), getattr(logger, "version", None)
    if isinstance(version, int):
        version = f"version_{version}"
    return " ".join(str(p) for p in (name, version) if p) or None
