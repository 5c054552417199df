"""``actscope.watch(model)``: activation telemetry for a hand-written PyTorch training loop.

    with actscope.watch(model, optimizer=opt) as w:
        for xb, yb in train_dl:
            loss = loss_fn(model(xb), yb); loss.backward(); opt.step(); opt.zero_grad()
            w.step(loss=loss)             # optional: ends one training batch, records scalars
        w.end_epoch()                     # optional: closes the epoch's dead-channel record
    w.report("runs/my-run")               # telemetry.npz, findings.json, plots/, report.html

It is the accumulator of ``ActivationStatsCallback`` (same cost, no host sync per batch). What
counts as a batch:
- with ``w.step()``: everything between two ``step()`` calls is one batch (if the model runs
  several times in it, as with gradient accumulation, the last training-mode forward is kept);
- without ``step()``: each forward of the root model in which the model, or a watched module,
  runs in training mode (a model fine-tuned with parts frozen in eval mode counts) starts a new
  batch (found by a forward pre-hook on the model); an eval-mode validation pass does not. A
  loop that never calls the model itself (only ``model.encoder(x)`` and ``model.head(z)``, say)
  cannot be split into batches this way: it records one batch and warns; call ``step()`` there.
  With gradient accumulation call ``step()``: before its first call, the micro-batches of the
  first optimizer step count as batches of their own (the watch cannot know a step() is
  coming). Calling ``step()`` once switches to the first rule.
Only forwards of modules in training mode (``module.training``) are recorded, so a validation
pass inside the loop (``model.eval()``) does not enter the statistics; neither do forwards under
``torch.inference_mode()``. ``result()`` / ``state_dict()`` in the middle of a loop close the
batch so far; the ``step()`` that follows them does not count a second one. Without
``end_epoch()`` the whole run is epoch 0 of the per-channel record. Hooks are removed on leaving
``with`` (also on an error), on ``remove()``, and when the ``Watch`` is garbage-collected; a copy
of the model (``copy.deepcopy``, ``torch.save(model)``) carries none. Under DDP it hooks the
unwrapped module and records on rank 0 only; on other ranks it is inert and ``report`` writes
nothing.

The diagnosis signals: max |x| per layer (the forward hooks), the model output's log-sum-exp
(a forward hook on ``model``), attention logits/entropy (hooks on the attention modules inside
the watched layers), and, once per optimizer step, per-layer gradient norms (a step pre-hook:
after backward and after any clipping done before ``step()``, e.g. ``clip_grad_norm_``; with a
``GradScaler``, after its unscale) and update/weight ratios (a step post-hook). The hooks go on
``optimizer`` when given, else on every optimizer that holds a watched parameter
(``torch.optim``'s global step hooks, filtered). Without any optimizer step (a hand-written
update), ``step()`` reads the gradient norms itself and the update ratio stays NaN. Call
``step()`` after the optimizer step. ``step(loss=..., **scalars)`` records named scalars per
record (numbers, or tensors kept on the device until the read-back).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, NoReturn

import torch
from torch import nn

from actscope.dist import get_rank, unwrap_model
from actscope.errors import UsageError
from actscope.integrations.loggers import FlushFeed, check_log_every
from actscope.integrations.optimizer_steps import OptimizerSteps
from actscope.integrations.tensorboard_sink import TensorBoardSink
from actscope.telemetry.accumulator import TelemetryAccumulator, check_scalars
from actscope.telemetry.hooks import WeakCall
from actscope.telemetry.modules import ModuleSpec, check_modules_in_model
from actscope.telemetry.record import Telemetry
from actscope.telemetry.settings import check_settings

__all__ = ["Watch", "watch"]


def watch(model: nn.Module, modules: ModuleSpec = None, every: int = 1,
          optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
          grad_clip: float | None = None, mixed_precision: str | None = None,
          tensorboard: Any = None, log_every: int = 50, **settings: Any) -> Watch:
    """Start recording ``model``'s activations; see ``Watch`` (and ``TelemetryAccumulator`` for
    ``settings``: bins, hist_range, dead_threshold, mad, grads, channels, output, ...).

    ``optimizer``, ``scheduler``, ``grad_clip`` (the max norm you clip to) and
    ``mixed_precision`` ("fp16"/"bf16") go into ``meta["context"]``, so the diagnosis' advice
    fits the run; ``optimizer`` also says which optimizer's steps to read gradients at.
    ``tensorboard`` (a folder or a ``SummaryWriter``): see ``Watch.tensorboard``."""
    return Watch(model, modules=modules, every=every, optimizer=optimizer, scheduler=scheduler,
                 grad_clip=grad_clip, mixed_precision=mixed_precision, tensorboard=tensorboard,
                 log_every=log_every, **settings)


class Watch:
    """Telemetry hooks on a model for any training loop; a context manager (see module doc)."""

    def __init__(self, model: nn.Module, modules: ModuleSpec = None, every: int = 1,
                 optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                 grad_clip: float | None = None, mixed_precision: str | None = None,
                 tensorboard: Any = None, log_every: int = 50, **settings: Any) -> None:
        if not isinstance(model, nn.Module):
            raise UsageError(f"watch() needs an nn.Module, got {type(model).__name__}")
        check_settings(settings, exclude=("every", "training_only"))
        self.model = unwrap_model(model)
        self.acc = TelemetryAccumulator(every=every, training_only=True, **settings)
        self.enabled = get_rank() == 0  # rank 0 only, as ActivationStatsCallback under DDP
        self.steps = 0  # batches completed: the step index of the current batch
        self.epoch = 0  # the epoch being recorded
        self.explicit = False  # True once step() was called
        self._forwarded = False  # a forward that counts as a batch ran in the current batch
        self._peeked = False  # result()/state_dict() closed the batch that step() would close
        self._root_ran = False  # the model itself was called (not only its submodules)
        self._removed = False
        self._warned_removed = False  # step() after remove() said so once
        self._pre = self._post = None
        self.log_every = check_log_every("watch", log_every)
        self.feed, self._sinks = FlushFeed(self.acc), []  # loggers, sent at flush time
        check_modules_in_model(self.model, modules)  # names a module outside the model
        self.steps_hooks = OptimizerSteps(self, optimizer)
        if self.enabled:
            self.acc.attach(self.model, modules)
            self.acc.build_context(self.model, optimizer=optimizer, scheduler=scheduler,
                                   grad_clip=grad_clip, mixed_precision=mixed_precision,
                                   trainer={"trainer": "watch"})
            # weak: the model must not keep the Watch alive; a copy of the model is not watched
            self._pre = self.model.register_forward_pre_hook(WeakCall(self, "_pre_forward"))
            self._post = self.model.register_forward_hook(WeakCall(self, "_post_forward"))
            self.steps_hooks.register()
            self.acc.begin_batch(0)
        if tensorboard is not None:
            self.tensorboard(tensorboard)

    @property
    def names(self) -> list[str]:
        """The watched layers' names, in forward order."""
        return list(self.acc.names)

    # ---- the loop ------------------------------------------------------------------------
    def _pre_forward(self, module: nn.Module, args: Any) -> None:
        if torch.is_inference_mode_enabled():  # no autograd: not a training step
            return
        if not self._root_ran:  # the first forward: is it under autocast? (the context's)
            self._note_autocast()
        self._root_ran = True
        if not self.explicit and self._forwarded:
            self._advance()  # the previous forward was a batch of its own

    def _note_autocast(self) -> None:
        ctx = self.acc.context
        if ctx is None or ctx.get("mixed_precision") is not None:
            return
        p = next(self.model.parameters(), None)
        kind = p.device.type if p is not None else "cpu"
        if torch.is_autocast_enabled(kind):
            dtype = torch.get_autocast_dtype(kind)
            ctx["mixed_precision"] = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype)

    def _post_forward(self, module: nn.Module, args: Any, out: Any) -> None:
        # A root forward is a training batch if the model, or any watched module in it (a
        # model fine-tuned with parts frozen), ran in training mode: validation does not count.
        if not torch.is_inference_mode_enabled():
            self._forwarded = self._forwarded or module.training or self.acc.trained_in_batch

    def tensorboard(self, writer_or_dir: Any, histograms: bool = True) -> Watch:
        """Also write per-layer scalars and histograms to TensorBoard (a folder or a
        ``SummaryWriter``), one record per ``log_every`` steps, at each flush; returns self."""
        if self.enabled:
            sink = TensorBoardSink(writer_or_dir, self.log_every, histograms)
            self._sinks.append(sink)
            self.feed.add(sink)
        return self

    def _advance(self) -> None:
        self.acc.end_batch()
        self.feed.poll()  # a flush's new records go to the loggers (no device op otherwise)
        self.steps += 1
        self._forwarded = False
        self.acc.begin_batch(self.steps)

    def step(self, loss: Any = None, **scalars: Any) -> None:
        """Mark the end of one training batch (optional; see the module docstring), after the
        optimizer step; ``loss`` and ``scalars`` (numbers or 1-element tensors) are recorded."""
        self.explicit = True
        if loss is not None:
            scalars = {"loss": loss, **scalars}
        if not self.enabled:
            return
        if self._removed:  # a warning, not an error: the user's training goes on
            if not self._warned_removed:
                self._warned_removed = True
                warnings.warn("watch(): step() after the watch was removed (its with-block "
                              "ended, or remove() was called) records nothing; call it inside "
                              "the with-block, or start a new watch", stacklevel=2)
            return
        if self._peeked and not self._forwarded and not self.acc.trained_in_batch:
            self._peeked = False  # result()/state_dict() already closed this batch
            check_scalars(scalars)  # checked, not recorded: their batch is closed already
            return
        self._peeked = False
        if scalars:  # a bare step() records none: no check, no device lookup
            self.acc.record_scalars(scalars)
        signals = self.acc.signals
        if signals is not None and not signals.stepped:  # no optimizer step seen: grads now
            self.acc.before_optimizer_step()
        self._advance()

    def end_epoch(self, epoch: int | None = None) -> None:
        """Close the epoch's per-channel dead-unit record (``epoch``: default 0, 1, 2, ...)."""
        if not self.enabled:
            return
        self._close_batch()
        e = self.epoch if epoch is None else epoch
        self.acc.end_epoch(e)
        self.feed.poll()
        self.epoch = e + 1
        self.acc.begin_batch(self.steps)

    def _close_batch(self) -> bool:
        """End the current batch if anything ran in it; whether it did."""
        if self._forwarded or self.acc.trained_in_batch:
            if not self.explicit and not self._root_ran:
                warnings.warn("watch(): the watched modules ran but the model itself was never "
                              "called, so batches cannot be told apart and they are recorded as "
                              "one; call w.step() after each training batch", stacklevel=3)
            self._advance()
            return True
        return False

    def _peek_close(self) -> None:
        """Close the batch for a read in the middle of a loop (see the module docstring)."""
        if self._close_batch():
            self._peeked = True

    # ---- results -------------------------------------------------------------------------
    def result(self) -> Telemetry:
        """The recorded ``Telemetry`` (ends the current batch; one read-back to the host)."""
        if not self.enabled:
            raise UsageError(f"watch() records on rank 0 only; this is rank {get_rank()}: call "
                             "result() where actscope.dist.is_main_process() is True")
        self._peek_close()
        if self.acc.n_records == 0:
            raise UsageError(f"watch() recorded nothing: {self.acc.why_nothing()}")
        return self.acc.result()

    def report(self, out_dir: str | Path) -> Path:
        """Write telemetry.npz, findings.json, plots/ and report.html into ``out_dir``; the dir.

        On a rank other than 0 this writes nothing and returns ``out_dir``.
        """
        out = Path(out_dir)
        if not self.enabled:
            return out
        import time

        from actscope.report.notebook import ReportFolder
        from actscope.report.writer import write_run_report  # loaded when a report is written

        start = time.perf_counter()
        page = write_run_report(out, self.result(), writer="watch")  # '~' expanded
        print(f"actscope: report written in {time.perf_counter() - start:.1f} s: {page}")
        return ReportFolder(page.parent)

    def _repr_html_(self) -> str:
        """Jupyter: what has been recorded so far, diagnosed and drawn (offline PNGs)."""
        from actscope.report.notebook import telemetry_html

        if not self.enabled or self.acc.n_records == 0:
            return "<div class='actscope'>actscope watch: nothing recorded yet.</div>"
        return telemetry_html(self.result(), "watch()")

    # ---- tear-down and checkpoints -------------------------------------------------------
    def remove(self) -> None:
        """End the current batch and remove every hook (idempotent); results stay readable."""
        if self.enabled and self.acc.attached:
            self._close_batch()
        if self._sinks:
            self.feed.finish()  # the records still in the chunk
            for sink in self._sinks:
                sink.close()
            self._sinks = []
        self._removed = True
        self.acc.remove()
        self._remove_root_hooks()

    def _remove_root_hooks(self) -> None:
        for handle in (self._pre, self._post):
            if handle is not None:
                handle.remove()
        self._pre = self._post = None
        self.steps_hooks.remove()

    def _refuse_copy(self) -> NoReturn:
        raise UsageError("a Watch cannot be copied or pickled (its hooks belong to one model): "
                         "save w.state_dict() and load it into a new watch with "
                         "load_state_dict()")

    def __deepcopy__(self, memo: dict[int, Any]) -> NoReturn:
        self._refuse_copy()

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        self._refuse_copy()

    def __enter__(self) -> Watch:
        if self._removed:
            raise UsageError("this watch was removed (its with-block ended or remove() was "
                             "called) and records nothing more; start a new one: "
                             "with actscope.watch(model) as w: ...")
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __del__(self) -> None:
        # A safety net: a Watch dropped without remove() must not leave hooks on the model.
        try:
            self._remove_root_hooks()
            self.acc.remove()
        except AttributeError:  # __init__ failed before these existed
            pass

    def state_dict(self) -> dict[str, Any]:
        """The recording so far and the loop's position, for an exact resume."""
        if self.enabled:
            self._peek_close()
        return {"acc": self.acc.state_dict() if self.enabled else None,
                "steps": self.steps, "epoch": self.epoch, "explicit": self.explicit}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``: recording continues after the restored records."""
        self.steps, self.epoch = int(state["steps"]), int(state["epoch"])
        self.explicit = bool(state.get("explicit", False))
        if self.enabled and state.get("acc") is not None:
            self.acc.load_state_dict(state["acc"])
            self._forwarded = self._peeked = False
            self.acc.begin_batch(self.steps)

    def __repr__(self) -> str:
        state = "recording" if self.acc.attached else "removed"
        return (f"Watch({len(self.acc.names)} modules, {self.acc.n_records} records, "
                f"{state}{'' if self.enabled else ', inactive on this rank'})")
