"""Small transformers with their own attention (SDPA or explicit softmax(q k^T)) on a Markov
chain language: attention-logit growth, entropy collapse, growth, depth growth, massive
activations, logit divergence, and a healthy control."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Case, Setup, Trial, Truth, loss_fell
from .data import cycle, sequences
from .models import TinyGPT
from .probes import Probe, absmax, attention_stats, outlier_ratio, ratio, std

VOCAB, LENGTH, BS, HEADS = 32, 16, 16, 4


def lm_loss(logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy over (N, T, V) logits."""
    return F.cross_entropy(logits.flatten(0, 1), yb.flatten())


def _trial(model: TinyGPT, opt: torch.optim.Optimizer, steps: int, check, probes=(), **kw
           ) -> Trial:
    seq = sequences(BS * 8, LENGTH + 1, VOCAB)
    track = {f"blocks.{i}": b for i, b in enumerate(model.blocks)} | {"head": model.head}
    return Trial(model, opt, cycle(seq[:, :-1], seq[:, 1:], BS), lm_loss, steps, check,
                 track=track, probes=list(probes), **kw)


def _attn_probes(model: TinyGPT) -> list[tuple[Probe, Probe]]:
    out = []
    for b in model.blocks:
        max_logit, entropy = attention_stats(HEADS, scale=b.attn.scale)
        out.append((Probe(b.attn.qkv, max_logit), Probe(b.attn.qkv, entropy)))
    return out


def gpt_attn_logits() -> Trial:
    model = TinyGPT(VOCAB, LENGTH, n_head=HEADS, impl="sdpa")
    ps = _attn_probes(model)

    def check(t: Trial) -> Truth:
        first, last = ps[-1][0].values[0], ps[-1][0].values[-1]
        return Truth({"max_logit first": first, "max_logit last": last,
                      "entropy last": ps[-1][1].values[-1]}, last > 100 and last > 50 * first)

    return _trial(model, torch.optim.AdamW(model.parameters(), 0.05), 60, check,
                  [p for pair in ps for p in pair])


def gpt_entropy_collapse() -> Trial:
    model = TinyGPT(VOCAB, LENGTH, n_head=HEADS, impl="explicit", scale=1.0)  # no 1/sqrt(d)
    with torch.no_grad():
        for b in model.blocks:
            b.attn.qkv.weight[:64].normal_(0, 0.5)  # q and k projections 25x GPT-2's init
    ps = _attn_probes(model)

    def check(t: Trial) -> Truth:
        ent = [p[1].values[-1] for p in ps]
        return Truth({"entropy min": min(ent), "uniform": math.log(LENGTH / 2),
                      "max_logit": max(p[0].values[-1] for p in ps)}, min(ent) < 0.2)

    return _trial(model, torch.optim.AdamW(model.parameters(), 1e-3), 30, check,
                  [p for pair in ps for p in pair])


def gpt_growth() -> Trial:
    model = TinyGPT(VOCAB, LENGTH, n_head=HEADS, impl="sdpa")
    p = Probe(model.blocks[-1], std)

    def check(t: Trial) -> Truth:
        first, last, peak = p.values[0], p.values[-1], max(p.values)
        return Truth({"std first": first, "std last": last, "peak": peak},
                     last > 20 * first and last > 0.3 * peak)

    return _trial(model, torch.optim.Adam(model.parameters(), 0.1), 40, check, [p])


def gpt_depth_growth() -> Trial:
    model = TinyGPT(VOCAB, LENGTH, n_head=HEADS, n_layer=6, impl="sdpa")
    for b in model.blocks:  # no LayerNorm before the branches, and O(1) init: the stream grows
        b.ln1, b.ln2 = nn.Identity(), nn.Identity()
        for m in b.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=1.2 / math.sqrt(m.in_features))
    first, last = Probe(model.blocks[0], std), Probe(model.blocks[5], std)
    return _trial(model, torch.optim.Adam(model.parameters(), 1e-5), 20,
                  lambda t: Truth({"std[5]/std[0]": ratio(last.values[-1], first.values[-1])},
                                  last.values[-1] > 20 * first.values[-1]), [first, last])


def gpt_massive_activation() -> Trial:
    model = TinyGPT(VOCAB, LENGTH, n_head=HEADS, impl="explicit")
    with torch.no_grad():
        model.blocks[1].mlp[2].bias[5] = 100.0  # one feature at ~2000x the stream's typical value
    p = Probe(model.blocks[1], outlier_ratio)
    return _trial(model, torch.optim.AdamW(model.parameters(), 1e-4), 20,
                  lambda t: Truth({"max/median[blocks.1]": p.values[-1]}, min(p.values) > 1000),
                  [p])


def gpt_logit_divergence() -> Trial:
    model = TinyGPT(VOCAB, LENGTH, n_head=HEADS, impl="sdpa")
    head = list(model.head.parameters())
    rest = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    opt = torch.optim.Adam([{"params": rest}, {"params": head, "lr": 3.0}], 1e-3)
    p = Probe(model.head, absmax)
    return _trial(model, opt, 40,
                  lambda t: Truth({"max_logit first": p.values[0], "max_logit last": p.values[-1]},
                                  p.values[-1] > 100 and p.values[-1] > 20 * p.values[0]), [p])


def gpt_healthy() -> Trial:
    model = TinyGPT(VOCAB, LENGTH, n_head=HEADS, impl="sdpa")
    opt = torch.optim.AdamW(model.parameters(), 3e-3, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / 10))  # warm-up
    return _trial(model, opt, 60, lambda t: loss_fell(t), clip=1.0, sched=sched)


def _setup(**kw) -> Setup:
    return Setup(**{"init": "custom", "optimizer": "AdamW", "lr": 1e-3, "has_attention": True,
                    "activations": ("gelu", "softmax"), "norms": ("LayerNorm",), **kw})


BLOCKS = ("blocks.0", "blocks.1", "blocks.2")
ATTN = frozenset({"attention_logits", "attention_entropy"})
CASES = [
    Case("gpt_attn_logits", "transformer", "SDPA attention, AdamW lr 0.05, no warm-up", ATTN,
         BLOCKS, _setup(lr=0.05), gpt_attn_logits, fast=True),
    Case("gpt_entropy_collapse", "transformer",
         "explicit softmax(q k^T) without 1/sqrt(d), q/k init x25", ATTN, BLOCKS,
         _setup(), gpt_entropy_collapse),
    Case("gpt_growth", "transformer", "Adam lr 0.1: the residual stream grows and stays",
         frozenset({"growth"}), ("blocks.1", "blocks.2"), _setup(optimizer="Adam", lr=0.1),
         gpt_growth),
    Case("gpt_depth_growth", "transformer", "6 blocks without LayerNorm, O(1) init",
         frozenset({"depth_growth"}), ("blocks.3", "blocks.4", "blocks.5"),
         _setup(init="large", optimizer="Adam", lr=1e-5, norms=()),  # none in the blocks
         gpt_depth_growth),
    Case("gpt_massive_activation", "transformer", "bias 100 on one feature of block 1's MLP",
         frozenset({"massive_activations"}), ("blocks.1", "blocks.2"), _setup(lr=1e-4),
         gpt_massive_activation),
    Case("gpt_logit_divergence", "transformer", "Adam lr 3.0 on the LM head only",
         frozenset({"logit_divergence"}), None, _setup(optimizer="Adam"), gpt_logit_divergence),
    Case("gpt_healthy", "transformer", "healthy control: AdamW 3e-3, warm-up, clip 1.0",
         frozenset(), (), _setup(lr=3e-3, warmup=True, grad_clip=1.0), gpt_healthy),
]
