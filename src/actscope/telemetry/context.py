"""What does the run look like? The JSON ``meta["context"]`` the diagnosis reads (CONTRACT.md).

Built once, at attach or the first step, from modules, the optimizer and the scheduler; it reads
weights (a host read, once per fit) and never runs a forward pass.

``init_scale`` is a layer's weight std divided by the kaiming-normal std for its fan-in,
``gain / sqrt(fan_in)``, with the gain of the activation that follows the weight (relu, gelu and
silu: sqrt(2); leaky_relu: sqrt(2 / (1 + a²)); tanh: 5/3; unknown or none: 1). For a block, the
weight is its first Linear/Conv. ``init_scheme_guess`` reads the same numbers: ``default`` (torch's
``kaiming_uniform_(a=sqrt(5))``: uniform, std·sqrt(fan_in) ≈ 0.577), ``kaiming`` (scale ≈ 1, or
≈ 1 with the relu gain), ``xavier`` (std ≈ gain·sqrt(2 / (fan_in + fan_out))), else ``small``
(below half of kaiming) / ``large`` (above twice), else null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from actscope.telemetry.layer_facts import (
    activation_family,
    activation_of,
    bounded_range,
    is_attention_module,
    module_kind,
    returned_child,
)
from actscope.telemetry.run_facts import (
    mark_untrained,
    model_facts,
    optimizer_context,
    schedule_context,
)

__all__ = ["run_context", "layer_context", "optimizer_context", "schedule_context",
           "is_attention_module", "mark_untrained"]

_TOL = 0.15  # relative tolerance when matching a weight std to a scheme's std


def _leaves(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if not any(True for _ in m.children())]


def _weight_and_next(module: nn.Module, model_leaves: Sequence[nn.Module]
                     ) -> tuple[torch.Tensor, str, nn.Module] | None:
    """The first Linear/Conv weight in ``module``, and the activation that follows it in the
    model's registration order (a Linear's ReLU is its next sibling, outside the Linear)."""
    for m in _leaves(module):
        if module_kind(m) in ("linear", "conv") and getattr(m, "weight", None) is not None:
            nxt = "none"
            i = next((j for j, leaf in enumerate(model_leaves) if leaf is m), len(model_leaves))
            for after in model_leaves[i + 1:]:
                kind = module_kind(after)
                if kind == "activation":
                    nxt = activation_family(after) or "none"
                    break
                if kind in ("linear", "conv"):
                    break
            return m.weight, nxt, m
    return None


def _gain(family: str, module: nn.Module | None = None) -> float:
    if family == "leaky_relu":
        a = getattr(module, "negative_slope", None) or getattr(module, "leak", None) or 0.01
        return math.sqrt(2.0 / (1 + a * a))
    return {"relu": math.sqrt(2.0), "gelu": math.sqrt(2.0), "silu": math.sqrt(2.0),
            "tanh": 5.0 / 3.0}.get(family, 1.0)


def _fans(weight: torch.Tensor, owner: nn.Module) -> tuple[int, int]:
    if type(owner).__name__ == "Conv1D":  # HF GPT-2 stores (in, out)
        return int(weight.shape[0]), int(weight.shape[1])
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    return int(fan_in), int(fan_out)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= _TOL * b


def _init_facts(module: nn.Module, model_leaves: Sequence[nn.Module]
                ) -> tuple[float | None, str | None]:
    found = _weight_and_next(module, model_leaves)
    if found is None or found[0].dim() < 2 or found[0].numel() < 16:
        return None, None
    w, nxt, owner = found
    w = w.detach().float()
    fan_in, fan_out = _fans(w, owner)
    std = float(w.std())  # once per fit, at attach
    gain = _gain(nxt)
    scale = std * math.sqrt(fan_in) / gain
    r = std * math.sqrt(fan_in)
    uniform = float(w.abs().max()) < 2.0 * std  # a uniform's max is sqrt(3)·std
    xavier = math.sqrt(2.0 * fan_in / (fan_in + fan_out))
    if uniform and _close(r, 1 / math.sqrt(3)):
        guess = "default"
    elif _close(scale, 1.0) or _close(r, math.sqrt(2.0)):
        guess = "kaiming"
    elif _close(r, xavier) or _close(r, xavier * gain):
        guess = "xavier"
    elif scale < 0.5:
        guess = "small"
    elif scale > 2.0:
        guess = "large"
    else:
        guess = None
    return round(scale, 4), guess


# the dropouts that zero outputs (AlphaDropout sets them to a negative value instead)
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def _trailing_dropout(module: nn.Module) -> float:
    """The share of outputs a ``Sequential``'s trailing Dropout zeroes in training (0 if none):
    ``Linear, ReLU, Dropout(p)`` outputs zeros at p + (1 - p) x the ReLU's own zero share."""
    keep = 1.0
    while isinstance(module, nn.Sequential) and len(module):
        last = None
        for child in reversed(list(module.children())):
            if isinstance(child, _DROPOUT):
                keep *= 1.0 - float(child.p)
            elif not isinstance(child, (nn.Identity, nn.Flatten)):
                last = child
                break
        module = last if isinstance(last, nn.Sequential) else None
    return round(1.0 - keep, 6)


def layer_context(module: nn.Module, is_output: bool = False,
                  model_leaves: Sequence[nn.Module] | None = None) -> dict[str, Any]:
    """One layer's entry of ``context["layers"]`` (``model_leaves``: the model's leaf modules in
    order, to find the activation after a weight; default: the module's own leaves)."""
    kind = "output" if is_output else module_kind(module)
    act = activation_of(module)
    leaf_act = activation_family(module) is not None
    last = module
    if not leaf_act and act != "none":  # the bounds of the activation module that produced it
        acts = [m for m in module.modules() if activation_family(m) == act]
        last = acts[-1] if acts else module
    leaky = act == "relu" and getattr(last, "sub", None) not in (None, 0.0)
    scale, guess = _init_facts(module, model_leaves or _leaves(module))
    out = {"type": type(module).__name__, "kind": kind, "activation": act,
           "zero_floored": act == "relu" and not leaky,
           "bounded": bounded_range(last, act) if act != "none" else None,
           "init_scale": scale, "init_scheme_guess": guess}
    drop = _trailing_dropout(module)
    if drop > 0:  # only where there is one: the entry of a layer without keeps its keys
        out["dropout"] = drop
    if scale == 0.0:  # weights that start at 0 (a zero-initialised head, adaLN-zero, ReZero)
        out["zero_init"] = True
    return out


def _jsonable(x: Any) -> Any:
    try:
        json.dumps(x)
        return x
    except (TypeError, ValueError):
        if isinstance(x, Mapping):
            return {str(k): _jsonable(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [_jsonable(v) for v in x]
        return str(x)


def _output_weight(model: nn.Module, leaves: Sequence[nn.Module]) -> nn.Module | None:
    """The model's output Linear/Conv: the last one of the child its ``forward`` returns
    (``return self.head(x)``, whatever order the children were registered in), else the last
    one in registration order."""
    def last_weight(mods: Sequence[nn.Module]) -> nn.Module | None:
        return next((m for m in reversed(mods) if module_kind(m) in ("linear", "conv")), None)

    child = returned_child(model)
    found = last_weight(_leaves(child)) if child is not None else None
    return found if found is not None else last_weight(leaves)


def _gives_output(module: nn.Module, model: nn.Module, last_leaf: nn.Module | None,
                  leaves: Sequence[nn.Module] = ()) -> bool:
    """Whether ``module`` is the model's output layer: the last Linear/Conv (registration order),
    or a container below the root whose last Linear/Conv it is (an autoencoder's decoder, a head
    ``Sequential``), or the activation leaf right after that Linear/Conv (an output sigmoid
    watched on its own). Such an output's scale is set by its targets, not by the network."""
    if last_leaf is None or module is model:
        return False
    if module is last_leaf:
        return True
    if module_kind(module) == "activation" and leaves:
        at = {id(m): i for i, m in enumerate(leaves)}
        a, b = at.get(id(last_leaf)), at.get(id(module))
        if a is not None and b is not None and b > a and all(
                module_kind(m) == "activation" or isinstance(m, (*_DROPOUT, nn.Identity))
                for m in leaves[a + 1:b + 1]):
            return True
    weights = [m for m in _leaves(module) if module_kind(m) in ("linear", "conv")]
    return bool(weights) and weights[-1] is last_leaf and module_kind(module) in ("block", "other")


def run_context(model: nn.Module, names: Mapping[nn.Module, str] | Sequence[nn.Module],
                optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                grad_clip: float | None = None, mixed_precision: str | None = None,
                trainer: Mapping[str, Any] | None = None,
                optimizers: Sequence[torch.optim.Optimizer] | None = None) -> dict[str, Any]:
    """``meta["context"]`` for the watched layers ``names``: a module → name map (pass the
    recording's names, ``modules.layer_names(model, mods)``, so the diagnosis finds each layer
    under its ``Telemetry.names`` entry), or a list, then named by qualified name in ``model``.
    ``optimizers``: every optimizer of the run (a GAN's two), to tell which layers none trains;
    default ``[optimizer]``; the context's ``optimizer`` facts are ``optimizer``'s."""
    if not isinstance(names, Mapping):
        qual = {id(m): n for n, m in model.named_modules()}
        names = {m: qual.get(id(m)) or ("model" if m is model else f"{i}")
                 for i, m in enumerate(names)}
    leaves = _leaves(model)
    last_leaf = _output_weight(model, leaves)
    layers = {name: layer_context(m, _gives_output(m, model, last_leaf, leaves), leaves)
              for m, name in names.items()}
    if optimizer is not None or optimizers:
        mark_untrained(layers, names, list(optimizers or [optimizer]), model)
    return {"layers": layers, "model": model_facts(model),
            "optimizer": optimizer_context(optimizer), "schedule": schedule_context(scheduler),
            "grad_clip": None if grad_clip is None else float(grad_clip),
            "mixed_precision": mixed_precision,
            "trainer": _jsonable(dict(trainer)) if trainer is not None else None}
