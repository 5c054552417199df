"""Are a model's output logits diverging? Mean log-sum-exp of rows and max |logit| (z-loss).

What counts as logits (else ``None``, recorded as NaN):

- the output itself if it is a tensor; else ``output.logits`` (an HF ``ModelOutput`` or any object
  with a ``logits`` tensor attribute); else ``output["logits"]`` for a mapping; else the first
  element of a tuple/list when it is a tensor (``(logits, loss)`` as nanoGPT returns it);
- a floating-point tensor with ``ndim >= 2`` and a last dimension of at least 2 (classes or
  vocabulary): a regression head ``(N, 1)``, a scalar loss, or integer ids are not logits.

An autoencoder's ``(N, 784)`` reconstruction passes the shape rule; its log-sum-exp is still a
well-defined number, so the diagnosis must read it only where the context says the output is a
classifier/LM (the caller decides by the loss it sees; this module only computes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["find_logits", "output_logit_stats"]


def find_logits(output: Any) -> torch.Tensor | None:
    """The logits tensor inside a model output, or None when there is none (rule: module doc)."""
    if isinstance(output, torch.Tensor):
        cand = output
    elif isinstance(getattr(output, "logits", None), torch.Tensor):
        cand = output.logits
    elif isinstance(output, Mapping) and isinstance(output.get("logits"), torch.Tensor):
        cand = output["logits"]
    elif isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        cand = output[0]
    else:
        return None
    if not cand.is_floating_point() or cand.dim() < 2 or cand.shape[-1] < 2 or cand.numel() == 0:
        return None
    return cand


def output_logit_stats(output: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(mean log-sum-exp over rows, max |logit|)`` as float32 device scalars, or None."""
    logits = find_logits(output)
    if logits is None:
        return None
    with torch.no_grad():
        # float32 so a bf16/fp16 head's lse is not rounded to the nearest 0.25; one pass for lse.
        z = logits.detach().float()
        lse = torch.logsumexp(z, dim=-1).mean()
        lo, hi = torch.aminmax(z)
        return lse, torch.maximum(hi, lo.neg())
