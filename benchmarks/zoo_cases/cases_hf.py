"""Hugging Face models built from tiny configs (no download): GPT-2 and Llama.

transformers is an optional extra of actscope; without it these cases are left out of the zoo
(``CASES`` is empty) and the zoo line says how many cases ran.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from .base import Case, Setup, Trial, Truth, loss_fell
from .cases_gpt import BS, HEADS, LENGTH, VOCAB, lm_loss
from .data import cycle, sequences
from .probes import Probe, attention_stats, std

try:
    import transformers
except ImportError:  # the zoo runs without the extra: these cases are skipped
    transformers = None


def _quiet() -> None:
    # tiny vocabularies make the config warn about GPT-2's bos/eos ids; they are set to 0 anyway
    logging.getLogger("transformers").setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()


def _gpt2() -> torch.nn.Module:
    _quiet()
    cfg = transformers.GPT2Config(n_layer=3, n_embd=32, n_head=HEADS, vocab_size=VOCAB,
                                  n_positions=LENGTH, resid_pdrop=0.0, embd_pdrop=0.0,
                                  attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg)


def _trial(model: torch.nn.Module, blocks: list[torch.nn.Module], prefix: str,
           opt: torch.optim.Optimizer, steps: int, check, probes=(), **kw) -> Trial:
    seq = sequences(BS * 8, LENGTH + 1, VOCAB)
    track = {f"{prefix}.{i}": b for i, b in enumerate(blocks)}
    return Trial(model, opt, cycle(seq[:, :-1], seq[:, 1:], BS),
                 lambda out, yb: lm_loss(out.logits, yb), steps, check, track=track,
                 probes=list(probes), **kw)


def gpt2_attn_high_lr() -> Trial:
    model = _gpt2()  # SDPA attention (the default implementation)
    blocks = list(model.transformer.h)
    pairs = []
    for b in blocks:
        max_logit, entropy = attention_stats(HEADS)
        pairs.append((Probe(b.attn.c_attn, max_logit), Probe(b.attn.c_attn, entropy)))

    def check(t: Trial) -> Truth:
        first = max(p[0].values[0] for p in pairs)
        last = max(p[0].values[-1] for p in pairs)
        return Truth({"max_logit first": first, "max_logit last": last,
                      "entropy min": min(p[1].values[-1] for p in pairs)},
                     last > 100 and last > 50 * first)

    return _trial(model, blocks, "transformer.h", torch.optim.AdamW(model.parameters(), 0.05),
                  60, check, [p for pair in pairs for p in pair])


def gpt2_healthy() -> Trial:
    model = _gpt2()
    return _trial(model, list(model.transformer.h), "transformer.h",
                  torch.optim.AdamW(model.parameters(), 1e-3), 60, lambda t: loss_fell(t))


def llama_growth() -> Trial:
    _quiet()
    cfg = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                   num_attention_heads=HEADS, num_key_value_heads=HEADS,
                                   vocab_size=VOCAB, max_position_embeddings=LENGTH,
                                   bos_token_id=0, eos_token_id=0, pad_token_id=0)
    model = transformers.LlamaForCausalLM(cfg)
    blocks = list(model.model.layers)
    p = Probe(blocks[-1], std)

    def check(t: Trial) -> Truth:
        first, last, peak = p.values[0], p.values[-1], max(p.values)
        return Truth({"std first": first, "std last": last, "peak": peak},
                     last > 20 * first and last > 0.3 * peak)

    return _trial(model, blocks, "model.layers", torch.optim.Adam(model.parameters(), 0.1), 40,
                  check, [p])


def bert_healthy() -> Trial:
    _quiet()
    cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=HEADS,
                                  intermediate_size=64, vocab_size=VOCAB,
                                  max_position_embeddings=LENGTH, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0, num_labels=2)
    model = transformers.BertForSequenceClassification(cfg)
    seq = sequences(BS * 8, LENGTH, VOCAB)
    y = (seq[:, 0] < VOCAB // 2).long()  # is the first token in the lower half of the vocabulary
    return Trial(model, torch.optim.AdamW(model.parameters(), 1e-3), cycle(seq, y, BS),
                 lambda out, yb: F.cross_entropy(out.logits, yb), 40, lambda t: loss_fell(t))


class RopeAttentionProbe:
    """Max logit and mean entropy of a Llama attention module, from its inputs: q and k are
    recomputed with F.linear (no module hooks fire) and rotated with HF's own RoPE function."""

    def __init__(self, attn: torch.nn.Module) -> None:
        self.attn, self.max_logit, self.entropy = attn, [], []
        self.handle = attn.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if not module.training:
            return
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        h = kwargs.get("hidden_states", args[0] if args else None)
        cos, sin = kwargs["position_embeddings"]
        with torch.no_grad():
            n, t, _ = h.shape
            d = module.head_dim
            q = F.linear(h, module.q_proj.weight, module.q_proj.bias).view(n, t, -1, d)
            k = F.linear(h, module.k_proj.weight, module.k_proj.bias).view(n, t, -1, d)
            q, k = apply_rotary_pos_emb(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
            att = (q @ k.transpose(-2, -1)) * module.scaling  # (N, H, T, T)
            causal = torch.ones(t, t, dtype=torch.bool).tril()
            self.max_logit.append(float(att[..., causal].max()))
            p = att.masked_fill(~causal, float("-inf")).softmax(-1)
            ent = -(p * p.clamp_min(1e-30).log()).sum(-1)
            self.entropy.append(float(ent[..., 1:].mean()))

    def remove(self) -> None:
        """Remove the hook."""
        self.handle.remove()


def _llama(layers: int = 3) -> torch.nn.Module:
    _quiet()
    cfg = transformers.LlamaConfig(hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=layers, num_attention_heads=HEADS,
                                   num_key_value_heads=HEADS, vocab_size=VOCAB,
                                   max_position_embeddings=LENGTH, bos_token_id=0,
                                   eos_token_id=0, pad_token_id=0)
    return transformers.LlamaForCausalLM(cfg)


def llama_attn_high_lr() -> Trial:
    model = _llama()  # SDPA attention (the default implementation)
    blocks = list(model.model.layers)
    probes = [RopeAttentionProbe(b.self_attn) for b in blocks]

    def check(t: Trial) -> Truth:
        first = max(p.max_logit[0] for p in probes)
        last = max(p.max_logit[-1] for p in probes)
        return Truth({"max_logit first": first, "max_logit last": last,
                      "entropy min": min(p.entropy[-1] for p in probes)},
                     last > 50 and last > 500 * first)

    return _trial(model, blocks, "model.layers", torch.optim.AdamW(model.parameters(), 0.05),
                  80, check, probes)


def gpt2_eager_unscaled() -> Trial:
    _quiet()
    cfg = transformers.GPT2Config(n_layer=3, n_embd=32, n_head=HEADS, vocab_size=VOCAB,
                                  n_positions=LENGTH, resid_pdrop=0.0, embd_pdrop=0.0,
                                  attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
                                  scale_attn_weights=False)  # no 1/sqrt(d): logits d^0.5 x
    cfg._attn_implementation = "eager"  # the config's way; from_pretrained's keyword is not here
    model = transformers.GPT2LMHeadModel(cfg)
    blocks = list(model.transformer.h)
    pairs = []
    for b in blocks:
        with torch.no_grad():
            b.attn.c_attn.weight[:, :64].normal_(0, 0.6)  # q and k projections 30x GPT-2's init
        max_logit, entropy = attention_stats(HEADS, scale=1.0)
        pairs.append((Probe(b.attn.c_attn, max_logit), Probe(b.attn.c_attn, entropy)))

    def check(t: Trial) -> Truth:
        ent = min(p[1].values[-1] for p in pairs)
        return Truth({"entropy min": ent, "max_logit": max(p[0].values[-1] for p in pairs)},
                     ent < 0.2)

    return _trial(model, blocks, "transformer.h", torch.optim.AdamW(model.parameters(), 1e-3),
                  30, check, [p for pair in pairs for p in pair])


def _setup(**kw) -> Setup:
    return Setup(**{"init": "custom", "optimizer": "AdamW", "lr": 1e-3, "has_attention": True,
                    "activations": ("gelu", "softmax"), "norms": ("LayerNorm",), **kw})


H = ("transformer.h.0", "transformer.h.1", "transformer.h.2")
L3 = ("model.layers.0", "model.layers.1", "model.layers.2")
CASES = [] if transformers is None else [
    Case("hf_gpt2_attn_high_lr", "hf", "HF GPT-2 (SDPA), AdamW lr 0.05, no warm-up",
         frozenset({"attention_logits", "attention_entropy"}), H, _setup(lr=0.05),
         gpt2_attn_high_lr),
    Case("hf_llama_growth", "hf", "HF Llama, Adam lr 0.1: hidden states grow and stay",
         frozenset({"growth"}), ("model.layers.1", "model.layers.2"),
         _setup(optimizer="Adam", lr=0.1, activations=("silu", "softmax"), norms=("RMSNorm",)),
         llama_growth),
    Case("hf_gpt2_eager_unscaled", "hf",
         "HF GPT-2 eager attention, scale_attn_weights=False, q/k init x30",
         frozenset({"attention_logits", "attention_entropy"}), H, _setup(),
         gpt2_eager_unscaled),
    Case("hf_llama_attn_high_lr", "hf", "HF Llama (SDPA, RoPE), AdamW lr 0.05, no warm-up",
         frozenset({"attention_logits", "attention_entropy"}), L3,
         _setup(lr=0.05, activations=("silu", "softmax"), norms=("RMSNorm",)),
         llama_attn_high_lr),
    Case("hf_gpt2_healthy", "hf", "healthy control: HF GPT-2, AdamW 1e-3", frozenset(), (),
         _setup(), gpt2_healthy, fast=True),
    Case("hf_bert_healthy", "hf", "healthy control: HF BERT classifier, AdamW 1e-3", frozenset(),
         (), _setup(), bert_healthy),
]
