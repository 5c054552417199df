"""TelemetryAccumulator: forward hooks -> device buffers -> flush -> ``Telemetry``, for any loop.

It knows modules, not a trainer: an adapter (``ActivationStatsCallback``, ``actscope.watch``, the
Lightning and Hugging Face callbacks) calls ``attach``, then ``begin_batch(step)`` / ``end_batch()``
around each training batch, ``end_epoch(epoch)`` at each epoch's end, and ``result()`` at the end.

The hot path (a forward hook per watched module, on every recorded training-mode forward) issues
a fixed handful of device ops, all writing with ``out=`` into preallocated buffers, none reading
back to the host: the exact sum and sum of squares (``torch.sum`` and ``torch.dot``: on CPU two
passes beat one ``var_mean``), ``index_select`` of K fixed sample positions, and a column max over
the batch dims (the dead-unit test; on a CPU skipped for a layer whose channels have all fired
in the epoch, see ``channels``). Every ``chunk`` recorded batches a flush (``records``) turns the
chunk into mean/std, histograms, dead share (and optionally mad) for all layers at once, on the
device, with each layer's histogram range chosen as ``hist_range`` says, and moves the records to
a bounded host store (``records``; an asynchronous copy on a GPU, read at the next flush, so no
sync on the training stream). ``add_flush_listener`` sees each flush's new records.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from actscope.errors import UsageError
from actscope.telemetry.deferred import DEFER_MAX
from actscope.telemetry.hooks import Hook, Hooks
from actscope.telemetry.host_view import to_telemetry
from actscope.telemetry.layer_state import LayerState, PlannedRecord
from actscope.telemetry.modules import (
    ModuleSpec,
    OutputSpec,
    explicit_modules,
    layer_names,
    pick_tensor,
    resolve_modules,
)
from actscope.telemetry.record import Telemetry, with_step_scalars
from actscope.telemetry.records import RecordStore
from actscope.telemetry.reductions import sample_indices
from actscope.telemetry.settings import SIGNAL_DENSE, TelemetrySettings
from actscope.telemetry.signal_moments import SignalMoments, check_scalars
from actscope.telemetry.signal_set import SignalSet
from actscope.telemetry.staging import MIN_STAGED, STAGE_MAX
from actscope.telemetry.step_scalars import StepScalars

__all__ = ["TelemetryAccumulator", "check_scalars"]  # check_scalars: re-exported


def _normal_tensors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``method`` outside inference mode: a buffer made inside ``torch.inference_mode()``
    is an inference tensor, and every later in-place update of it (outside) would fail."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not torch.is_inference_mode_enabled():
            return method(*args, **kwargs)
        with torch.inference_mode(False):
            return method(*args, **kwargs)

    return wrapper


class TelemetryAccumulator(SignalMoments):
    """Device-side activation statistics of the watched modules, independent of any trainer.

    The arguments are the fields of ``TelemetrySettings`` (documented there), checked once.
    """

    def __init__(self, every: int = 1, bins: int = 40,
                 hist_range: tuple[float, float] | None = None,
                 dead_threshold: float = 0.05, dead_bins: int | None = None,
                 mad: bool = False, grads: bool = False, channels: bool = True,
                 sample_size: int = 2048, chunk: int = 128, seed: int = 0,
                 output: OutputSpec = None, training_only: bool = True,
                 extremes: bool = True, grad_norms: bool = True, update_ratios: bool = True,
                 attention: bool = True, output_logits: bool = True,
                 max_records: int = 4096, keep_first: int = 64, signal_every: int = 4,
                 signal_every_late: int | None = None) -> None:
        self.settings = TelemetrySettings(
            every=every, bins=bins, hist_range=hist_range, dead_threshold=dead_threshold,
            dead_bins=dead_bins, mad=mad, grads=grads, channels=channels,
            sample_size=sample_size, chunk=chunk, seed=seed, output=output,
            training_only=training_only, extremes=extremes, grad_norms=grad_norms,
            update_ratios=update_ratios, attention=attention, output_logits=output_logits,
            max_records=max_records, keep_first=keep_first, signal_every=signal_every,
            signal_every_late=signal_every_late)
        self.listeners: list[Callable[[Telemetry], None]] = []
        self.hooks, self.grad_hooks = Hooks(), Hooks()
        self.names: list[str] = []
        self.modules: list[nn.Module] = []
        self.recording = False
        self.trained_in_batch = False  # a watched module ran a training-mode forward in it
        self.buf: RecordStore | None = None
        self.signals: SignalSet | None = None  # gradients, updates, attention, output (attach)
        # meta["context"] (telemetry/context.py): set by the front end at attach / fit start
        self.context: dict[str, Any] | None = None
        self._context_restored = False
        # Scalars that arrive as host numbers after their record was committed (the HF
        # Trainer's log history): optimizer step -> {name: value}, merged in by ``result()``.
        # Bounded by the records' budget (step_scalars.py).
        self.step_scalars = StepScalars(self.settings.max_records)
        # Sample positions per (numel, device), kept across attaches: computed once per shape.
        self._idx: dict[tuple[int, torch.device], torch.Tensor] = {}
        # Outputs of at most this many elements are staged and reduced together at the batch's
        # end (staging.py); 0 turns staging off (every output reduced in its hook).
        self.stage_max = STAGE_MAX
        # ... but only when at least this many layers are small: batching saves dispatch across
        # many small layers (a 32-layer MLP), while for one or two (the lesson CNN's last blocks)
        # the staging's own copies and bookkeeping cost more than it saves (measured: ~2 % of a
        # step). Decided on an attach's first recorded batch; 0 keeps any staging.
        self.min_staged = MIN_STAGED
        self._staged_first: int | None = None  # small layers of the first batch (None: decided)
        self._stage_was: int | None = None  # stage_max before the rule set it to 0
        # Per layer, why a training-mode output was not recorded (no tensor in it, empty), and
        # the layers in the order of their first recorded forward.
        self.skips: dict[int, str] = {}
        self.forward_order: list[int] = []
        self._warned_skips = False

    # ---- set-up and tear-down ------------------------------------------------------------
    def attach(self, model: nn.Module | None, modules: ModuleSpec | Sequence[nn.Module] = None,
               output_roots: Sequence[nn.Module] | None = None) -> list[str]:
        """Resolve ``modules`` on ``model``, register the hooks, reset the buffers; the names.

        ``output_roots``: modules whose forward output is the model's output (log-sum-exp and
        max |logit|, ``SignalSet.output``); default ``[model]``; ``()`` when the front end passes
        the output itself (``record_output``)."""
        if model is None:
            if modules is None or callable(modules) or isinstance(modules, (str, type)):
                raise UsageError("attach(None, modules) needs an explicit list of modules")
            mods = explicit_modules(modules)
        else:
            mods = resolve_modules(model, modules)
        self.remove()
        self.names = layer_names(model, mods)
        self.modules = list(mods)
        if self._stage_was is not None:  # the rule turned staging off for the last model
            self.stage_max, self._stage_was = self._stage_was, None
        self._staged_first = 0
        self.buf = RecordStore(len(mods), self.settings, reuse=self.buf,  # records start afresh
                               listener=self._flushed)
        self.buf.early = bool(self.listeners)  # early flushes only for someone who listens
        self.recording = False
        self.hooks = Hooks(mods, self._forward)
        self.signals = SignalSet(model, mods, self.settings, self.buf.sig)
        roots = ([model] if model is not None else []) if output_roots is None else output_roots
        self.signals.hook_outputs(list(roots))
        # fields that cannot have values are left out of the records (no attention module in
        # the watched layers, no parameters in them)
        self.buf.sig_fields = tuple(
            f for f in self.buf.sig_fields
            if not (f.startswith("attn_") and self.signals.probe is None)
            and not (f in ("grad_norm", "update_ratio") and not self.signals.has_params))
        self.context, self._context_restored = None, False
        if self.settings.grads:
            # torch warns when the first module's input needs no grad; the output grad we read
            # is still right, so the warning is noise here.
            warnings.filterwarnings("ignore", message="Full backward hook is firing when grad")
            self.grad_hooks = Hooks(mods, self._backward, kind="backward")
        # one declared state per layer, carried by its hooks: no lookup on the hot path
        states = [LayerState(layer=i, module=m) for i, m in enumerate(mods)]
        for hooks in (self.hooks, self.grad_hooks):
            for h, st in zip(hooks, states, strict=False):
                h.state = st
        self.skips, self.forward_order, self._warned_skips = {}, [], False
        return list(self.names)

    def add_flush_listener(self, fn: Callable[[Telemetry], None]) -> None:
        """Call ``fn(chunk)`` after each flush reaches the host, ``chunk`` a ``Telemetry`` of only
        the newly flushed records (for loggers; on a GPU it comes one flush late, no sync).
        With a listener the first flushes come after 1, 2, 4, ... recorded batches."""
        self.listeners.append(fn)
        if self.buf is not None:
            self.buf.early = True

    def _flushed(self, fields: dict[str, Any]) -> None:
        if self.listeners:
            names = list(self.buf.sig.scalar_names) if self.buf is not None else None
            chunk = to_telemetry(fields, self.names, self.meta(), scalar_names=names)
            for fn in self.listeners:
                fn(chunk)

    def remove(self) -> None:
        """Remove all hooks (idempotent); what was recorded stays readable."""
        self.hooks.remove()
        self.grad_hooks.remove()
        if self.signals is not None:
            self.signals.remove()
            self.signals = None  # the records stay in ``buf``; the moments now do nothing
        self.recording = False

    @property
    def attached(self) -> bool:
        """True while hooks are registered."""
        return any(not h.removed for h in self.hooks)

    # ---- batches and epochs --------------------------------------------------------------
    def begin_batch(self, step: int) -> bool:
        """Start batch ``step``; it is recorded if ``step % every == 0``. Returns whether."""
        self.recording = step % self.settings.every == 0 and self.buf is not None
        self.trained_in_batch = False
        if self.recording:
            self.buf.slots.begin(step)
        if self.signals is not None:
            self.signals.begin(self.recording, self.buf.slots.slot, step)
        return self.recording

    @_normal_tensors
    def end_batch(self) -> None:
        """Commit the current batch (if any watched module ran in it); flushes a full chunk."""
        if self.signals is not None:
            self.signals.end()
        if self.recording and self.buf is not None:
            self.buf.commit()
            if self._staged_first is not None:  # the attach's first recorded batch
                if 0 < self._staged_first < self.min_staged:
                    # the next batches reduce in their hooks (the same statistics)
                    self._stage_was, self.stage_max = self.stage_max, 0
                self._staged_first = None
        self.recording = False

    @_normal_tensors
    def end_epoch(self, epoch: int) -> None:
        """Close epoch ``epoch``'s per-channel record (device only; read back by ``result``)."""
        self.end_batch()
        if self.buf is not None:
            self.buf.end_epoch(epoch)

    def why_nothing(self) -> str:
        """Why nothing was recorded, in words a user can act on."""
        if self.skips:
            layer, why = next(iter(self.skips.items()))
            return (f"layer {self.names[layer]} {why}; pick the tensor to record with "
                    "output=<index or key>, or watch other modules with modules=...")
        return ("no watched module ran a forward in training mode (call model.train() and run "
                "the model inside the watch)")

    def _skip(self, hook: Hook, out: Any) -> None:
        """Note why this output is not recorded (the rare path: once per layer)."""
        layer = hook.state.layer
        if layer in self.skips:
            return
        if isinstance(out, torch.Tensor) and out.is_complex():
            why = (f"returned a complex tensor ({out.dtype}), which is not recorded (its real "
                   "part alone would mislead; watch a module that takes its .abs() instead)")
        elif isinstance(out, torch.Tensor):
            why = f"returned an empty tensor of shape {tuple(out.shape)}"
        elif self.settings.output is not None:
            keys = list(out.keys()) if isinstance(out, Mapping) else None
            why = (f"returned {type(out).__name__} with no tensor at "
                   f"output={self.settings.output!r}"
                   + (f" (keys: {', '.join(map(str, keys[:8]))})" if keys else ""))
        else:
            why = f"returned {type(out).__name__}, which holds no tensor"
        self.skips[layer] = why

    @property
    def n_records(self) -> int:
        """Committed records so far."""
        return 0 if self.buf is None else self.buf.n_records

    # ---- the hot path --------------------------------------------------------------------
    def _forward(self, hook: Hook, module: nn.Module, inputs: Any, out: Any) -> None:
        if self.settings.training_only and not module.training:
            return
        if torch.is_inference_mode_enabled():  # no autograd, so not a training step
            return
        self.trained_in_batch = True  # also on a batch that ``every`` does not record
        if not self.recording:
            return
        t = out if isinstance(out, torch.Tensor) else pick_tensor(out, self.settings.output)
        if t is None:
            self._skip(hook, out)
            return
        st = hook.state
        if st.fast is not None and self.buf.slots.record_fast(st, t, self.stage_max):
            return  # a small output like the last one: one copy (slots.record_fast)
        plan = st.plan
        if plan is not None and self.buf.slots.record_planned(
                st, plan, t, self.buf.sig.extreme_rows(st.layer) if self.settings.extremes
                else None):
            return  # a CPU output like the last one: kept for the batch's end (deferred.py)
        x = t.detach()
        if x.dtype != torch.float32:  # half/bfloat16 sums would lose the exactness we promise
            if x.is_complex():  # .float() would keep the real part alone, with a warning
                self._skip(hook, t)
                return
            x = x.float()
        flat = x.reshape(-1)
        n = flat.shape[0]
        if n == 0:
            self._skip(hook, t)
            return
        if not st.ordered:  # once per layer: the forward order, for the diagnosis
            st.ordered = True
            self.forward_order.append(st.layer)
        idx = st.idx if st.idx_n == n else None  # no dict on the hot path
        if idx is None or idx.device != flat.device:
            idx = self._idx.get((n, flat.device))
            if idx is None:
                idx = self._idx[(n, flat.device)] = sample_indices(
                    n, self.settings.k, flat.device, self.settings.seed)
            st.idx, st.idx_n = idx, n
        staged = n <= self.stage_max
        if staged and self._staged_first is not None:
            self._staged_first += 1
        slots = self.buf.slots
        # one more op: aminmax (max |x| at flush); the staged reduce theirs at commit
        ext = (self.buf.sig.extreme_outs(st.layer, slots.slot, flat.device)
               if self.settings.extremes and not staged else None)
        slots.record(st, x, flat, idx, n, staged, t, ext)
        if (st.defer and not staged and n <= DEFER_MAX and t.dtype is torch.float32
                and flat.is_cpu):
            st.plan = PlannedRecord(t.shape, n, idx, slots.views[st.layer],
                                    None if ext is None else self.buf.sig.extreme_rows(st.layer))

    def _backward(self, hook: Hook, module: nn.Module, grad_in: Any, grad_out: Any) -> None:
        if not self.recording or not grad_out or grad_out[0] is None:
            return
        if self.settings.training_only and not module.training:
            return  # an eval-mode backward (saliency, ...)
        if grad_out[0].is_complex():  # a complex output: not recorded (see _skip)
            return
        g = grad_out[0].detach().reshape(-1).float()
        self.buf.slots.record_grad(hook.state.layer, g)

    # ---- read-back and checkpoints -------------------------------------------------------
    @_normal_tensors
    def result(self) -> Telemetry:
        """Flush and read the telemetry back to the host (one sync); cached until new records."""
        if self.buf is None or self.buf.n_records == 0:
            raise RuntimeError("no telemetry recorded yet: no watched module ran in a recorded "
                               "training-mode batch")
        never = [i for i in self.skips if not self.buf.ever_ran(i)]
        if never and not self._warned_skips:
            self._warned_skips = True
            warnings.warn("telemetry: " + "; ".join(f"layer {self.names[i]} {self.skips[i]}"
                                                    for i in never[:3])
                          + ": no statistics for it; pick the tensor with output=<index or key>",
                          stacklevel=3)
        return with_step_scalars(self.buf.result(self.names, self.meta()),
                                 self.step_scalars.by_step())

    def meta(self) -> dict[str, Any]:
        """The settings stored with the record (``Telemetry.meta``)."""
        from actscope.dist import get_rank, get_world_size

        world = get_world_size()
        st = self.settings
        return {"every": st.every, "bins": st.bins, "dead_bins": st.dead_bins,
                "dead_threshold": st.dead_threshold, "sample_size": st.k,
                "exact": ["mean", "std", "grad_mean", "grad_std"],
                "sampled": ["hist", "dead", "mad"],
                # the diagnosis signals: which were on; absmax, nonfinite, grad_norm and the
                # output's are exact, update_ratio and attention on samples (docs/signals.md);
                # each record's ratio spans its own batch's optimizer step (not ``every`` steps)
                "signals": {k: getattr(st, k) for k in ("extremes", "grad_norms",
                                                        "update_ratios", "attention",
                                                        "output_logits")},
                "update_ratio_span": "one optimizer step",
                # gradient norms and update ratios: on every signal_every-th recorded batch
                "signal_every": st.signal_every,
                # ... on the first SIGNAL_DENSE recorded batches, every signal_every_late-th after
                "signal_every_late": st.late_every, "signal_dense": SIGNAL_DENSE,
                "context": self.context,
                "bytes_per_record_per_layer": self.bytes_per_record(),
                "hist_range_rule": "fixed" if st.hist_range else "power-of-two ladder per chunk",
                "max_records": st.max_records, "keep_first": st.keep_first,
                "forward_order": list(self.forward_order),
                # under DDP only rank 0 saves its recording, over its B/W rows of each batch
                "scope": f"rank {get_rank()} of {world}" if world > 1 else "single process"}

    @_normal_tensors
    def state_dict(self) -> dict[str, Any]:
        """Everything recorded so far (flushes; one read-back), for an exact resume."""
        state: dict[str, Any] = {"names": list(self.names),
                                 "forward_order": list(self.forward_order)}
        if self.step_scalars:
            state["step_scalars_spans_json"] = self.step_scalars.to_json()
        if self.context is not None:
            state["context_json"] = json.dumps(self.context)  # a string: weights_only loads it
        if self.buf is not None:
            state.update(self.buf.state_dict())
        return state

    @_normal_tensors
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s records (idempotent); recording then continues after them."""
        if list(state["names"]) != list(self.names):
            raise UsageError(f"checkpointed telemetry watched {state['names']}, this run watches "
                             f"{self.names}: resume with the same model and modules")
        if self.buf is None:
            raise UsageError("attach(model) before load_state_dict: the state names modules")
        self.buf.load_state_dict(state)
        if "step_scalars_spans_json" in state:
            self.step_scalars.load_json(state["step_scalars_spans_json"])
        elif "step_scalars_json" in state:  # saved before the scalars were bounded
            self.step_scalars.load_json(state["step_scalars_json"], legacy=True)
        if "context_json" in state:  # the run's context at its start (init scale, optimizer)
            self.context, self._context_restored = json.loads(state["context_json"]), True
        # the saved order first, then any layer this process has seen run since the attach
        saved = [int(i) for i in state.get("forward_order", [])]
        self.forward_order = saved + [i for i in self.forward_order if i not in saved]
        for h in self.hooks:
            h.state.ordered = h.state.layer in self.forward_order

    def bytes_per_record(self) -> int:
        """Device bytes kept per recorded batch per layer after a flush (the samples are reused)."""
        st = self.settings
        per = 8 + 4 * st.bins + 8 + 4  # var+mean, int32 histogram + 2 overflow, dead share
        signals = sum(4 for on in (st.extremes, st.grad_norms, st.update_ratios) if on)
        signals += 8 if st.attention else 0  # max logit, entropy
        return per + (4 if st.mad else 0) + (8 if st.grads else 0) + signals
