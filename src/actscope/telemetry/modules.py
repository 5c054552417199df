"""Which modules telemetry watches, what each is called, and which tensor of its output it reads.

The default (``default_modules``), for any architecture:

1. the conv blocks of a ``cnn(...)`` model (top-level Sequentials that hold a conv);
2. else the members of the model's stacks of blocks: its outermost ``nn.ModuleList``s of two or
   more blocks of one class (a transformer's blocks: GPT-2's ``transformer.h``, BERT's
   ``encoder.layer``, both of T5's ``encoder.block`` and ``decoder.block``; not a block's own
   inner lists), those at least half as long as the longest;
3. else the blocks of the residual stages (every Sequential below the root whose members are two
   or more blocks of one class, such as torchvision ResNet's ``layer1`` .. ``layer4``);
4. else the direct children that hold parameters or sub-blocks.

At most ``max_modules`` (32) are kept, spread evenly through the depth (first and last always
included), so a 96-block model costs what a 32-block one does. ``modules=`` takes an explicit
list, a module type (or tuple of types), a regex over qualified names, or ``model -> modules``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from actscope.dist import unwrap_model
from actscope.errors import UsageError
from actscope.nn.affine import AffineNorm
from actscope.telemetry.hooks import child_blocks, modules_by_name

__all__ = ["ModuleSpec", "OutputSpec", "default_modules", "resolve_modules", "describe_module",
           "layer_names", "pick_tensor", "channel_dim", "check_output_spec", "spread",
           "MAX_MODULES", "check_module_list", "explicit_modules", "check_modules_in_model"]

MAX_MODULES = 32
ModuleSpec = (Sequence[nn.Module] | type | tuple[type, ...] | str
              | Callable[[nn.Module], Sequence[nn.Module]] | None)
OutputSpec = int | str | None


def _block_stacks(model: nn.Module) -> list[nn.Module]:
    """The members of the model's stacks of blocks: its outermost ``nn.ModuleList``s of two or
    more members of one class, those at least half as long as the longest, in model order.

    Outermost: a list inside a member of another (T5's ``block.N.layer``, a mixture of
    experts' ``experts``) is a block's inside, not a stack. Every such stack: an
    encoder-decoder's ``encoder.block`` and ``decoder.block`` both. With no list of one class,
    the largest list of any classes, as before."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) >= 2]
    stacks = [m for m in lists if len({type(x) for x in m}) == 1]
    if not stacks:
        best = max(lists, key=len, default=None)
        return list(best) if best is not None else []
    inside = {id(sub) for m in stacks for member in m for sub in member.modules()}
    outer = [m for m in stacks if id(m) not in inside]
    longest = max(len(m) for m in outer)
    return [block for m in outer if 2 * len(m) >= longest for block in m]


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
    for rule in (conv_blocks, _block_stacks, _stage_blocks, child_blocks):
        mods = list(rule(model))
        if mods:
            return spread(mods, max_modules)
    return []


ACCEPTED_FORMS = ("pass modules= as a list of the model's modules, a module type (or tuple of "
                  "types), a regex over qualified names such as 'layers\\.\\d+', or a function "
                  "model -> list of modules")


def _expand_containers(mods: list[Any]) -> list[Any]:
    """ModuleList/ModuleDict members in place of the container: a container has no forward of
    its own, so a hook on it would never fire."""
    out: list[Any] = []
    for m in mods:
        if isinstance(m, (nn.ModuleList, nn.ModuleDict)):
            out.extend(m.values() if isinstance(m, nn.ModuleDict) else m)
        else:
            out.append(m)
    return out


def _as_list(spec: Any, what: str) -> list[Any]:
    if isinstance(spec, Mapping):
        return list(spec.values())
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Iterable):
        raise UsageError(f"{what} {spec!r:.60} ({type(spec).__name__}), not modules; "
                         f"{ACCEPTED_FORMS}")
    return list(spec)


def _by_pattern(root: nn.Module, pattern: str) -> list[nn.Module]:
    try:
        return modules_by_name(root, pattern)
    except re.error as e:
        raise UsageError(f"modules={pattern!r} is not a valid regular expression ({e}); "
                         "e.g. modules=r'layers\\.\\d+' or modules='0|2|4'") from None


def resolve_modules(model: nn.Module, spec: ModuleSpec = None,
                    max_modules: int = MAX_MODULES) -> list[nn.Module]:
    """The modules named by ``spec`` (see ``ModuleSpec``); raises ``UsageError`` if none or if
    ``spec`` has no accepted form.

    A ``ModuleList``/``ModuleDict`` stands for its members, a dict for its values; a module
    named twice is watched once. A listed module need not be registered in ``model`` (one kept
    in a plain Python list still runs); one that never runs records nothing.
    """
    root = unwrap_model(model)
    if spec is None:
        mods = default_modules(root, max_modules)
    elif isinstance(spec, str):
        mods = _by_pattern(root, spec)
    elif isinstance(spec, type) or (isinstance(spec, tuple) and spec
                                    and all(isinstance(t, type) for t in spec)):
        types = spec if isinstance(spec, tuple) else (spec,)
        mods = [m for m in root.modules() if isinstance(m, types)]
    elif isinstance(spec, nn.Module):
        mods = [spec]
    elif callable(spec):
        mods = _as_list(spec(root), f"modules={getattr(spec, '__name__', 'fn')}(model) returned")
    else:
        mods = _as_list(spec, "modules= got")
    return check_module_list(_expand_containers(mods), spec)


def explicit_modules(spec: Any) -> list[nn.Module]:
    """An explicit collection of modules (no model to search), checked like ``resolve_modules``."""
    return check_module_list(_expand_containers(_as_list(spec, "modules= got")), spec)


def check_modules_in_model(model: nn.Module, spec: Any, owner: str = "watch()") -> None:
    """``UsageError`` naming the first module of an explicit ``modules=`` that is not part of
    ``model``: ``watch()`` counts a batch by the model's own forward, so a module outside it
    would record nothing and the later message would blame the wrong cause."""
    if isinstance(spec, nn.Module):
        mods: list[Any] = _expand_containers([spec])
    elif spec is None or isinstance(spec, (str, type)) or callable(spec) or (
            isinstance(spec, tuple) and spec and all(isinstance(t, type) for t in spec)):
        return  # searched inside the model: always part of it
    else:
        mods = _expand_containers(_as_list(spec, "modules= got"))
    inside = {id(m) for m in unwrap_model(model).modules()}
    for i, m in enumerate(mods):
        if isinstance(m, nn.Module) and id(m) not in inside:
            shown = f"{type(m).__name__}({m.extra_repr()[:40]})"
            raise UsageError(f"{owner}: modules[{i}] ({shown}) is not "
                             f"part of the watched model ({type(model).__name__}), so its "
                             "forwards are never the model's batches; pass modules of this model "
                             "(a module kept in a plain Python list: register it with "
                             "nn.ModuleList)")


def check_module_list(mods: Sequence[Any], spec: Any) -> list[nn.Module]:
    """``mods`` without repeats; ``UsageError`` if empty or if an item is not an ``nn.Module``."""
    bad = [type(m).__name__ for m in mods if not isinstance(m, nn.Module)]
    if bad:
        raise UsageError(f"modules= must name nn.Module objects, got {', '.join(bad[:3])}; "
                         f"{ACCEPTED_FORMS}")
    unique = list({id(m): m for m in mods}.values())  # dict keeps the first-seen order
    if not unique:
        raise UsageError(f"telemetry found no modules to watch (modules={spec!r:.80}); "
                         f"{ACCEPTED_FORMS}")
    return unique


def describe_module(module: nn.Module) -> str:
    """A short label for plots and findings: ``conv 8→16`` for a conv block, else the class name."""
    conv = next((m for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    if conv is None:
        return type(module).__name__
    return f"conv {conv.in_channels}→{conv.out_channels}"


def layer_names(model: nn.Module | None, modules: Sequence[nn.Module]) -> list[str]:
    """``"<qualified name> <what it is>"`` per module: ``"3 conv 32→64"``, ``"h.3 GPT2Block"``;
    the model itself is ``"model"``, a module outside it ``"outside.<position in the list>"``."""
    root = unwrap_model(model) if model is not None else None
    qual = {id(m): n for n, m in root.named_modules()} if root is not None else {}

    def name(i: int, m: nn.Module) -> str:
        q = qual.get(id(m))
        if q is None:  # not a submodule of the model (or no model given): its place in the list
            return f"{i}" if root is None else f"outside.{i}"
        return q or "model"  # the root's qualified name is ""

    return [f"{name(i, m)} {describe_module(m)}" for i, m in enumerate(modules)]


# Modules whose output keeps torch's channels-first layout (N, C, ...).
_CHANNELS_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm,
                   nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
                   nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd,
                   nn.Dropout2d, nn.Dropout3d, AffineNorm)


def channel_dim(module: nn.Module, ndim: int) -> int | None:
    """The channel dim of ``module``'s output (``None`` for a 0-d or 1-d output).

    Dim 1 for a module with a conv, a channels-first norm (BatchNorm, InstanceNorm, GroupNorm) or
    pooling in it: (N, C, ...). The last dim for one with a Linear (a (N, T, F) transformer block,
    a (N, H, W, C) Swin block) and for any other 3-d output (sequences). Dim 1 for any other
    output of 4 or more dims: an element-wise module (ReLU, GeneralRelu) on an image map.
    """
    if ndim < 2:
        return None
    if ndim == 2:
        return 1
    mods = list(module.modules())
    if any(isinstance(m, _CHANNELS_FIRST) for m in mods):
        return 1
    if ndim == 3 or any(isinstance(m, nn.Linear) for m in mods):
        return ndim - 1
    return 1


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

