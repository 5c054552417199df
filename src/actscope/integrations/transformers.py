"""``ActscopeCallback`` for the Hugging Face ``Trainer``: telemetry and a report from ``train()``.

    from actscope.integrations.transformers import ActscopeCallback
    trainer = transformers.Trainer(model, args, train_dataset=ds, callbacks=[ActscopeCallback()])
    trainer.train()                # -> <args.output_dir>/actscope/report.html

Built on the on-device accumulator of ``actscope.watch()`` and actscope's Learner. By default
it watches the model's transformer blocks (the members of its largest ``nn.ModuleList``: GPT-2's
``transformer.h``, BERT's ``encoder.layer``) and reads each block's hidden states (the first
tensor of a tuple output). The Trainer's conventions:

- one record per optimizer step (``state.global_step``): with ``gradient_accumulation_steps=k``
  a step's record describes its last micro-batch; evaluation runs in eval mode, not recorded;
- only the world's main process watches and writes;
- the recording is saved into each ``checkpoint-N`` folder (``actscope_telemetry.pt``, tensors only)
  and picked up again by ``trainer.train(resume_from_checkpoint=...)``, from the checkpoint that
  is resumed (wherever it lies), and only if it was saved with that checkpoint's trainer state
  (else the recording starts afresh, with a warning);
- the hooks come off at the end of training. The Trainer has no exception event: if ``train()``
  raises, call ``callback.remove()``, or hold the callback in a ``with`` block.

The diagnosis signals: gradient norms in ``on_pre_optimizer_step``, which the Trainer calls
AFTER its gradient clipping (``max_grad_norm``, default 1.0): the per-layer profile is right,
the level is the clipped one (the Trainer's own unclipped total is ``grad_norm`` in the
scalars); update ratios in ``on_optimizer_step``; the output from a forward hook on the model;
``meta["context"]`` from the optimizer, scheduler and ``TrainingArguments`` at train begin.
The scalars come from each ``on_log`` and from ``state.log_history`` at train end (host
numbers: loss, ``lr`` (the Trainer's ``learning_rate``), grad_norm, eval metrics; after a
resume the history holds the earlier steps too): an entry logged at step ``s`` describes the
optimizer step recorded as iteration ``s - 1`` (``on_step_begin`` numbers a step before the
Trainer increments ``global_step``), so with ``every > 1`` an entry lands only where that step
was recorded.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from actscope.errors import UsageError
from actscope.integrations import REPORT_SUBDIR, require
from actscope.integrations.hf_logs import HFLogs, move_first
from actscope.integrations.loggers import check_log_every
from actscope.integrations.recording import StepRecorder
from actscope.safe_load import safe_torch_load
from actscope.telemetry.record import Telemetry

require("transformers", "transformers")

from transformers import TrainerCallback  # noqa: E402  (after the check that names the extra)

__all__ = ["ActscopeCallback", "STATE_FILE"]

STATE_FILE = "actscope_telemetry.pt"  # in each checkpoint-N folder


def _trainer_mark(state: Any) -> str:
    """What ties a saved recording to its checkpoint: the step and the trainer's last log entry
    (both in the checkpoint's trainer_state.json, written just before ``on_save``)."""
    return json.dumps([state.global_step, state.log_history[-1:]], sort_keys=True, default=str)


def _resumed_checkpoint(args: Any, state: Any) -> Path:
    """The checkpoint folder ``train()`` resumes from.

    The Trainer does not pass it to callbacks, so it is read from the ``resume_from_checkpoint``
    argument of the Trainer's training loop on the call stack (a checkpoint may lie outside
    ``output_dir``); else ``<output_dir>/checkpoint-<step>``, where ``resume_from_checkpoint=True``
    finds it. ``_trainer_mark`` then checks that what is found belongs to the checkpoint.
    """
    frame = inspect.currentframe()
    try:
        while frame is not None:
            value = frame.f_locals.get("resume_from_checkpoint") if frame.f_code.co_name in (
                "_inner_training_loop", "train") else None
            if isinstance(value, (str, os.PathLike)):
                return Path(value)
            frame = frame.f_back
    finally:
        del frame
    return Path(args.output_dir) / f"checkpoint-{state.global_step}"


class ActscopeCallback(TrainerCallback):
    """Records activation telemetry during ``Trainer.train()`` and writes the report at its end.

    Args:
        out_dir: where the report goes; default ``<args.output_dir>/actscope``.
        modules: what to watch (a list, a type, a name pattern or ``model -> modules``); default
            the model's repeated blocks (``actscope.telemetry.modules.default_modules``).
        every: record every ``every``-th optimizer step.
        report: write telemetry.npz, findings.json, plots/ and report.html at the end.
        log_every: add the per-layer scalars (``actscope/<layer>/std``, ``max_abs``,
            ``dead_share``, ``grad_norm``, ``update_ratio``) of a record at most once per
            ``log_every`` optimizer steps to the Trainer's ``logs``, so ``report_to`` sends them.
        loggers: False adds nothing to the logs.
        **telemetry_kwargs: the accumulator's settings (bins, hist_range, output, ...).
    """

    def __init__(self, out_dir: str | Path | None = None, modules: Any = None, every: int = 1,
                 report: bool = True, log_every: int = 50, loggers: bool = True,
                 **telemetry_kwargs: Any) -> None:
        self.recorder = StepRecorder("ActscopeCallback", modules, every, **telemetry_kwargs)
        log_every = check_log_every("ActscopeCallback", log_every)
        self._logs = HFLogs(self.recorder.feed, log_every) if loggers else None
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.write = report
        self.report_path: Path | None = None
        self._dir: Path | None = None

    # ---- the Trainer's events ------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any,
                       model: torch.nn.Module | None = None, **kwargs: Any) -> None:
        self._dir = self.out_dir or Path(args.output_dir) / REPORT_SUBDIR
        self.report_path = None
        if not state.is_world_process_zero:  # the other processes register no hook at all
            return
        if self._logs is not None:  # before report_to's callbacks, so they send our keys
            self._logs.reset()
            move_first(self)
        if model is None:
            raise UsageError("ActscopeCallback got no model from the Trainer at train begin; "
                             "pass the model to transformers.Trainer(model=...)")
        if self.write:
            self.recorder.check_report_target(self._dir)
        if state.global_step > 0:  # resumed: continue the checkpoint's recording, if it has one
            self._load_recording(_resumed_checkpoint(args, state) / STATE_FILE, state)
        self.recorder.attach(model, **hf_context(args, kwargs))

    def _load_recording(self, saved: Path, state: Any) -> None:
        """Continue the recording saved with the resumed checkpoint, if it belongs to it."""
        if not saved.is_file():
            return
        # Tensors and plain containers only: never unpickles code. A damaged file is one line
        # (CheckpointError) naming it, not torch's unpickler traceback.
        data = safe_torch_load(saved, "delete that file to start the recording over (the "
                                      "training itself resumes without it)")
        mark = data.pop("trainer", None) if isinstance(data, dict) else None
        if mark is not None and mark != _trainer_mark(state):
            warnings.warn(f"{saved} was saved with another trainer state than the checkpoint "
                          f"resumed at step {state.global_step} (another run's?): not used; the "
                          "recording starts afresh", stacklevel=2)
            return
        self.recorder.load_state_dict(data, str(saved))

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Called before the first micro-batch of each optimizer step.
        self.recorder.begin(state.global_step)

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.recorder.before_step()

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.recorder.after_step()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Called once per optimizer step, after the last micro-batch of gradient accumulation.
        self.recorder.end()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # state.epoch is fractional (epoch + share done): the epoch that just ended, 0-based.
        self.recorder.end_epoch(max(math.ceil(state.epoch or 0) - 1, 0))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and self.recorder.attached and folder.is_dir():
            torch.save({**self.recorder.state_dict(), "trainer": _trainer_mark(state)},
                       folder / STATE_FILE)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        # host numbers already; kept per step, so a result() before train end has them too
        if logs and state.is_world_process_zero:
            for step, values in log_scalars([{**logs, "step": state.global_step}]).items():
                self.recorder.acc.add_step_scalars(step, values)
            if self._logs is not None and self.recorder.n_records:  # after: not our own scalars
                self._logs.add_to(logs, state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.recorder.remove()
        if state.is_world_process_zero:
            for step, values in log_scalars(state.log_history).items():
                self.recorder.acc.add_step_scalars(step, values)
        if self.write and state.is_world_process_zero and self.recorder.n_records:
            # HF's run_name, else the run folder (output_dir: transformers 5 leaves run_name
            # None), so the page is not titled after our own "actscope" subfolder
            title = getattr(args, "run_name", None) or _folder_name(args)
            self.report_path = self.recorder.report(self._dir, title=title)
            if not getattr(args, "disable_tqdm", False):  # as quiet as the Trainer
                print(f"actscope: report written to {self.report_path} "
                      f"({self.recorder.report_seconds:.1f} s)")

    # ---- results and clean-up ------------------------------------------------------------
    def remove(self) -> None:
        """Take the hooks off the model (idempotent); the recording stays readable."""
        self.recorder.remove()

    def __enter__(self) -> ActscopeCallback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def result(self) -> Telemetry:
        """The telemetry recorded so far (on the main process; the others record nothing)."""
        return self.recorder.result()

    def report(self, out_dir: str | Path | None = None) -> Path:
        """Write the report now (e.g. after an interrupted run); returns report.html's path."""
        target = Path(out_dir) if out_dir is not None else self._dir
        if target is None:
            raise UsageError("ActscopeCallback.report() has no folder before training started; "
                             "pass one: report('runs/my-run')")
        return self.recorder.report(target)


# log entries of the Trainer's final summary (not per step), and keys that are not metrics
_SKIP = frozenset({"step", "epoch", "total_flos", "train_runtime", "train_samples_per_second",
                   "train_steps_per_second", "train_loss", "num_input_tokens_seen"})


def log_scalars(log_history: list[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """The Trainer's log history as {recorded iteration: {name: value}} (``learning_rate`` is
    named ``lr``); an entry of step ``s`` belongs to iteration ``s - 1`` (module doc)."""
    out: dict[int, dict[str, float]] = {}
    for entry in log_history:
        step = entry.get("step")
        if not isinstance(step, int) or step < 1 or "train_runtime" in entry:
            continue
        vals = {("lr" if k == "learning_rate" else k): float(v) for k, v in entry.items()
                if k not in _SKIP and not k.endswith(("_runtime", "_per_second"))
                and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if vals:
            out.setdefault(step - 1, {}).update(vals)
    return out


def hf_context(args: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``run_context`` arguments from the Trainer's arguments and its train-begin kwargs."""
    opt = kwargs.get("optimizer")
    opt = getattr(opt, "optimizer", opt)  # accelerate's AcceleratedOptimizer wraps the real one
    sched = kwargs.get("lr_scheduler")
    sched = getattr(sched, "scheduler", sched)  # accelerate's AcceleratedScheduler, likewise
    clip = getattr(args, "max_grad_norm", None)
    mp = "bf16" if getattr(args, "bf16", False) else "fp16" if getattr(args, "fp16", False) \
        else None
    fields = ("learning_rate", "weight_decay", "warmup_steps", "warmup_ratio", "lr_scheduler_type",
              "max_grad_norm", "gradient_accumulation_steps", "per_device_train_batch_size",
              "num_train_epochs", "max_steps", "optim")
    trainer = {"trainer": "transformers"} | {f: getattr(args, f, None) for f in fields}
    return {"optimizer": opt if isinstance(opt, torch.optim.Optimizer) else None,
            "scheduler": sched, "grad_clip": float(clip) if clip and clip > 0 else None,
            "mixed_precision": mp, "trainer": trainer}


def _folder_name(args: Any) -> str | None:
    """The name of the Trainer's ``output_dir`` (the run folder), None without one."""
    out = getattr(args, "output_dir", None)
    return Path(out).resolve().name if out else None
