"""Hooks and on-device activation statistics. Plots and the report live in telemetry.plots and
telemetry.report, the TensorBoard callback in callbacks.tensorboard (imported on demand:
matplotlib and tensorboard are heavy).

    record.py        Telemetry (numpy only) and its validated .npz format
    accumulator.py   TelemetryAccumulator: hooks -> device buffers -> flush -> Telemetry
    buffers.py       the accumulator's device memory (slots, records, per-channel maxima)
    activation_stats ActivationStatsCallback: the Learner's adapter
    watch.py         actscope.watch(model): the adapter for a hand-written loop
    modules.py       which modules are watched by default, their names, which output tensor
    stats.py         pure device reductions (histograms, ranges, shares)
    diagnose.py      findings in plain words; publish.py writes telemetry.npz + findings.json
"""

from actscope.telemetry.accumulator import TelemetryAccumulator
from actscope.telemetry.activation_stats import ActivationStatsCallback
from actscope.telemetry.diagnose import (
    Finding,
    Thresholds,
    count_rise_and_collapse,
    diagnose,
    format_findings,
)
from actscope.telemetry.hooks import (
    Hook,
    Hooks,
    child_blocks,
    modules_by_name,
    modules_by_type,
)
from actscope.telemetry.modules import default_modules, describe_module, resolve_modules
from actscope.telemetry.publish import publish_telemetry
from actscope.telemetry.record import Telemetry, TelemetryFileError
from actscope.telemetry.stats import (
    data_hist_range,
    default_hist_range,
    histograms,
    mean_abs_dev,
    near_zero_share,
    sample_indices,
    split_histograms,
)

__all__ = [
    "ActivationStatsCallback",
    "Finding",
    "Hook",
    "Hooks",
    "Telemetry",
    "TelemetryAccumulator",
    "TelemetryFileError",
    "Thresholds",
    "child_blocks",
    "count_rise_and_collapse",
    "data_hist_range",
    "default_hist_range",
    "default_modules",
    "describe_module",
    "diagnose",
    "format_findings",
    "histograms",
    "mean_abs_dev",
    "modules_by_name",
    "modules_by_type",
    "near_zero_share",
    "publish_telemetry",
    "resolve_modules",
    "sample_indices",
    "split_histograms",
]
