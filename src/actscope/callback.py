"""The Callback base class: one no-op method per Event, each receiving the Learner explicitly.

The order values of the callbacks that ship (lower runs first; this table is the one place they
are documented, and ``tests/test_callback.py`` checks it against the classes):

    ======  ============================  =====================================================
    order   callback                      why there
    ======  ============================  =====================================================
    -30     DistributedCallback           wraps the model and shards the batch before anything
    -20     DeviceCallback                moves the batch to the model's device
    -10     BatchTransformCallback        transforms the (device) batch
     -7     InputCheckCallback            checks the final batch before telemetry records it
     -5     ActivationStatsCallback       its hooks see the batch the model sees
      0     (default for user callbacks)
     10     MetricsCallback               accumulates on the device after the loss
     20     RecorderCallback              records lr/loss after metrics
     25     TensorBoardCallback           writes after metrics and recorder finished the epoch
     30     ParamSchedulerCallback        sets the next batch's hyper-parameters
     40     LRFinderCallback              reads the loss, then cancels on a blow-up
     50     NaNGuardCallback              checks the step's loss before a checkpoint is taken
     60     EarlyStoppingCallback         decides at the epoch end, after metrics
     70     CheckpointCallback            saves after every other callback has updated its state
     80     ProgressCallback              prints last, when the epoch's figures are final
    ======  ============================  =====================================================

The state contract: a callback whose state must survive a checkpoint overrides ``state_dict`` and
``load_state_dict``; checkpoints store it under ``state_key`` (the class name unless set).
Stateless by design (nothing to save for an exact resume): device, transform, distributed, input
check, progress, the parameter scheduler (its position is ``learn.train_iter``) and the NaN guard
(a checkpoint is only written after its flags were checked and cleared).

Which callbacks the LR finder keeps during its sweep: those with ``prepares_batch = True``
(device, sharding, transforms: the model must see the batches it will be trained on) and those
with ``pausable_by_lr_find = False`` (the input check: a bad batch should fail the sweep with the
same clear message as a fit). Every other callback is paused, so the sweep leaves no trace in
metrics, recorder, telemetry, checkpoints or the progress table.

Cleanup contract: ``after_fit`` runs for every callback even when an earlier callback's
``before_fit`` raised, so ``after_fit`` must work on a callback whose ``before_fit`` never ran
(set what it reads in ``__init__``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    prepares_batch: bool = False  # True: changes what the model sees; never paused by lr_find
    pausable_by_lr_find: bool = True  # False: also kept during the sweep (checks, not records)
    state_key: str | None = None  # the key of this callback's state in a checkpoint (None: class)

    def state_dict(self) -> dict[str, Any] | None:
        """The state a checkpoint must keep for an exact resume; None (the default): stateless."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (called before the first resumed batch)."""
        raise NotImplementedError(f"{type(self).__name__} saves no state: it has nothing to load")

    def check_checkpointable(self, learn: Learner) -> None:
        """Called before a checkpoint is written; raise to veto it (the NaN guard does)."""

    def checkpoint_key(self) -> str:
        """The key of this callback's state in a checkpoint."""
        return self.state_key or type(self).__name__

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
