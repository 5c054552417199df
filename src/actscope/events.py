"""The events of the training loop and the exceptions that cancel its units.

The loop, as pseudocode (``learner.py`` is the only implementation)::

    before_fit
    for epoch in range(n_epochs):
        before_epoch
            before_train                          # model.train(), learn.dl = dls.train
            for batch in learn.dl:
                before_batch                      # callbacks may replace learn.xb / learn.yb
                learn.preds = model(learn.xb);       after_pred
                learn.loss = loss_func(preds, yb);   after_loss
                zero_grad; loss.backward();          after_backward
                opt.step();                          after_step
                after_batch
            after_train
            before_validate                       # model.eval(), torch.no_grad()
                (the same batches, without backward and step)
            after_validate
        after_epoch
    after_fit                                     # always runs, also on a real error

Each unit (batch, train, validate, epoch, fit) can be cancelled by raising its Cancel…Exception
from any callback. The loop catches it at that unit, fires ``after_cancel_<unit>`` and then
``after_<unit>`` (so ``after_<unit>`` always pairs with ``before_<unit>``), and goes on with the
next unit. A real error skips the remaining events except ``after_fit`` and is re-raised.
``after_fit`` runs for every callback, even one whose ``before_fit`` never ran because an earlier
one failed; a callback whose ``after_fit`` fails while an error is in flight does not replace
that error: its failure is added to the error as a note (``BaseException.add_note``).
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "Event",
    "CancelBatchException",
    "CancelTrainException",
    "CancelValidateException",
    "CancelEpochException",
    "CancelFitException",
]


class Event(str, Enum):
    """Every event a Callback can handle; the value is the method's name."""

    before_fit = "before_fit"
    before_epoch = "before_epoch"
    before_train = "before_train"
    before_batch = "before_batch"
    after_pred = "after_pred"
    after_loss = "after_loss"
    after_backward = "after_backward"
    after_step = "after_step"
    after_batch = "after_batch"
    after_train = "after_train"
    before_validate = "before_validate"
    after_validate = "after_validate"
    after_epoch = "after_epoch"
    after_fit = "after_fit"
    after_cancel_batch = "after_cancel_batch"
    after_cancel_train = "after_cancel_train"
    after_cancel_validate = "after_cancel_validate"
    after_cancel_epoch = "after_cancel_epoch"
    after_cancel_fit = "after_cancel_fit"


class CancelBatchException(Exception):
    """Skip the rest of this batch; training goes on with the next one."""


class CancelTrainException(Exception):
    """Stop this epoch's training phase; validation still runs."""


class CancelValidateException(Exception):
    """Stop this epoch's validation phase."""


class CancelEpochException(Exception):
    """Stop this epoch; the next epoch starts."""


class CancelFitException(Exception):
    """Stop the whole fit; after_cancel_fit and after_fit still run."""
