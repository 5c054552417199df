"""experiments/norms/table.py: the experiments as data, and name checks in table order."""

from __future__ import annotations

import pytest

from actscope.errors import UsageError
from actscope.experiments.norms.table import EXPERIMENTS, NFS, check_names


def test_names_come_back_in_table_order():
    assert check_names(None) == list(EXPERIMENTS)
    assert check_names(["layer", "no_norm", "layer"]) == ["no_norm", "layer"]


def test_bad_or_no_names_list_the_valid_ones():
    with pytest.raises(UsageError, match=r"unknown experiment\(s\) \['typo'\]; valid names: "
                                         r"no_norm, batch"):
        check_names(["batch", "typo"])
    with pytest.raises(UsageError, match=r"unknown experiment\(s\) \[\]"):
        check_names([])


def test_every_row_is_well_formed():
    assert NFS == (8, 16, 32, 64, 64)
    for name, exp in EXPERIMENTS.items():
        assert exp.name == name and exp.lr > 0 and exp.epochs >= 1 and exp.bs >= 1
        assert exp.sched in ("const", "one_cycle", "lin")
        assert (exp.lr_end is not None) == (exp.sched == "lin")
        assert exp.lesson_acc is None or 0 < exp.lesson_acc < 1
    assert not EXPERIMENTS["running_batch_bs2_nograd"].stats_grad
