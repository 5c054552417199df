"""Guards: stop on a non-finite loss or gradient (NaNGuardCallback), early stopping.

NaNGuardCallback never reads a value back per batch. Each batch writes one flag per check (loss
finite? gradients finite?) into a small buffer on the model's device; every ``check_every``
training batches the buffer is read back once. The trade-off: on a GPU a bad step is noticed up
to ``check_every - 1`` optimizer steps late (the weights may already be NaN; the checkpoint
callback asks the guard before every save, so no checkpoint ever holds them). On the CPU a check
costs nothing extra, so the default there is every batch, before the step: the weights stay good.

Under torchrun the flags are reduced over the ranks at every check (one small all-reduce, at the
points every rank reaches together), so when one rank sees a non-finite value all ranks stop at
the same batch with the same message; a rank that stopped alone would leave the others waiting
in the next collective until the timeout. The guard keeps no state a checkpoint needs: a
checkpoint is written only after its flags were checked and cleared.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from actscope.callback import Callback
from actscope.callbacks.checkpoint import CheckpointCallback
from actscope.callbacks.metrics import MetricsCallback
from actscope.config import positive_int
from actscope.dist import all_reduce_max_, collective_device, get_world_size, unwrap_model
from actscope.errors import UsageError
from actscope.events import CancelFitException

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["NaNGuardCallback", "EarlyStoppingCallback", "first_nonfinite_layer"]

GPU_CHECK_EVERY = 50  # one host sync per 50 steps: <1% of step time in our measurements


def first_nonfinite_layer(model: nn.Module, xb: Any) -> str | None:
    """Run ``xb`` through a copy of ``model``; name the first module whose output is non-finite."""
    if isinstance(xb, torch.Tensor) and not torch.isfinite(xb).all():
        return "the input batch itself (it contains NaN or Inf)"
    try:
        probe = copy.deepcopy(model)  # a copy: BatchNorm running stats of the real model stay
    except Exception:  # noqa: BLE001 - a diagnosis must never hide the original problem
        return None
    found: list[str] = []

    def check(name: str, module: nn.Module):
        def hook(_m: nn.Module, _inp: Any, out: Any) -> None:
            if not found and isinstance(out, torch.Tensor) and not torch.isfinite(out).all():
                found.append(f"'{name}' ({type(module).__name__})")
        return hook

    handles = [m.register_forward_hook(check(n, m)) for n, m in probe.named_modules() if n]
    try:
        with torch.no_grad():
            probe(xb)
    except Exception:  # noqa: BLE001 - same: report what was found so far
        pass
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else None


class NaNGuardCallback(Callback):
    """Cancel the fit when the loss or the gradients stop being finite; ``message`` says where."""

    order = 50

    def __init__(self, check_every: int | None = None, check_grads: bool = True,
                 warn: bool = True) -> None:
        if check_every is not None:
            positive_int(check_every, f"check_every (or None: 1 on CPU, {GPU_CHECK_EVERY} on GPU)")
        self.check_every, self.check_grads, self.warn = check_every, check_grads, warn
        self.message: str | None = None
        self.every = check_every or 1

    def before_fit(self, learn: Learner) -> None:
        param = next(learn.model.parameters(), None)
        self.device = param.device if param is not None else torch.device("cpu")
        self.every = self.check_every or (1 if self.device.type == "cpu" else GPU_CHECK_EVERY)
        # Room for a loss and a grad flag per batch, plus a validation phase between checks.
        self._flags = torch.zeros(4 * self.every + 64, dtype=torch.bool, device=self.device)
        self._where: list[tuple[int, int, bool, str]] = []  # host-side labels of the flags
        self._since = 0
        self.message = None

    def _record(self, learn: Learner, ok: torch.Tensor, what: str) -> None:
        if len(self._where) == len(self._flags):
            self.check_finite(learn)  # buffer full (a long validation): read it back now
        self._flags[len(self._where)] = ~ok  # a device-side write: no sync
        self._where.append((learn.epoch, learn.iter, learn.training, what))

    def after_loss(self, learn: Learner) -> None:
        self._record(learn, torch.isfinite(learn.loss.detach()).all(), "loss")

    def after_backward(self, learn: Learner) -> None:
        if self.check_grads:
            grads = [p.grad for p in learn.model.parameters() if p.grad is not None]
            if grads:
                # An overflowing norm means the gradient is unusable anyway.
                norms = torch.stack(torch._foreach_norm(grads))
                self._record(learn, torch.isfinite(norms).all(), "gradients")
        self._since += 1
        if self._since >= self.every:
            self.check_finite(learn)  # before opt.step: with every=1 bad grads are never applied

    def after_train(self, learn: Learner) -> None:
        self.check_finite(learn)

    def after_validate(self, learn: Learner) -> None:
        self.check_finite(learn)

    def check_checkpointable(self, learn: Learner) -> None:
        """Never let a non-finite state into a checkpoint: check the flags first."""
        self.check_finite(learn)

    def check_finite(self, learn: Learner) -> None:
        """Read the flags back (one host sync); raise CancelFitException if any is set.

        Under torchrun every rank calls this at the same points with the same number of flags
        (the loop is the same on every rank), and the flags are OR-ed over the ranks first.
        """
        n, self._since = len(self._where), 0
        if n == 0:
            return
        local = self._flags[:n]
        flags = local
        if get_world_size() > 1:
            flags = all_reduce_max_(local.to(collective_device(), torch.uint8)).bool()
        bad = flags.any().item()  # the sync this guard is allowed: once per check_every batches
        if not bad:
            self._flags[:n] = False
            self._where.clear()
            return
        first = int(flags.nonzero()[0, 0].item())
        self.message = self._message(learn, first, bool(local[first].item()))
        if self.warn:  # CancelFitException is caught by the loop: an API user would see nothing
            warnings.warn(self.message, RuntimeWarning, stacklevel=2)
        self._flags[:n] = False
        self._where.clear()
        raise CancelFitException(self.message)

    def _message(self, learn: Learner, first: int, mine: bool) -> str:
        """Where it happened, the first non-finite layer and the last good checkpoint."""
        epoch, it, training, what = self._where[first]
        phase = "training" if training else "validation"
        layer = first_nonfinite_layer(unwrap_model(learn.model), learn.xb)
        ckpt = learn.find_cb(CheckpointCallback)
        saved = str(ckpt.saved[-1]) if ckpt is not None and ckpt.saved else None
        where = ""
        if get_world_size() > 1:
            # Each rank knows its own batch and rank 0 its checkpoints: share them, so that every
            # rank prints the same words (one collective; every rank is here for the same flag).
            parts: list[Any] = [None] * get_world_size()
            torch.distributed.all_gather_object(parts, (mine, layer, saved))
            ranks = [r for r, (m, _, _) in enumerate(parts) if m]
            layer = next((lay for m, lay, _ in parts if m and lay), None)
            saved = parts[0][2]
            where = f" on rank {', '.join(map(str, ranks))} of {get_world_size()}"
        return (f"non-finite {what} at epoch {epoch}, batch {it} ({phase}){where}; "
                + (f"first non-finite activations: {layer}; " if layer else
                   "every layer's output was finite on the current batch; ")
                + "training stopped. Lower the learning rate, check the inputs, or add "
                  "normalisation; "
                + (f"the last checkpoint ({saved}) holds no non-finite values" if saved else
                   "no checkpoint was saved before it"))


class EarlyStoppingCallback(Callback):
    """Stop once ``monitor`` (a MetricsCallback history column) missed ``patience`` epochs in a row.

    An epoch improves when it beats the best so far by more than ``min_delta``; ``mode`` "auto"
    minimises names with loss/error/perplexity and maximises the rest. The stop is part of the
    state (``stopped_epoch``): CheckpointCallback saves the stopped epoch (marked ``stopped``) in
    ``after_cancel_fit``, and a callback restored with a stop ends the resumed fit at once
    instead of replaying the stopped epoch.
    """

    order = 60

    def __init__(self, monitor: str = "valid_loss", patience: int = 3, min_delta: float = 0.0,
                 mode: str = "auto", restore_best: bool = False) -> None:
        if mode not in ("auto", "min", "max"):
            raise UsageError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        positive_int(patience, "patience (epochs without improvement before stopping)")
        if not min_delta >= 0:
            raise UsageError(f"min_delta must be >= 0, got {min_delta!r}")
        if mode == "auto":  # losses and errors go down, everything else (accuracy, ...) up
            mode = "min" if any(w in monitor for w in ("loss", "error", "perplexity")) else "max"
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode, self.restore_best = mode, restore_best
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.wait = -1, 0
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self._fitting = False  # True between this fit's before_fit and after_fit

    def before_fit(self, learn: Learner) -> None:
        self._reset()
        self._fitting = True

    def before_epoch(self, learn: Learner) -> None:
        if self.stopped_epoch is not None:  # resumed from the checkpoint saved at the stop
            raise CancelFitException(f"early stopping ended this run at epoch "
                                     f"{self.stopped_epoch}; nothing left to train")

    def _value(self, learn: Learner) -> float:
        rows = [cb.history[-1] for cb in learn.cbs
                if isinstance(cb, MetricsCallback) and cb.history]
        for row in rows:
            if self.monitor in row:
                return float(row[self.monitor])  # a host float already: read once per epoch
        cols = sorted({k for r in rows for k in r})
        raise UsageError(f"EarlyStoppingCallback(monitor={self.monitor!r}): no such column in the "
                         f"metrics history (have {cols or 'no MetricsCallback'}); "
                         "add MetricsCallback() or pick one of those")

    def after_epoch(self, learn: Learner) -> None:
        value = self._value(learn)
        better = (value < self.best - self.min_delta if self.mode == "min"
                  else value > self.best + self.min_delta)
        if better:
            self.best, self.best_epoch, self.wait = value, learn.epoch, 0
            if self.restore_best:  # a device-side copy: no transfer to the host
                self.best_weights = {k: v.detach().clone()
                                     for k, v in learn.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = learn.epoch
            raise CancelFitException(
                f"early stop at epoch {learn.epoch}: {self.monitor} has not improved by more than "
                f"{self.min_delta} for {self.wait} epochs (best {self.best:.6g} at epoch "
                f"{self.best_epoch})")

    def after_fit(self, learn: Learner) -> None:
        # Only for a fit this callback took part in: after a failed earlier before_fit the best
        # weights would be a previous fit's.
        if self._fitting and self.restore_best and self.best_weights is not None:
            learn.model.load_state_dict(self.best_weights)
        self._fitting = False

    def state_dict(self) -> dict[str, Any]:
        """Best value, its epoch, epochs waited, the stop (and the best weights), for resume."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of ``state_dict``."""
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.stopped_epoch = state.get("stopped_epoch")
        self.best_weights = state.get("best_weights")
