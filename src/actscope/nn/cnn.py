"""The lesson's CNN: stride-2 conv blocks, global average pool, flatten, linear."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from actscope.config import positive_int
from actscope.dist import unwrap_model
from actscope.nn.layers import ActFactory, conv_layer

__all__ = ["CNN", "cnn", "conv_blocks"]

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class CNN(nn.Sequential):
    """An nn.Sequential that checks its input's shape first (rank and channels, no host sync).

    The check turns torch's cryptic conv error for a flat (N, 784) MNIST batch into a message that
    names the expected (N, C, H, W) shape and the fix.
    """

    def __init__(self, *layers: nn.Module, c_in: int | None = None) -> None:
        super().__init__(*layers)
        self.c_in = c_in  # None: check the rank only

    def __getitem__(self, idx: int | slice) -> nn.Module:
        # A slice (e.g. model[2:]) no longer starts with the first conv: a plain Sequential.
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or (self.c_in is not None and x.shape[1] != self.c_in):
            hint = ""
            if x.dim() == 2 and self.c_in == 1:
                side = round(x.shape[1] ** 0.5)
                if side * side == x.shape[1]:
                    hint = (f"; flat images? reshape with xb.view(-1, 1, {side}, {side}) "
                            f"(e.g. in a BatchTransformCallback)")
            chans = "C" if self.c_in is None else self.c_in
            raise ValueError(f"cnn expected input of shape (N, {chans}, H, W), "
                             f"got {tuple(x.shape)}{hint}")
        return super().forward(x)


def cnn(nfs: Sequence[int] = (8, 16, 32, 64, 64), c_in: int = 1, n_out: int = 10,
        norm: str | None = "none", act: ActFactory | nn.Module | None = None) -> CNN:
    """The lesson's model: a ks-5 stride-2 conv block, then ks-3 stride-2 blocks, pool, linear.

    Children: one ``conv_layer`` block per entry of ``nfs`` (c_in -> nfs[0] -> ... -> nfs[-1]),
    then ``AdaptiveAvgPool2d(1)``, ``Flatten`` and ``Linear(nfs[-1], n_out)``. Takes (N, c_in, H, W)
    input; with the default five blocks a 28x28 image shrinks to 1x1 (28-14-7-4-2-1).
    """
    if isinstance(nfs, (str, bytes)) or not isinstance(nfs, Sequence) or len(nfs) == 0:
        raise ValueError(f"cnn: nfs must be a non-empty sequence of channel counts such as "
                         f"(8, 16, 32, 64, 64), got {nfs!r}")
    for i, nf in enumerate(nfs):
        if isinstance(nf, bool) or not isinstance(nf, int) or nf <= 0:
            raise ValueError(f"cnn: nfs[{i}] must be a positive int, got {nf!r} in {list(nfs)}")
    positive_int(c_in, "cnn: c_in")
    positive_int(n_out, "cnn: n_out")
    chans = [c_in, *nfs]
    blocks = [conv_layer(chans[i], chans[i + 1], ks=5 if i == 0 else 3, stride=2, norm=norm,
                         act=act)
              for i in range(len(nfs))]
    return CNN(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(nfs[-1], n_out),
               c_in=c_in)


def conv_blocks(model: nn.Module) -> list[nn.Module]:
    """The model's top-level children that contain a conv directly (cnn's blocks); may be empty."""
    return [child for child in unwrap_model(model).children()
            if isinstance(child, nn.Sequential)
            and any(isinstance(m, _CONV_TYPES) for m in child.children())]
