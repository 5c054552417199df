"""default_callbacks: the usual list, built explicitly (the Learner adds nothing by itself)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from actscope.callback import Callback
from actscope.callbacks.device import DeviceCallback
from actscope.callbacks.metrics import MetricsCallback, accuracy
from actscope.callbacks.progress import ProgressCallback
from actscope.callbacks.recorder import RecorderCallback

__all__ = ["default_callbacks"]


def default_callbacks(metrics: Iterable[Callable[..., Any]] = (accuracy,),
                      device: str | torch.device | None = None,
                      progress: bool = True) -> list[Callback]:
    """Device placement, metrics, recorder and (unless ``progress=False``) the progress bar."""
    cbs: list[Callback] = [DeviceCallback(device), MetricsCallback(*metrics), RecorderCallback()]
    if progress:
        cbs.append(ProgressCallback())
    return cbs
