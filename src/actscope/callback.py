"""The Callback base class: one no-op method per Event, each receiving the Learner explicitly."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["Callback"]


class Callback:
    """Base class for everything optional in the loop.

    Subclasses override the events they need. Callbacks run sorted by ``order`` (lower first; ties
    keep the order they were added in). A method receives the Learner and may read or replace its
    state (``learn.xb``, ``learn.yb``, ``learn.preds``, ``learn.loss``, the optimizer's
    hyper-parameters), or raise a Cancel…Exception from ``actscope.events``.
    """

    order: int = 0

    def before_fit(self, learn: Learner) -> None:
        """Called once before the first epoch."""

    def before_epoch(self, learn: Learner) -> None:
        """Called at the start of every epoch."""

    def before_train(self, learn: Learner) -> None:
        """Called before the training phase; ``learn.dl`` may be replaced here."""

    def before_batch(self, learn: Learner) -> None:
        """Called before the forward pass; ``learn.xb`` / ``learn.yb`` may be replaced here."""

    def after_pred(self, learn: Learner) -> None:
        """Called after ``learn.preds`` is computed."""

    def after_loss(self, learn: Learner) -> None:
        """Called after ``learn.loss`` is computed (training and validation)."""

    def after_backward(self, learn: Learner) -> None:
        """Called after ``loss.backward()``, before the optimizer step."""

    def after_step(self, learn: Learner) -> None:
        """Called after the optimizer step."""

    def after_batch(self, learn: Learner) -> None:
        """Called at the end of every batch, also a cancelled one."""

    def after_train(self, learn: Learner) -> None:
        """Called after the training phase."""

    def before_validate(self, learn: Learner) -> None:
        """Called before the validation phase; ``learn.dl`` may be replaced here."""

    def after_validate(self, learn: Learner) -> None:
        """Called after the validation phase."""

    def after_epoch(self, learn: Learner) -> None:
        """Called at the end of every epoch."""

    def after_fit(self, learn: Learner) -> None:
        """Called once at the end; always runs, also on cancel or a real error (cleanup here)."""

    def after_cancel_batch(self, learn: Learner) -> None:
        """Called when a CancelBatchException stopped the batch."""

    def after_cancel_train(self, learn: Learner) -> None:
        """Called when a CancelTrainException stopped the training phase."""

    def after_cancel_validate(self, learn: Learner) -> None:
        """Called when a CancelValidateException stopped the validation phase."""

    def after_cancel_epoch(self, learn: Learner) -> None:
        """Called when a CancelEpochException stopped the epoch."""

    def after_cancel_fit(self, learn: Learner) -> None:
        """Called when a CancelFitException stopped the fit."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(order={self.order})"
