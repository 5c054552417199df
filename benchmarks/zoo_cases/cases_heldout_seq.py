"""Held-out cases (round 3, written as an adversary): torch's own transformer and recurrent
modules, the way a new user writes them, watched with default ``actscope.watch(model)`` settings.

- a small ViT: a conv patch embedding and ``nn.TransformerEncoder`` over
  ``nn.TransformerEncoderLayer`` (``nn.MultiheadAttention`` inside), post-LN and pre-LN;
- a GRU classifier with a big recurrent weight;
- an ``nn.Embedding`` + ``nn.LSTM`` language model trained the PyTorch word-language-model way
  (SGD lr 20) with and without its gradient clipping.
None of these architectures or mechanisms is in the zoo the diagnosis was built on.
"""

from __future__ import annotations

import math
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from .base import Case, Setup, Trial, Truth, loss_fell
from .data import cycle, images, sequences
from .probes import Probe, absmax, std

BS, PATCH, D, HEADS = 32, 4, 32, 4


class ViT(nn.Module):
    """Patch embedding (a stride-4 conv) + learned positions + a TransformerEncoder + mean pool."""

    def __init__(self, depth: int = 3, norm_first: bool = False, n_out: int = 4) -> None:
        super().__init__()
        self.patch = nn.Conv2d(1, D, PATCH, stride=PATCH)
        self.pos = nn.Parameter(torch.zeros(1, (16 // PATCH) ** 2, D))
        layer = nn.TransformerEncoderLayer(D, HEADS, 2 * D, dropout=0.0, batch_first=True,
                                           norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = nn.Linear(D, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 16, 16) -> (N, n_out)
        x = self.patch(x).flatten(2).transpose(1, 2) + self.pos  # (N, 16, D)
        return self.head(self.encoder(x).mean(1))


class MHAProbe:
    """Max pre-softmax logit and mean entropy of an ``nn.MultiheadAttention`` (self-attention,
    batch_first), recomputed from its in-projection at every training forward."""

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        self.max_logit: list[float] = []
        self.entropy: list[float] = []
        self.handle = mha.register_forward_pre_hook(self._hook)

    def _hook(self, mha: nn.MultiheadAttention, args: tuple) -> None:
        if not mha.training:
            return
        with torch.no_grad():
            x = args[0]  # (N, T, D)
            n, t, d = x.shape
            h = mha.num_heads
            q, k, _ = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).split(d, dim=-1)
            q = q.view(n, t, h, d // h).transpose(1, 2)
            k = k.view(n, t, h, d // h).transpose(1, 2)
            att = q @ k.transpose(-2, -1) / math.sqrt(d // h)  # (N, H, T, T)
            p = att.softmax(-1)
            self.max_logit.append(float(att.max()))
            self.entropy.append(float(-(p * p.clamp_min(1e-30).log()).sum(-1).mean()))

    def remove(self) -> None:
        """Remove the hook."""
        self.handle.remove()


def _vit_trial(model: ViT, opt: torch.optim.Optimizer, steps: int, check, probes=(), **kw
               ) -> Trial:
    x, y = images(BS * 8)
    track = {f"encoder.layers.{i}": m for i, m in enumerate(model.encoder.layers)}
    return Trial(model, opt, cycle(x, y, BS), F.cross_entropy, steps, check,
                 track=track | {"head": model.head}, probes=list(probes), **kw)


def vit_attn_logits() -> Trial:
    model = ViT(norm_first=False)
    ps = [MHAProbe(m.self_attn) for m in model.encoder.layers]

    def check(t: Trial) -> Truth:
        first = max(p.max_logit[0] for p in ps)
        last = max(p.max_logit[-1] for p in ps)
        ent = min(p.entropy[-1] for p in ps)
        return Truth({"max_logit first": first, "max_logit last": last, "entropy last": ent},
                     last > 50 and last > 10 * first)

    return _vit_trial(model, torch.optim.AdamW(model.parameters(), 0.05), 40, check, ps)


def vit_preln_growth() -> Trial:
    model = ViT(depth=3, norm_first=True)
    p = Probe(model.encoder.layers[-1], std)

    def check(t: Trial) -> Truth:
        first, last = p.values[0], statistics.median(p.values[-5:])
        return Truth({"std first": first, "std last": last}, last > 10 * first and last > 5)

    return _vit_trial(model, torch.optim.Adam(model.parameters(), 0.1), 40, check, [p])


def vit_stalled() -> Trial:
    model = ViT(norm_first=True)

    def check(t: Trial) -> Truth:
        med = statistics.median(r for n, v in t.update_ratios.items() for r in v[1:])
        return Truth({"update_ratio": med}, med < 1e-5)  # 100x below healthy: nothing moves

    return _vit_trial(model, torch.optim.Adam(model.parameters(), 1e-7), 30, check)


def vit_healthy() -> Trial:
    model = ViT(norm_first=False)
    opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=0.05)
    return _vit_trial(model, opt, 60, lambda t: loss_fell(t))


def vit_preln_healthy() -> Trial:
    model = ViT(norm_first=True)
    opt = torch.optim.AdamW(model.parameters(), 2e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / 10))  # warm-up
    return _vit_trial(model, opt, 60, lambda t: loss_fell(t), sched=sched)


N_IN, HIDDEN, LENGTH = 8, 32, 50  # long sequences: the recurrence compounds 50 times


class GRUNet(nn.Module):
    """One GRU and a Linear head on its last step."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(N_IN, HIDDEN, num_layers=2, batch_first=True)
        self.head = nn.Linear(HIDDEN, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, F) -> (N, 2)
        return self.head(self.gru(x)[0][:, -1])


def gru_exploding() -> Trial:
    model = GRUNet()
    with torch.no_grad():  # the candidate state's recurrent weights far in the chaotic regime
        for name, w in model.gru.named_parameters():
            if name.startswith("weight_hh"):
                w[2 * HIDDEN:].normal_(0, 8 / math.sqrt(HIDDEN))  # rows of n = tanh(...)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BS * 8, LENGTH, N_IN, generator=g)
    y = (x[:, :, 0].sum(1) > 0).long()

    def check(t: Trial) -> Truth:
        r = statistics.median(a / b for a, b in zip(t.grad_norms["gru"], t.grad_norms["head"],
                                                     strict=True))
        return Truth({"grad[gru]/grad[head]": r}, r > 100)

    return Trial(model, torch.optim.SGD(model.parameters(), 1e-4), cycle(x, y, BS),
                 F.cross_entropy, 30, check, track={"gru": model.gru, "head": model.head})


VOCAB, SEQ = 48, 24


class LSTMLM(nn.Module):
    """The word-language-model shape: Embedding, a 2-layer LSTM, a Linear decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 32)
        self.lstm = nn.LSTM(32, 64, num_layers=2, batch_first=True)
        self.decoder = nn.Linear(64, VOCAB)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:  # (N, T) -> (N, T, V)
        return self.decoder(self.lstm(self.emb(idx))[0])


def _lm_loss(logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), yb.flatten())


def _lm_trial(lr: float, clip: float | None, check, probes=()) -> Trial:
    model = LSTMLM()
    seq = sequences(BS * 8, SEQ + 1, VOCAB)
    ps = [f(model) for f in probes]
    return Trial(model, torch.optim.SGD(model.parameters(), lr), cycle(seq[:, :-1], seq[:, 1:], BS),
                 _lm_loss, 40, lambda t: check(t, ps), track={"lstm": model.lstm,
                                                              "decoder": model.decoder},
                 clip=clip, probes=ps)


def lstm_lm_no_clip() -> Trial:
    def check(t: Trial, ps: list[Probe]) -> Truth:
        v = ps[0].values
        return Truth({"max_logit first": v[0], "max_logit last": v[-1]},
                     v[-1] > 100 and v[-1] > 20 * v[0])

    # PyTorch's word_language_model recipe has SGD lr 20 with --clip 0.25: here 5x the lr and
    # no clipping (at lr 20 without the clip the loss spikes 3x and recovers)
    return _lm_trial(100.0, None, check, [lambda m: Probe(m.decoder, absmax)])


def lstm_lm_clipped() -> Trial:
    return _lm_trial(20.0, 0.25, lambda t, ps: loss_fell(t))


def _setup(**kw) -> Setup:
    return Setup(**{"init": "default", "optimizer": "AdamW", "lr": 1e-3, "has_conv": True,
                    "has_attention": True, "activations": ("relu", "softmax"),
                    "norms": ("LayerNorm",), **kw})


def _rnn(**kw) -> Setup:
    return Setup(**{"init": "default", "optimizer": "SGD", "lr": 20.0,
                    "activations": ("tanh", "sigmoid"), "cells": ("LSTM",), **kw})


LAYERS = ("encoder.layers.0", "encoder.layers.1", "encoder.layers.2")
ATTN = frozenset({"attention_logits", "attention_entropy"})
CASES = [
    Case("heldout_vit_attn_logits", "transformer", "ViT, nn.TransformerEncoderLayer (post-LN), "
         "AdamW lr 0.05", ATTN, LAYERS, _setup(lr=0.05), vit_attn_logits, fast=True),
    Case("heldout_vit_preln_growth", "transformer", "pre-LN ViT, Adam lr 0.1: the residual "
         "stream grows and stays", frozenset({"growth"}), LAYERS[1:],
         _setup(optimizer="Adam", lr=0.1), vit_preln_growth),
    Case("heldout_vit_stalled", "transformer", "pre-LN ViT, Adam lr 1e-7",
         frozenset({"stalled"}), LAYERS, _setup(optimizer="Adam", lr=1e-7), vit_stalled),
    Case("heldout_vit_healthy", "transformer", "healthy control: post-LN ViT, AdamW 1e-3",
         frozenset(), (), _setup(), vit_healthy),
    Case("heldout_vit_preln_healthy", "transformer", "healthy control: pre-LN ViT, AdamW 2e-3, "
         "warm-up", frozenset(), (), _setup(lr=2e-3, warmup=True), vit_preln_healthy),
    Case("heldout_gru_exploding", "rnn", "2-layer nn.GRU, candidate recurrent weights "
         "N(0, 8/sqrt(H)), 50 steps", frozenset({"exploding_gradients"}), ("gru",),
         _rnn(init="large", lr=1e-4, cells=("GRU",)), gru_exploding),
    Case("heldout_lstm_lm_no_clip", "rnn", "Embedding + LSTM LM, SGD lr 100 without the "
         "recipe's clipping", frozenset({"logit_divergence"}), None, _rnn(lr=100.0),
         lstm_lm_no_clip),
    Case("heldout_lstm_lm_clipped", "rnn", "healthy control: the same LM, SGD lr 20, clip 0.25",
         frozenset(), (), _rnn(grad_clip=0.25), lstm_lm_clipped),
]
