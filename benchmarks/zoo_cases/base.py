"""What a zoo case is: its setup facts, its expected finding, and the plain training loop it runs.

A ``Case`` builds a ``Trial`` (model, optimizer, data, an optional injection) and says what the
diagnosis should find: a set of ``Finding.kind`` values (any of them counts) on a set of layers
(qualified module names, as in ``Telemetry.names`` before the space). The ``Trial`` trains with a
plain loop and measures gradient norms and update/weight ratios itself (host syncs are fine here:
this is the ground truth, not the product); its ``check`` turns those and its probes' numbers into
a ``Truth``, which says whether the pathology (or, for a control, health) is really there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["Setup", "Truth", "Trial", "Case", "loss_fell"]


@dataclass(frozen=True)
class Setup:
    """The facts of a run that advice must not contradict (see score.wrong_advice)."""

    init: str  # "kaiming" | "xavier" | "default" (torch's) | "small" | "large" | "custom"
    optimizer: str  # "SGD" | "Adam" | "AdamW"
    lr: float
    has_conv: bool = False
    has_attention: bool = False
    activations: tuple[str, ...] = ("relu",)  # lower-case names of the activation functions
    norms: tuple[str, ...] = ()  # "BatchNorm2d", "LayerNorm", "RMSNorm"...
    warmup: bool = False
    grad_clip: float | None = None
    cells: tuple[str, ...] = ()  # the recurrent modules' classes: "RNN", "GRU", "LSTM"
    qk_norm: bool = False  # the attention normalises its queries and keys already


@dataclass
class Truth:
    """The ground-truth numbers of a run and whether the case's claim holds."""

    values: dict[str, float]
    holds: bool

    def __str__(self) -> str:
        return " ".join(f"{k}={_fmt(v)}" for k, v in self.values.items())


def _fmt(v: float) -> str:
    if isinstance(v, bool) or isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return str(v)
    return f"{v:.3g}"


@dataclass
class Trial:
    """One training run of a case: call ``train_step(i)`` for ``i in range(steps)``."""

    model: nn.Module
    opt: torch.optim.Optimizer
    batch: Callable[[int], tuple[Any, Any]]  # step -> (xb, yb)
    loss_fn: Callable[[Any, Any], torch.Tensor]  # (model output, yb) -> loss
    steps: int
    check: Callable[[Trial], Truth]  # the case's ground truth, read after training
    track: dict[str, nn.Module] = field(default_factory=dict)  # layers whose grads/updates count
    clip: float | None = None
    sched: Any = None
    before_step: Callable[[int], None] | None = None  # an injection (a poisoned weight at step K)
    losses: list[float] = field(default_factory=list)
    grad_norms: dict[str, list[float]] = field(default_factory=dict)
    update_ratios: dict[str, list[float]] = field(default_factory=dict)
    probes: list[Any] = field(default_factory=list)  # kept so their hooks can be removed

    def train_step(self, i: int) -> torch.Tensor:
        """One plain step: forward, backward, (clip), optimizer step; returns the loss."""
        if self.before_step is not None:
            self.before_step(i)
        xb, yb = self.batch(i)
        loss = self.loss_fn(self.model(xb), yb)
        loss.backward()
        for name, m in self.track.items():
            grads = [p.grad for p in m.parameters() if p.grad is not None]
            norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])) if grads \
                else torch.tensor(float("nan"))
            self.grad_norms.setdefault(name, []).append(float(norm))
        if self.clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        before = {n: [p.detach().clone() for p in m.parameters()] for n, m in self.track.items()}
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        for name, m in self.track.items():
            delta = sum(float((p.detach() - b).norm()) ** 2
                        for p, b in zip(m.parameters(), before[name], strict=True))
            size = sum(float(p.detach().norm()) ** 2 for p in m.parameters())
            self.update_ratios.setdefault(name, []).append(math.sqrt(delta / max(size, 1e-30)))
        self.opt.zero_grad(set_to_none=True)
        self.losses.append(float(loss.detach()))
        return loss

    def truth(self) -> Truth:
        """The case's ground truth for this run (after training)."""
        return self.check(self)

    def remove_probes(self) -> None:
        """Take the ground-truth hooks off the model."""
        for p in self.probes:
            p.remove()


@dataclass(frozen=True)
class Case:
    """One zoo entry: a builder plus what the diagnosis should say about its run."""

    name: str
    category: str  # "mlp" | "cnn" | "resnet" | "rnn" | "transformer" | "hf"
    mechanism: str  # how the pathology is induced (or "healthy control")
    expected: frozenset[str]  # Finding kinds that name it; empty for a control
    layers: tuple[str, ...] | None  # qualified names; None: a model-level signal, any layer
    setup: Setup
    build: Callable[[], Trial]
    fast: bool = False  # part of the quick subset run by `make test`

    @property
    def control(self) -> bool:
        """A healthy control: any finding on it is a false alarm."""
        return not self.expected


def loss_fell(trial: Trial, factor: float = 0.9, window: int = 5) -> Truth:
    """Control ground truth: the mean loss of the last ``window`` steps is below ``factor`` x
    that of the first ``window``."""
    first = sum(trial.losses[:window]) / window
    last = sum(trial.losses[-window:]) / window
    return Truth({"loss_first": first, "loss_last": last},
                 math.isfinite(last) and last < factor * first)
