"""What is the model, and how is it trained? The model, optimizer and schedule facts of the run
context (context.py assembles them with the per-layer entries; CONTRACT.md).

Read once per fit, from modules, the optimizer's param groups and the scheduler: no forward pass.
``mark_untrained`` says which watched layers no optimizer of the run holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from actscope.telemetry.layer_facts import is_attention_module, module_kind

__all__ = ["model_facts", "optimizer_context", "schedule_context", "mark_untrained"]


def optimizer_context(optimizer: torch.optim.Optimizer | None) -> dict[str, Any] | None:
    """Type, lr, weight decay, momentum and betas of the first param group. ``lr`` is the
    schedule's peak or base lr (``max_lr``, else ``initial_lr``), not a warm-up's 0 at step 0."""
    if optimizer is None:
        return None
    group = optimizer.param_groups[0] if optimizer.param_groups else dict(optimizer.defaults)
    betas = group.get("betas")
    mom = group.get("momentum")
    lr = group.get("max_lr", group.get("initial_lr", group.get("lr")))
    return {"type": type(optimizer).__name__, "lr": _num(lr),
            "weight_decay": _num(group.get("weight_decay", 0.0)),
            "momentum": _num(mom) if mom is not None else None,
            "betas": [_num(b) for b in betas] if betas is not None else None}


def _num(x: Any) -> float | None:
    if x is None:
        return None
    return float(x.detach().float().mean()) if isinstance(x, torch.Tensor) else float(x)


def _lambda_warms(fn: Any) -> bool | None:
    """A LambdaLR factor warms up when it is lower at step 0 than at a later step."""
    try:
        first = float(fn(0))
        later = max(float(fn(k)) for k in (1, 10, 100, 1000))
    except Exception:  # a lambda that needs state we do not have: say "unknown"
        return None
    return first < 0.99 * later


def schedule_context(scheduler: Any) -> dict[str, Any] | None:
    """The scheduler's type and whether it warms up (True, False, or None when unknown)."""
    if scheduler is None:
        return None
    sched = torch.optim.lr_scheduler
    name = type(scheduler).__name__
    warm: bool | None = False
    if isinstance(scheduler, sched.OneCycleLR):
        warm = True
    elif isinstance(scheduler, sched.LinearLR):
        warm = scheduler.start_factor < scheduler.end_factor
    elif isinstance(scheduler, sched.ConstantLR):
        warm = scheduler.factor < 1.0
    elif isinstance(scheduler, (sched.LambdaLR, sched.MultiplicativeLR)):
        votes = [_lambda_warms(f) for f in scheduler.lr_lambdas]
        warm = None if None in votes else any(votes)
    elif isinstance(scheduler, (sched.SequentialLR, sched.ChainedScheduler)):
        first = schedule_context(scheduler._schedulers[0])
        warm = first["warmup"] if first else None
    return {"type": name, "warmup": warm}


# A norm on queries and keys (QK-norm) is named for them: Llama-3/Qwen3/OLMo2/Gemma3 and timm's
# ViT ``q_norm``/``k_norm``, Megatron's ``q_layernorm``; a norm elsewhere in an attention module
# (BERT's output LayerNorm inside BertAttention) is not QK-norm.
_QK_NORM = re.compile(r"(^|_)(q|k|qk|query|key)_?(norm|ln|layernorm|layer_norm|rmsnorm)$")


def _has_qk_norm(model: nn.Module) -> bool:
    return any(module_kind(m) == "norm" and _QK_NORM.search(n.rsplit(".", 1)[-1].lower())
               for n, m in model.named_modules() if n)


def model_facts(model: nn.Module) -> dict[str, Any]:
    """The context's ``model`` entry: module kinds, norms, activations, QK-norm, a plain chain."""
    mods = list(model.modules())
    kinds = [module_kind(m) for m in mods]
    norms = sorted({type(m).__name__ for m, k in zip(mods, kinds, strict=True) if k == "norm"})
    acts = sorted({type(m).__name__ for m, k in zip(mods, kinds, strict=True) if k == "activation"})
    has_attn = any(is_attention_module(m) for m in mods)
    return {"has_conv": "conv" in kinds, "has_attention": has_attn,
            "has_recurrent": "recurrent" in kinds,
            # which cells (RNN, GRU, LSTM): advice to swap a vanilla RNN needs to know
            "recurrent": sorted({type(m).__name__ for m, k in zip(mods, kinds, strict=True)
                                 if k == "recurrent"}),
            "norms": norms, "activations": acts,
            "is_transformer": has_attn and any("LayerNorm" in n or "RMSNorm" in n for n in norms),
            "qk_norm": has_attn and _has_qk_norm(model),
            # every container an nn.Sequential: a plain chain, no residual connection to scale
            "chain": all(isinstance(m, nn.Sequential) for m in mods
                         if any(True for _ in m.children())),
            "n_params": sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())}


def mark_untrained(layers: dict[str, dict], names: Mapping[nn.Module, str],
                   optimizers: Sequence[torch.optim.Optimizer],
                   model: nn.Module | None = None) -> None:
    """Mark ``trained: false`` on the layer entries whose trainable parameters none of
    ``optimizers`` holds (a linear probe's backbone: its updates are 0 by design, its ``.grad``
    never zeroed), and clear the mark where one now does. Nothing is marked where the optimizers
    hold none of ``model``'s parameters: they update copies (DeepSpeed, FSDP's flat parameters,
    fp32 master weights), not an untrained model."""
    held = {id(p) for opt in optimizers for g in opt.param_groups for p in g["params"]}
    if model is not None and not any(id(p) in held for p in model.parameters()):
        return
    for m, name in names.items():
        own = [p for p in m.parameters() if p.requires_grad]
        entry = layers.get(name)
        if not own or entry is None:
            continue
        if any(id(p) in held for p in own):
            entry.pop("trained", None)
        else:
            entry["trained"] = False
