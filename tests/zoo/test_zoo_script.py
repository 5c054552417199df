"""benchmarks/zoo.py: --list, --only, and the one closing line other tools read."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def zoo():
    spec = importlib.util.spec_from_file_location("zoo_script", REPO / "benchmarks" / "zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_list_names_every_case(zoo, capsys):
    from benchmarks.zoo_cases import CASES

    assert zoo.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(c.name in out for c in CASES)


def test_a_run_ends_with_the_zoo_line(zoo, capsys):
    assert zoo.main(["--only", "mlp_nonfinite_overflow,mlp_healthy"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"named=[01]/1 false_alarms=\d+ wrong_advice=\d+ seconds=\d+", lines[-1])
    assert any(line.startswith("mlp_nonfinite_overflow") and "first_inf_block=5" in line
               for line in lines)  # the ground truth is printed


def test_an_unknown_case_is_refused_by_name(zoo, capsys):
    with pytest.raises(SystemExit) as e:
        zoo.main(["--only", "no_such_case"])
    assert e.value.code == 2 and "no_such_case" in capsys.readouterr().err
