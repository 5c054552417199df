"""Run one zoo case under actscope: the ONE place the zoo calls actscope.

``run_case`` builds the case's trial, trains it inside ``actscope.watch(model)``, reads the
telemetry and diagnoses it. When the recording API grows (``w.step(loss=...)``, gradients and
updates recorded by ``watch()`` itself, ``diagnose`` reading ``tel.meta["context"]``), this file
is the only one to change, and the marked lines say where.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import torch

import actscope
from actscope import Finding  # the top-level name: stable when modules move

from .base import Case, Truth

__all__ = ["CaseResult", "run_case", "train_only"]

# The coming API takes the step's scalars: w.step(loss=loss). Until it lands, step() takes none.
_STEP_TAKES_LOSS = "loss" in inspect.signature(actscope.Watch.step).parameters


@dataclass
class CaseResult:
    """A case's findings, its ground truth and how long the run took."""

    case: Case
    findings: list[Finding]
    truth: Truth
    seconds: float
    names: list[str]  # the watched layers, as actscope named them


def run_case(case: Case, seed: int = 0) -> CaseResult:
    """Train ``case`` once under ``actscope.watch`` and diagnose the recording."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    trial = case.build()
    # Gradient norms and update ratios: today watch() records neither (its grads= setting is
    # the activations' gradients); the coming watch() records both by itself, here, unchanged.
    # The run's context (init scale, optimizer, schedule, clipping) is whatever watch() can see
    # by itself; should it ever take the optimizer, pass it here: optimizer=trial.opt.
    w = actscope.watch(trial.model)
    try:
        for i in range(trial.steps):
            loss = trial.train_step(i)
            # coming API: the loss as a scalar signal (no host sync: the tensor itself)
            if _STEP_TAKES_LOSS:
                w.step(loss=loss.detach())
            else:
                w.step()
        tel = w.result()
        names = w.names
    finally:
        w.remove()
        trial.remove_probes()
    # diagnose() reads tel.meta["context"] (architecture, init, optimizer) once watch() records
    # it; nothing to pass here either way.
    findings = actscope.diagnose(tel)
    return CaseResult(case, findings, trial.truth(), time.perf_counter() - t0, names)


def train_only(case: Case, seed: int = 0) -> Truth:
    """Train ``case`` without actscope and return its ground truth (for the tests)."""
    torch.manual_seed(seed)
    trial = case.build()
    try:
        for i in range(trial.steps):
            trial.train_step(i)
    finally:
        trial.remove_probes()
    return trial.truth()
