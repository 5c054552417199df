"""Finding and format_findings: how a diagnosis reads and prints."""

from __future__ import annotations

import json

from actscope.diagnosis.finding import Finding, format_findings


def test_a_finding_prints_its_message_and_suggestion_and_is_json_ready():
    f = Finding(layer="conv1", kind="dead", message="conv1: 90% dead", suggestion="lower the lr",
                evidence={"share": 0.9}, first_iter=3)
    assert str(f) == "conv1: 90% dead; lower the lr"
    assert json.loads(json.dumps(f.to_dict()))["evidence"] == {"share": 0.9}
    assert str(Finding(layer="x", kind="dead", message="only this")) == "only this"


def test_format_findings():
    assert format_findings([]) == "diagnosis: no problems found in the recorded activations"
    text = format_findings([Finding("a", "dead", "one"), Finding("b", "unstable", "two")])
    assert text.splitlines() == ["diagnosis:", "  - one", "  - two"]
