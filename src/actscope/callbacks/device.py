"""DeviceCallback: puts the model (once) and every batch (non-blocking) on one device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from actscope.callback import Callback

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["DeviceCallback", "default_device", "to_device"]


def default_device() -> torch.device:
    """``cuda`` when a GPU is usable, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_device(obj: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """Move a tensor, or the tensors inside tuples/lists/dicts, to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(o, device, non_blocking) for o in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device, non_blocking) for k, v in obj.items()}
    return obj


class DeviceCallback(Callback):
    """Moves the model in ``before_fit`` and each batch in ``before_batch`` to ``device``."""

    order = -20

    def __init__(self, device: str | torch.device | None = None) -> None:
        try:
            self.device = default_device() if device is None else torch.device(device)
        except RuntimeError as e:
            raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:1', 'mps'"
                             ) from e

    def before_fit(self, learn: Learner) -> None:
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {self.device} was asked for but CUDA is not available; "
                               "pass device='cpu' or leave it out to pick automatically")
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
