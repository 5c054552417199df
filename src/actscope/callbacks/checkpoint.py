"""CheckpointCallback: save everything a run needs to continue exactly, and resume from it.

It gathers the state through the Callback contract (``state_dict()`` / ``load_state_dict()`` /
``checkpoint_key()``; ``check_checkpointable()`` may veto a save) and hands plain dicts to the
store in ``actscope.checkpoints``, which owns the files. Saves happen at every epoch end, every
``every_n_batches`` optimizer steps, and when a callback stops the fit right after a complete
epoch (early stopping): that checkpoint is marked ``stopped``, so a resume trains nothing more.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from actscope.callback import Callback
from actscope.callbacks.device import to_device
from actscope.checkpoints import (
    CKPT_SUBDIR,
    Checkpoint,
    CheckpointError,
    checkpoint_seq,
    find_latest_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    read_checkpoint,
    remove_stale_checkpoint_temps,
)
from actscope.checkpoints import save_checkpoint as store_checkpoint
from actscope.dist import is_main_process, unwrap_model
from actscope.events import CancelFitException
from actscope.rng import capture_rng, restore_rng
from actscope.runs import MARKER
from actscope.safe_load import from_plain, to_plain

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["CheckpointCallback", "CheckpointError", "save_checkpoint", "load_checkpoint",
           "list_checkpoints", "latest_checkpoint", "stateful_callbacks"]


def stateful_callbacks(learn: Learner) -> dict[str, Callback]:
    """Callbacks that override ``Callback.state_dict``, keyed by ``checkpoint_key()``
    (``Name#2`` for repeats), in order."""
    keyed: dict[str, Callback] = {}
    for cb in sorted(learn.cbs, key=lambda c: c.order):
        if type(cb).state_dict is not Callback.state_dict:
            name, k = cb.checkpoint_key(), 2
            key = name
            while key in keyed:
                key, k = f"{name}#{k}", k + 1
            keyed[key] = cb
    return keyed


def _load_callback_states(learn: Learner, states: dict[str, Any], ckpt: Path) -> None:
    # Tensors go where the model is (the file is read on the CPU): running sums on a GPU
    # must not meet CPU tensors in the next batch. NumPy arrays stay on the host.
    param = next(learn.model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    for key, cb in stateful_callbacks(learn).items():
        if key in states and states[key] is not None:
            try:
                cb.load_state_dict(to_device(from_plain(states[key]), device, non_blocking=False))
            except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
                raise CheckpointError(f"the state of {key} in {ckpt} does not fit this callback "
                                      f"({type(e).__name__}: {' '.join(str(e).split())}); resume "
                                      "with the callbacks of the run that saved it") from None


def _weights(learn: Learner) -> dict[str, torch.Tensor]:
    """CPU copies of the weights: copies break weight tying, so the store never sees shared
    storage (load_state_dict re-ties); unwrapped, so no DDP ``module.`` prefix."""
    return {k: v.detach().to("cpu", copy=True).contiguous()
            for k, v in unwrap_model(learn.model).state_dict().items()
            if isinstance(v, torch.Tensor)}


def _state(learn: Learner, callback_states: dict[str, Any]) -> dict[str, Any]:
    return {"opt": learn.opt.state_dict() if learn.opt is not None else None,
            "rng": to_plain(capture_rng()),
            "callbacks": {k: to_plain(v) for k, v in callback_states.items() if v is not None}}


def save_checkpoint(learn: Learner, root: Path, seq: int, epoch: int, iter: int,
                    stopped: bool = False) -> Path:
    """Write the learner's complete state as checkpoint ``seq`` in ``root`` (continuing at
    ``epoch``/``iter``)."""
    states = {k: cb.state_dict() for k, cb in stateful_callbacks(learn).items()}
    position = {"epoch": epoch, "iter": iter, "train_iter": learn.train_iter,
                "n_epochs": learn.n_epochs, "lr": learn.lr, "stopped": stopped}
    return store_checkpoint(root, seq, _weights(learn), _state(learn, states), position)


def load_checkpoint(learn: Learner, ckpt: Path) -> dict[str, Any]:
    """Restore model, optimizer, RNG and callback states from ``ckpt``; return its meta.json."""
    loaded = read_checkpoint(ckpt)
    _restore(learn, loaded)
    return loaded.meta


def _restore(learn: Learner, loaded: Checkpoint) -> None:
    loaded.load_weights_into(unwrap_model(learn.model))
    _load_opt(learn, loaded)
    _load_callback_states(learn, loaded.state.get("callbacks", {}), loaded.path)
    restore_rng(from_plain(loaded.state["rng"]))


def _load_opt(learn: Learner, ckpt: Checkpoint) -> None:
    opt_state = ckpt.state.get("opt")
    if opt_state is None or learn.opt is None:
        return
    try:
        learn.opt.load_state_dict(opt_state)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"the optimizer state in {ckpt.path} does not fit this optimizer "
                              f"({' '.join(str(e).split())}); use the opt_func of the run that "
                              "saved it") from None


def _check_run_id(ckpt: Checkpoint, run_id: str | None) -> None:
    """CheckpointError when ``ckpt`` was saved by another run than ``run_id`` (a checkpoint
    copied in from a run with other settings or data); unchecked where either is unknown."""
    saved = ckpt.meta.get("run")
    if run_id is None or saved is None or saved == run_id:
        return
    raise CheckpointError(f"checkpoint {ckpt.path} was saved by another run (its settings or "
                          f"data differ from this run's config.json): resuming from it would "
                          f"mix two runs; remove it (and any other copied checkpoint), or resume "
                          f"the run it came from")


class CheckpointCallback(Callback):
    """Save at every epoch end (and every ``every_n_batches`` steps) into ``run_dir``; resume.

    ``fit(n, resume=path)`` continues from the newest checkpoint under ``path`` (``True``: this
    callback's ``run_dir``). A run folder (``.actscope-run`` marker) without any checkpoint yet
    starts over: the run was killed before its first save, and starting from the same seed is
    exactly what the interrupted run did.
    """

    order = 70

    def __init__(self, run_dir: str | os.PathLike, every_n_batches: int | None = None,
                 keep: int = 3, run_id: str | None = None) -> None:
        if every_n_batches is not None and (isinstance(every_n_batches, bool) or not isinstance(
                every_n_batches, int) or every_n_batches <= 0):
            raise ValueError(f"every_n_batches must be a positive integer or None, got "
                             f"{every_n_batches!r}")
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an integer >= 1 (checkpoints kept), got {keep!r}")
        self.run_dir, self.every, self.keep = Path(run_dir), every_n_batches, keep
        # what the run is (``actscope fit``: a digest of its settings and data): saved in each
        # checkpoint, and a checkpoint of another run is refused on resume
        self.run_id = run_id
        self.root = self.run_dir / CKPT_SUBDIR
        self.saved: list[Path] = []
        self.resumed_from: Path | None = None
        self.started_over = False  # resume of a run folder that had no checkpoint yet
        self._pending: Checkpoint | None = None
        self._last_step = -1
        self._epoch_done = -1  # the last epoch whose training and validation both finished
        self._seq = 0

    def before_fit(self, learn: Learner) -> None:
        remove_stale_checkpoint_temps(self.root)  # left by a killed save: never complete
        existing = list_checkpoints(self.root)
        self._seq = checkpoint_seq(existing[-1]) + 1 if existing else 0
        self._last_step, self._pending, self._epoch_done = -1, None, -1
        self.started_over = False
        if learn.resume_from is None:
            return
        target = Path(self.run_dir if learn.resume_from is True else learn.resume_from)
        learn.resume_from = None
        if find_latest_checkpoint(target) is None and (target / MARKER).is_file():
            self.started_over = True  # killed before its first checkpoint: run it from the start
            return
        loaded = read_checkpoint(latest_checkpoint(target))
        _check_run_id(loaded, self.run_id)
        _restore(learn, loaded)
        meta, self.resumed_from = loaded.meta, loaded.path
        if meta.get("stopped"):  # a callback ended the run there: nothing is left to train
            learn.first_epoch, learn.first_iter = learn.n_epochs, 0
        else:
            learn.first_epoch, learn.first_iter = meta["epoch"], meta["iter"]
        learn.train_iter = self._last_step = meta["train_iter"]
        if meta["iter"] > 0 and not meta.get("stopped"):
            # before_epoch/before_train of the resumed epoch may reset partial sums and draw
            # random numbers; the uninterrupted run did neither at this point, so re-apply.
            self._pending = loaded

    def before_train(self, learn: Learner) -> None:
        if self._pending is None:
            return
        _load_callback_states(learn, self._pending.state.get("callbacks", {}), self._pending.path)
        restore_rng(from_plain(self._pending.state["rng"]))
        self._pending = None

    def after_train(self, learn: Learner) -> None:
        if getattr(learn.dls, "valid", None) is None:
            self._epoch_done = learn.epoch

    def after_validate(self, learn: Learner) -> None:
        self._epoch_done = learn.epoch

    def after_batch(self, learn: Learner) -> None:
        if not learn.training or self.every is None or learn.train_iter == self._last_step:
            return
        if learn.train_iter % self.every or learn.iter + 1 >= learn.n_iter:
            return  # not due, or the epoch-end checkpoint follows anyway
        self.save(learn, learn.epoch, learn.iter + 1)

    def after_epoch(self, learn: Learner) -> None:
        self.save(learn, learn.epoch + 1, 0)

    def after_cancel_fit(self, learn: Learner) -> None:
        # A callback that ran before this one in after_epoch (early stopping) ended the fit
        # after a complete epoch: save that epoch, marked stopped, or a resume would replay it.
        if self._epoch_done == learn.epoch and self._epoch_done >= 0:
            try:
                self.save(learn, learn.epoch + 1, 0, stopped=True)
            except CancelFitException:
                pass  # a guard vetoed: the state is not finite, the last good checkpoint stays

    def save(self, learn: Learner, epoch: int, iter: int, stopped: bool = False) -> Path | None:
        """Write one checkpoint now (continuing at ``epoch``/``iter``) and prune old ones."""
        for cb in learn.cbs:  # never save a non-finite state: a guard may veto (host sync here)
            cb.check_checkpointable(learn)
        # every rank: a state_dict may take part in a collective (MetricsCallback's sums)
        states = {k: cb.state_dict() for k, cb in stateful_callbacks(learn).items()}
        self._epoch_done = -1
        if not is_main_process():  # under torchrun all ranks hold the same state: rank 0 writes
            self._seq, self._last_step = self._seq + 1, learn.train_iter
            return None
        position = {"epoch": epoch, "iter": iter, "train_iter": learn.train_iter,
                    "n_epochs": learn.n_epochs, "lr": learn.lr, "stopped": stopped}
        if self.run_id is not None:
            position["run"] = self.run_id
        path = store_checkpoint(self.root, self._seq, _weights(learn), _state(learn, states),
                                position)
        self._seq, self._last_step = self._seq + 1, learn.train_iter
        self.saved.append(path)
        prune_checkpoints(self.root, self.keep)
        return path
