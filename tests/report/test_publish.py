"""publish_telemetry: telemetry.npz and findings.json, the one diagnosis of a recording."""

from __future__ import annotations

import json

import numpy as np

from actscope.report.publish import publish_telemetry
from actscope.telemetry.record import Telemetry
from tests.telemetry.fakes import telemetry


def test_writes_both_files_and_returns_the_findings(tmp_path):
    t = telemetry(n_layers=1)
    t.dead[:] = np.float32(0.95)
    findings = publish_telemetry(tmp_path, t)
    assert any("near zero" in f for f in findings)
    assert json.loads((tmp_path / "findings.json").read_text()) == findings
    np.testing.assert_array_equal(Telemetry.load(tmp_path / "telemetry.npz").dead, t.dead)
