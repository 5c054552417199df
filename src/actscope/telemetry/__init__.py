"""Recording only: watched modules in, a ``Telemetry`` (numpy) out. Diagnosis, plots and reports
read the recording from above (``actscope.diagnosis``, ``actscope.report``); the adapters that
drive the accumulator live with the loops they serve (``callbacks.activation_stats``,
``integrations.watch``).

    settings.py      TelemetrySettings: every recording setting, validated once (frozen)
    accumulator.py   TelemetryAccumulator: attach, begin/end batch and epoch, result, state
    hooks.py         Hook/Hooks: forward and backward hooks as resources
    layer_state.py   LayerState: what the hot path knows about one watched layer
    modules.py       which modules are watched by default, their names, which output tensor
    slots.py         the chunk's sample slots (the hot path writes here)
    channels.py      per-channel maxima (the dead-unit record)
    records.py       the record store: flush, read-back, checkpoint state
    transfer.py      the flush's device-to-host copy (async + CUDA event on a GPU)
    host_store.py    the bounded host store: coarsening older records, spans
    merge_rules.py   how two records merge (one table keyed by field), ladder re-binning
    host_view.py     host store fields -> Telemetry
    hist_range.py    how and when a layer's histogram range is chosen
    reductions.py    pure on-device reductions (histograms, shares, sample positions)
    record.py        Telemetry (numpy only) and its validated .npz format
"""

from actscope.telemetry.accumulator import TelemetryAccumulator
from actscope.telemetry.hist_range import data_hist_range
from actscope.telemetry.hooks import (
    Hook,
    Hooks,
    child_blocks,
    modules_by_name,
    modules_by_type,
)
from actscope.telemetry.modules import default_modules, describe_module, resolve_modules
from actscope.telemetry.record import Telemetry, TelemetryFileError
from actscope.telemetry.reductions import (
    histograms,
    mean_abs_dev,
    near_zero_share,
    sample_indices,
    split_histograms,
)
from actscope.telemetry.settings import TelemetrySettings

__all__ = [
    "Hook",
    "Hooks",
    "Telemetry",
    "TelemetryAccumulator",
    "TelemetryFileError",
    "TelemetrySettings",
    "child_blocks",
    "data_hist_range",
    "default_modules",
    "describe_module",
    "histograms",
    "mean_abs_dev",
    "modules_by_name",
    "modules_by_type",
    "near_zero_share",
    "resolve_modules",
    "sample_indices",
    "split_histograms",
]
