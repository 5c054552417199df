"""layer_facts.py: module kind, activation family, bounds and attention detection."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from actscope.telemetry.context import run_context
from actscope.telemetry.layer_facts import (
    activation_family,
    activation_of,
    bounded_range,
    is_attention_module,
    module_kind,
)
from tests.telemetry.tiny_models import SdpaAttention, SoftmaxAttn, bert, gpt2, llama


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


class Basic(nn.Module):
    """A torchvision-style residual block: the output is relu(bn(conv(...)) + x)."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        out = self.relu(out)
        return out


class PreAct(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin, self.act = nn.Linear(4, 4), nn.Tanh()

    def forward(self, x):
        return x + self.lin(self.act(x))  # a residual sum: no activation on the output


def test_containers_take_the_activation_that_produced_their_output():
    assert activation_of(Basic()) == "relu"
    assert activation_of(PreAct()) == "none"
    assert activation_of(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sigmoid(), nn.Dropout())) == \
        "sigmoid"
    assert activation_of(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))) == "none"
    assert activation_of(nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU6()))) == "relu"
    g = gpt2()
    assert activation_of(g.transformer.h[0]) == "none"
    assert activation_of(g.transformer.h[0].mlp) == "none"  # c_proj runs last, not act
    ctx = run_context(g, [g.transformer.h[0]])
    assert ctx["model"]["is_transformer"] and ctx["model"]["has_attention"]
    assert ctx["layers"]["transformer.h.0"]["kind"] == "block"
    assert run_context(nn.Sequential(Basic()), [Basic()])["layers"]["0"]["kind"] == "block"


def test_is_attention_module():
    for make in (gpt2, bert, llama):
        for impl in ("eager", "sdpa"):
            names = {type(m).__name__ for m in make(impl).modules() if is_attention_module(m)}
            assert names & {"GPT2Attention", "BertSelfAttention", "LlamaAttention"}
    assert is_attention_module(nn.MultiheadAttention(8, 2))
    assert is_attention_module(SdpaAttention()) and is_attention_module(SoftmaxAttn())

    class AttnScale(nn.Module):  # "attn" in the name, but no children and no attention call
        def forward(self, x):
            return x * 2

    assert not is_attention_module(AttnScale()) and not is_attention_module(nn.Linear(2, 2))
    assert not is_attention_module(nn.Sequential(nn.Softmax(-1)))

    class MHSA(nn.Module):  # no "attn" in the name: its sdpa call says what it is
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(8, 24)

        def forward(self, x):
            return F.scaled_dot_product_attention(*self.qkv(x).chunk(3, -1))

    class Classifier(nn.Module):  # a softmax alone (a classifier's) is not attention
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc(x).softmax(-1)

    assert is_attention_module(MHSA()) and not is_attention_module(Classifier())
    # nn.Transformer's forward mentions sdpa in its docstring only; its layers hold the MHA
    assert not is_attention_module(nn.Transformer(8, 2, 1, 1, 16, batch_first=True))


def test_a_forward_source_is_parsed_once_per_class(monkeypatch):
    import inspect

    class Block(nn.Module):  # a class of its own: nothing cached for it yet
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.act = nn.Linear(2, 2), nn.Tanh()

        def forward(self, x):
            return self.act(self.lin(x))

    reads = []
    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj: reads.append(obj) or real(obj))
    blocks = [Block() for _ in range(6)]
    assert [activation_of(b) for b in blocks] == ["tanh"] * 6
    assert reads == [Block.forward]  # one parse for six blocks (an attach reads every layer)
