"""actscope: train PyTorch models while looking inside them."""

from actscope.callback import Callback
from actscope.events import (
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelTrainException,
    CancelValidateException,
    Event,
)
from actscope.learner import Learner

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "CancelBatchException",
    "CancelEpochException",
    "CancelFitException",
    "CancelTrainException",
    "CancelValidateException",
    "Event",
    "Learner",
]
