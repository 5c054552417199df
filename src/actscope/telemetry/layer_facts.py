"""What is a module, for the diagnosis? Kind, activation family, bounds, and attention detection.

Pure inspection of module types (no forward pass). ``activation_of`` answers "which activation
produced this module's output": a leaf activation is itself; a Linear/Conv/norm output is
pre-activation (``none``); a container's output is the activation of its last child that runs,
read from the ``return`` of its ``forward`` source when it calls ``self.<child>`` or
``F.<act>``/``torch.<act>`` (directly or through the name it returns), else from the last child
of an ``nn.Sequential``; anything else (a residual block) is ``none``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap

import torch.nn.functional as F
from torch import nn

__all__ = ["activation_family", "activation_of", "module_kind", "is_attention_module",
           "returned_child",
           "bounded_range", "ACT_FAMILIES"]

ACT_FAMILIES = ("relu", "leaky_relu", "gelu", "silu", "tanh", "sigmoid", "hardtanh", "softmax")
_BY_TYPE: dict[type, str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu", nn.LeakyReLU: "leaky_relu", nn.PReLU: "leaky_relu",
    nn.RReLU: "leaky_relu", nn.GELU: "gelu", nn.SiLU: "silu", nn.Mish: "silu", nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid", nn.Hardsigmoid: "sigmoid", nn.Hardtanh: "hardtanh",
    nn.Softmax: "softmax"}
_FUNC_NAMES = {"relu": "relu", "relu6": "relu", "leaky_relu": "leaky_relu", "gelu": "gelu",
               "silu": "silu", "mish": "silu", "tanh": "tanh", "sigmoid": "sigmoid",
               "hardtanh": "hardtanh", "hardsigmoid": "sigmoid", "softmax": "softmax"}
_HF_ATTENTION = frozenset({"GPT2Attention", "GPT2SdpaAttention", "GPT2FlashAttention2",
                           "BertSelfAttention", "BertSdpaSelfAttention", "LlamaAttention",
                           "LlamaSdpaAttention", "LlamaFlashAttention2"})


def activation_family(module: nn.Module) -> str | None:
    """The family of a leaf activation module (``relu``, ``gelu``, ...), None if it is none."""
    for cls in type(module).__mro__:
        if cls in _BY_TYPE:
            return _BY_TYPE[cls]
    name = type(module).__name__
    if name == "GeneralRelu":  # actscope.nn: a leak makes it leaky
        return "relu" if getattr(module, "leak", None) is None else "leaky_relu"
    low = name.lower()  # HF's NewGELUActivation, GELUActivation, SiLUActivation, ...
    for key, fam in (("gelu", "gelu"), ("silu", "silu"), ("swish", "silu")):
        if key in low and "activation" in low:
            return fam
    return None


def bounded_range(module: nn.Module, family: str | None) -> list[float] | None:
    """``[lo, hi]`` of a bounded activation's output (tanh, sigmoid, hardtanh, relu6), else None."""
    if isinstance(module, nn.Hardtanh):  # ReLU6 is a Hardtanh(0, 6)
        return [float(module.min_val), float(module.max_val)]
    return {"tanh": [-1.0, 1.0], "sigmoid": [0.0, 1.0], "softmax": [0.0, 1.0]}.get(family or "")


@functools.lru_cache(maxsize=512)
def _source_of(forward: object) -> str | None:
    """A ``forward``'s source, dedented (None when it has none); read once per function: an
    attach reads every layer's, and reading one costs ~2 ms."""
    try:
        return textwrap.dedent(inspect.getsource(forward))
    except (OSError, TypeError):
        return None


def _forward_calls(forward: object) -> tuple[bool, bool]:
    """(mentions sdpa, mentions a softmax) in a ``forward``'s source."""
    src = _source_of(forward) or ""
    return "scaled_dot_product_attention" in src, "softmax" in src


@functools.lru_cache(maxsize=512)
def _calls_sdpa(forward: object) -> bool:
    """Whether a ``forward`` calls ``scaled_dot_product_attention`` (a call in its code, not a
    mention in its docstring, as ``nn.Transformer.forward``'s)."""
    src = _source_of(forward)
    if src is None or "scaled_dot_product_attention" not in src:
        return False
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if name == "scaled_dot_product_attention":
                return True
    return False


def is_attention_module(module: nn.Module) -> bool:
    """An attention module: HF's GPT-2/BERT/Llama attention, ``nn.MultiheadAttention``, a user
    class whose name has "attn"/"attention" and that has children or calls sdpa/softmax, or any
    class whose own ``forward`` calls ``scaled_dot_product_attention`` (``MHSA``, ``MHA``: that
    call is attention whatever the class is named; a softmax alone is not, a classifier has one)."""
    if isinstance(module, nn.MultiheadAttention):
        return True
    name = type(module).__name__
    if name in _HF_ATTENTION:
        return True
    low = name.lower()
    if "attn" not in low and "attention" not in low:
        return _calls_sdpa(type(module).forward)
    sdpa, softmax = _forward_calls(type(module).forward)
    return any(True for _ in module.children()) or sdpa or softmax


def module_kind(module: nn.Module) -> str:
    """``linear|conv|attention|norm|activation|embedding|recurrent|block|other``."""
    name = type(module).__name__
    if is_attention_module(module):
        return "attention"
    if isinstance(module, nn.Linear) or name == "Conv1D":  # HF's transposed linear
        return "linear"
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        return "recurrent"
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return "embedding"
    if "Norm" in name:  # BatchNorm*, LayerNorm, GroupNorm, RMSNorm, LlamaRMSNorm, AffineNorm
        return "norm"
    if activation_family(module) is not None:
        return "activation"
    return "block" if any(True for _ in module.children()) else "other"


def _returned_call(module: nn.Module) -> ast.Call | None:
    """The call whose value ``forward`` returns (through one returned name), if any."""
    return _returned_call_of(type(module).forward)


@functools.lru_cache(maxsize=512)
def _returned_call_of(forward: object) -> ast.Call | None:
    # Cached per forward function: reading and parsing its source took ~2 ms per layer at every
    # fit start (the context is taken per fit), 2-4 % of a short fit of the lesson's CNN.
    src = _source_of(forward)
    try:
        tree = ast.parse(src) if src is not None else None
    except SyntaxError:
        return None
    if tree is None:
        return None
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.FunctionDef) else []
    rets = [s for s in body if isinstance(s, ast.Return)]
    if not rets or rets[-1].value is None:
        return None
    val = rets[-1].value
    if isinstance(val, ast.Name):  # `out = self.relu(out); return out`
        assigns = [s for s in body if isinstance(s, (ast.Assign, ast.AugAssign))
                   and any(isinstance(t, ast.Name) and t.id == val.id
                           for t in (s.targets if isinstance(s, ast.Assign) else [s.target]))]
        val = assigns[-1].value if assigns and isinstance(assigns[-1], ast.Assign) else None
    return val if isinstance(val, ast.Call) else None


def activation_of(module: nn.Module) -> str:
    """The activation family that produced ``module``'s output, or ``"none"`` (module doc)."""
    fam = activation_family(module)
    if fam is not None:
        return fam
    kids = dict(module.named_children())
    if not kids or is_attention_module(module):
        return "none"
    call = _returned_call(module)
    if call is not None:
        f = call.func
        if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                and f.value.id == "self" and f.attr in kids):
            return activation_of(kids[f.attr])
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in (
                "F", "torch", "functional"):
            return _FUNC_NAMES.get(f.attr, "none")
        if isinstance(f, ast.Name) and getattr(F, f.id, None) is not None:
            return _FUNC_NAMES.get(f.id, "none")
        return "none"
    if isinstance(module, nn.Sequential):
        for child in reversed(list(module.children())):
            if isinstance(child, (nn.Dropout, nn.Identity, nn.Flatten)) or (
                    "Pool" in type(child).__name__):
                continue  # shape-only or masking: the activation before it still shows
            return activation_of(child)
    return "none"


def returned_child(module: nn.Module) -> nn.Module | None:
    """The child whose output ``forward`` returns, read from its source: ``return self.head(x)``,
    through methods on it (``self.head(x).squeeze(-1)``) and one returned name; else None."""
    call = _returned_call(module)
    while call is not None:
        f = call.func
        if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                and f.value.id == "self"):
            return dict(module.named_children()).get(f.attr)
        # a method of the value: ``self.head(x).squeeze(-1)``, ``.view(-1)``
        call = f.value if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Call) else None
    return None

