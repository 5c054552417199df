"""layer_facts: which activation produced a module's output, and attention detection."""

from torch import nn

from actscope.telemetry.context import run_context
from actscope.telemetry.layer_facts import activation_of, is_attention_module
from tests.telemetry.tiny_models import SdpaAttention, SoftmaxAttn, bert, gpt2, llama


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
