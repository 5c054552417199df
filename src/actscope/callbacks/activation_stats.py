"""ActivationStatsCallback: the Learner's adapter over ``TelemetryAccumulator``.

Learner events map one to one onto the accumulator: ``before_fit`` attaches the hooks,
``before_batch`` of a training batch begins a record (every ``every``-th ``train_iter``),
``after_batch`` commits it (after backward, so gradient statistics land in the same record),
``after_train`` closes the epoch's per-channel record, and ``after_fit`` removes the hooks and
reads the result back once. See ``accumulator.py`` for the hot path and its cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torch import nn

from actscope.callback import Callback
from actscope.telemetry.accumulator import TelemetryAccumulator
from actscope.telemetry.modules import ModuleSpec, OutputSpec
from actscope.telemetry.record import Telemetry

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["ActivationStatsCallback", "learner_schedule"]


def learner_schedule(learn: Learner) -> dict[str, Any] | None:
    """The context's ``schedule`` for a Learner driven by ``ParamSchedulerCallback``: its type
    and whether the lr warms up (its value at the start below 0.99 x its largest later on)."""
    from actscope.callbacks.schedule import ParamSchedulerCallback

    cb = learn.find_cb(ParamSchedulerCallback)
    if cb is None:
        return None
    spec = cb.scheds.get("lr")
    fn = spec if callable(spec) else (spec[0] if spec else None)
    if fn is None:
        return {"type": "ParamSchedulerCallback", "warmup": None}
    try:
        first = fn(0.0)
        later = [fn(p) for p in (0.05, 0.1, 0.25, 0.5)]
        first = first[0] if isinstance(first, (list, tuple)) else first
        later = [v[0] if isinstance(v, (list, tuple)) else v for v in later]
        warm = float(first) < 0.99 * max(float(v) for v in later)
    except Exception:  # a schedule that cannot be probed: unknown, not a guess
        warm = None
    return {"type": "ParamSchedulerCallback", "warmup": warm}


class ActivationStatsCallback(Callback):
    """Records mean, std, histogram, dead share and dead channels of watched modules, on device.

    Args:
        modules: modules to watch: a list, a type, a name pattern or ``model -> modules``;
            default: ``telemetry.modules.default_modules`` (a cnn's conv blocks, a transformer's
            blocks, a ResNet's stage blocks, else the children; at most 32).
        every: record every ``every``-th training batch.
        bins, hist_range: histogram bins and ``(lo, hi)``; default range per layer from the first
            recorded batch (robust quantiles, widened, rounded; see ``stats.data_hist_range``).
        dead_threshold: a sample is "near zero" ("dead") when ``|x| < dead_threshold``. An
            absolute threshold, because a bin width depends on the (data-derived) range: with a
            [-16, 16] range a 1-bin rule counted GeneralRelu(sub=0.4)'s healthy outputs near -0.4
            as dead. 0.05 is fastai's near-zero cut-off; plain ReLU's dead units are exact zeros.
        dead_bins: if given, use the lesson's rule instead: ``|x| < dead_bins * bin width``
            (meant with a fixed ``hist_range``, as in the lesson's (-7, 7) and (0, 10)).
        channels: record which channels never fired (max < dead_threshold) in each epoch.
        sample_size: K positions per layer per batch for histogram/dead share/mad.
        chunk: recorded batches between flushes (bounds the sample buffer: L*chunk*K floats).
        max_records, keep_first: host records kept per layer; beyond, older history is
            coarsened exactly, except the first ``keep_first`` (docs/telemetry.md).
        output: which tensor of a tuple/dict module output to record (index or key).
        extremes, grad_norms, update_ratios, attention, output_logits: the diagnosis signals
            (``TelemetrySettings``); gradient norms are read in ``after_backward`` (before any
            later callback touches the grads), update ratios in ``after_step``, the output
            from a forward hook on ``learn.model``, the loss and the lr in ``after_batch``.
        signal_every, signal_every_late: gradient norms, update ratios, output logits and
            attention on every ``signal_every``-th recorded batch for the first 64, every
            ``signal_every_late``-th after (None: 4 x signal_every; docs/telemetry.md "Cost").
    """

    order = -5

    def __init__(self, modules: ModuleSpec = None, every: int = 1, bins: int = 40,
                 hist_range: tuple[float, float] | None = None,
                 dead_threshold: float = 0.05, dead_bins: int | None = None,
                 mad: bool = False, grads: bool = False, channels: bool = True,
                 sample_size: int = 2048, chunk: int = 128, seed: int = 0,
                 output: OutputSpec = None, extremes: bool = True, grad_norms: bool = True,
                 update_ratios: bool = True, attention: bool = True,
                 output_logits: bool = True, max_records: int = 4096,
                 keep_first: int = 64, signal_every: int = 4,
                 signal_every_late: int | None = None) -> None:
        self.acc = TelemetryAccumulator(
            every=every, bins=bins, hist_range=hist_range, dead_threshold=dead_threshold,
            dead_bins=dead_bins, mad=mad, grads=grads, channels=channels,
            sample_size=sample_size, chunk=chunk, seed=seed, output=output, extremes=extremes,
            grad_norms=grad_norms, update_ratios=update_ratios, attention=attention,
            output_logits=output_logits, max_records=max_records, keep_first=keep_first,
            signal_every=signal_every, signal_every_late=signal_every_late)
        self.modules_spec = modules

    # Settings read by tools and tests, forwarded from the accumulator.
    @property
    def every(self) -> int:
        return self.acc.settings.every

    @property
    def k(self) -> int:
        return self.acc.settings.k

    @property
    def names(self) -> list[str]:
        return self.acc.names

    @property
    def n_records(self) -> int:
        """Records committed so far (0 before the first recorded batch)."""
        return self.acc.n_records

    def before_fit(self, learn: Learner) -> None:
        self.acc.attach(learn.model, self.modules_spec)
        self.acc.build_context(learn.model, optimizer=learn.opt, trainer={"trainer": "Learner"})
        if self.acc.context is not None and self.acc.context.get("schedule") is None:
            self.acc.context["schedule"] = learner_schedule(learn)

    def watch(self, modules: Sequence[nn.Module], model: nn.Module | None = None) -> None:
        """Register the hooks on ``modules`` and reset the buffers (``before_fit`` does this)."""
        self.acc.attach(model, list(modules))

    def remove(self) -> None:
        """Remove all hooks (idempotent)."""
        self.acc.remove()

    def before_batch(self, learn: Learner) -> None:
        if learn.training:
            self.acc.begin_batch(learn.train_iter)

    def after_backward(self, learn: Learner) -> None:
        self.acc.before_optimizer_step()

    def after_step(self, learn: Learner) -> None:
        self.acc.after_optimizer_step()

    def after_batch(self, learn: Learner) -> None:
        if learn.training and self.acc.recording:
            # the loss stays a device tensor until the read-back; the lr is a host number
            scalars: dict[str, Any] = {"lr": learn.opt.param_groups[0]["lr"]}
            if learn.loss is not None:
                scalars["loss"] = learn.loss.detach()
            self.acc.record_scalars(scalars)
        self.acc.end_batch()

    def after_train(self, learn: Learner) -> None:
        self.acc.end_epoch(learn.epoch)

    def after_fit(self, learn: Learner) -> None:
        # Always runs (also on cancel or error): hooks go first, then one read-back to the host.
        self.acc.end_batch()
        self.acc.remove()
        if self.acc.n_records:
            self.acc.result()  # cached: later result() calls cost nothing

    def result(self) -> Telemetry:
        """Flush and read the telemetry back to the host (one sync); cached until new records."""
        if self.acc.n_records == 0:
            raise RuntimeError("no telemetry recorded yet: fit with ActivationStatsCallback in "
                               "cbs first (only training batches are recorded)")
        return self.acc.result()

    def state_dict(self) -> dict[str, Any]:
        """Everything recorded so far (flushes; one read-back), for an exact resume."""
        return self.acc.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s records (idempotent); recording then continues after them."""
        self.acc.load_state_dict(state)

    def bytes_per_record(self) -> int:
        """Device bytes kept per recorded batch per layer after a flush (the samples are reused)."""
        return self.acc.bytes_per_record()
