"""The Callback base: the order table in its docstring is true, and the contracts are declared."""

from __future__ import annotations

import re

import pytest

import actscope.callback
from actscope.callback import Callback
from actscope.callbacks.lr_finder import keeps_running
from tests.helpers import CALLBACK_FACTORIES as FACTORIES
from tests.helpers import shipped_callbacks

ROW = re.compile(r"^\s*(-?\d+)\s+(\w+Callback)\s+\S")


def documented_orders() -> dict[str, int]:
    """(callback -> order) from the table in callback.py's module docstring."""
    rows = [ROW.match(line) for line in actscope.callback.__doc__.splitlines()]
    return {m.group(2): int(m.group(1)) for m in rows if m}


def test_the_order_table_matches_the_classes():
    table, classes = documented_orders(), shipped_callbacks()
    assert set(table) == set(classes), "document every shipped callback, and only those"
    wrong = {name: (table[name], cls.order) for name, cls in classes.items()
             if cls.order != table[name]}
    assert not wrong, f"table vs class order: {wrong}"
    assert list(table.values()) == sorted(table.values()), "keep the table sorted by order"


def test_the_table_parser_sees_a_wrong_row(monkeypatch):
    # The test above must be able to fail: a row with another order is read as such.
    doc = actscope.callback.__doc__.replace("-20     DeviceCallback", "-21     DeviceCallback")
    monkeypatch.setattr(actscope.callback, "__doc__", doc)
    assert documented_orders()["DeviceCallback"] == -21


def test_batch_preparers_declare_it_and_only_they_do():
    preparers = {n for n, cls in shipped_callbacks().items() if cls.prepares_batch}
    assert preparers == {"DistributedCallback", "DeviceCallback", "BatchTransformCallback"}


def test_lr_find_keeps_preparers_and_the_input_check(tmp_path):
    kept = {n for n, make in FACTORIES.items() if keeps_running(make(tmp_path))}
    assert kept == {"DistributedCallback", "DeviceCallback", "BatchTransformCallback",
                    "InputCheckCallback"}


def test_stateful_callbacks_implement_both_halves_of_the_contract():
    stateful = {n for n, cls in shipped_callbacks().items()
                if cls.state_dict is not Callback.state_dict}
    assert {"MetricsCallback", "RecorderCallback", "EarlyStoppingCallback"} <= stateful
    for name in stateful:
        cls = shipped_callbacks()[name]
        assert cls.load_state_dict is not Callback.load_state_dict, name


def test_default_callback_is_stateless_and_keyed_by_class():
    class Mine(Callback):
        pass

    cb = Mine()
    assert cb.state_dict() is None and cb.checkpoint_key() == "Mine"
    with pytest.raises(NotImplementedError, match="saves no state"):
        cb.load_state_dict({})
    cb.state_key = "custom"
    assert cb.checkpoint_key() == "custom"
