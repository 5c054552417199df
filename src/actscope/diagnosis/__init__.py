"""Diagnosis: a ``Telemetry`` in, ranked findings in plain words out (numpy only, no torch).

    thresholds.py   Thresholds: when a finding fires
    finding.py      Finding and format_findings
    diagnose.py     diagnose(telemetry): runs every family of rules
    activations.py  dead units, dead channels, vanishing, unstable, non-finite
"""

from actscope.diagnosis.activations import count_rise_and_collapse
from actscope.diagnosis.diagnose import diagnose
from actscope.diagnosis.finding import Finding, format_findings
from actscope.diagnosis.thresholds import Thresholds

__all__ = ["Finding", "Thresholds", "count_rise_and_collapse", "diagnose", "format_findings"]
