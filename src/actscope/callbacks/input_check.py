"""InputCheckCallback: one cheap look at the first batch, so bad data fails with a clear message.

Checked once per fit, on the first training batch (one host sync, then nothing per batch):
  * the inputs are finite;
  * the model can take them: a dry forward of two rows in eval mode under no_grad (no state
    changes, no random numbers drawn); on an error the message names the module that failed,
    the shape it got and torch's reason;
  * integer class labels lie in ``0..n_outputs-1`` (all labels when the loader exposes ``y``).
Without it torch reports the same problems as "mat1 and mat2 shapes cannot be multiplied" or
"Target 10 is out of bounds" from deep inside the loss, with no hint of which layer or label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from actscope.callback import Callback
from actscope.data.errors import DataError

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["InputCheckCallback", "check_model_takes", "check_labels"]


def check_model_takes(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    """Dry-run ``xb`` through ``model`` (eval, no_grad); DataError naming the failing module."""
    stack: list[tuple[str, nn.Module, Any]] = []

    def enter(name: str):
        def pre_hook(module: nn.Module, inputs: Any) -> None:
            stack.append((name, module, inputs))
        return pre_hook

    def leave(_module: nn.Module, _inputs: Any, _out: Any) -> None:
        stack.pop()

    handles = []
    for name, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(enter(name or type(model).__name__)))
        handles.append(m.register_forward_hook(leave))
    was_training = model.training
    try:
        with torch.no_grad():
            return model.eval()(xb)
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        if not stack:
            raise
        name, module, inputs = stack[-1]  # the innermost module still running: it failed
        shapes = [tuple(t.shape) for t in inputs if isinstance(t, torch.Tensor)]
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"the model cannot take inputs of shape {tuple(xb.shape)}: layer '{name}' "
            f"({module!r}) failed on input {shapes[0] if len(shapes) == 1 else shapes}: {reason}; "
            "reshape the data or change that layer") from e
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()


def check_labels(y: torch.Tensor, n_outputs: int, where: str) -> None:
    """DataError unless integer labels ``y`` lie in ``0..n_outputs-1`` (one host sync)."""
    if y.is_floating_point() or y.dtype == torch.bool or y.numel() == 0:
        return
    lo, hi = torch.aminmax(y)
    lo, hi = int(lo), int(hi)
    if lo < 0 or hi >= n_outputs:
        raise DataError(f"labels in {where} range over {lo}..{hi}, but the model has {n_outputs} "
                        f"outputs, so labels must lie in 0..{n_outputs - 1}; remap the labels or "
                        f"give the last layer {hi + 1} outputs")


class InputCheckCallback(Callback):
    """Check the first training batch: finite inputs, a model that takes them, labels in range."""

    order = -7  # after device placement and batch transforms, before telemetry starts recording
    # Kept during the LR finder's sweep: it records nothing, and a batch the model cannot take
    # should fail the sweep with this message rather than with torch's.
    pausable_by_lr_find = False

    def __init__(self) -> None:
        self.done = False

    def before_fit(self, learn: Learner) -> None:
        self.done = False

    def before_batch(self, learn: Learner) -> None:
        if self.done or not learn.training:
            return
        self.done = True
        xb, yb = learn.xb, learn.yb
        if isinstance(xb, torch.Tensor) and xb.is_floating_point() and not torch.isfinite(xb).all():
            raise DataError(f"the first training batch holds {int((~torch.isfinite(xb)).sum())} "
                            "NaN/Inf input values; clean or impute the data before training")
        preds = check_model_takes(learn.model, xb[:2] if isinstance(xb, torch.Tensor) else xb)
        if not (isinstance(preds, torch.Tensor) and preds.dim() == 2
                and isinstance(yb, torch.Tensor) and yb.dim() == 1):
            return  # not single-label classification: nothing to say about labels
        for name in ("train", "valid"):
            y = getattr(getattr(learn.dls, name, None), "y", None)
            if isinstance(y, torch.Tensor):
                check_labels(y, preds.shape[1], f"the {name} set")
        check_labels(yb, preds.shape[1], "the first training batch")
