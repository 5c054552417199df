"""SignalMoments: the four moments a front end forwards to the diagnosis signals, and the context.

``TelemetryAccumulator`` inherits these methods; they read the accumulator's ``signals``
(``SignalSet``, per attach), ``buf`` (the record store), ``recording``, the watched ``modules``
and ``names``, and keep ``context`` (``meta["context"]``) and ``step_scalars`` (host numbers per
optimizer step), all declared in ``TelemetryAccumulator.__init__``. A front end calls
``before_optimizer_step`` / ``after_optimizer_step`` around each optimizer step,
``record_scalars`` in a recorded batch, ``build_context`` at fit start (docs/telemetry.md).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from actscope.errors import UsageError
from actscope.telemetry.context import run_context

if TYPE_CHECKING:
    from actscope.telemetry.records import RecordStore
    from actscope.telemetry.signal_set import SignalSet
    from actscope.telemetry.step_scalars import StepScalars

__all__ = ["SignalMoments", "check_scalars"]


def check_scalars(values: Mapping[str, Any]) -> None:
    """``UsageError`` unless every value is a real number or a 1-element tensor."""
    for name, value in values.items():
        if isinstance(value, torch.Tensor):
            ok = value.numel() == 1
        else:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not ok:
            what = (f"a tensor of shape {tuple(value.shape)}"
                    if isinstance(value, torch.Tensor) else type(value).__name__)
            raise UsageError(f"scalar {name}= must be a number or a 1-element tensor, got "
                             f"{what}; e.g. step(loss=loss)")



class SignalMoments:
    """The signal moments of ``TelemetryAccumulator`` (state declared there; see module doc)."""

    signals: SignalSet | None
    buf: RecordStore | None
    recording: bool
    modules: list[nn.Module]
    names: list[str]
    context: dict[str, Any] | None
    _context_restored: bool
    step_scalars: StepScalars

    def before_optimizer_step(self) -> None:
        """Gradients are final (after backward, before the step): gradient norms per layer."""
        if self.signals is not None:
            self.signals.before_step()

    def after_optimizer_step(self) -> None:
        """The optimizer stepped: update/weight ratios per layer (recorded batches only)."""
        if self.signals is not None:
            self.signals.after_step()

    def record_output(self, out: Any) -> None:
        """The model's output of this batch, for front ends without a root forward hook."""
        if self.signals is not None:
            self.signals.output(out)

    def record_scalars(self, values: Mapping[str, Any]) -> None:
        """Named scalars of this batch (loss, lr, ...): numbers or 1-element tensors, kept on
        the device until a read-back; ignored on a batch ``every`` does not record."""
        for value in values.values():  # the usual float and tensor first: no ABC check
            if type(value) is not float and not (type(value) is torch.Tensor
                                                 and value.numel() == 1):
                check_scalars(values)
                break
        if not self.recording or self.buf is None or self.signals is None:
            return
        dev = self.signals.device()
        for name, value in values.items():
            self.buf.sig.write_scalar(str(name), self.buf.slots.slot, value, dev)

    def build_context(self, model: nn.Module | None, **kwargs: Any) -> None:
        """``meta["context"]`` from ``run_context(model, <watched layers>, **kwargs)`` (once per
        fit: it reads each weight's std, a host read); a restored context is kept."""
        if model is None or self._context_restored:
            return
        names = dict(zip(self.modules, self.names, strict=True))
        self.set_context(run_context(model, names, **kwargs))

    def add_step_scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Host numbers for the record of optimizer step ``step`` (merged in by ``result()``;
        a step that was not recorded keeps none)."""
        self.step_scalars.add(step, {str(k): float(v) for k, v in values.items()},
                              self._record_spans)

    def _record_spans(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The flushed records' (first, last) iterations: where step scalars may merge."""
        if self.buf is None or not len(self.buf.host):
            return None
        a = self.buf.host.arrays()
        return a["iters"][0], a["iter_end"][0]

    def set_context(self, context: dict[str, Any] | None) -> None:
        """``meta["context"]`` (``telemetry.context.run_context``); a restored one is kept."""
        if not self._context_restored:
            self.context = context
