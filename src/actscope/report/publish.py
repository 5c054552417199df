"""publish_telemetry: diagnose a recording ONCE and write telemetry.npz + findings.json.

Every writer of a telemetry folder (``actscope fit``, ``watch().report``, the Lightning and
Hugging Face callbacks) goes through here, so the diagnosis runs once and the report only reads
``findings.json`` (a JSON list of strings), never re-diagnoses.
"""

from __future__ import annotations

import json
from pathlib import Path

from actscope.atomic import atomic_write
from actscope.diagnosis.diagnose import diagnose
from actscope.diagnosis.thresholds import Thresholds
from actscope.runs.layout import FINDINGS_FILE, TELEMETRY_FILE
from actscope.telemetry.record import Telemetry

__all__ = ["publish_telemetry", "TELEMETRY_FILE", "FINDINGS_FILE"]



def publish_telemetry(run_dir: str | Path, telemetry: Telemetry,
                      thresholds: Thresholds | None = None) -> list[str]:
    """Write ``run_dir/telemetry.npz`` and ``run_dir/findings.json`` atomically; the findings."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    telemetry.save(run_dir / TELEMETRY_FILE)
    findings = [str(f) for f in diagnose(telemetry, thresholds)]
    with atomic_write(run_dir / FINDINGS_FILE, "w") as f:
        json.dump(findings, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return findings
