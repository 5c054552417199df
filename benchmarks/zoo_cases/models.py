"""The zoo's small models, written the way a user would write them.

- ``mlp``: a Sequential of (Linear, activation) blocks and a Linear head; watched per block.
- ``small_cnn``: a Sequential of conv blocks (conv[, BatchNorm], activation) and a head.
- ``ResNet``: torchvision-style (conv1/bn1 at the top, ``layer1``/``layer2`` stages of blocks).
- ``SeqNet``: stacked recurrent modules (RNN/GRU/LSTM) and a head on the last step.
- ``TinyGPT``: nanoGPT-style blocks in a ModuleList; its ``Attention`` uses either
  ``F.scaled_dot_product_attention`` or an explicit ``softmax(q @ k^T)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["mlp", "init_linear", "small_cnn", "ResBlock", "ResNet", "SeqNet", "Attention",
           "Block", "TinyGPT"]


def mlp(sizes: list[int], act: type[nn.Module], n_out: int) -> nn.Sequential:
    """(Linear, act) blocks over ``sizes`` then a Linear head to ``n_out``."""
    blocks = [nn.Sequential(nn.Linear(a, b), act()) for a, b in zip(sizes, sizes[1:], strict=False)]
    return nn.Sequential(*blocks, nn.Linear(sizes[-1], n_out))


def init_linear(model: nn.Module, gain: float, scheme: str = "kaiming") -> None:
    """Every Linear: normal weights with std gain*sqrt(2/fan_in) (kaiming) or
    gain*sqrt(1/fan_in) ("lecun"), zero bias."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            base = math.sqrt(2 / m.in_features) if scheme == "kaiming" else \
                math.sqrt(1 / m.in_features)
            nn.init.normal_(m.weight, std=gain * base)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def small_cnn(chans: tuple[int, ...] = (1, 8, 16, 32), n_out: int = 4, bn: bool = False,
              act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Stride-2 3x3 conv blocks, then global average pooling and a Linear head."""
    blocks = []
    for ci, co in zip(chans, chans[1:], strict=False):
        layers: list[nn.Module] = [nn.Conv2d(ci, co, 3, stride=2, padding=1, bias=not bn)]
        layers += [nn.BatchNorm2d(co)] if bn else []
        blocks.append(nn.Sequential(*layers, act()))
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(chans[-1], n_out))
    return nn.Sequential(*blocks, head)


class ResBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the (projected) identity, then ReLU."""

    def __init__(self, ci: int, co: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ci, co, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(co)
        self.conv2 = nn.Conv2d(co, co, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(co)
        self.down = None if stride == 1 and ci == co else nn.Sequential(
            nn.Conv2d(ci, co, 1, stride, bias=False), nn.BatchNorm2d(co))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idn = x if self.down is None else self.down(x)
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + idn)


class ResNet(nn.Module):
    """A small torchvision-style ResNet: stem, two stages of ``blocks`` blocks, head."""

    def __init__(self, width: int = 8, blocks: int = 3, n_out: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = nn.Sequential(*[ResBlock(width, width) for _ in range(blocks)])
        self.layer2 = nn.Sequential(ResBlock(width, 2 * width, 2),
                                    *[ResBlock(2 * width, 2 * width) for _ in range(blocks - 1)])
        self.fc = nn.Linear(2 * width, n_out)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x)))))
        return self.fc(x.mean((2, 3)))


class SeqNet(nn.Module):
    """Stacked recurrent modules (each its own layer) and a Linear head on the last step."""

    def __init__(self, n_in: int, hidden: int, n_out: int, cell: str = "RNN", depth: int = 2
                 ) -> None:
        super().__init__()
        kind = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}[cell]
        self.rnns = nn.ModuleList(kind(n_in if i == 0 else hidden, hidden, batch_first=True)
                                  for i in range(depth))
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, F) -> (N, n_out)
        for rnn in self.rnns:
            x, _ = rnn(x)
        return self.head(x[:, -1])


class Attention(nn.Module):
    """Causal multi-head self-attention: ``impl`` "sdpa" or "explicit" softmax(q k^T * scale)."""

    def __init__(self, d: int, n_head: int, impl: str = "sdpa", scale: float | None = None
                 ) -> None:
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.n_head, self.impl = n_head, impl
        self.scale = scale if scale is not None else 1 / math.sqrt(d // n_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, D)
        n, t, d = x.shape
        q, k, v = (z.view(n, t, self.n_head, d // self.n_head).transpose(1, 2)
                   for z in self.qkv(x).split(d, dim=-1))
        if self.impl == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        else:
            att = (q @ k.transpose(-2, -1)) * self.scale  # (N, H, T, T)
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            y = att.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        return self.proj(y.transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d: int, n_head: int, impl: str, scale: float | None) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = Attention(d, n_head, impl, scale)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """A nanoGPT-shaped language model: embeddings, blocks, final LayerNorm, LM head."""

    def __init__(self, vocab: int = 32, length: int = 16, d: int = 32, n_head: int = 4,
                 n_layer: int = 3, impl: str = "sdpa", scale: float | None = None) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(length, d)
        self.blocks = nn.ModuleList(Block(d, n_head, impl, scale) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        for m in self.modules():  # GPT-2's init: N(0, 0.02)
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:  # (N, T) -> (N, T, vocab)
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))
