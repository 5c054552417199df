"""OptimizerSteps: where ``watch()`` reads gradient norms and update ratios, once per step.

A plain loop has no "after backward" event, but every optimizer step has hooks: a step pre-hook
runs after backward (and after a ``clip_grad_norm_`` or a ``GradScaler`` unscale done before
``step()``), a post-hook right after the update. With an ``optimizer`` given, the hooks go on it;
else on torch's global optimizer step hooks, filtered to optimizers holding a watched parameter
(decided once per optimizer, kept in a weak map). The hooks hold the ``Watch`` weakly and are
removed with it; the first optimizer seen fills ``meta["context"]["optimizer"]`` if none was given.
The pre-hook also records the lr of the optimizer's first param group as the ``lr`` scalar, and on
the signal cadence the norm of all the optimizer's gradients as ``grad_norm_total``: the diagnosis
reads a hand-written warm-up and a hand-written ``clip_grad_norm_`` from them
(diagnosis/observed.py).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from actscope.telemetry.hooks import WeakCall
from actscope.telemetry.run_facts import mark_untrained, optimizer_context

__all__ = ["OptimizerSteps", "TOTAL_GRAD_NORM", "total_grad_norm"]


class OptimizerSteps:
    """Step pre/post hooks that forward to a watch's accumulator (see module doc)."""

    def __init__(self, watch: Any, optimizer: torch.optim.Optimizer | None = None) -> None:
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            from actscope.errors import UsageError

            raise UsageError(f"watch(optimizer=...) needs a torch.optim.Optimizer, got "
                             f"{type(optimizer).__name__}")
        self.watch = weakref.ref(watch)
        self.optimizer = optimizer
        self._handles: list[Any] = []
        self._ours: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._seen: list[weakref.ref] = []  # the optimizers that hold a watched parameter

    def register(self) -> None:
        """Put the hooks on (the given optimizer, or globally, filtered)."""
        pre, post = WeakCall(self, "_pre"), WeakCall(self, "_post")
        if self.optimizer is not None:
            self._handles = [self.optimizer.register_step_pre_hook(pre),
                             self.optimizer.register_step_post_hook(post)]
        else:
            self._handles = [register_optimizer_step_pre_hook(pre),
                             register_optimizer_step_post_hook(post)]

    def _acc(self, opt: torch.optim.Optimizer) -> Any:
        w = self.watch()
        if w is None or not w.enabled or w.acc.signals is None:
            return None
        if self.optimizer is None and not self._holds_watched(opt, w):
            return None
        return w.acc

    def _holds_watched(self, opt: torch.optim.Optimizer, w: Any) -> bool:
        ours = self._ours.get(opt)
        if ours is None:  # once per optimizer: does it update a watched layer's parameter?
            ids = w.acc.signals.param_ids()
            ours = any(id(p) in ids for g in opt.param_groups for p in g["params"])
            self._ours[opt] = ours
            ctx = w.acc.context
            if ours and ctx is not None and ctx.get("optimizer") is None:
                ctx["optimizer"] = optimizer_context(opt)
            if ours and ctx is not None and self.optimizer is None:
                # the watched layers none of the optimizers seen so far holds (a GAN's second
                # optimizer, seen later, clears its layers' mark)
                self._seen.append(weakref.ref(opt))
                seen = [o for o in (r() for r in self._seen) if o is not None]
                mark_untrained(ctx.get("layers") or {},
                               dict(zip(w.acc.modules, w.acc.names, strict=True)), seen)
        return ours

    def _pre(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        acc = self._acc(opt)
        if acc is not None:
            acc.before_optimizer_step()
            lr = opt.param_groups[0].get("lr") if opt.param_groups else None
            if type(lr) is float or (type(lr) is torch.Tensor and lr.numel() == 1):
                # the lr this step uses (a device fill, no sync): a schedule written by hand
                # (nanoGPT's get_lr) shows in it; a step(lr=...) of the user's overwrites it
                acc.record_scalars({"lr": lr})
            if acc.signals is not None and acc.signals.measuring:
                total = total_grad_norm(opt)
                if total is not None:
                    acc.record_scalars({TOTAL_GRAD_NORM: total})

    def _post(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        acc = self._acc(opt)
        if acc is not None:
            acc.after_optimizer_step()

    def remove(self) -> None:
        """Remove the hooks (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles = []


# The ``scalars`` name of the optimizer's total gradient norm (diagnosis/observed.py reads a
# hand-written clip from it).
TOTAL_GRAD_NORM = "grad_norm_total"


def total_grad_norm(opt: torch.optim.Optimizer) -> torch.Tensor | None:
    """The L2 norm of all the optimizer's gradients as its step sees them (after any clipping
    the loop did: a ``clip_grad_norm_`` pins it at its max norm), on their device, no sync;
    None when no parameter has a gradient. On the signal cadence only: a few ops per step."""
    grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
    if not grads or any(g.is_sparse for g in grads) or len({g.device for g in grads}) > 1:
        return None  # (a model split over devices: its norms would need a copy each)
    norms = torch._foreach_norm(grads)
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))
