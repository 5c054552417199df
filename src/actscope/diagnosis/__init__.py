"""Diagnosis: a ``Telemetry`` in, ranked findings in plain words out (numpy only, no torch).

    thresholds.py   Thresholds: when a finding fires (a reason per value)
    finding.py      Finding and format_findings
    diagnose.py     diagnose(telemetry, context=None): runs every family of rules
    series.py       how the rules read a recording (windows, medians, layer types)
    advice.py       suggestions that fit the run's context
    ranking.py      most serious first; related findings merged
    nonfinite.py    the first real inf/NaN
    activations.py  dead units, dead channels, vanishing, unstable
    growth.py       growth over time, growth across depth
    saturation.py   bounded activations pinned at their limits
    gradients.py    exploding / vanishing gradients
    updates.py      stalled / oversized updates
    attention.py    attention-logit growth, attention-entropy collapse
    massive.py      massive activations
    logits.py       output-logit divergence
"""

from actscope.diagnosis.activations import count_rise_and_collapse
from actscope.diagnosis.diagnose import diagnose
from actscope.diagnosis.finding import Finding, format_findings
from actscope.diagnosis.thresholds import Thresholds

__all__ = ["Finding", "Thresholds", "count_rise_and_collapse", "diagnose", "format_findings"]
