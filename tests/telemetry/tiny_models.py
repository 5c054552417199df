"""Tiny attention models for the signal tests: HF GPT-2/BERT/Llama from configs, user modules."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def gpt2(impl: str = "eager", n_layer: int = 2):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=n_layer, n_embd=32, n_head=4, vocab_size=64, n_positions=64,
                     bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel._from_config(cfg, attn_implementation=impl)


def bert(impl: str = "eager"):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                     intermediate_size=64, vocab_size=64, max_position_embeddings=64)
    return BertModel._from_config(cfg, attn_implementation=impl)


def llama(impl: str = "eager"):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=64, vocab_size=64,
                      max_position_embeddings=64)
    return LlamaForCausalLM._from_config(cfg, attn_implementation=impl)


class SdpaAttention(nn.Module):
    """A user's causal self-attention through F.scaled_dot_product_attention."""

    def __init__(self, d: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.qkv, self.proj, self.heads = nn.Linear(d, 3 * d), nn.Linear(d, d), heads

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2)
                   for z in self.qkv(x).split(d, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class SoftmaxAttn(nn.Module):
    """A user's single-head attention: softmax(q·kᵀ/sqrt(d)) v."""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        w = (self.q(x) @ self.k(x).transpose(-2, -1)) / math.sqrt(x.shape[-1])
        return w.softmax(dim=-1) @ self.v(x)
