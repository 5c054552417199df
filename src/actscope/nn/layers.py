"""Small building blocks of the lesson's CNN: GeneralRelu, Lambda and conv_layer."""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from actscope.config import positive_int
from actscope.nn.norms import make_norm

__all__ = ["GeneralRelu", "Lambda", "conv_layer"]

ActFactory = Callable[[], nn.Module]


def _opt_float(value: float | None, name: str) -> float | None:
    """Validate an optional finite float argument of GeneralRelu."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"GeneralRelu: {name} must be a finite number or None, got {value!r}")
    return float(value)


class GeneralRelu(nn.Module):
    """ReLU with an optional leak, a constant subtracted afterwards and an upper clamp.

    ``leak`` is the negative slope (None: plain ReLU), ``sub`` is subtracted from the output (to
    pull the mean towards 0) and ``maxv`` clamps the output from above. The three numbers live in
    the module's ``state_dict`` as a small extra-state tensor, so a ``sub`` set by ``lsuv_init``
    survives a save and load (plain float attributes would be silently lost).
    """

    def __init__(self, leak: float | None = None, sub: float | None = None,
                 maxv: float | None = None) -> None:
        super().__init__()
        self.leak = _opt_float(leak, "leak")
        self.sub = _opt_float(sub, "sub")
        self.maxv = _opt_float(maxv, "maxv")
        if self.leak is not None and self.leak < 0:
            raise ValueError(f"GeneralRelu: leak must be >= 0, got {self.leak}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(x, self.leak) if self.leak is not None else F.relu(x)
        if self.sub is not None:
            x = x - self.sub
        if self.maxv is not None:
            x = x.clamp_max(self.maxv)
        return x

    def extra_repr(self) -> str:
        return f"leak={self.leak}, sub={self.sub}, maxv={self.maxv}"

    def get_extra_state(self) -> torch.Tensor:
        """(leak, sub, maxv) as float64, NaN for None (a tensor, so safetensors can save it)."""
        values = [math.nan if v is None else v for v in (self.leak, self.sub, self.maxv)]
        return torch.tensor(values, dtype=torch.float64)

    def set_extra_state(self, state: torch.Tensor) -> None:
        """Restore (leak, sub, maxv) from ``get_extra_state``'s tensor (a load, not a hot path)."""
        if not isinstance(state, torch.Tensor) or state.numel() != 3:
            raise ValueError("GeneralRelu: expected extra state as a 3-element tensor "
                             f"(leak, sub, maxv), got {state!r}")
        leak, sub, maxv = (None if math.isnan(v) else v for v in state.double().tolist())
        self.leak, self.sub, self.maxv = leak, sub, maxv


class Lambda(nn.Module):
    """Wrap a plain function as a module (e.g. a reshape) so it can sit in an nn.Sequential."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        if not callable(fn):
            raise TypeError(f"Lambda needs a callable, got {type(fn).__name__}")
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return f"fn={getattr(self.fn, '__name__', repr(self.fn))}"


def _make_act(act: ActFactory | nn.Module | None) -> nn.Module:
    """An activation module from a factory; None means plain ReLU (``GeneralRelu()``)."""
    if act is None:
        return GeneralRelu()
    if isinstance(act, nn.Module):
        # A module instance would be shared by every block; copy it so each block owns its own.
        return copy.deepcopy(act)
    if not callable(act):
        raise TypeError(f"act must be a module factory such as functools.partial(GeneralRelu, "
                        f"0.1, 0.4) or None, got {act!r}")
    module = act()
    if not isinstance(module, nn.Module):
        raise TypeError(f"act() must return an nn.Module, got {type(module).__name__}")
    return module


def conv_layer(ni: int, nf: int, ks: int = 3, stride: int = 2, norm: str | None = "none",
               act: ActFactory | nn.Module | None = None) -> nn.Sequential:
    """Conv2d (padding ks//2) -> optional norm -> activation, as an nn.Sequential block.

    The conv has a bias only when no norm follows: a norm subtracts the channel mean, which would
    cancel the bias anyway. Children are named ``conv``, ``norm`` (if any) and ``act``.
    """
    for name, value in (("ni", ni), ("nf", nf), ("ks", ks), ("stride", stride)):
        positive_int(value, f"conv_layer: {name}")
    norm_layer = make_norm(norm, nf)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["conv"] = nn.Conv2d(ni, nf, ks, stride=stride, padding=ks // 2,
                               bias=norm_layer is None)
    if norm_layer is not None:
        layers["norm"] = norm_layer
    layers["act"] = _make_act(act)
    return nn.Sequential(layers)
