"""DeviceCallback: puts the model (once) and every batch (non-blocking) on one device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from actscope.callback import Callback
from actscope.errors import ActscopeError, UsageError

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["DeviceCallback", "DeviceError", "check_device", "default_device", "to_device"]


def default_device() -> torch.device:
    """``cuda`` when a GPU is usable, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_device(obj: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """Move a tensor, or the tensors inside tuples/lists/dicts, to ``device`` (the one copy of
    this helper: batches here, restored checkpoint states in callbacks/checkpoint.py)."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(o, device, non_blocking) for o in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device, non_blocking) for k, v in obj.items()}
    return obj


class DeviceError(ActscopeError, RuntimeError):
    """A device that was asked for does not exist or is not usable on this machine."""


TRAINING_DEVICES = ("cpu", "cuda", "mps")  # "meta" and friends hold no data: nothing to train on


def check_device(device: torch.device) -> None:
    """DeviceError unless ``device`` exists on this machine (CUDA index in range, MPS built)."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device} was asked for but CUDA is not available; pass "
                              "device='cpu' or leave it out to pick automatically")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device} does not exist: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s), cuda:0.."
                              f"cuda:{torch.cuda.device_count() - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {device} was asked for but MPS is not available on this "
                          "machine; pass device='cpu'")


class DeviceCallback(Callback):
    """Moves the model in ``before_fit`` and each batch in ``before_batch`` to ``device``."""

    order = -20
    prepares_batch = True  # the model must see its batches on its device, also in lr_find

    def __init__(self, device: str | torch.device | None = None) -> None:
        try:
            self.device = default_device() if device is None else torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise UsageError(f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:1', 'mps'"
                             ) from e
        if self.device.type not in TRAINING_DEVICES:
            raise UsageError(f"unknown device {device!r}: training needs one of "
                             f"{', '.join(TRAINING_DEVICES)} (e.g. 'cuda:1')")

    def before_fit(self, learn: Learner) -> None:
        check_device(self.device)
        # Module.to moves parameters in place, so an optimizer built on them stays valid;
        # its existing state (e.g. momentum buffers) moves with it below.
        learn.model.to(self.device)
        if learn.opt is not None:
            for state in learn.opt.state.values():
                for k, v in state.items():
                    if isinstance(v, torch.Tensor) and k != "step":
                        state[k] = v.to(self.device)

    def before_batch(self, learn: Learner) -> None:
        # Pinned host memory makes non_blocking a real overlap on CUDA; on CPU it is a no-op.
        learn.xb = to_device(learn.xb, self.device)
        learn.yb = to_device(learn.yb, self.device)
