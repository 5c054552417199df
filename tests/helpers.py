"""Helpers shared by several test modules (small functions; add yours, keep others')."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from rich.console import Console

import actscope.callbacks
import actscope.telemetry
from actscope.callback import Callback
from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.callbacks.checkpoint import CheckpointCallback
from actscope.callbacks.device import DeviceCallback
from actscope.callbacks.distributed import DistributedCallback
from actscope.callbacks.guards import EarlyStoppingCallback, NaNGuardCallback
from actscope.callbacks.input_check import InputCheckCallback
from actscope.callbacks.lr_finder import LRFinderCallback
from actscope.callbacks.metrics import MetricsCallback, accuracy
from actscope.callbacks.progress import ProgressCallback
from actscope.callbacks.recorder import RecorderCallback
from actscope.callbacks.schedule import ParamSchedulerCallback
from actscope.callbacks.transform import BatchTransformCallback
from actscope.learner import Learner
from actscope.schedules import sched_cos


def shipped_callbacks() -> dict[str, type[Callback]]:
    """Every Callback subclass defined in actscope.callbacks and actscope.telemetry."""
    found: dict[str, type[Callback]] = {}
    for package in (actscope.callbacks, actscope.telemetry):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if (inspect.isclass(obj) and issubclass(obj, Callback) and obj is not Callback
                        and obj.__module__ == module.__name__):
                    found[name] = obj
    return found


def _tensorboard(tmp: Path) -> Callback:
    pytest.importorskip("torch.utils.tensorboard")
    cls = shipped_callbacks()["TensorBoardCallback"]  # wherever it lives (callbacks/ since #9)
    return cls(tmp / "tb")


# The smallest arguments each shipped callback takes.
CALLBACK_FACTORIES: dict[str, Callable[[Path], Callback]] = {
    "DistributedCallback": lambda tmp: DistributedCallback(),
    "DeviceCallback": lambda tmp: DeviceCallback("cpu"),
    "BatchTransformCallback": lambda tmp: BatchTransformCallback(lambda x: x),
    "InputCheckCallback": lambda tmp: InputCheckCallback(),
    "ActivationStatsCallback": lambda tmp: ActivationStatsCallback(),
    "MetricsCallback": lambda tmp: MetricsCallback(accuracy),
    "RecorderCallback": lambda tmp: RecorderCallback(),
    "TensorBoardCallback": _tensorboard,
    "ParamSchedulerCallback": lambda tmp: ParamSchedulerCallback({"lr": sched_cos(0.1, 0.01)}),
    "LRFinderCallback": lambda tmp: LRFinderCallback(),
    "NaNGuardCallback": lambda tmp: NaNGuardCallback(),
    "EarlyStoppingCallback": lambda tmp: EarlyStoppingCallback(restore_best=True),
    "CheckpointCallback": lambda tmp: CheckpointCallback(tmp / "run"),
    "ProgressCallback": lambda tmp: ProgressCallback(console=Console(file=io.StringIO(),
                                                                     force_terminal=True)),
}



class Spy(Callback):
    """Keeps what the loop saw per batch (host copies: fine in a test)."""

    order = 15

    def __init__(self) -> None:
        self.seen: list[tuple[bool, int, float, torch.Tensor]] = []

    def after_loss(self, learn: Learner) -> None:
        self.seen.append((learn.training, len(learn.yb), learn.loss.item(),
                          learn.xb.detach().clone()))


def one_error_line(stderr: str, needle: str = "") -> str:
    """The CLI's error contract: exactly one ``actscope: error: ...`` line holding ``needle``."""
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), f"not one line: {stderr!r}"
    assert stderr.startswith("actscope: error: ") and "Traceback" not in stderr, stderr
    assert needle in stderr, f"{needle!r} not in {stderr!r}"
    return stderr


def tree_snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for folders), to see that nothing changed."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}
