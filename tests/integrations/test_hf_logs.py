"""The HF callback's per-layer scalars reach ``report_to=["tensorboard"]`` (real event files)."""

from __future__ import annotations

import pytest

transformers = pytest.importorskip("transformers", reason="make test installs "
                                   "actscope[transformers]")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

from actscope.integrations.hf_logs import move_first  # noqa: E402
from actscope.integrations.transformers import ActscopeCallback  # noqa: E402
from tests.integrations.test_transformers import Tokens, gpt2, train_args  # noqa: E402


def events(log_dir):
    ea = event_accumulator.EventAccumulator(str(log_dir))
    ea.Reload()
    return ea


def test_report_to_tensorboard_gets_the_layer_scalars(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    cb = ActscopeCallback(log_every=3, report=False, chunk=4)
    args = train_args(tmp_path, max_steps=9, report_to=["tensorboard"],
                      logging_strategy="steps",
                      logging_steps=3)
    trainer = transformers.Trainer(model=gpt2(), args=args, train_dataset=Tokens(64),
                                   callbacks=[cb])
    kinds = [type(c).__name__ for c in trainer.callback_handler.callbacks]
    assert kinds.index("ActscopeCallback") > kinds.index("TensorBoardCallback")  # ours after...
    trainer.train()
    assert trainer.callback_handler.callbacks[0] is cb  # ...train begin puts it first
    ea = events(tmp_path / "tb")
    tags = set(ea.Tags()["scalars"])
    assert "train/loss" in tags
    std = [t for t in tags if t.startswith("train/actscope/") and t.endswith("/std")]
    assert len(std) == 3, tags  # GPT-2's three blocks
    steps = [e.step for e in ea.Scalars(sorted(std)[0])]
    assert steps == [3, 6, 9]  # at the Trainer's log steps
    assert all(e.value > 0 for e in ea.Scalars(sorted(std)[0]))
    # transformer hidden states are not zero-floored: no dead share for them
    assert not [t for t in tags if t.endswith("/dead_share")]
    # the actscope keys are not fed back into the recording's own scalars
    names = cb.result().scalar_names or []
    assert not [n for n in names if n.startswith("actscope/")]


def test_loggers_false_adds_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    cb = ActscopeCallback(loggers=False, report=False)
    args = train_args(tmp_path, max_steps=4, report_to=["tensorboard"],
                      logging_strategy="steps",
                      logging_steps=2)
    trainer = transformers.Trainer(model=gpt2(), args=args, train_dataset=Tokens(32),
                                   callbacks=[cb])
    trainer.train()
    assert not [t for t in events(tmp_path / "tb").Tags()["scalars"] if "actscope/" in t]


def test_move_first_puts_the_callback_at_the_front_of_the_running_handler():
    class CallbackHandler:  # the name move_first looks for on the call stack
        def __init__(self, cbs):
            self.callbacks = cbs

        def call(self):
            seen = []
            for cb in self.callbacks:  # moving a visited entry keeps the later ones in place
                seen.append(cb)
                if cb == "ours":
                    assert move_first("ours")
            return seen

    h = CallbackHandler(["a", "b", "ours", "c"])
    assert h.call() == ["a", "b", "ours", "c"]
    assert h.callbacks == ["ours", "a", "b", "c"]
    assert not move_first("ours")  # no handler on the stack: nothing moved
