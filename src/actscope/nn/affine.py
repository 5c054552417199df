"""The base every per-channel normalization layer shares: shape checks and the affine part.

``AffineNorm`` holds ``weight``/``bias`` of shape (C,) (or none with ``affine=False``), resets them
to the identity, applies them per channel and prints the torch-style repr. BatchNorm, LayerNorm,
InstanceNorm (norms.py) and RunningBatchNorm (running_batchnorm.py) build on it, so that code is
written once.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AffineNorm", "broadcast_channels", "check_features", "check_input"]


def check_input(x: torch.Tensor, num_features: int, layer: str, min_dim: int = 2) -> None:
    """Shape-only check (no host sync): rank >= min_dim and C == num_features."""
    if x.dim() < min_dim or x.shape[1] != num_features:
        shapes = "(N, C), (N, C, L)" if min_dim == 2 else "(N, C, L)"
        raise ValueError(f"{layer}({num_features}) expected input of shape {shapes}, "
                         f"(N, C, H, W) or (N, C, D, H, W) with C={num_features}, got shape "
                         f"{tuple(x.shape)} ({x.dim()}D)")


def broadcast_channels(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-channel (C,) tensor viewed as (1, C, 1, ...) to broadcast against x."""
    return t.view(1, -1, *([1] * (x.dim() - 2)))


def check_features(num_features: int, layer: str) -> None:
    """ValueError unless ``num_features`` is a positive int (not a bool)."""
    if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features <= 0:
        raise ValueError(f"{layer}: num_features must be a positive channel count, "
                         f"got {num_features!r}")


class AffineNorm(nn.Module):
    """Shared plumbing: per-channel weight/bias (optional), reset_parameters, extra_repr."""

    def __init__(self, num_features: int, eps: float, affine: bool, device=None,
                 dtype=None) -> None:
        super().__init__()
        check_features(num_features, type(self).__name__)
        if eps <= 0:
            raise ValueError(f"{type(self).__name__}: eps must be > 0, got {eps}")
        self.num_features, self.eps, self.affine = num_features, eps, affine
        if affine:
            self.weight = nn.Parameter(torch.empty(num_features, device=device, dtype=dtype))
            self.bias = nn.Parameter(torch.empty(num_features, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Set weight to 1 and bias to 0 (the identity affine transform)."""
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def _affine(self, x: torch.Tensor) -> torch.Tensor:
        """``x * weight + bias`` per channel (x itself without affine)."""
        if not self.affine:
            return x
        bias, weight = broadcast_channels(self.bias, x), broadcast_channels(self.weight, x)
        return torch.addcmul(bias, x, weight)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}"
