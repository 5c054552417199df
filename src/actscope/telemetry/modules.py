"""Which modules telemetry watches, what each is called, and which tensor of its output it reads.

The default (``default_modules``), for any architecture:

1. the conv blocks of a ``cnn(...)`` model (top-level Sequentials that hold a conv);
2. else the members of the largest ``nn.ModuleList`` (a transformer's blocks: GPT-2's
   ``transformer.h``, BERT's ``encoder.layer``), if it has at least two;
3. else the blocks of the residual stages (every Sequential below the root whose members are two
   or more blocks of one class, such as torchvision ResNet's ``layer1`` .. ``layer4``);
4. else the direct children that hold parameters or sub-blocks.

At most ``max_modules`` (32) are kept, spread evenly through the depth (first and last always
included), so a 96-block model costs what a 32-block one does. ``modules=`` takes an explicit
list, a module type (or tuple of types), a regex over qualified names, or ``model -> modules``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from actscope.dist import unwrap_model
from actscope.errors import UsageError
from actscope.telemetry.hooks import child_blocks, modules_by_name

__all__ = ["ModuleSpec", "OutputSpec", "default_modules", "resolve_modules", "describe_module",
           "layer_names", "pick_tensor", "channel_dim", "check_output_spec", "spread",
           "MAX_MODULES"]

MAX_MODULES = 32
ModuleSpec = (Sequence[nn.Module] | type | tuple[type, ...] | str
              | Callable[[nn.Module], Sequence[nn.Module]] | None)
OutputSpec = int | str | None


def _largest_module_list(model: nn.Module) -> list[nn.Module]:
    best: list[nn.Module] = []
    for m in model.modules():
        if isinstance(m, nn.ModuleList) and len(m) > len(best):
            best = list(m)
    return best if len(best) >= 2 else []


def _stage_blocks(model: nn.Module) -> list[nn.Module]:
    blocks: list[nn.Module] = []
    for m in model.modules():
        if m is model or not isinstance(m, nn.Sequential) or len(m) < 2:
            continue
        kids = list(m.children())
        same = all(type(k) is type(kids[0]) for k in kids)
        if same and any(True for _ in kids[0].children()):  # blocks, not a run of leaf layers
            blocks.extend(kids)
    return blocks


def spread(mods: Sequence[nn.Module], limit: int) -> list[nn.Module]:
    """At most ``limit`` of ``mods``, evenly spaced through them (first and last included)."""
    n = len(mods)
    if n <= limit:
        return list(mods)
    if limit == 1:
        return [mods[0]]
    picks = sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})
    return [mods[i] for i in picks]


def default_modules(model: nn.Module, max_modules: int = MAX_MODULES) -> list[nn.Module]:
    """The modules watched by default (see the module docstring for the rule)."""
    from actscope.nn.cnn import conv_blocks

    model = unwrap_model(model)
    for rule in (conv_blocks, _largest_module_list, _stage_blocks, child_blocks):
        mods = list(rule(model))
        if mods:
            return spread(mods, max_modules)
    return []


def resolve_modules(model: nn.Module, spec: ModuleSpec = None,
                    max_modules: int = MAX_MODULES) -> list[nn.Module]:
    """The modules named by ``spec`` (see ``ModuleSpec``); raises ``UsageError`` if none."""
    root = unwrap_model(model)
    if spec is None:
        mods = default_modules(root, max_modules)
    elif isinstance(spec, str):
        mods = modules_by_name(root, spec)
    elif isinstance(spec, type) or (isinstance(spec, tuple) and spec
                                    and all(isinstance(t, type) for t in spec)):
        types = spec if isinstance(spec, tuple) else (spec,)
        mods = [m for m in root.modules() if isinstance(m, types)]
    elif callable(spec) and not isinstance(spec, nn.Module):
        mods = list(spec(root))
    elif isinstance(spec, nn.Module):
        mods = [spec]
    else:
        mods = list(spec)
    bad = [type(m).__name__ for m in mods if not isinstance(m, nn.Module)]
    if bad:
        raise UsageError(f"modules= must name nn.Module objects, got {bad[:3]}; pass a list of "
                         "modules, a type, a name pattern or a function model -> modules")
    if not mods:
        raise UsageError(f"telemetry found no modules to watch (modules={spec!r}); pass "
                         "modules=[...], a type, a name pattern or a function model -> modules")
    return mods


def describe_module(module: nn.Module) -> str:
    """A short label for plots and findings: ``conv 8→16`` for a conv block, else the class name."""
    conv = next((m for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    if conv is None:
        return type(module).__name__
    return f"conv {conv.in_channels}→{conv.out_channels}"


def layer_names(model: nn.Module | None, modules: Sequence[nn.Module]) -> list[str]:
    """``"<qualified name> <what it is>"`` per module: ``"3 conv 32→64"``, ``"h.3 GPT2Block"``."""
    root = unwrap_model(model) if model is not None else None
    qual = {id(m): n for n, m in root.named_modules()} if root is not None else {}
    return [f"{qual.get(id(m)) or i} {describe_module(m)}" for i, m in enumerate(modules)]


def channel_dim(module: nn.Module, ndim: int) -> int | None:
    """The channel dim of ``module``'s output: 1 for a conv's (N, C, ...), else the last dim.

    A (N, T, F) transformer or (N, F) Linear output has its features last; a (N, C, H, W) conv
    output its channels at dim 1. ``None`` for a 0-d or 1-d output (no batch of channels).
    """
    if ndim < 2:
        return None
    has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules())
    return 1 if has_conv else ndim - 1


def pick_tensor(out: Any, output: OutputSpec = None) -> torch.Tensor | None:
    """The tensor to record from a module's output: the output itself, the first tensor of a
    tuple/list/dict/ModelOutput, or the one named by ``output`` (an index or a key)."""
    if isinstance(out, torch.Tensor):
        return out
    if output is not None:
        try:
            if isinstance(output, str):
                val = out[output] if isinstance(out, Mapping) else getattr(out, output)
            else:
                val = list(out.values())[output] if isinstance(out, Mapping) else out[output]
        except (KeyError, IndexError, AttributeError, TypeError):
            return None
        return val if isinstance(val, torch.Tensor) else None
    items = out.values() if isinstance(out, Mapping) else out
    if isinstance(items, (tuple, list)) or isinstance(out, Mapping):
        return next((v for v in items if isinstance(v, torch.Tensor)), None)
    return None


def check_output_spec(output: OutputSpec) -> None:
    """Raise ``UsageError`` unless ``output`` is None, an int or a str."""
    if output is not None and (isinstance(output, bool) or not isinstance(output, (int, str))):
        raise UsageError(f"output= must be an index or a key of the module's output, got "
                         f"{output!r}; e.g. output=0 or output='last_hidden_state'")

