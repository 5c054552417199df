import pytest
import torch

from actscope.callback import Callback
from actscope.events import (
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelTrainException,
    CancelValidateException,
    Event,
)

from .conftest import synth_learner


class LoggingCB(Callback):
    """Overrides every event so the learner dispatches all of them."""

    def __init__(self):
        self.events = []


for _ev in Event:
    setattr(LoggingCB, _ev.value, (lambda n: lambda self, learn: self.events.append(n))(_ev.value))


def test_event_order_one_epoch():
    log = LoggingCB()
    learn = synth_learner(cbs=[log], n_train=32, n_valid=16, bs=16)
    learn.fit(1)
    train_batch = ["before_batch", "after_pred", "after_loss", "after_backward", "after_step",
                   "after_batch"]
    valid_batch = ["before_batch", "after_pred", "after_loss", "after_batch"]
    expected = (["before_fit", "before_epoch", "before_train"] + train_batch * 2 + ["after_train"]
                + ["before_validate"] + valid_batch + ["after_validate", "after_epoch",
                                                        "after_fit"])
    assert log.events == expected


def test_fit_trains_and_validation_runs_without_grad():
    seen = {}

    class Check(Callback):
        def after_loss(self, learn):
            if not learn.training:
                seen["grad"] = torch.is_grad_enabled()
                seen["mode"] = learn.model.training

    learn = synth_learner(cbs=[Check()])
    before = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(2)
    assert seen == {"grad": False, "mode": False}
    assert any(not torch.equal(a, b) for a, b in zip(before, learn.model.parameters(), strict=True))
    assert learn.train_iter == 2 * 4


def test_callbacks_run_in_order():
    calls = []

    def make(order, tag):
        cls = type(f"CB{tag}", (Callback,), {"order": order,
                                             "before_fit": lambda self, learn: calls.append(tag)})
        return cls()

    learn = synth_learner(cbs=[make(10, "c"), make(-5, "a"), make(0, "b")])
    learn.fit(1)
    assert calls == ["a", "b", "c"]


@pytest.mark.parametrize("exc,event,raise_at", [
    (CancelBatchException, "after_cancel_batch", "after_pred"),
    (CancelTrainException, "after_cancel_train", "after_step"),
    (CancelValidateException, "after_cancel_validate", "before_validate"),
    (CancelEpochException, "after_cancel_epoch", "after_train"),
    (CancelFitException, "after_cancel_fit", "after_step"),
])
def test_each_cancel_level_fires_its_event_and_goes_on(exc, event, raise_at):
    log = LoggingCB()

    class Raiser(Callback):
        order = -1

    def raise_it(self, learn):
        if learn.training or raise_at == "before_validate":
            raise exc()

    setattr(Raiser, raise_at, raise_it)
    learn = synth_learner(cbs=[Raiser(), log])
    learn.fit(2)  # no exception reaches the caller
    assert event in log.events
    assert log.events[-1] == "after_fit"
    if exc is CancelFitException:
        assert log.events.count("before_epoch") == 1
        assert learn.train_iter == 1
    if exc is CancelEpochException:
        assert log.events.count("before_epoch") == 2
        assert "before_validate" not in log.events
    if exc is CancelTrainException:
        assert log.events.count("before_validate") == 2
        assert learn.train_iter == 2


def test_stop_after_ten_batches():
    class StopAfter(Callback):
        def after_batch(self, learn):
            if learn.training and learn.train_iter >= 10:
                raise CancelFitException()

    learn = synth_learner(cbs=[StopAfter()], n_train=400, bs=8)
    learn.fit(3)
    assert learn.train_iter == 10


def test_real_error_runs_after_fit_and_reraises():
    log = LoggingCB()

    class Boom(Callback):
        def after_loss(self, learn):
            raise RuntimeError("boom")

    learn = synth_learner(cbs=[Boom(), log])
    with pytest.raises(RuntimeError, match="boom"):
        learn.fit(1)
    assert log.events[-1] == "after_fit"


def test_callback_can_replace_state():
    class DoubleLoss(Callback):
        def after_loss(self, learn):
            learn.loss = learn.loss * 0

    class Replace(Callback):
        def before_batch(self, learn):
            learn.xb = learn.xb * 0

    learn = synth_learner(cbs=[DoubleLoss(), Replace()])
    before = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1)
    # zero loss: no gradient, so SGD without weight decay leaves the weights alone
    assert all(torch.equal(a, b) for a, b in zip(before, learn.model.parameters(), strict=True))


def test_fit_callbacks_are_removed_after_fit():
    learn = synth_learner()
    cb = LoggingCB()
    learn.fit(1, cbs=[cb])
    assert cb not in learn.cbs and cb.events
    with pytest.raises(ValueError, match="positive"):
        learn.fit(0)


def test_lr_passed_to_fit_sets_param_groups():
    learn = synth_learner(lr=0.1)
    learn.fit(1, lr=0.01)
    assert learn.opt.param_groups[0]["lr"] == 0.01
