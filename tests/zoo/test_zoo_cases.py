"""The zoo's cases are what they claim: each ground truth holds, and each expected layer is one
that actscope watches (else the scoring would compare against names that never appear).

``make test`` runs the quick subset (``fast=True``: one case or more per category, a few seconds
in all); ``ACTSCOPE_ZOO=all`` runs every case (about half a minute). Whether today's diagnosis
names the pathologies is asserted in test_zoo_diagnosis.py; ``benchmarks/zoo.py`` prints it.
"""

from __future__ import annotations

import os

import pytest

from benchmarks.zoo_cases import CASES, run_case

RUN_ALL = os.environ.get("ACTSCOPE_ZOO") == "all"
FAST = [c for c in CASES if c.fast]
REST = [c for c in CASES if not c.fast]


def _params(cases, slow: bool):
    marks = [pytest.mark.slow, pytest.mark.skipif(not RUN_ALL, reason="set ACTSCOPE_ZOO=all")] \
        if slow else []
    return [pytest.param(c, id=c.name, marks=marks) for c in cases]


def test_the_zoo_is_big_enough_and_its_names_unique():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    pathologies = [c for c in CASES if not c.control]
    assert len(pathologies) >= 22 and len(CASES) - len(pathologies) >= 7
    categories = {"mlp", "cnn", "resnet", "rnn", "transformer", "hf"}
    assert {c.category for c in CASES} == categories
    assert {c.category for c in FAST} == categories  # the quick subset covers every category
    assert any(c.control for c in FAST) and len(FAST) <= 9


@pytest.mark.parametrize("case", _params(FAST, False) + _params(REST, True))
def test_ground_truth_holds_and_expected_layers_are_watched(case):
    result = run_case(case)
    assert result.truth.holds, f"{case.name}: ground truth does not hold: {result.truth}"
    watched = {n.split(" ", 1)[0] for n in result.names}
    missing = set(case.layers or ()) - watched
    assert not missing, f"{case.name}: expected layers {missing} are not watched ({watched})"
    assert result.seconds < 60
