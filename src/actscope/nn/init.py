"""Initialisation for the lesson's CNNs: kaiming with each block's leak, and LSUV."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from actscope.errors import ActscopeError
from actscope.nn.cnn import conv_blocks
from actscope.nn.layers import GeneralRelu

__all__ = ["InitError", "init_cnn", "lsuv_init"]


class InitError(ActscopeError, ValueError):
    """An initialisation that cannot be done on this model or batch (the message says why)."""


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_WEIGHTED = (*_CONVS, nn.Linear)


def _leak(module: nn.Module) -> float | None:
    """The negative slope of a ReLU-family activation, None if ``module`` is not one."""
    if isinstance(module, GeneralRelu):
        return module.leak or 0.0
    if isinstance(module, nn.LeakyReLU):
        return module.negative_slope
    if isinstance(module, nn.ReLU):
        return 0.0
    return None


def init_cnn(model: nn.Module, uniform: bool = False) -> nn.Module:
    """Kaiming-initialise every conv (normal, or uniform), with ``a`` = its activation's leak.

    The activation is the first ReLU-family module after the conv in forward order (GeneralRelu,
    nn.ReLU, nn.LeakyReLU) before the next conv/linear; ``a = 0`` when there is none or it has no
    leak. Conv biases are zeroed. Linear layers keep torch's default, as in the lesson. Returns
    ``model`` (initialised in place).
    """
    init_fn = nn.init.kaiming_uniform_ if uniform else nn.init.kaiming_normal_
    modules = list(model.modules())  # pre-order: forward order for nn.Sequential models
    for i, module in enumerate(modules):
        if not isinstance(module, _CONVS):
            continue
        leak = 0.0
        for later in modules[i + 1:]:
            if isinstance(later, _WEIGHTED):
                break
            found = _leak(later)
            if found is not None:
                leak = found
                break
        with torch.no_grad():
            init_fn(module.weight, a=leak)
            if module.bias is not None:
                module.bias.zero_()
    return model


def _first(module: nn.Module, types: tuple[type, ...]) -> nn.Module | None:
    return next((m for m in module.modules() if isinstance(m, types)), None)


def _is_affine_norm(m: nn.Module) -> bool:
    """A norm layer with a learnable weight (ours, torch's, RunningBatchNorm)."""
    is_norm = hasattr(m, "num_features") or isinstance(m, (nn.GroupNorm, nn.LayerNorm))
    return is_norm and isinstance(getattr(m, "weight", None), nn.Parameter)


def _scale_target(block: nn.Module) -> nn.Module:
    """The affine layer whose weight sets the block's output scale: the norm if any, else conv.

    After a batch norm, rescaling the conv changes nothing (the norm divides it out again).
    """
    conv = _first(block, _WEIGHTED)
    if conv is None:
        raise InitError(f"lsuv_init: module {type(block).__name__} has no conv or linear "
                        f"layer to rescale; pass blocks such as conv_blocks(model)")
    after_conv = False
    for m in block.modules():
        if m is conv:
            after_conv = True
        elif after_conv and _is_affine_norm(m):
            return m
    return conv


def _restore(model: nn.Module, buffers: dict[str, torch.Tensor]) -> None:
    for name, b in model.named_buffers():
        b.copy_(buffers[name])


def _measure(model: nn.Module, xb: torch.Tensor, stats: dict[str, float],
             buffers: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Run the model; the hook stores the block's output mean/std (host reads: init only)."""
    # Every pass starts from the original running statistics, so what is measured is what the
    # model's first forward pass after LSUV computes (RunningBatchNorm uses them in training).
    _restore(model, buffers)
    model(xb)
    mean, std = stats["mean"], stats["std"]
    if not (math.isfinite(mean) and math.isfinite(std)):
        raise InitError(f"lsuv_init: a block's output has mean {mean}, std {std}; check the "
                        f"batch for NaN/inf and that the model runs on it, or use init_cnn "
                        f"(--init kaiming)")
    return mean, std


def _constant_output(index: int) -> InitError:
    """The error for a block whose output is one value on the whole batch (std 0)."""
    return InitError(f"lsuv_init: block {index}'s output is constant (std 0) on this batch, so "
                     "LSUV cannot scale it to unit variance (an activation such as GeneralRelu "
                     "with maxv below its floor, e.g. --act 0,0,-1, outputs one value); use "
                     "init_cnn (--init kaiming), an activation whose output varies (--act), or "
                     "a larger, more varied batch")


@torch.no_grad()
def lsuv_init(model: nn.Module, xb: torch.Tensor, modules: Sequence[nn.Module] | None = None,
              tol: float = 1e-3, max_iter: int = 10) -> list[tuple[float, float]]:
    """Layer-sequential unit variance: per block, shift mean to 0 and scale std to 1 on ``xb``.

    Blocks (default ``conv_blocks(model)``) are processed in order, each measured at its output
    through a forward hook on a full forward pass, as in the lesson. The std is fixed by dividing
    the block's conv weight (or its norm's weight and bias, when a norm follows the conv) by the
    measured std; the mean by the block's ``GeneralRelu.sub`` (set even if it was None), which is
    exact for ReLU-family activations. Running statistics of the model's norms are restored
    afterwards, so LSUV leaves no trace in them. Returns the final (mean, std) per block.
    """
    blocks = list(conv_blocks(model) if modules is None else modules)
    if not blocks:
        raise InitError("lsuv_init: the model has no conv blocks; pass the blocks to initialise "
                        "with modules=[...]")
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    results: list[tuple[float, float]] = []
    try:
        for block in blocks:
            target = _scale_target(block)
            acts = [m for m in block.modules() if isinstance(m, GeneralRelu)]
            act = acts[-1] if acts else None
            stats: dict[str, float] = {}

            def hook(_m: nn.Module, _inp: object, out: torch.Tensor, stats=stats) -> None:
                stats["mean"], stats["std"] = out.mean().item(), out.std().item()

            handle = block.register_forward_hook(hook)
            try:
                mean, std = _measure(model, xb, stats, buffers)
                for _ in range(max_iter):
                    if abs(mean) <= tol and abs(std - 1) <= tol:
                        break
                    if std == 0:
                        raise _constant_output(len(results))
                    target.weight.div_(std)
                    if target.bias is not None:
                        target.bias.div_(std)
                    if act is not None:
                        act.sub = ((act.sub or 0.0) + mean) / std
                    elif target.bias is not None:
                        target.bias.sub_(mean / std)  # no activation: the output is affine
                    mean, std = _measure(model, xb, stats, buffers)
            finally:
                handle.remove()
            results.append((mean, std))
    finally:
        _restore(model, buffers)
    return results
