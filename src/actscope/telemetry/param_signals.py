"""Per-layer gradient norms and update/weight ratios, computed on the device, no host sync.

Which parameters belong to which watched layer: each parameter goes to the *deepest* watched
module that owns it (``module.parameters()`` reaches it). So a watched block whose child is also
watched keeps only the parameters no watched descendant owns (its own norm's weight, say);
parameters of modules outside every watched subtree are ignored; a parameter shared by two
watched layers (tied embeddings) counts once, in the first layer (in list order) at the deepest
level that reaches it.

- ``grad_norms()``: ||grad|| over a layer's parameters: one ``torch._foreach_norm`` over every
  present dense grad (float32 per parameter), their squares summed per layer in float64 (float32
  on MPS). NaN for a layer with no grad this step (frozen, no parameters, did not run) and for a
  layer with a sparse grad.
- ``update_ratios()``: ||W_t - W_prev|| / ||W_t|| on a fixed sample of at most ``sample``
  elements per parameter (all of them when it is smaller; the indices are drawn once, with
  replacement, from a seeded generator), the previous sample kept on the device; NaN on the
  first call, for a layer without parameters, and after the model moved to another device or
  dtype (the sample starts again). Call it once per optimizer step, after ``step()``.

Both take ``out=``, an (L,) view to write into (a record slot), and issue a handful of ops per
call whatever the model: what never changes is precomputed (``param_plan``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from actscope.telemetry.param_plan import GradPlan, SamplePlan

__all__ = ["ParamSignals", "assign_params"]


def _depth_order(layers: Sequence[nn.Module]) -> list[int]:
    """Layer indices, deepest first: a layer before any watched layer that contains it."""
    inside = {i: 0 for i in range(len(layers))}
    ids = {id(m): i for i, m in enumerate(layers)}
    for i, m in enumerate(layers):  # count the watched ancestors of each layer
        for sub in m.modules():
            j = ids.get(id(sub))
            if j is not None and j != i:
                inside[j] += 1
    return sorted(range(len(layers)), key=lambda i: (-inside[i], i))


def assign_params(layers: Sequence[nn.Module]) -> list[tuple[nn.Parameter, int]]:
    """``(parameter, layer index)`` pairs, each parameter once (ownership rule: module doc)."""
    seen: set[int] = set()
    pairs: list[tuple[nn.Parameter, int]] = []
    for i in _depth_order(layers):
        for p in layers[i].parameters():
            if id(p) not in seen:
                seen.add(id(p))
                pairs.append((p, i))
    return pairs


def _no_autograd(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` outside autograd (its ``out=`` writes and copies of parameters must not
    record a graph); no context to enter when the caller already turned it off (front ends)."""
    if not torch.is_grad_enabled():
        return fn(*args)
    with torch.no_grad():
        return fn(*args)


class ParamSignals:
    """Gradient norms and update ratios of the parameters of ``layers`` (rules: module doc)."""

    def __init__(self, layers: Sequence[nn.Module], sample: int = 4096, seed: int = 0) -> None:
        self.n_layers = len(layers)
        pairs = assign_params(layers)
        self.params = [p for p, _ in pairs]
        self.owner = [i for _, i in pairs]
        self.sample = int(sample)
        gen = torch.Generator().manual_seed(seed)
        # Fixed flat indices per parameter, on CPU; the sample plan keeps them on the device.
        self._idx: list[torch.Tensor | None] = [
            # randint, not randperm: a 50M-row embedding would need a 400 MB permutation. A
            # repeated index or two only weighs those elements twice in the estimate.
            None if p.numel() <= self.sample
            else torch.randint(p.numel(), (self.sample,), generator=gen).sort().values
            for p in self.params]
        self._grad_plans: dict[tuple, GradPlan] = {}
        self._plan: SamplePlan | None = None

    def _device(self) -> torch.device:
        return self.params[0].device if self.params else torch.device("cpu")

    def _out(self) -> torch.Tensor:
        return torch.empty(self.n_layers, dtype=torch.float32, device=self._device())

    def grad_norms(self, out: torch.Tensor | None = None) -> torch.Tensor:
        """(L,) L2 norm of each layer's gradients now, into ``out`` (float32 if not given);
        NaN where none or sparse."""
        if out is None:
            out = self._out()
        if not self.n_layers:
            return out
        grads = [p.grad for p in self.params]
        # None or each grad's layout: a stable pattern, so its plan is made once
        key = (self._device(), tuple([None if g is None else g.layout for g in grads]))
        plan = self._grad_plans.get(key)
        if plan is None:
            if len(self._grad_plans) > 64:  # a loop that changes its grads every step: bounded
                self._grad_plans.clear()
            dev = key[0]
            split = any(p.device != dev for p in self.params)
            plan = self._grad_plans[key] = GradPlan(key[1], self.owner, self.n_layers, dev, split)
        return _no_autograd(plan.run, grads, out)

    def _samples(self) -> SamplePlan | None:
        """The sample plan for where the parameters are now (a new one after a move)."""
        if not self.params:
            return None
        first = self.params[0]
        if self._plan is None or self._plan.key != (first.device, first.dtype):
            self._plan = SamplePlan(self.params, self._idx, self.owner, self.n_layers,
                                    first.device)
        return self._plan

    def update_ratios(self, out: torch.Tensor | None = None) -> torch.Tensor:
        """(L,) ||W_t - W_prev|| / ||W_t|| per layer on the sample, into ``out`` (float32 if not
        given); NaN the first time."""
        if out is None:
            out = self._out()
        plan = self._samples()
        if plan is None:
            return out.fill_(float("nan"))
        return _no_autograd(plan.ratio, out)

    def snapshot(self) -> None:
        """Take the weight sample the next ``update_ratios()`` compares with (before a step):
        the ratio then spans exactly that one step, whatever ran in between before."""
        plan = self._samples()
        if plan is not None:
            plan.prev = _no_autograd(plan.take)

    def reset(self) -> None:
        """Forget the previous weights (after a load or a skipped step): the next ratio is NaN."""
        if self._plan is not None:
            self._plan.prev = None
