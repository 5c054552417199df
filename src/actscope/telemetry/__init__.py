"""Hooks and on-device activation statistics. Plots, the report and TensorBoard live in
telemetry.plots, telemetry.report and telemetry.tensorboard (imported on demand: matplotlib and
tensorboard are heavy)."""

from actscope.telemetry.activation_stats import (
    ActivationStatsCallback,
    Telemetry,
)
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
from actscope.telemetry.stats import (
    default_hist_range,
    histograms,
    mean_abs_dev,
    near_zero_share,
    sample_indices,
)

__all__ = [
    "ActivationStatsCallback",
    "Finding",
    "Hook",
    "Hooks",
    "Telemetry",
    "Thresholds",
    "child_blocks",
    "count_rise_and_collapse",
    "default_hist_range",
    "diagnose",
    "format_findings",
    "histograms",
    "mean_abs_dev",
    "modules_by_name",
    "modules_by_type",
    "near_zero_share",
    "sample_indices",
]
