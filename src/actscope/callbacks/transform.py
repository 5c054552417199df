"""BatchTransformCallback: applies functions to each batch's inputs and targets."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actscope.callback import Callback
from actscope.errors import UsageError

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["BatchTransformCallback"]


class BatchTransformCallback(Callback):
    """Replaces ``learn.xb`` by ``tfm_x(xb)`` and ``learn.yb`` by ``tfm_y(yb)`` before each batch.

    Example: ``BatchTransformCallback(lambda x: x.view(-1, 1, 28, 28))`` turns flat MNIST rows
    into images. Runs after DeviceCallback, so the transform works on the training device.
    """

    order = -10
    prepares_batch = True  # the model must see transformed batches, also in lr_find

    def __init__(self, tfm_x: Callable[[Any], Any] | None = None,
                 tfm_y: Callable[[Any], Any] | None = None) -> None:
        if tfm_x is None and tfm_y is None:
            raise UsageError("BatchTransformCallback needs tfm_x, tfm_y or both")
        self.tfm_x, self.tfm_y = tfm_x, tfm_y

    def before_batch(self, learn: Learner) -> None:
        if self.tfm_x is not None:
            learn.xb = self.tfm_x(learn.xb)
        if self.tfm_y is not None:
            learn.yb = self.tfm_y(learn.yb)
