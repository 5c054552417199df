"""Models of the round-5 held-out cases, written the way a user would write them.

- ``mobilenet``: depthwise-separable conv blocks (depthwise 3x3, pointwise 1x1), BatchNorm, ReLU6.
- ``ConvAE``: a conv encoder and a ``ConvTranspose2d`` decoder ending in a sigmoid.
- ``conv1d_net``: a stack of ``Conv1d`` blocks over (N, C, T) sequences and a pooled head.
- ``LogFeatures``: a Linear whose output goes through ``torch.log`` (NaN once it turns negative).
- ``TinyLlama``: RMSNorm, SwiGLU and attention with QK-norm (a norm on queries and keys), own code.
- ``EmbedLM``: token embedding, a GELU MLP per token, an LM head; ``BagClassifier``: EmbeddingBag.
- ``VAE``, ``vae_loss``: pytorch/examples' ``vae/main.py`` as written there (a summed loss).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["mobilenet", "ConvAE", "conv1d_net", "LogFeatures", "RMSNorm", "TinyLlama",
           "EmbedLM", "BagClassifier", "VAE", "vae_loss"]


def _dw_separable(ci: int, co: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(ci, ci, 3, stride, 1, groups=ci, bias=False),
                         nn.BatchNorm2d(ci), nn.ReLU6(),
                         nn.Conv2d(ci, co, 1, bias=False), nn.BatchNorm2d(co), nn.ReLU6())


def mobilenet(n_out: int = 4) -> nn.Sequential:
    """A MobileNet-v1-shaped net for (N, 1, 16, 16) images."""
    stem = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(48, n_out))
    return nn.Sequential(stem, _dw_separable(16, 32, 1), _dw_separable(32, 48, 2), head)


class ConvAE(nn.Module):
    """(N, 1, 16, 16) -> a 32-channel 4x4 code -> the image again, in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU(),
                                     nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())
        self.decoder = nn.Sequential(nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ReLU(),
                                     nn.ConvTranspose2d(16, 1, 4, 2, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def conv1d_net(chans: int, depth: int, act: type[nn.Module], n_out: int, k: int = 5
               ) -> nn.Sequential:
    """``depth`` (Conv1d, act) blocks at ``chans`` channels (the first reads 1 channel), then
    global average pooling and a Linear head."""
    blocks = [nn.Sequential(nn.Conv1d(1 if i == 0 else chans, chans, k, padding=k // 2), act())
              for i in range(depth)]
    head = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(chans, n_out))
    return nn.Sequential(*blocks, head)


class LogFeatures(nn.Module):
    """log-compressed features: ``log(linear(x))``, defined while the linear output is > 0."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(self.lin(x))


class RMSNorm(nn.Module):
    """x / rms(x) * weight (no mean, no bias)."""

    def __init__(self, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class SelfAttention(nn.Module):
    """Causal attention with RMSNorm on the queries and keys of each head (QK-norm)."""

    def __init__(self, d: int, n_head: int) -> None:
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.o = nn.Linear(d, d, bias=False)
        self.q_norm, self.k_norm = RMSNorm(d // n_head), RMSNorm(d // n_head)
        self.n_head = n_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, D)
        n, t, d = x.shape
        q, k, v = (z.view(n, t, self.n_head, d // self.n_head).transpose(1, 2)
                   for z in (self.q(x), self.k(x), self.v(x)))
        y = F.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v, is_causal=True)
        return self.o(y.transpose(1, 2).reshape(n, t, d))


class SwiGLU(nn.Module):
    """w2(silu(w1 x) * w3 x)."""

    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.w1, self.w3 = nn.Linear(d, hidden, bias=False), nn.Linear(d, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class LlamaBlock(nn.Module):
    """x + attn(norm(x)), then x + ffn(norm(x))."""

    def __init__(self, d: int, n_head: int) -> None:
        super().__init__()
        self.attn_norm, self.ffn_norm = RMSNorm(d), RMSNorm(d)
        self.attn, self.ffn = SelfAttention(d, n_head), SwiGLU(d, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.ffn(self.ffn_norm(x))


class TinyLlama(nn.Module):
    """Embedding, Llama-style blocks, a final RMSNorm and an LM head (init N(0, 0.02))."""

    def __init__(self, vocab: int, d: int = 32, n_head: int = 4, n_layer: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(LlamaBlock(d, n_head) for _ in range(n_layer))
        self.norm = RMSNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:  # (N, T) -> (N, T, vocab)
        x = self.embed(idx)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


class EmbedLM(nn.Module):
    """Per-token next-token model: embedding -> (Linear, GELU) -> LM head."""

    def __init__(self, vocab: int, d: int = 32) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.mlp = nn.Sequential(nn.Linear(d, 64), nn.GELU())
        self.head = nn.Linear(64, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.mlp(self.emb(idx)))


class BagClassifier(nn.Module):
    """PyTorch's text-classification tutorial model: EmbeddingBag (mean) and a Linear."""

    def __init__(self, vocab: int, d: int, n_class: int) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab, d)
        self.fc = nn.Linear(d, n_class)
        r = 0.5  # the tutorial's init_weights
        self.embedding.weight.data.uniform_(-r, r)
        self.fc.weight.data.uniform_(-r, r)
        self.fc.bias.data.zero_()

    def forward(self, xb: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        text, offsets = xb
        return self.fc(self.embedding(text, offsets))


class VAE(nn.Module):
    """784 -> 400 -> (mu, logvar) of 20 -> 400 -> 784 in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21, self.fc22 = nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def vae_loss(out: tuple[torch.Tensor, torch.Tensor, torch.Tensor], x: torch.Tensor
             ) -> torch.Tensor:
    """Reconstruction BCE + KL divergence, both summed over the batch (the example's choice)."""
    recon, mu, logvar = out
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def lecun_(model: nn.Module, gain: float) -> None:
    """Every Conv/Linear weight normal with std gain / sqrt(fan_in), zero bias."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, std=gain / math.sqrt(fan_in))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
