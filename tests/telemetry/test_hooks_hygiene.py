"""Hooks are resources: none stays registered after any fit; memory stays flat over many fits."""

from __future__ import annotations

import ctypes
import gc
import math
import weakref

import pytest
import torch
from torch import nn
from torch.nn.modules import module as module_mod

from actscope.callback import Callback
from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.callbacks.guards import NaNGuardCallback
from actscope.callbacks.metrics import MetricsCallback, accuracy
from actscope.events import CancelFitException
from actscope.learner import Learner

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
              "_state_dict_hooks", "_load_state_dict_pre_hooks")
GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                "_global_backward_pre_hooks")


def leftover_hooks(model: nn.Module) -> list[str]:
    """Every hook still registered on ``model``'s modules or globally, as 'module.kind'."""
    found = [f"{name or 'root'}.{d}" for name, m in model.named_modules()
             for d in HOOK_DICTS if getattr(m, d, None)]
    return found + [g for g in GLOBAL_HOOKS if getattr(module_mod, g, None)]


class Raise(Callback):
    """Raises ``exc`` in after_pred of training batch 2 (after the telemetry hooks fired)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def after_pred(self, learn: Learner) -> None:
        if learn.training and learn.iter == 2:
            raise self.exc


class PoisonLoss(Callback):
    def after_loss(self, learn: Learner) -> None:
        if learn.training and learn.iter == 1:
            learn.loss = learn.loss * math.nan


def telemetry_cbs() -> list[Callback]:
    return [ActivationStatsCallback(grads=True), MetricsCallback(accuracy), NaNGuardCallback()]


@pytest.mark.parametrize("how", ["normal", "cancelled", "raising", "keyboard", "nan_guard"])
def test_no_hook_survives_a_fit(make_synth_learner, how: str) -> None:
    extra = {"normal": [], "cancelled": [Raise(CancelFitException("stop"))],
             "raising": [Raise(RuntimeError("boom"))], "keyboard": [Raise(KeyboardInterrupt())],
             "nan_guard": [PoisonLoss()]}[how]
    learn = make_synth_learner(cbs=telemetry_cbs() + extra)
    assert leftover_hooks(learn.model) == []
    if how in ("raising", "keyboard"):
        with pytest.raises((RuntimeError, KeyboardInterrupt)):
            learn.fit(2)
    elif how == "nan_guard":
        with pytest.warns(RuntimeWarning, match="non-finite loss"):
            learn.fit(2)
    else:
        learn.fit(2)
    assert leftover_hooks(learn.model) == []
    # and the model still works without any telemetry attached
    learn.model(torch.zeros(2, 4))


def _rss_bytes() -> int:
    """Resident memory after handing glibc's free heap back to the system: a leak is memory
    still in use, not free blocks malloc keeps (their amount depends on the order of small
    allocations, e.g. a few hundred more tensor views per fit, and read 40-100 MiB over 200
    fits with or without a leak; after the trim the same runs read ~48 MiB either way)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the plain RSS
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096




def test_memory_flat_over_200_fits(make_synth_learner) -> None:
    """200 short fits in one process: no learner survives, object count and RSS stay flat."""
    alive: list[weakref.ref] = []

    def one_fit(i: int) -> None:
        learn = make_synth_learner(cbs=telemetry_cbs(), n_train=16, n_valid=16)
        learn.fit(1, cbs=[Raise(CancelFitException())] if i % 2 else [])
        assert leftover_hooks(learn.model) == []
        alive.append(weakref.ref(learn))

    for i in range(20):  # warm-up: caches, lazy imports, allocator pools
        one_fit(i)
    gc.collect()
    objects0, rss0 = len(gc.get_objects()), _rss_bytes()
    for i in range(200):
        one_fit(i)
    gc.collect()
    assert sum(r() is not None for r in alive) == 0, "learners kept alive after their fit"
    grown = len(gc.get_objects()) - objects0
    rss_grown = _rss_bytes() - rss0
    # One leaked learner per fit would add thousands of objects per fit (model, optimizer state,
    # callbacks, hooks, buffers): 200 fits would add > 100k.
    assert grown < 2_000, f"{grown} more live Python objects after 200 fits"
    assert rss_grown < 64 * 1024 * 1024, f"RSS grew {rss_grown / 2**20:.1f} MiB over 200 fits"
