"""TelemetrySettings: every recording setting, validated once, frozen, passed by value.

The accumulator, the slots, the channel maxima and the record store each get this one object;
none reads a setting back through another. ``check_settings`` is the "did you mean" check for a
settings mapping given by name (``watch(**settings)``, the integrations).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from actscope.errors import UsageError
from actscope.telemetry.modules import OutputSpec, check_output_spec

__all__ = ["TelemetrySettings", "check_settings"]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


def _is_range(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 2
            and all(_is_number(v) for v in value) and value[0] < value[1])


_SWITCHES = ("mad", "grads", "channels", "training_only", "extremes", "grad_norms",
             "update_ratios", "attention", "output_logits")


@dataclass(frozen=True)
class TelemetrySettings:
    """What is recorded and how; checked on construction (``UsageError`` naming the setting)."""

    # Record every ``every``-th batch (by the ``step`` given to ``begin_batch``).
    every: int = 1
    # Histogram bins, and a fixed ``(lo, hi)``; None: per layer, from the data (hist_range.py).
    bins: int = 40
    hist_range: tuple[float, float] | None = None
    # A sample is "near zero" when |x| < dead_threshold, and a channel "fired" in an epoch when
    # its max reached it.
    dead_threshold: float = 0.05
    # The lesson's rule instead: |x| < dead_bins * bin width.
    dead_bins: int | None = None
    # Also the mean absolute deviation / the output gradient's mean and std.
    mad: bool = False
    grads: bool = False
    # Per-channel deadness (a running per-channel max).
    channels: bool = True
    # K positions per layer per batch for histogram, dead share, mad.
    sample_size: int = 2048
    # Recorded batches between flushes (with a flush listener the first come after 1, 2, 4, ...).
    chunk: int = 128
    # Records kept per layer in host memory; beyond it older history is coarsened (adjacent
    # records merge exactly), except the first ``keep_first`` and the most recent half.
    max_records: int = 4096
    keep_first: int = 64
    seed: int = 0
    # Which tensor of a tuple/dict output to read (index or key; None: the first).
    output: OutputSpec = None
    # Record only forwards of modules in training mode (not validation).
    training_only: bool = True
    # The diagnosis signals (docs/telemetry.md, "Signals and what they cost"): exact max |x|
    # (and from it the non-finite flag) per layer; per-layer gradient norm and update/weight
    # ratio, once per optimizer step; attention max logit and entropy (sampled query rows);
    # the model output's mean log-sum-exp and max |logit|.
    extremes: bool = True
    grad_norms: bool = True
    update_ratios: bool = True
    # Gradient norms, update ratios, output logits and attention on every ``signal_every``-th
    # recorded batch (by step, so a resumed run measures the same steps): on a small model their
    # ~0.5 ms per step is ~12 % of a training step (docs/telemetry.md, "Cost"); 1: every one.
    signal_every: int = 4
    attention: bool = True
    output_logits: bool = True
    # ... for the first SIGNAL_DENSE recorded batches (by step); after them on every
    # ``signal_every_late``-th (None: 4 x signal_every): a long run's trends need no dense
    # sampling, and at 1/16 of the steps the signals cost ~1 % of a small model's step.
    # ``signal_every_late=signal_every`` keeps one cadence throughout.
    signal_every_late: int | None = None

    def __post_init__(self) -> None:
        ints = {"every": 1, "bins": 2, "sample_size": 1, "chunk": 1, "seed": 0,
                "max_records": 16, "keep_first": 0, "signal_every": 1}
        if self.dead_bins is not None:
            ints["dead_bins"] = 1
        if self.signal_every_late is not None:
            ints["signal_every_late"] = 1
        for name, low in ints.items():
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise UsageError(f"{name} must be an int >= {low}, got {value!r:.40}")
        if not _is_number(self.dead_threshold) or not self.dead_threshold > 0:
            raise UsageError(f"dead_threshold must be a finite number > 0, got "
                             f"{self.dead_threshold!r:.40}; e.g. 0.05")
        for name in _SWITCHES:
            # "false" would be on: an on/off setting must be a bool
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise UsageError(f"{name} must be True or False, got {getattr(self, name)!r:.40}")
        if self.hist_range is not None and not _is_range(self.hist_range):
            raise UsageError(f"hist_range must be (lo, hi): two finite numbers with lo < hi, got "
                             f"{self.hist_range!r:.60}; e.g. hist_range=(0, 10), or None to take "
                             "it from the data")
        if (_is_int(self.max_records) and _is_int(self.keep_first)
                and self.max_records < 2 * self.keep_first + 8):
            raise UsageError(f"max_records must be >= 2 * keep_first + 8 (room to coarsen), got "
                             f"max_records={self.max_records}, keep_first={self.keep_first}; "
                             "e.g. max_records=4096, keep_first=64")
        check_output_spec(self.output)
        # numpy numbers are fine; stored as Python ones (Telemetry.meta is JSON)
        for name in ints:
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in _SWITCHES:
            object.__setattr__(self, name, bool(getattr(self, name)))
        object.__setattr__(self, "dead_threshold", float(self.dead_threshold))

    @property
    def k(self) -> int:
        """Samples per layer per recorded batch (``sample_size``)."""
        return self.sample_size

    @property
    def late_every(self) -> int:
        """The signals' cadence after the first ``SIGNAL_DENSE`` recorded batches."""
        late = self.signal_every_late
        return 4 * self.signal_every if late is None else late

    def measures_signals(self, step: int) -> bool:
        """Whether the recorded batch of ``step`` measures the ``signal_every`` signals."""
        r = step // self.every
        return r % (self.signal_every if r < SIGNAL_DENSE else self.late_every) == 0


NAMES = tuple(f.name for f in dataclasses.fields(TelemetrySettings))

# Recorded batches (step // every) measured at the dense ``signal_every`` cadence: the start of
# a run, where a short run lives and where most init problems show.
SIGNAL_DENSE = 64


def check_settings(settings: Mapping[str, Any], exclude: Sequence[str] = ()) -> None:
    """``UsageError`` naming a key of ``settings`` that is not a telemetry setting (and the
    closest one that is); ``exclude``: settings the caller sets itself."""
    known = [n for n in NAMES if n not in exclude]
    for key in settings:
        if key not in known:
            close = difflib.get_close_matches(key, (*known, "modules", "every"), n=1)
            hint = f"did you mean {close[0]}=? " if close else ""
            raise UsageError(f"unknown telemetry setting {key}=; {hint}known: modules, every, "
                             f"{', '.join(known)}")
