"""RunningBatchNorm: batch norm that normalises with running statistics in training too.

The 2019 lesson's final algorithm (Lesson 10, notebook 07), made a torch citizen and numerically
stable. It keeps exponentially weighted sums of x, x² and the count; momentum grows with the batch
size; the variance is clamped from below until 20 samples have been seen; and the running statistics
(including the current batch's share) normalise in training *and* evaluation, so a batch of 1 or 2
trains as well as a batch of 64.

Momentum convention: like ``torch.nn.BatchNorm2d``, ``momentum`` is the weight of the *new* batch
(the lesson notes that this is the inverse of the usual "momentum" of an exponential average). It is
adjusted for batch size as in the lesson, ``w = 1 - (1 - momentum) / sqrt(bs - 1)``: at bs 2 this is
exactly ``momentum``; at bs 64 it is 0.89, so large batches mostly use their own statistics.
"""

from __future__ import annotations

import math

import torch

from actscope.nn.affine import AffineNorm

__all__ = ["RunningBatchNorm"]


def _channel_view(t: torch.Tensor, dim: int) -> torch.Tensor:
    """A (C,) tensor viewed as (1, C, 1, ...) to broadcast over a ``dim``-D (N, C, *) input."""
    return t.view((1, -1) + (1,) * (dim - 2))


def _affine(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``x * scale + shift`` per channel, via eval-mode batch_norm's per-channel kernel.

    With mean 0, var 1 and eps 0 batch_norm computes exactly x * weight + bias, and on CPU its
    channel loop is 2-3x faster than a broadcast ``addcmul`` over (N, C, H, W).
    """
    zeros = torch.zeros_like(scale)
    return torch.batch_norm(x, scale, shift, zeros, torch.ones_like(scale), False, 0.0, 0.0,
                            False)


class _Moments(torch.autograd.Function):
    """Per-channel biased (mean, var) of (N, C, *) with a hand-written one-pass backward.

    Autograd through ``torch.var_mean`` over dims (0, 2, 3) costs several full passes on CPU (and
    var_mean itself is slow there); this is two cheap reductions forward and one fused pass back.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dims = [0, *range(2, x.dim())]
        mean = x.mean(dims)
        centred = x - _channel_view(mean, x.dim())
        # Two-pass variance: exact in float32 whatever |mean| / std is (E[x²] - E[x]² is not).
        var = centred.square().mean(dims)
        ctx.save_for_backward(x, mean)
        return mean, var

    @staticmethod
    def backward(ctx, grad_mean: torch.Tensor, grad_var: torch.Tensor) -> torch.Tensor:
        x, mean = ctx.saved_tensors
        n = x.numel() / x.shape[1]
        # d mean / dx = 1/n ; d var / dx = 2 (x - mean) / n: one multiply-add over x.
        c1 = grad_var * (2.0 / n)
        c0 = grad_mean / n - mean * c1
        return _affine(x, c1, c0)


class _ScaleShift(torch.autograd.Function):
    """``x * scale + shift`` with per-channel (C,) scale/shift and a fused-reduction backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, scale)
        return _affine(x, scale, shift)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, scale = ctx.saved_tensors
        dims = [0, *range(2, x.dim())]
        grad_x = _affine(grad, scale, torch.zeros_like(scale)) if ctx.needs_input_grad[0] else None
        grad_scale = (grad * x).sum(dims) if ctx.needs_input_grad[1] else None
        grad_shift = grad.sum(dims) if ctx.needs_input_grad[2] else None
        return grad_x, grad_scale, grad_shift


class RunningBatchNorm(AffineNorm):
    """Batch norm over running (exponentially weighted) statistics, usable at batch size 1 and 2.

    Args:
        num_features: channels C of an (N, C, *) input.
        eps: added to the variance before the square root.
        momentum: weight of the new batch at batch size 2 (torch's convention, see the module doc).
        affine: learn a per-channel ``weight`` and ``bias``.
        warmup_samples: the variance is clamped to at least ``warmup_min_var`` until this many
            samples have been seen (a fresh layer's variance estimate is noise).
        warmup_min_var: the warm-up clamp.
        stats_grad: let the gradient flow through the current batch's share of the statistics
            (the lesson's notebook behaviour); False updates them under no_grad. See
            docs/running_batchnorm.md for the measured difference (True trains far better at bs 2).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, warmup_samples: int = 20, warmup_min_var: float = 0.01,
                 stats_grad: bool = True, device=None, dtype=None) -> None:
        super().__init__(num_features, eps, affine, device, dtype)  # weight, bias (C,)
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum is the new batch's weight and must be in (0, 1], "
                             f"got {momentum}")
        factory = {"device": device, "dtype": dtype}
        self.momentum = momentum
        self.warmup_samples, self.warmup_min_var, self.stats_grad = (
            warmup_samples, warmup_min_var, stats_grad)
        # Every piece of state is a buffer, so state_dict() carries it and a resumed run neither
        # forgets its statistics nor re-enters the warm-up clamp.
        self.register_buffer("running_mean", torch.zeros(num_features, **factory))
        self.register_buffer("running_var", torch.ones(num_features, **factory))  # biased
        self.register_buffer("count", torch.zeros((), **factory))  # EW count of values per channel
        self.register_buffer("samples_seen", torch.zeros((), dtype=torch.long, device=device))
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Forget the running statistics (the warm-up clamp applies again)."""
        self.running_mean.zero_()
        self.running_var.fill_(1)
        self.count.zero_()
        self.samples_seen.zero_()

    def reset_parameters(self) -> None:
        """Reset the statistics and set weight to 1, bias to 0."""
        self.reset_running_stats()
        super().reset_parameters()

    def batch_weight(self, bs: int) -> float:
        """The new batch's weight ``1 - (1 - momentum) / sqrt(bs - 1)``, a Python float."""
        # The lesson's formula divides by zero at bs 1 (and is negative below 1): a single sample
        # is treated like a pair, so bs 1 uses exactly ``momentum`` rather than inf or a crash.
        return 1.0 - (1.0 - self.momentum) / math.sqrt(max(bs - 1, 1))

    def _merged_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Running (mean, var, count) with this batch merged in; differentiable in the batch."""
        batch_mean, batch_var = _Moments.apply(x)  # (C,), (C,)
        batch_count = x.numel() / self.num_features  # values per channel: a Python number
        w = self.batch_weight(x.shape[0])
        # The lesson keeps EW sums S1 = Σx, S2 = Σx² and an EW count c, and reads mean = S1/c,
        # var = S2/c - mean². That subtraction cancels catastrophically in float32 when
        # |mean| >> std (mean 1e4, std 1 leaves no correct digits). Instead we keep the same
        # quantities as (mean, var, count) and merge each batch with Chan's parallel formula,
        # which is algebraically identical to the EW sums but never subtracts two large numbers.
        # Debiasing: the lesson also divided S1, S2 and c by (1 - (1-w)^t); mean and var are
        # ratios of sums to the count, which carry the same bias, so it cancels. The count
        # starting at 0 is all the debiasing needed: the first batch gets the whole weight.
        # Weights: old a = (1 - w) * count (a detached buffer), new b = w * batch_count.
        b = w * batch_count  # a Python float > 0: no division by zero, no branch
        total = self.count * (1.0 - w) + b
        frac = b / total  # the new batch's share of the merged statistics, (0, 1]
        delta = batch_mean - self.running_mean
        mean = torch.lerp(self.running_mean, batch_mean, frac)
        # Chan: var = (a var_old + b var_batch) / total + delta² a b / total²  (few fused ops:
        # at batch size 2 the per-channel arithmetic, not the big tensor, dominates the time)
        var = torch.addcmul(torch.lerp(self.running_var, batch_var, frac), delta.square(),
                            frac - frac.square())
        return mean, var, total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (N, C, *) with the running statistics (updated first when training)."""
        if x.dim() < 2 or x.dim() > 5:
            raise ValueError(f"RunningBatchNorm expects a 2D-5D input (N, C, *), got {x.dim()}D "
                             f"of shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"RunningBatchNorm({self.num_features}) got {x.shape[1]} channels in "
                             f"input of shape {tuple(x.shape)}; check num_features")
        if self.training:
            with torch.set_grad_enabled(self.stats_grad and torch.is_grad_enabled()):
                mean, var, count = self._merged_stats(x)
            with torch.no_grad():  # the buffers never hold autograd history
                self.running_mean.copy_(mean)
                self.running_var.copy_(var)
                self.count.copy_(count)
                self.samples_seen.add_(x.shape[0])
        else:
            mean, var = self.running_mean, self.running_var
        # Tensor ops instead of `if samples_seen < 20`: no host sync, compile-friendly. Applied in
        # eval too, so eval right after a short warm-up normalises like the last training step.
        var = torch.where(self.samples_seen < self.warmup_samples,
                          var.clamp_min(self.warmup_min_var), var)
        scale = torch.rsqrt(var + self.eps)  # (C,)
        if self.affine:
            scale = scale * self.weight
            shift = torch.addcmul(self.bias, mean, scale, value=-1.0)
        else:
            shift = -mean * scale
        # One fused multiply-add over the big tensor; everything else is per-channel.
        return _ScaleShift.apply(x, scale, shift)

    def extra_repr(self) -> str:
        # torch's BatchNorm order: features, eps, momentum, affine
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, warmup_samples={self.warmup_samples}, "
                f"stats_grad={self.stats_grad}")
