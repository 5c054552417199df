"""The LR finder: an exponential lr sweep that stops at divergence and leaves no trace behind.

``lr_find(learn)`` trains for at most ``num_it`` batches while the lr grows geometrically from
``min_lr`` to ``max_lr``, stops (CancelFitException) once the smoothed loss exceeds ``stop_div``
times the best seen (or is NaN), then restores the model, the optimizer and every random
generator (actscope.rng) exactly, so a later fit is bit-identical to one without the sweep.

Suggestions are pure functions of (lrs, losses) in lr_suggest.py (re-exported here); the
default is the valley rule.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from actscope.callback import Callback
from actscope.callbacks.lr_suggest import (
    SUGGESTERS,
    Suggester,
    smooth_losses,
    suggest_minimum,
    suggest_steepest,
    suggest_valley,
)
from actscope.dist import DistEnv, get_rank, get_world_size
from actscope.errors import UsageError
from actscope.events import CancelFitException, CancelValidateException
from actscope.rng import capture_rng, restore_rng
from actscope.schedules import sched_exp

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["LRFinderCallback", "LRFindResult", "lr_find", "SUGGESTERS", "smooth_losses",
           "suggest_valley", "suggest_steepest", "suggest_minimum"]



class LRFinderCallback(Callback):
    """Sweeps the lr exponentially, records (lr, loss), stops on divergence, restores all state.

    The stop rule needs the loss on the host: it is read back every ``check_every`` batches (a
    short sweep, so the sync is cheap) and the recording is cut at the first diverged batch, so
    the result does not depend on ``check_every``.
    """

    order = 40

    def __init__(self, min_lr: float = 1e-7, max_lr: float = 10.0, num_it: int = 100,
                 stop_div: float = 10.0, beta: float = 0.98, check_every: int = 4) -> None:
        if not 0 < min_lr < max_lr:
            raise UsageError(f"need 0 < min_lr < max_lr, got min_lr={min_lr}, max_lr={max_lr}")
        if num_it < 2 or check_every < 1:
            raise UsageError(f"need num_it >= 2 and check_every >= 1, got {num_it}, {check_every}")
        if stop_div <= 1 or not 0 <= beta < 1:
            raise UsageError(f"need stop_div > 1 and 0 <= beta < 1, got {stop_div}, {beta}")
        self.min_lr, self.max_lr, self.num_it = min_lr, max_lr, num_it
        self.stop_div, self.beta, self.check_every = stop_div, beta, check_every
        self.sched = sched_exp(min_lr, max_lr)
        self.lrs: list[float] = []
        self.raw_losses = np.zeros(0)
        self._model_state: dict[str, Any] | None = None

    # ---- save and restore ------------------------------------------------------------------
    def before_fit(self, learn: Learner) -> None:
        # Deep copies: state_dict() tensors alias the live parameters and optimizer buffers.
        self._model_state = copy.deepcopy(learn.model.state_dict())
        self._model_training = learn.model.training
        self._opt_state = copy.deepcopy(learn.opt.state_dict())
        self._rng = capture_rng()
        self.lrs, self._buf, self._n = [], None, 0
        self._checked, self._stop_at = 0, None
        self._smooth, self._best = 0.0, math.inf

    def after_fit(self, learn: Learner) -> None:
        if self._model_state is None:  # an earlier callback failed before our before_fit
            return
        self._check(final=True)
        learn.model.load_state_dict(self._model_state)
        learn.model.train(self._model_training)
        learn.opt.load_state_dict(self._opt_state)
        restore_rng(self._rng)
        n = self._stop_at if self._stop_at is not None else self._n
        self.raw_losses = (self._buf[:n].cpu().double().numpy() if self._buf is not None
                           else np.zeros(0))
        self.lrs = self.lrs[:n]
        self._buf, self._model_state, self._opt_state = None, None, None

    # ---- the sweep -------------------------------------------------------------------------
    def before_batch(self, learn: Learner) -> None:
        if not learn.training:
            return
        lr = self.sched(learn.train_iter / (self.num_it - 1))
        for group in learn.opt.param_groups:
            group["lr"] = lr

    def before_validate(self, learn: Learner) -> None:
        raise CancelValidateException()

    def after_step(self, learn: Learner) -> None:
        loss = learn.loss.detach()
        if self._buf is None:
            self._buf = torch.empty(self.num_it, dtype=torch.float64, device=loss.device)
        self._buf[self._n] = loss
        self._n += 1
        self.lrs.append(learn.opt.param_groups[0]["lr"])
        if self._n >= self.num_it:
            raise CancelFitException()
        if self._n - self._checked >= self.check_every:
            self._check()

    def _check(self, final: bool = False) -> None:
        """Read back the losses since the last check; stop at the first diverged one."""
        if self._buf is None or self._stop_at is not None or self._checked >= self._n:
            return
        new = self._buf[self._checked:self._n].tolist()  # the finder's sync, every check_every
        for i, loss in enumerate(new, start=self._checked):
            self._smooth = self.beta * self._smooth + (1 - self.beta) * loss
            smoothed = self._smooth / (1 - self.beta ** (i + 1))
            if math.isnan(smoothed) or smoothed > self.stop_div * self._best:
                self._stop_at = i + 1  # keep the diverged point: it shows where the wall is
                break
            self._best = min(self._best, smoothed)
        self._checked = self._n
        if self._stop_at is not None and not final:
            raise CancelFitException()



@dataclass
class LRFindResult:
    """The sweep: ``lrs``, smoothed ``losses`` (as plotted), the default and all suggestions."""

    lrs: np.ndarray
    losses: np.ndarray
    suggestion: float
    suggestions: dict[str, float] = field(default_factory=dict)
    raw_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))


# The fewest sweep points each shipped rule needs: its usable points plus the first and last one,
# which every rule drops as noise.
MIN_NUM_IT = {"valley": 5, "steepest": 5, "minimum": 3}


def keeps_running(cb: Callback) -> bool:
    """True for the callbacks the sweep keeps: batch preparation and the non-pausable checks."""
    return cb.prepares_batch or not cb.pausable_by_lr_find


def _check_not_distributed() -> None:
    env = DistEnv.from_env()
    world = max(get_world_size(), env.world_size if env is not None else 1)
    if world > 1:
        # Each rank would sweep on its own shard and stop on its own loss: the ranks would part
        # ways at the first divergence check, and the suggestion would be one rank's.
        raise UsageError(f"lr_find runs on one process, but this is rank {get_rank()} of a "
                         f"{world}-process job; run `actscope lr-find` (or lr_find) without "
                         "torchrun/--nproc, then train with --nproc and the suggested lr")


def lr_find(learn: Learner, min_lr: float = 1e-7, max_lr: float = 10.0, num_it: int = 100,
            stop_div: float = 10.0, beta: float = 0.98, check_every: int = 4,
            default: str = "valley",
            suggesters: Mapping[str, Suggester] | None = None,
            ) -> LRFindResult:
    """Run the LR finder on ``learn`` (whose state is left unchanged) and suggest an lr.

    The sweep keeps the callbacks that prepare batches (``prepares_batch``) or check them
    (``pausable_by_lr_find = False``); all others are paused and put back afterwards. Under
    torchrun it refuses to run (UsageError): the sweep is a one-process tool.
    """
    suggesters = dict(SUGGESTERS if suggesters is None else suggesters)
    if default not in suggesters:
        raise UsageError(f"default suggestion {default!r} is not one of {sorted(suggesters)}")
    if suggesters[default] is SUGGESTERS.get(default) and num_it < MIN_NUM_IT[default]:
        raise UsageError(f"num_it={num_it} is too short for the {default!r} rule, which needs at "
                         f"least {MIN_NUM_IT[default]} points; use num_it >= "
                         f"{MIN_NUM_IT[default]} (100 is the usual sweep)")
    _check_not_distributed()
    cb = LRFinderCallback(min_lr, max_lr, num_it, stop_div, beta, check_every)
    n_batches = len(learn.dls.train)
    if n_batches == 0:
        raise UsageError("the training loader is empty: the LR finder needs batches")
    had_opt = learn.opt is not None
    order = list(learn.cbs)
    paused = [c for c in learn.cbs if not keeps_running(c)]
    learn.remove_cbs(paused)
    try:
        learn.fit(max(1, math.ceil(num_it / n_batches)), cbs=[cb])
    finally:
        # all callbacks back, in the order they were added (ties in ``order`` keep that order)
        learn.remove_cbs(list(learn.cbs))
        learn.add_cbs(order)
    if not had_opt:  # as if it had never run: the next fit builds a fresh optimizer
        learn.opt = None
    lrs = np.asarray(cb.lrs, dtype=np.float64)
    losses = smooth_losses(cb.raw_losses, beta)
    suggestions: dict[str, float] = {}
    for name, fn in suggesters.items():
        try:
            suggestions[name] = fn(lrs, losses)
        except ValueError:
            if name == default:
                raise
            suggestions[name] = math.nan
    return LRFindResult(lrs, losses, suggestions[default], suggestions, cb.raw_losses)
