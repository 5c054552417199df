"""StepRecorder: what the Lightning and Hugging Face callbacks share, trainer-independent.

A ``TelemetryAccumulator`` driven by the trainer's OPTIMIZER STEP counter (not actscope's own):
``begin(step)`` before the step's first forward, ``end()`` after its optimizer step. Between the
two, every training-mode forward of a watched module writes the step's record, so with gradient
accumulation the record describes the step's last micro-batch and the records are one per step.
Evaluation runs in eval mode (or between steps) and is never recorded. The report is the folder
``actscope.watch().report`` writes: telemetry.npz + findings.json (``publish_telemetry``, the one
diagnosis), plots/*.png and report.html.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from torch import nn

from actscope.dist import unwrap_model
from actscope.errors import UsageError
from actscope.integrations.loggers import FlushFeed
from actscope.pathtext import user_path
from actscope.report.folder import check_report_folder
from actscope.report.writer import write_run_report
from actscope.runs.report_claim import check_claim
from actscope.telemetry.accumulator import TelemetryAccumulator
from actscope.telemetry.modules import default_modules
from actscope.telemetry.record import Telemetry
from actscope.telemetry.settings import check_settings

__all__ = ["StepRecorder", "STATE_VERSION", "inner_network", "trainer_default_modules"]

STATE_VERSION = 1


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def inner_network(model: nn.Module) -> nn.Module:
    """The network a wrapper holds: down through children that hold all the parameters."""
    inner = model
    while True:
        kids = [c for c in inner.children() if _n_params(c) > 0]
        if len(kids) != 1 or _n_params(kids[0]) != _n_params(inner):
            return inner
        inner = kids[0]


def trainer_default_modules(model: nn.Module) -> list[nn.Module]:
    """``default_modules`` of the network a trainer's wrapper holds.

    A LightningModule (or any wrapper) whose parameters all sit in one child, as in
    ``self.net = cnn()``, would otherwise be watched as ONE block (the whole network): the rules
    then apply to that child, and on down through further single-child wrappers.
    """
    return default_modules(inner_network(model))


class StepRecorder:
    """An accumulator whose records are numbered by a trainer's optimizer steps."""

    def __init__(self, owner: str, modules: Any = None, every: int = 1,
                 **accumulator_kwargs: Any) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise UsageError(f"{owner}(every={every!r}): every must be an int >= 1; pass "
                             "every=1 to record every optimizer step")
        self.owner, self.modules = owner, modules
        # Built now, so a bad setting fails when the callback is made, not at fit start.
        check_settings(accumulator_kwargs, exclude=("every",))
        self.acc = TelemetryAccumulator(every=every, **accumulator_kwargs)
        self._pending: dict[str, Any] | None = None
        self._open = False
        self.feed = FlushFeed(self.acc)  # the trainers' loggers listen here (integrations/loggers)
        self.report_seconds = 0.0  # how long the last report took

    # ---- set-up and tear-down ------------------------------------------------------------
    def attach(self, model: nn.Module, output_roots: list[nn.Module] | None = None,
               **context: Any) -> list[str]:
        """Hooks on the watched modules of ``model`` (unwrapped); a pending state is restored.

        ``output_roots``: modules whose output is the model's (default: ``model``);
        ``context``: ``run_context``'s optimizer, scheduler, grad_clip, mixed_precision, trainer.
        """
        model = unwrap_model(model)
        names = self.acc.attach(model, self.modules if self.modules is not None
                                else trainer_default_modules(model), output_roots=output_roots)
        self.acc.build_context(model, **context)
        self._open = False
        if self._pending is not None:
            state, self._pending = self._pending, None
            self.acc.load_state_dict(state)
        self.feed.reset()  # restored records were sent by the run that made them
        return names

    def remove(self) -> None:
        """Remove the hooks (idempotent); the recording stays readable."""
        self.acc.remove()
        self._open = False

    @property
    def attached(self) -> bool:
        return self.acc.attached

    # ---- steps and epochs ----------------------------------------------------------------
    def begin(self, step: int) -> None:
        """Optimizer step ``step`` starts (called again per micro-batch: harmless)."""
        if self.acc.attached:
            self.acc.begin_batch(step)
            self._open = True

    def before_step(self) -> None:
        """Gradients are final for this optimizer step: gradient norms."""
        if self._open:
            self.acc.before_optimizer_step()

    def after_step(self) -> None:
        """The optimizer stepped: update ratios."""
        if self._open:
            self.acc.after_optimizer_step()

    def scalars(self, values: dict[str, Any]) -> None:
        """Named scalars of the open step (numbers or 1-element tensors)."""
        if self._open:
            self.acc.record_scalars(values)

    def end(self) -> None:
        """Optimizer step done: commit its record."""
        if self._open:
            self.acc.end_batch()
            self._open = False
            self.feed.poll()  # the one call site: a flush's new records go to the loggers

    def end_epoch(self, epoch: int) -> None:
        if self.acc.attached:
            self.acc.end_epoch(epoch)
            self._open = False
            self.feed.poll()  # the epoch's end flushed the chunk

    # ---- results -------------------------------------------------------------------------
    @property
    def n_records(self) -> int:
        return self.acc.n_records

    def result(self) -> Telemetry:
        if self.acc.n_records == 0:
            why = f" ({self.acc.why_nothing()})" if self.acc.skips else ""
            raise UsageError(f"{self.owner} has recorded nothing: it records training steps "
                             f"during the trainer's fit/train, on the main process only{why}")
        return self.acc.result()

    def report(self, out_dir: str | Path, title: str | None = None) -> Path:
        """The report of the recording in ``out_dir`` (``report.writer``; ``title``: the
        trainer's run name); report.html's path. ``report_seconds``: how long it took (the
        callbacks show it in their one line, where the trainer is not quiet)."""
        start = time.perf_counter()
        page = write_run_report(out_dir, self.result(), writer="watch", title=title)
        self.report_seconds = time.perf_counter() - start
        return page

    def check_report_target(self, out_dir: str | Path) -> None:
        """At fit start: ``UsageError`` now, not after training, if the report folder holds a
        file actscope must not replace (checked again when the report is written)."""
        out = user_path(out_dir, "report folder")
        check_claim(out, "watch")  # never a fit or lr-find run's folder
        check_report_folder(out)

    # ---- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain containers only (loads with ``torch.load(weights_only=True)``)."""
        if self._pending is not None:  # restored but not attached yet: pass it on unchanged
            return {"version": STATE_VERSION, "telemetry": self._pending}
        if self.acc.buf is None:
            return {}
        return {"version": STATE_VERSION, "telemetry": self.acc.state_dict()}

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        """Continue ``state_dict()``'s recording; kept until ``attach`` if no hooks are on yet."""
        if not state:  # saved by a process that recorded nothing
            return
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            version = state.get("version") if isinstance(state, dict) else type(state).__name__
            raise UsageError(f"{source}: actscope telemetry state version {version!r}, this "
                             f"actscope reads {STATE_VERSION}; resume with the actscope that "
                             "wrote it, or delete the state to start the recording over")
        if self.acc.buf is not None and self.acc.attached:
            self.acc.load_state_dict(state["telemetry"])
        else:
            self._pending = state["telemetry"]
