"""Run one zoo case under actscope: the ONE place the zoo calls actscope.

``run_case`` builds the case's trial, trains it inside ``actscope.watch(model, optimizer=...)``
(which records gradient norms and update ratios at the optimizer's steps, the output logits,
attention and ``meta["context"]``: optimizer, schedule, clipping), passes each step's loss with
``w.step(loss=...)``, reads the telemetry and diagnoses it (``diagnose`` reads the context from
``tel.meta``). When the recording API changes, this file is the only one to change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

import actscope
from actscope import Finding  # the top-level name: stable when modules move

from .base import Case, Trial, Truth

__all__ = ["CaseResult", "record", "run_case", "train_only"]


@dataclass
class CaseResult:
    """A case's findings, its ground truth and how long the run took."""

    case: Case
    findings: list[Finding]
    truth: Truth
    seconds: float
    names: list[str]  # the watched layers, as actscope named them


def record(trial: Trial, steps: int | None = None) -> tuple[actscope.Telemetry, list[str]]:
    """Train ``trial`` (``steps``: at most that many) under ``actscope.watch``; its recording."""
    # The optimizer (its step hooks give gradient norms and update ratios), the schedule and the
    # clipping are passed so the context, and so the advice, know them.
    w = actscope.watch(trial.model, optimizer=trial.opt, scheduler=trial.sched,
                       grad_clip=trial.clip)
    try:
        for i in range(trial.steps if steps is None else min(steps, trial.steps)):
            loss = trial.train_step(i)
            w.step(loss=loss.detach())  # a device tensor: no host sync
        return w.result(), w.names
    finally:
        w.remove()


def run_case(case: Case, seed: int = 0) -> CaseResult:
    """Train ``case`` once under ``actscope.watch`` and diagnose the recording."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    trial = case.build()
    try:
        tel, names = record(trial)
    finally:
        trial.remove_probes()
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
