"""``actscope.watch(model)``: activation telemetry for a hand-written PyTorch training loop.

    with actscope.watch(model) as w:
        for xb, yb in train_dl:
            loss = loss_fn(model(xb), yb); loss.backward(); opt.step(); opt.zero_grad()
            w.step()                      # optional: marks the end of one training batch
        w.end_epoch()                     # optional: closes the epoch's dead-channel record
    w.report("runs/my-run")               # telemetry.npz, findings.json, plots/, report.html

It is the accumulator of ``ActivationStatsCallback`` (same cost, no host sync per batch). What
counts as a batch:
- with ``w.step()``: everything between two ``step()`` calls is one batch (if the model runs
  several times in it, as with gradient accumulation, the last training-mode forward is kept);
- without ``step()``: each training-mode forward of the root model starts a new batch (found by
  a forward pre-hook on the model). Calling ``step()`` once switches to the first rule.
Only forwards in training mode (``module.training``) are recorded, so a validation pass inside
the loop (``model.eval()``) does not enter the statistics. Without ``end_epoch()`` the whole run is
epoch 0 of the per-channel record. Hooks are removed on leaving ``with`` (also on an error), on
``remove()``, and when the ``Watch`` is garbage-collected. Under DDP it hooks the unwrapped
module and records on rank 0 only; on other ranks it is inert and ``report`` writes nothing.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from torch import nn

from actscope.dist import get_rank, unwrap_model
from actscope.errors import UsageError
from actscope.telemetry.accumulator import TelemetryAccumulator
from actscope.telemetry.modules import ModuleSpec
from actscope.telemetry.record import Telemetry

__all__ = ["Watch", "watch"]


def watch(model: nn.Module, modules: ModuleSpec = None, every: int = 1,
          **settings: Any) -> Watch:
    """Start recording ``model``'s activations; see ``Watch`` (and ``TelemetryAccumulator`` for
    ``settings``: bins, hist_range, dead_threshold, mad, grads, channels, output, ...)."""
    return Watch(model, modules=modules, every=every, **settings)


class Watch:
    """Telemetry hooks on a model for any training loop; a context manager (see module doc)."""

    def __init__(self, model: nn.Module, modules: ModuleSpec = None, every: int = 1,
                 **settings: Any) -> None:
        if not isinstance(model, nn.Module):
            raise UsageError(f"watch() needs an nn.Module, got {type(model).__name__}")
        self.model = unwrap_model(model)
        self.acc = TelemetryAccumulator(every=every, training_only=True, **settings)
        self.enabled = get_rank() == 0  # rank 0 only, as ActivationStatsCallback under DDP
        self.steps = 0  # batches completed: the step index of the current batch
        self.epoch = 0  # the epoch being recorded
        self.explicit = False  # True once step() was called
        self._forwarded = False  # a training-mode forward ran in the current batch
        self._pre = None
        if self.enabled:
            self.acc.attach(self.model, modules)
            ref = weakref.ref(self)  # the model must not keep the Watch alive

            def pre_hook(module: nn.Module, args: Any) -> None:
                w = ref()
                if w is not None and module.training:
                    w._on_forward()

            self._pre = self.model.register_forward_pre_hook(pre_hook)
            self.acc.begin_batch(0)

    @property
    def names(self) -> list[str]:
        """The watched layers' names, in forward order."""
        return list(self.acc.names)

    # ---- the loop ------------------------------------------------------------------------
    def _on_forward(self) -> None:
        if self._forwarded and not self.explicit:
            self._advance()  # the previous forward was a batch of its own
        self._forwarded = True

    def _advance(self) -> None:
        self.acc.end_batch()
        self.steps += 1
        self._forwarded = False
        self.acc.begin_batch(self.steps)

    def step(self) -> None:
        """Mark the end of one training batch (optional; see the module docstring)."""
        self.explicit = True
        if self.enabled:
            self._advance()

    def end_epoch(self, epoch: int | None = None) -> None:
        """Close the epoch's per-channel dead-unit record (``epoch``: default 0, 1, 2, ...)."""
        if not self.enabled:
            return
        self._close_batch()
        e = self.epoch if epoch is None else epoch
        self.acc.end_epoch(e)
        self.epoch = e + 1
        self.acc.begin_batch(self.steps)

    def _close_batch(self) -> None:
        if self._forwarded:
            self._advance()

    # ---- results -------------------------------------------------------------------------
    def result(self) -> Telemetry:
        """The recorded ``Telemetry`` (ends the current batch; one read-back to the host)."""
        if not self.enabled:
            raise UsageError(f"watch() records on rank 0 only; this is rank {get_rank()}: call "
                             "result() where actscope.dist.is_main_process() is True")
        self._close_batch()
        if self.acc.n_records == 0:
            raise UsageError("watch() recorded nothing: no watched module ran a forward in "
                             "training mode (call model.train() and run the model inside the "
                             "watch)")
        return self.acc.result()

    def report(self, out_dir: str | Path) -> Path:
        """Write telemetry.npz, findings.json, plots/ and report.html into ``out_dir``; the dir.

        On a rank other than 0 this writes nothing and returns ``out_dir``.
        """
        out = Path(out_dir)
        if not self.enabled:
            return out
        from actscope.telemetry.report_folder import write_report_folder

        write_report_folder(out, self.result())
        return out

    # ---- tear-down and checkpoints -------------------------------------------------------
    def remove(self) -> None:
        """End the current batch and remove every hook (idempotent); results stay readable."""
        if self.enabled and self.acc.attached:
            self._close_batch()
        self.acc.remove()
        if self._pre is not None:
            self._pre.remove()
            self._pre = None

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __del__(self) -> None:
        # A safety net: a Watch dropped without remove() must not leave hooks on the model.
        try:
            if self._pre is not None:
                self._pre.remove()
            self.acc.remove()
        except AttributeError:  # __init__ failed before these existed
            pass

    def state_dict(self) -> dict[str, Any]:
        """The recording so far and the loop's position, for an exact resume."""
        if self.enabled:
            self._close_batch()
        return {"acc": self.acc.state_dict() if self.enabled else None,
                "steps": self.steps, "epoch": self.epoch, "explicit": self.explicit}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``: recording continues after the restored records."""
        self.steps, self.epoch = int(state["steps"]), int(state["epoch"])
        self.explicit = bool(state.get("explicit", False))
        if self.enabled and state.get("acc") is not None:
            self.acc.load_state_dict(state["acc"])
            self._forwarded = False
            self.acc.begin_batch(self.steps)

    def __repr__(self) -> str:
        state = "recording" if self.acc.attached else "removed"
        return (f"Watch({len(self.acc.names)} modules, {self.acc.n_records} records, "
                f"{state}{'' if self.enabled else ', inactive on this rank'})")
