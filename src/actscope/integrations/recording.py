"""StepRecorder: what the Lightning and Hugging Face callbacks share, trainer-independent.

A ``TelemetryAccumulator`` driven by the trainer's OPTIMIZER STEP counter (not actscope's own):
``begin(step)`` before the step's first forward, ``end()`` after its optimizer step. Between the
two, every training-mode forward of a watched module writes the step's record, so with gradient
accumulation the record describes the step's last micro-batch and the records are one per step.
Evaluation runs in eval mode (or between steps) and is never recorded. The report is the folder
``actscope.watch().report`` writes: telemetry.npz + findings.json (``publish_telemetry``, the one
diagnosis), plots/*.png and report.html.

The model's output (log-sum-exp and max |logit|) is read by ``OutputHooks`` on the modules whose
output is the model's: a LightningModule whose ``forward`` returns its network's output fires
both hooks with one logits tensor, which is then reduced once, not twice (an LM's logits are the
largest tensor of the step).
"""

from __future__ import annotations

import time
import weakref
from pathlib import Path
from typing import Any

from torch import nn

from actscope.dist import unwrap_model
from actscope.errors import ActscopeError, UsageError
from actscope.integrations.loggers import FlushFeed
from actscope.pathtext import user_path
from actscope.report.folder import check_report_folder
from actscope.report.writer import write_run_report
from actscope.runs.report_claim import check_claim
from actscope.safe_load import CheckpointError
from actscope.telemetry.accumulator import TelemetryAccumulator
from actscope.telemetry.hooks import WeakCall
from actscope.telemetry.modules import default_modules
from actscope.telemetry.output_logits import find_logits
from actscope.telemetry.record import Telemetry
from actscope.telemetry.settings import check_settings

__all__ = ["OutputHooks", "StepRecorder", "STATE_VERSION", "inner_network",
           "trainer_default_modules"]

STATE_VERSION = 1


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def inner_network(model: nn.Module) -> nn.Module:
    """The network a wrapper holds: down through children that hold all the parameters."""
    inner, total = model, _n_params(model)  # each level's count, once (a big model: ms)
    while True:
        kids = [(c, n) for c in inner.children() if (n := _n_params(c)) > 0]
        if len(kids) != 1 or kids[0][1] != total:
            return inner
        inner = kids[0][0]


def trainer_default_modules(model: nn.Module) -> list[nn.Module]:
    """``default_modules`` of the network a trainer's wrapper holds.

    A LightningModule (or any wrapper) whose parameters all sit in one child, as in
    ``self.net = cnn()``, would otherwise be watched as ONE block (the whole network): the rules
    then apply to that child, and on down through further single-child wrappers.
    """
    return default_modules(inner_network(model))


class OutputHooks:
    """Forward hooks on the modules whose output is the model's (the last with logits wins).

    Each logits tensor goes to ``acc.record_output`` once: where a wrapper returns its inner
    network's output, both hooks see the same tensor and the second is skipped (a weak
    reference tells, so the logits are not kept alive past their step).
    """

    def __init__(self, acc: TelemetryAccumulator) -> None:
        self.acc = acc
        self._handles: list[Any] = []
        self._last: weakref.ref[Any] | None = None  # the logits recorded last

    def register(self, roots: list[nn.Module]) -> None:
        """Hook ``roots`` (none where the output signal is off); weak, like every actscope hook."""
        self.remove()
        if self.acc.settings.output_logits:
            self._handles = [r.register_forward_hook(WeakCall(self, "_output")) for r in roots]

    def _output(self, module: nn.Module, args: Any, out: Any) -> None:
        if self.acc.settings.training_only and not module.training:
            return  # validation inside the step must not overwrite the training output
        logits = find_logits(out)
        if logits is None:
            return
        last = self._last
        if last is not None and last() is logits:
            return  # the same tensor through a second root: reduced already
        self._last = weakref.ref(logits)
        self.acc.record_output(logits)

    def remove(self) -> None:
        """Remove the hooks (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles, self._last = [], None


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
        self._pending_source = ""  # the checkpoint it came from, for a one-line error
        self._open = False
        self.feed = FlushFeed(self.acc)  # the trainers' loggers listen here (integrations/loggers)
        self.outputs = OutputHooks(self.acc)
        self.report_seconds = 0.0  # how long the last report took

    # ---- set-up and tear-down ------------------------------------------------------------
    def attach(self, model: nn.Module, output_roots: list[nn.Module] | None = None,
               **context: Any) -> list[str]:
        """Hooks on the watched modules of ``model`` (unwrapped); a pending state is restored.

        ``output_roots``: modules whose output is the model's (default: ``model``);
        ``context``: ``run_context``'s optimizer, scheduler, grad_clip, mixed_precision, trainer.
        """
        model = unwrap_model(model)
        # the output hooks are ours (OutputHooks), not the accumulator's: one reduction per step
        names = self.acc.attach(model, self.modules if self.modules is not None
                                else trainer_default_modules(model), output_roots=())
        self.outputs.register(list(output_roots) if output_roots is not None else [model])
        self.acc.build_context(model, **context)
        self._open = False
        if self._pending is not None:
            state, self._pending = self._pending, None
            self._restore(state, self._pending_source)
        self.feed.reset()  # restored records were sent by the run that made them
        return names

    def remove(self) -> None:
        """Remove the hooks (idempotent); the recording stays readable."""
        self.acc.remove()
        self.outputs.remove()
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
            self._restore(state["telemetry"], source)
        else:
            self._pending, self._pending_source = state["telemetry"], source

    def _restore(self, telemetry: Any, source: str) -> None:
        """The accumulator continues ``telemetry``; a state that does not fit (damaged, or
        another model's) is one CheckpointError naming where it came from, not a traceback."""
        try:
            self.acc.load_state_dict(telemetry)
        except ActscopeError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as e:
            raise CheckpointError(
                f"{source}: the actscope telemetry state is damaged or does not fit this model "
                f"({type(e).__name__}: {' '.join(str(e).split())[:200]}); delete it to start the "
                "recording over, or resume with the model and settings that saved it") from None
