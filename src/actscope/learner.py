"""The Learner: the one training loop. Everything optional is a Callback.

Loop state a callback may read or replace (names used throughout actscope):
    model, opt, loss_func  the network, its optimizer (created on the first fit), the loss
    dls                    an object with ``.train`` and ``.valid`` (``valid`` may be None)
    dl                     the loader of the current phase
    xb, yb                 the current batch's inputs and targets
    preds, loss            the model's output and the loss for the current batch
    epoch, n_epochs        the current epoch (0-based) and the epochs of this fit
    iter, n_iter           the current batch index in the phase and the phase's number of batches
    train_iter             training batches completed in this fit (the schedules' clock)
    training               True in the training phase, False in validation
    first_epoch, first_iter  where the fit starts; a resume callback sets them in before_fit
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from actscope.callback import Callback
from actscope.errors import UsageError
from actscope.events import (
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelTrainException,
    CancelValidateException,
    Event,
)

__all__ = ["Learner"]

LossFunc = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
OptFunc = Callable[..., torch.optim.Optimizer]


def _as_cbs(cbs: Any) -> list[Any]:
    """``cbs`` as a list: one Callback is a list of one, never iterated (it is not iterable)."""
    if isinstance(cbs, Callback) or isinstance(cbs, type):
        return [cbs]  # a class alone is refused, naming it, by the instance check
    if isinstance(cbs, (str, bytes)) or not isinstance(cbs, Iterable):
        raise TypeError(f"cbs must be a Callback or a list of them, got {type(cbs).__name__}")
    return list(cbs)


class Learner:
    """Trains ``model`` on ``dls`` with ``loss_func`` and an optimizer made by ``opt_func``."""

    def __init__(
        self,
        model: nn.Module,
        dls: Any,
        loss_func: LossFunc = F.cross_entropy,
        opt_func: OptFunc = torch.optim.SGD,
        lr: float = 0.1,
        cbs: Iterable[Callback] = (),
    ) -> None:
        self.model, self.dls, self.loss_func, self.opt_func, self.lr = (
            model, dls, loss_func, opt_func, lr)
        self.opt: torch.optim.Optimizer | None = None
        self.cbs: list[Callback] = []
        self._handlers: dict[str, list[Callable[[Learner], None]]] = {}
        self.epoch = self.n_epochs = self.iter = self.n_iter = self.train_iter = 0
        self.first_epoch = self.first_iter = 0
        self.resume_from: Any = None  # set by fit(resume=...); a CheckpointCallback consumes it
        self.training = False
        self.dl: Any = None
        self.xb: Any = None
        self.yb: Any = None
        self.preds: Any = None
        self.loss: torch.Tensor | None = None
        self.add_cbs(cbs)

    # ---- callbacks -------------------------------------------------------------------------
    def add_cbs(self, cbs: Iterable[Callback]) -> None:
        """Add callbacks (one Callback alone is a list of one); each runs at its ``order``."""
        for cb in _as_cbs(cbs):
            if not isinstance(cb, Callback):
                raise TypeError(f"expected a Callback instance, got {type(cb).__name__}; "
                                "pass an instance such as MetricsCallback(), not the class")
            self.cbs.append(cb)
        self._build_handlers()

    def remove_cbs(self, cbs: Iterable[Callback]) -> None:
        """Remove callbacks added before (missing ones are ignored)."""
        ids = {id(cb) for cb in _as_cbs(cbs)}
        self.cbs = [cb for cb in self.cbs if id(cb) not in ids]
        self._build_handlers()

    def find_cb(self, cls: type) -> Any:
        """The first callback that is an instance of ``cls``, or None."""
        return next((cb for cb in self.cbs if isinstance(cb, cls)), None)

    def _build_handlers(self) -> None:
        # Sorted once per change, and only the methods a callback overrides are kept: the loop
        # calls no no-op methods, which keeps the per-batch cost flat at small batch sizes.
        ordered = sorted(self.cbs, key=lambda cb: cb.order)
        self._handlers = {
            ev.value: [getattr(cb, ev.value) for cb in ordered
                       if getattr(type(cb), ev.value) is not getattr(Callback, ev.value)]
            for ev in Event
        }

    def fire(self, event: str) -> None:
        """Call every callback's handler for ``event``, in order."""
        for handler in self._handlers[event]:
            handler(self)

    # ---- the loop --------------------------------------------------------------------------
    def fit(self, n_epochs: int, lr: float | None = None, cbs: Iterable[Callback] = (),
            resume: Any = None) -> None:
        """Train for ``n_epochs``; callbacks in ``cbs`` take part in this fit only.

        ``resume`` (a run folder or checkpoint path) continues a run from its newest complete
        checkpoint; a ``CheckpointCallback`` reads it in ``before_fit``.
        """
        if not isinstance(n_epochs, int) or n_epochs <= 0:
            raise UsageError(f"n_epochs must be a positive integer, got {n_epochs!r}")
        added = _as_cbs(cbs)
        self.add_cbs(added)
        try:
            if lr is not None:
                self.lr = lr
            if self.opt is None:
                self.opt = self.opt_func(self.model.parameters(), lr=self.lr)
            elif lr is not None:
                for group in self.opt.param_groups:
                    group["lr"] = lr
            self.n_epochs, self.train_iter = n_epochs, 0
            self.first_epoch = self.first_iter = 0
            self.resume_from = resume
            error: BaseException | None = None
            try:
                try:
                    self.fire("before_fit")
                    if self.resume_from is not None:
                        raise UsageError(f"fit(resume={resume!r}) needs a CheckpointCallback to "
                                         "read the checkpoint: pass "
                                         "cbs=[CheckpointCallback(run_dir)]")
                    self._run_epochs()
                except CancelFitException:
                    self.fire("after_cancel_fit")
            except BaseException as e:
                error = e
                raise
            finally:
                self._fire_after_fit(error)
        finally:
            self.remove_cbs(added)

    def _fire_after_fit(self, error: BaseException | None) -> None:
        """after_fit for every callback, also when one of them (or the fit) failed.

        Every handler runs, so each callback cleans up. With an error in flight, that error is
        the one the caller sees: a cleanup failure is added to it as a note, never raised in its
        place (it would hide the cause, e.g. a refused checkpoint, behind a secondary traceback).
        """
        failures: list[tuple[Callable[[Learner], None], Exception]] = []
        for handler in self._handlers["after_fit"]:
            try:
                handler(self)
            except Exception as e:  # noqa: BLE001 - collected and reported below
                failures.append((handler, e))
        if not failures:
            return
        notes = [f"{type(getattr(h, '__self__', h)).__name__}.after_fit also failed: "
                 f"{type(e).__name__}: {e}" for h, e in failures]
        if error is not None:
            for note in notes:
                error.add_note(note)
            return  # the finally clause re-raises ``error`` unchanged
        first = failures[0][1]
        for note in notes[1:]:
            first.add_note(note)
        raise first

    def _with_events(self, unit: str, body: Callable[[], None], cancel: type[Exception]) -> None:
        """before_<unit>, body, then after_<unit>; a ``cancel`` fires after_cancel_<unit> first."""
        try:
            self.fire("before_" + unit)
            body()
        except cancel:
            self.fire("after_cancel_" + unit)
        self.fire("after_" + unit)

    def _run_epochs(self) -> None:
        for epoch in range(self.first_epoch, self.n_epochs):
            self.epoch = epoch
            self._with_events("epoch", self._run_epoch, CancelEpochException)

    def _run_epoch(self) -> None:
        self._run_phase(training=True)
        if getattr(self.dls, "valid", None) is not None:
            self._run_phase(training=False)

    def _run_phase(self, training: bool) -> None:
        self.training = training
        self.model.train(training)
        self.dl = self.dls.train if training else self.dls.valid
        if hasattr(self.dl, "set_epoch"):  # the shuffle is a function of (seed, epoch): resumable
            self.dl.set_epoch(self.epoch)
        if training:
            self._with_events("train", self._all_batches, CancelTrainException)
            self.first_iter = 0
        else:
            with torch.no_grad():
                self._with_events("validate", self._all_batches, CancelValidateException)

    def _all_batches(self) -> None:
        self.n_iter = len(self.dl)
        start = self.first_iter if self.training else 0
        batches = self.dl
        if start:  # resuming mid-epoch: skip the batches already trained on
            batches = (self.dl.batches(start) if hasattr(self.dl, "batches")
                       else itertools.islice(iter(self.dl), start, None))
        for i, batch in enumerate(batches, start=start):
            self.iter = i
            self.xb, self.yb = batch[0], batch[1]
            self._with_events("batch", self._one_batch, CancelBatchException)

    def _one_batch(self) -> None:
        self.preds = self.model(self.xb)
        self.fire("after_pred")
        self.loss = self.loss_func(self.preds, self.yb)
        self.fire("after_loss")
        if not self.training:
            return
        # zero_grad before backward (not after step), so a batch cancelled after backward
        # leaves no gradient behind for the next one.
        self.opt.zero_grad(set_to_none=True)
        self.loss.backward()
        self.fire("after_backward")
        self.opt.step()
        self.train_iter += 1  # counts optimizer steps, so it is already up to date in after_step
        self.fire("after_step")

    def __repr__(self) -> str:
        ordered = sorted(self.cbs, key=lambda cb: cb.order)
        return (f"Learner(model={type(self.model).__name__}, "
                f"cbs=[{', '.join(type(cb).__name__ for cb in ordered)}])")
