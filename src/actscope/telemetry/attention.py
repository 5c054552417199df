"""How peaked is each attention module? Max pre-softmax logit and mean entropy, on the device.

While a recognised attention module runs (a forward pre-hook enters, an ``always_call`` forward
hook leaves, so an exception or a nested attention module cannot leave it on), a
``TorchFunctionMode`` sees the torch calls made inside it and reads three of them:

- ``F.scaled_dot_product_attention``: q·kᵀ·scale (+ ``attn_mask``, ``is_causal``, GQA) is
  recomputed on a sample of query rows only: every ``ceil(Lq / rows)``-th row (a view, no index
  tensor), for every batch and head;
- ``F.softmax`` / ``torch.softmax`` / ``Tensor.softmax`` over the last dim of an input with
  ``ndim >= 3`` (eager attention: its input is the logits, mask already added);
- ``F.multi_head_attention_forward`` (``nn.MultiheadAttention``, which computes its softmax inside
  a function the mode cannot see into): q and k are projected for the sampled rows from the
  in-projection weights, with ``attn_mask`` and ``key_padding_mask``. ``bias_k``/``add_zero_attn``
  and ``static_k`` are not handled (the module reads NaN).

Every other call passes through after one ``frozenset`` membership test: that test (a Python call
per torch op inside attention modules only) is the whole overhead outside the sampled work.
Values accumulate per slot on the device until ``read()``: the max over calls and the mean
entropy over calls. Under ``torch.compile`` the hooks do nothing.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from actscope.errors import UsageError
from actscope.telemetry.hooks import WeakCall
from actscope.telemetry.layer_facts import is_attention_module

__all__ = ["AttentionProbe", "attention_slots", "logit_stats"]

# The spellings of a softmax a module can call; the mode sees the one called, not what it wraps.
_SOFTMAX = frozenset({F.softmax, torch.softmax, torch.Tensor.softmax, torch.special.softmax})
_SDPA = F.scaled_dot_product_attention
_MHA = F.multi_head_attention_forward
_TARGETS = _SOFTMAX | {_SDPA, _MHA}
_SDPA_ARGS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale",
              "enable_gqa")
_MHA_SIG = inspect.signature(_MHA)


def _rows_step(n: int, rows: int) -> int:
    return max(1, math.ceil(n / rows))


def logit_stats(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(max logit, mean entropy in nats)`` over rows of ``(..., rows, keys)`` logits, float32."""
    z = logits.detach().float()
    mx = z.amax()
    # -inf (a masked key) -> float32 min, as HF's eager masks do: its p·log p is then 0, not
    # NaN, and a fully masked row reads uniform in eager and sdpa alike. softmax + log_softmax
    # are fused kernels; xlogy or logp.exp() cost 4-8x more on a CPU.
    z = z.clamp_min(torch.finfo(torch.float32).min)
    ent = -(torch.softmax(z, dim=-1) * torch.log_softmax(z, dim=-1)).sum(-1)
    return mx, ent.mean()


def _mask_rows(mask: torch.Tensor, step: int) -> torch.Tensor:
    return mask[..., ::step, :] if mask.dim() >= 2 and mask.shape[-2] != 1 else mask


def _apply_mask(z: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return z
    if mask.dtype == torch.bool:  # True = may attend
        return z.masked_fill(~mask, float("-inf"))
    return z + mask.float()


_CAUSAL: dict[tuple, torch.Tensor] = {}  # masks by (rows, keys, step, device): built once


def _causal(z: torch.Tensor, step: int) -> torch.Tensor:
    """Top-left causal mask (torch's ``is_causal``) for query rows 0, step, 2·step, ..."""
    key = (z.shape[-2], z.shape[-1], step, z.device)
    mask = _CAUSAL.get(key)
    if mask is None:
        if len(_CAUSAL) > 32:  # many sequence lengths: stay bounded
            _CAUSAL.clear()
        rows = torch.arange(0, z.shape[-2] * step, step, device=z.device).unsqueeze(-1)
        mask = _CAUSAL[key] = torch.arange(z.shape[-1], device=z.device) > rows
    return z.masked_fill(mask, float("-inf"))


def _sdpa_logits(rows: int, *args, **kwargs) -> torch.Tensor:
    a = dict(zip(_SDPA_ARGS, args, strict=False)) | kwargs
    q, k = a["query"].detach(), a["key"].detach()
    step = _rows_step(q.shape[-2], rows)
    qs = q[..., ::step, :].float()  # (..., H, R, D)
    k = k.float()
    if k.dim() >= 3 and k.shape[-3] != qs.shape[-3]:  # GQA: each k head serves H/Hk q heads
        k = k.repeat_interleave(qs.shape[-3] // k.shape[-3], dim=-3)
    scale = a.get("scale") or 1.0 / math.sqrt(q.shape[-1])
    z = (qs @ k.transpose(-2, -1)) * scale  # (..., H, R, Lk)
    if a.get("is_causal"):
        z = _causal(z, step)
    mask = a.get("attn_mask")
    return _apply_mask(z, None if mask is None else _mask_rows(mask.detach(), step))


def _mha_logits(rows: int, *args, **kwargs) -> torch.Tensor | None:
    a = _MHA_SIG.bind(*args, **kwargs).arguments
    if a.get("bias_k") is not None or a.get("add_zero_attn") or a.get("static_k") is not None:
        return None
    q, k = a["query"].detach(), a["key"].detach()
    if q.dim() == 2:  # unbatched (L, E)
        q, k = q.unsqueeze(1), k.unsqueeze(1)
    n_heads, emb = a["num_heads"], q.shape[-1]
    step = _rows_step(q.shape[0], rows)
    if a.get("use_separate_proj_weight"):
        wq, wk = a["q_proj_weight"], a["k_proj_weight"]
    else:
        wq, wk = a["in_proj_weight"][:emb], a["in_proj_weight"][emb:2 * emb]
    b = a.get("in_proj_bias")
    bq, bk = (None, None) if b is None else (b[:emb], b[emb:2 * emb])
    qs = F.linear(q[::step].float(), wq.detach().float(), None if bq is None else bq.float())
    ks = F.linear(k.float(), wk.detach().float(), None if bk is None else bk.float())
    hd = emb // n_heads
    qs = qs.reshape(qs.shape[0], qs.shape[1], n_heads, hd).permute(1, 2, 0, 3)  # (N, H, R, hd)
    ks = ks.reshape(ks.shape[0], ks.shape[1], n_heads, hd).permute(1, 2, 0, 3)  # (N, H, S, hd)
    z = (qs @ ks.transpose(-2, -1)) / math.sqrt(hd)
    mask = a.get("attn_mask")
    if mask is not None:
        mask = _mask_rows(mask.detach(), step)
        if mask.dim() == 3:  # (N·H, L, S)
            mask = mask.reshape(z.shape[0], n_heads, *mask.shape[1:])
        z = _apply_mask(z, mask)
    kpm = a.get("key_padding_mask")
    if kpm is not None:  # (N, S), True (or -inf) = padding: the opposite of sdpa's bool mask
        kpm = kpm.detach()[:, None, None, :]
        z = z.masked_fill(kpm, float("-inf")) if kpm.dtype == torch.bool else z + kpm.float()
    return z


class _Mode(TorchFunctionMode):
    def __init__(self, probe: AttentionProbe) -> None:
        super().__init__()
        self.probe = probe

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _TARGETS:
            self.probe._see(func, args, kwargs)
        return func(*args, **kwargs)


class _EnterCall(WeakCall):
    """The forward pre-hook of one attention module: ``probe._enter(slot, ...)``, held weakly."""

    __slots__ = ("slot",)

    def __init__(self, probe: AttentionProbe, slot: int) -> None:
        super().__init__(probe, "_enter")
        self.slot = slot

    def __call__(self, *args) -> None:
        probe = self.ref()
        if probe is not None:
            probe._enter(self.slot, *args)


class AttentionProbe:
    """Max pre-softmax logit and mean attention entropy per slot, recorded on the device.

    ``modules[i]`` writes into slot ``slots[i]`` (default: slot i) of ``n_slots`` (default: the
    number of modules). Use as a context manager or call ``remove()`` (safe twice).
    """

    def __init__(self, modules: Sequence[nn.Module], slots: Sequence[int] | None = None,
                 n_slots: int | None = None, rows: int = 16) -> None:
        self.slots = list(range(len(modules))) if slots is None else list(slots)
        self.n_slots = len(modules) if n_slots is None else int(n_slots)
        if len(self.slots) != len(modules) or any(not 0 <= s < self.n_slots for s in self.slots):
            raise UsageError(f"AttentionProbe: slots {self.slots} must give each of the "
                             f"{len(modules)} modules a slot in 0..{self.n_slots - 1}")
        self.rows = int(rows)
        self.enabled = True
        self._mode = _Mode(self)
        self._stack: list[int] = []  # slots of the attention modules now running (nesting)
        self._max: dict[int, torch.Tensor] = {}
        self._ent: dict[int, torch.Tensor] = {}
        self._calls: dict[int, int] = {}
        self._handles = []
        # weak calls: the modules do not keep the probe alive, and a copy of the model
        # (deepcopy, torch.save(model)) carries no probe (hooks.WeakCall)
        exit_call = WeakCall(self, "_exit_hook")
        for m, s in zip(modules, self.slots, strict=True):
            self._handles.append(m.register_forward_pre_hook(_EnterCall(self, s)))
            self._handles.append(m.register_forward_hook(exit_call, always_call=True))

    def _enter(self, slot: int, module, args) -> None:
        if not self.enabled or torch.compiler.is_compiling():
            self._stack.append(-1)  # keeps the exit hook's pop balanced
            return
        if not any(s >= 0 for s in self._stack):
            self._mode.__enter__()
        self._stack.append(slot)

    def _exit_hook(self, module, args, output):
        if not self._stack:
            return
        slot = self._stack.pop()
        if slot >= 0 and not any(s >= 0 for s in self._stack):
            self._mode.__exit__(None, None, None)

    def _see(self, func, args, kwargs) -> None:
        slot = self._stack[-1] if self._stack else -1
        if slot < 0:
            return
        with torch.no_grad():
            if func is _SDPA:
                z = _sdpa_logits(self.rows, *args, **kwargs)
            elif func is _MHA:
                z = _mha_logits(self.rows, *args, **kwargs)
            else:
                z = self._softmax_logits(args, kwargs)
            if z is None:
                return
            mx, ent = logit_stats(z)
            if slot in self._max:
                self._max[slot] = torch.maximum(self._max[slot], mx)
                self._ent[slot] = self._ent[slot] + ent
                self._calls[slot] += 1
            else:
                self._max[slot], self._ent[slot], self._calls[slot] = mx, ent, 1

    def _softmax_logits(self, args, kwargs) -> torch.Tensor | None:
        x = args[0] if args else kwargs.get("input")
        dim = args[1] if len(args) > 1 else kwargs.get("dim")
        if not isinstance(x, torch.Tensor) or x.dim() < 3 or not x.is_floating_point():
            return None
        if dim is None or dim not in (-1, x.dim() - 1):
            return None
        return x.detach()[..., ::_rows_step(x.shape[-2], self.rows), :]

    @property
    def has_values(self) -> bool:
        """Whether any attention call was seen since the last ``read()`` (host state only)."""
        return bool(self._max)

    def read(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(max logit (n_slots,), mean entropy (n_slots,))`` since the last read; NaN where
        no attention ran. Resets the accumulators. No host sync."""
        dev = next(iter(self._max.values())).device if self._max else torch.device("cpu")
        mx = torch.full((self.n_slots,), float("nan"), device=dev)
        ent = torch.full((self.n_slots,), float("nan"), device=dev)
        for s, v in self._max.items():
            mx[s] = v.to(dev)
            ent[s] = self._ent[s].to(dev) / self._calls[s]
        self._max, self._ent, self._calls = {}, {}, {}
        return mx, ent

    def remove(self) -> None:
        """Remove the hooks (safe to call twice)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> AttentionProbe:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def attention_slots(model: nn.Module, layers: Sequence[nn.Module]
                    ) -> tuple[list[nn.Module], list[int]]:
    """The outermost attention modules inside (or equal to) a watched layer, each with the index
    of the deepest watched layer that contains it: ``AttentionProbe(mods, slots, len(layers))``."""
    ids = {id(m): i for i, m in enumerate(layers)}
    mods: list[nn.Module] = []
    slots: list[int] = []

    def walk(m: nn.Module, slot: int) -> None:
        slot = ids.get(id(m), slot)
        if slot >= 0 and is_attention_module(m):
            mods.append(m)
            slots.append(slot)
            return  # its inner attention modules run inside its scope already
        for c in m.children():
            walk(c, slot)

    walk(model, -1)
    return mods, slots
