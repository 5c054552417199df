"""SignalSet: the diagnosis signals of one attach, fed by the four moments every front end has.

A front end (Learner callback, ``watch()``, Lightning, HF) only forwards moments; the signals and
their record slots live here (docs/signals.md, "Wiring"):

- ``begin(recording)``: a batch starts; the attention probe runs only on recorded batches;
- ``output(out)``: the model's output (a root forward hook, or the front end): log-sum-exp and
  max |logit|;
- ``before_step()``: after backward, before the optimizer step (and before clipping where the
  front end allows): per-layer gradient norms, and the weight sample the step's update ratio is
  measured against;
- ``after_step()``: after the optimizer step: per-layer ||W_t - W_{t-1}|| / ||W_t||;
- ``end()``: the batch ends: the attention probe's values into the record.

Gradient norms, update ratios, the output's logits and the attention probe run on every
``signal_every``-th recorded batch only (NaN in the other records, which merges and the rules
skip), every ``signal_every_late``-th after the first ``SIGNAL_DENSE`` (settings.py): they are
trends, and at 1/4 then 1/16 of the steps still catch a blow-up within a few steps, at a
fraction of the cost. ``absmax`` (the first non-finite value) and the scalars stay on every
recorded batch. Everything is done only on
recorded batches, so with ``every=N`` the update ratio spans exactly
the recorded batch's optimizer step (its ``before_step`` takes the sample), not N steps, and a
skipped batch costs nothing. Values go into ``SignalSlots`` with device ops only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from actscope.telemetry.attention import AttentionProbe, attention_slots
from actscope.telemetry.hooks import WeakCall
from actscope.telemetry.output_logits import find_logits
from actscope.telemetry.param_signals import ParamSignals
from actscope.telemetry.settings import TelemetrySettings
from actscope.telemetry.signal_slots import SignalSlots

__all__ = ["SignalSet"]


class SignalSet:
    """Gradient norms, update ratios, attention and output signals of the watched ``layers``."""

    def __init__(self, model: nn.Module | None, layers: Sequence[nn.Module],
                 settings: TelemetrySettings, slots: SignalSlots) -> None:
        self.settings, self.slots = settings, slots
        self.params = (ParamSignals(layers, seed=settings.seed)
                       if settings.grad_norms or settings.update_ratios else None)
        self.probe: AttentionProbe | None = None
        if settings.attention and model is not None:
            mods, owners = attention_slots(model, layers)
            if mods:
                self.probe = AttentionProbe(mods, owners, len(layers))
                self.probe.enabled = False
        self._handles: list[Any] = []
        self.recording = False
        self.slot = 0
        self._sampled = False  # before_step took the weight sample of this batch's step
        self._signals_now = False  # this batch measures the signal_every signals
        self.stepped = False  # an optimizer step was seen in this batch (watch's fallback)

    @property
    def measuring(self) -> bool:
        """Whether this batch is recorded and measures the ``signal_every`` signals."""
        return self._signals_now and self.recording

    @property
    def has_params(self) -> bool:
        """Whether any watched layer owns parameters (else no gradient/update signal)."""
        return self.params is not None and bool(self.params.params)

    def param_ids(self) -> set[int]:
        """``id`` of every parameter of the watched layers (to find their optimizer)."""
        return set() if self.params is None else {id(p) for p in self.params.params}

    def hook_outputs(self, roots: Sequence[nn.Module]) -> None:
        """Read the model output from forward hooks on ``roots`` (the last one to run wins)."""
        if not self.settings.output_logits:
            return
        for root in roots:
            # weak, like every actscope hook: a copy of the model carries none (hooks.WeakCall)
            self._handles.append(root.register_forward_hook(WeakCall(self, "_root_hook")))

    def _root_hook(self, module: nn.Module, args: Any, out: Any) -> None:
        if self.settings.training_only and not module.training:
            return  # validation inside the batch must not overwrite the training output
        self.output(out)

    # ---- the moments ---------------------------------------------------------------------
    def begin(self, recording: bool, slot: int, step: int = 0) -> None:
        """A batch starts (``slot``: where its record goes; ``step``: its number)."""
        self.recording, self.slot = recording, slot
        st = self.settings
        self._signals_now = recording and st.measures_signals(step)
        self._sampled = self.stepped = False
        if self.probe is not None:
            self.probe.enabled = self._signals_now

    def output(self, out: Any) -> None:
        """The model's output of this batch: mean log-sum-exp and max |logit| (if logits)."""
        if not self._signals_now or not self.settings.output_logits:
            return
        if torch.is_inference_mode_enabled():
            return
        logits = find_logits(out)  # the rule of output_logits.py: else not logits, nothing
        if logits is not None:
            z = logits.detach()
            # float32 so a bf16/fp16 head's lse is not rounded (output_logits.py)
            self.slots.record_output(self.slot, z if z.dtype == torch.float32 else z.float())

    def before_step(self) -> None:
        """Gradients are final for this optimizer step: norms, and the weights before it."""
        if not self._signals_now or not self.recording or not self.has_params:
            return
        dev = self.params.params[0].device
        with torch.no_grad():
            if self.settings.grad_norms:  # written straight into the record slot
                self.params.grad_norms(out=self.slots.layer_out("grad_norm", self.slot, dev))
            if self.settings.update_ratios:
                self.params.snapshot()
                self._sampled = True

    def after_step(self) -> None:
        """The optimizer step is done: the update ratio against ``before_step``'s sample."""
        self.stepped = True
        if not self.recording or not self._sampled:
            return
        self._sampled = False
        dev = self.params.params[0].device
        with torch.no_grad():
            self.params.update_ratios(out=self.slots.layer_out("update_ratio", self.slot, dev))

    def end(self) -> None:
        """The batch ends: the attention probe's values (if any ran) into the record."""
        self._signals_now = False  # an output after the batch (validation) is not this one's
        if self.probe is None:
            return
        if self.recording and self.probe.has_values:
            mx, ent = self.probe.read()
            self.slots.write_layers("attn_logit_max", self.slot, mx)
            self.slots.write_layers("attn_entropy", self.slot, ent)
        self.probe.enabled = False
        self.recording = False

    def device(self) -> torch.device:
        """Where python-number scalars go: the records' device."""
        if self.slots.layer is not None:
            return self.slots.layer.device
        if self.params is not None and self.params.params:
            return self.params.params[0].device
        return torch.device("cpu")

    def remove(self) -> None:
        """Remove the probe's and the output hooks (idempotent)."""
        if self.probe is not None:
            self.probe.remove()
        for h in self._handles:
            h.remove()
        self._handles = []
