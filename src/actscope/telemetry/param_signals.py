"""Per-layer gradient norms and update/weight ratios, computed on the device, no host sync.

Which parameters belong to which watched layer: each parameter goes to the *deepest* watched
module that owns it (``module.parameters()`` reaches it). So a watched block whose child is also
watched keeps only the parameters no watched descendant owns (its own norm's weight, say);
parameters of modules outside every watched subtree are ignored; a parameter shared by two
watched layers (tied embeddings) counts once, in the first layer (in list order) at the deepest
level that reaches it.

- ``grad_norms()``: ||grad|| over a layer's parameters, one ``torch._foreach_norm`` over every
  present dense grad and one ``index_add_`` of the squares into L slots. NaN for a layer with no
  grad this step (frozen, no parameters, did not run) and for a layer with a sparse grad.
- ``update_ratios()``: ||W_t - W_prev|| / ||W_t|| on a fixed sample of at most ``sample``
  elements per parameter (all of them when it is smaller; the indices are drawn once, with
  replacement, from a seeded generator), the previous sample kept on the device; NaN on the
  first call and for a layer without parameters. Call it once per optimizer step, after
  ``step()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

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


class ParamSignals:
    """Gradient norms and update ratios of the parameters of ``layers`` (rules: module doc)."""

    def __init__(self, layers: Sequence[nn.Module], sample: int = 4096, seed: int = 0) -> None:
        self.n_layers = len(layers)
        pairs = assign_params(layers)
        self.params = [p for p, _ in pairs]
        self.owner = [i for _, i in pairs]
        self.sample = int(sample)
        gen = torch.Generator().manual_seed(seed)
        # Fixed flat indices per parameter, on CPU now, moved to the parameter's device lazily.
        self._idx: list[torch.Tensor | None] = [
            # randint, not randperm: a 50M-row embedding would need a 400 MB permutation. A
            # repeated index or two only weighs those elements twice in the estimate.
            None if p.numel() <= self.sample
            else torch.randint(p.numel(), (self.sample,), generator=gen).sort().values
            for p in self.params]
        self._prev: torch.Tensor | None = None
        self._cache: dict[tuple, torch.Tensor] = {}
        # each parameter's number of sampled elements in ``_samples()``' concatenation
        lengths = [p.numel() if i is None else i.numel() for p, i in zip(
            self.params, self._idx, strict=True)]
        self._lengths = lengths
        owned = set(self.owner)
        self._no_params = [i not in owned for i in range(self.n_layers)]

    def _device(self) -> torch.device:
        return self.params[0].device if self.params else torch.device("cpu")

    def _acc_dtype(self, device: torch.device) -> torch.dtype:
        # float64 so a square of a norm above ~1.8e19 does not overflow (MPS has no float64).
        return torch.float32 if device.type == "mps" else torch.float64

    def _on(self, key: tuple, make: list, dtype: torch.dtype, dev: torch.device) -> torch.Tensor:
        """A small constant tensor on ``dev``, built once per key (the set of grads is stable)."""
        t = self._cache.get((key, dev))
        if t is None:
            if len(self._cache) > 64:  # a loop that changes its grads every step: stay bounded
                self._cache.clear()
            t = self._cache[(key, dev)] = torch.tensor(make, dtype=dtype).to(dev)
        return t

    def _sum_by_layer(self, norms: list[torch.Tensor], owners: list[int]) -> torch.Tensor:
        """(L,) sums of the squared ``norms`` per owner layer, on the first parameter's device."""
        dev = self._device()
        acc = self._acc_dtype(dev)
        out = torch.zeros(self.n_layers, dtype=acc, device=dev)
        if not norms:
            return out
        if all(n.device == dev for n in norms):  # one stack (it promotes dtypes), one cast
            vals = torch.stack(norms).to(acc).square_()
        else:  # a model split over devices
            vals = torch.stack([n.to(dev, acc) for n in norms]).square_()
        return out.index_add_(0, self._on(("own", tuple(owners)), owners, torch.long, dev), vals)

    def grad_norms(self) -> torch.Tensor:
        """(L,) float32: L2 norm of each layer's gradients now; NaN where none or sparse."""
        dense, owners = [], []
        bad = [True] * self.n_layers  # no grad seen yet
        sparse = set()
        for p, i in zip(self.params, self.owner, strict=True):
            g = p.grad
            if g is None:
                continue
            bad[i] = False
            if g.is_sparse or g.layout != torch.strided:
                sparse.add(i)  # a sparse grad's norm is not worth a densify per step
                continue
            dense.append(g)
            owners.append(i)
        for i in sparse:
            bad[i] = True
        # _foreach_norm groups by device and dtype itself: one launch per group, not per tensor.
        sq = self._sum_by_layer(list(torch._foreach_norm(dense)) if dense else [], owners)
        mask = self._on(("bad", tuple(bad)), bad, torch.bool, sq.device)
        return sq.sqrt().masked_fill(mask, float("nan")).float()

    def _samples(self) -> torch.Tensor:
        """All parameters' samples in one float32 tensor (a copy: ``step()`` updates in place).

        One ``cat`` instead of a copy per parameter: on a small model the per-op overhead, not
        the bytes, is the cost.
        """
        dev = self._device()
        parts = []
        for k, p in enumerate(self.params):
            flat = p.detach().reshape(-1)
            idx = self._idx[k]
            if idx is not None:
                if idx.device != flat.device:
                    idx = self._idx[k] = idx.to(flat.device)
                flat = flat.index_select(0, idx)
            if flat.device != dev:  # a model split over devices: gather on the first one
                flat = flat.to(dev, non_blocking=True)
            parts.append(flat if flat.dtype == torch.float32 else flat.float())
        return torch.cat(parts) if parts else torch.zeros(0, device=dev)

    def update_ratios(self) -> torch.Tensor:
        """(L,) float32: ||W_t - W_prev|| / ||W_t|| per layer on the sample; NaN the first time.

        Few ops whatever the model (each costs 10-40 us in the middle of a real step on a CPU):
        the squares of the change and of the weights in one (2, n) tensor, one
        ``segment_reduce`` into per-parameter sums (exact per segment, unlike differences of a
        cumulative sum, which a huge parameter before a small one would swamp; ``unsafe``: the
        lengths are ours, and checking them would read a device value back), one
        ``index_add_`` into the layers.
        """
        cur = self._samples()
        prev, self._prev = self._prev, cur
        dev = cur.device
        # model.to(device) between two calls: start again
        if prev is None or not self.params or prev.device != dev or prev.shape != cur.shape:
            return torch.full((self.n_layers,), float("nan"), dtype=torch.float32, device=dev)
        acc = self._acc_dtype(dev)
        both = torch.stack([cur - prev, cur]).to(acc)  # (2, n): change, weights
        both.mul_(both)
        lengths = self._on(("lengths",), [self._lengths] * 2, torch.long, dev)  # (2, P)
        sums = torch.segment_reduce(both, "sum", lengths=lengths, axis=1, unsafe=True)
        owner = self._on(("own", tuple(self.owner)), self.owner, torch.long, dev)
        per = torch.zeros((2, self.n_layers), dtype=acc, device=dev).index_add_(1, owner, sums)
        per.sqrt_()
        none = self._on(("none",), self._no_params, torch.bool, dev)
        return (per[0] / per[1]).masked_fill_(none, float("nan")).float()

    def snapshot(self) -> None:
        """Take the weight sample the next ``update_ratios()`` compares with (before a step):
        the ratio then spans exactly that one step, whatever ran in between before."""
        self._prev = self._samples()

    def reset(self) -> None:
        """Forget the previous weights (after a load or a skipped step): the next ratio is NaN."""
        self._prev = None
