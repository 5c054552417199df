"""GroupNorm: torch's layer in torch's argument order, with a default group count."""

from __future__ import annotations

import torch
from torch import nn

from actscope.nn.affine import check_features, check_input

__all__ = ["GroupNorm", "default_num_groups"]


def default_num_groups(num_channels: int) -> int:
    """The largest divisor g of C with g <= 32 and at least 4 channels a group (1 if none).

    32 groups is the GroupNorm paper's default; the 4-channel floor keeps the lesson's narrow
    layers (8 or 16 channels) from collapsing into InstanceNorm (one channel a group).
    """
    check_features(num_channels, "default_num_groups")
    fits = [g for g in range(1, min(32, num_channels) + 1)
            if num_channels % g == 0 and num_channels // g >= 4]
    return max(fits, default=1)


class GroupNorm(nn.GroupNorm):
    """torch's ``nn.GroupNorm(num_groups, num_channels)`` with a default group count and a shape
    check naming the rank.

    Same arguments in the same order as torch; ``num_groups=None`` picks
    ``default_num_groups(num_channels)``.
    """

    def __init__(self, num_groups: int | None, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None) -> None:
        check_features(num_channels, "GroupNorm")
        groups = default_num_groups(num_channels) if num_groups is None else num_groups
        if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0 \
                or num_channels % groups:
            raise ValueError(f"GroupNorm: num_groups must be a positive divisor of num_channels="
                             f"{num_channels}, got {groups!r}; or pass None for a default")
        super().__init__(groups, num_channels, eps=eps, affine=affine, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.num_channels, "GroupNorm")
        return super().forward(x)
