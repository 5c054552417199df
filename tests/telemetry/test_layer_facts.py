"""layer_facts.py: module kind, activation family, bounds and attention detection."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from actscope.telemetry.layer_facts import (
    activation_family,
    activation_of,
    bounded_range,
    is_attention_module,
    module_kind,
)


class Branch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin, self.act = nn.Linear(4, 4), nn.Tanh()

    def forward(self, x):
        out = self.act(self.lin(x))
        return out


class FnAct(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return F.gelu(self.lin(x))


class MyAttention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_activation_families_and_bounds():
    assert activation_family(nn.ReLU()) == "relu" and activation_family(nn.ReLU6()) == "relu"
    assert activation_family(nn.LeakyReLU()) == "leaky_relu"
    assert activation_family(nn.Linear(2, 2)) is None
    assert bounded_range(nn.Tanh(), "tanh") == [-1.0, 1.0]
    assert bounded_range(nn.Hardtanh(-2.0, 3.0), "hardtanh") == [-2.0, 3.0]
    assert bounded_range(nn.ReLU6(), "relu") == [0.0, 6.0]
    assert bounded_range(nn.ReLU(), "relu") is None


def test_activation_of_containers():
    assert activation_of(Branch()) == "tanh"  # through the returned name
    assert activation_of(FnAct()) == "gelu"  # a functional call
    assert activation_of(nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Dropout())) == "sigmoid"
    assert activation_of(nn.Linear(2, 2)) == "none"


def test_module_kinds_and_attention():
    assert module_kind(nn.Conv2d(1, 2, 3)) == "conv" and module_kind(nn.LSTM(2, 2)) == "recurrent"
    assert module_kind(nn.LayerNorm(2)) == "norm" and module_kind(nn.Embedding(3, 2)) == "embedding"
    assert module_kind(nn.Sequential(nn.Linear(2, 2))) == "block"
    assert is_attention_module(nn.MultiheadAttention(4, 2)) and is_attention_module(MyAttention())
    assert module_kind(MyAttention()) == "attention" and not is_attention_module(Branch())
