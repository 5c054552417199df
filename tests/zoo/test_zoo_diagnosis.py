"""The diagnosis on the zoo: each pathology named in its layers, no finding on a control, no
advice that contradicts a run (the quick subset in ``make test``; ``ACTSCOPE_ZOO=all`` for all)."""

from __future__ import annotations

import pytest

from benchmarks.zoo_cases import run_case
from benchmarks.zoo_cases.score import score_case
from tests.zoo.test_zoo_cases import FAST, REST, _params


@pytest.mark.parametrize("case", _params(FAST, False) + _params(REST, True))
def test_named_clean_and_no_wrong_advice(case):
    result = run_case(case)
    s = score_case(case, result.findings)
    got = [f"{f.kind}{f.evidence.get('also', '')} @ {f.layer}" for f in result.findings]
    if case.control:
        assert s.false_alarms == 0, f"{case.name}: false alarm {got}"
    else:
        assert s.named, f"{case.name}: not named, got {got}"
    assert s.wrong_advice == [], f"{case.name}: {s.wrong_advice}"
