"""run_context: the JSON run context of CONTRACT.md, from modules, optimizer and scheduler."""

import json

import pytest
import torch
from torch import nn

from actscope.nn.layers import GeneralRelu
from actscope.telemetry.context import run_context, schedule_context
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


def test_mlp_layers_init_guess_and_activation_rules():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.Tanh(),
                      nn.Linear(128, 64), GeneralRelu(leak=0.1, sub=0.4), nn.Linear(64, 10))
    nn.init.kaiming_normal_(m[0].weight)  # relu gain: init_scale ≈ 1
    nn.init.xavier_normal_(m[2].weight)
    nn.init.normal_(m[4].weight, std=1e-3)
    ctx = run_context(m, list(m))
    json.dumps(ctx)  # JSON-able as it is
    lay = ctx["layers"]
    assert lay["0"]["init_scale"] == pytest.approx(1.0, abs=0.1)
    assert lay["0"]["init_scheme_guess"] == "kaiming" and lay["0"]["activation"] == "none"
    assert lay["2"]["init_scheme_guess"] == "xavier" and lay["4"]["init_scheme_guess"] == "small"
    assert lay["6"]["init_scheme_guess"] == "default" and lay["6"]["kind"] == "output"
    assert lay["1"] == {"type": "ReLU", "kind": "activation", "activation": "relu",
                        "zero_floored": True, "bounded": None, "init_scale": None,
                        "init_scheme_guess": None}
    assert lay["3"]["bounded"] == [-1.0, 1.0] and not lay["3"]["zero_floored"]
    assert lay["5"]["activation"] == "leaky_relu" and not lay["5"]["zero_floored"]
    assert ctx["model"] == {"has_conv": False, "has_attention": False, "has_recurrent": False,
                            "norms": [], "activations": ["GeneralRelu", "ReLU", "Tanh"],
                            "is_transformer": False,
                            "n_params": sum(p.numel() for p in m.parameters())}


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


def test_bounded_and_zero_floored():
    ctx = run_context(nn.Sequential(nn.Hardtanh(-2, 3), nn.ReLU6(), nn.Sigmoid(),
                                    GeneralRelu(), GeneralRelu(sub=0.4), nn.GELU()),
                      {m: str(i) for i, m in enumerate([nn.Hardtanh(-2, 3)])})
    assert ctx["layers"]["0"]["bounded"] == [-2.0, 3.0]
    m = nn.Sequential(nn.ReLU6(), nn.Sigmoid(), GeneralRelu(), GeneralRelu(sub=0.4), nn.GELU())
    lay = run_context(m, list(m))["layers"]
    assert lay["0"]["bounded"] == [0.0, 6.0] and lay["0"]["zero_floored"]
    assert lay["1"]["bounded"] == [0.0, 1.0]
    assert lay["2"]["zero_floored"] and not lay["3"]["zero_floored"]
    assert lay["4"]["activation"] == "gelu" and not lay["4"]["zero_floored"]


def test_conv_and_recurrent_model_facts():
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
    facts = run_context(m, list(m))["model"]
    assert facts["has_conv"] and facts["norms"] == ["BatchNorm2d"]
    lstm = nn.LSTM(4, 8)
    ctx = run_context(nn.Sequential(lstm), [lstm])
    assert ctx["model"]["has_recurrent"] and ctx["layers"]["0"]["kind"] == "recurrent"


def test_optimizer_and_schedule_facts():
    p = [nn.Parameter(torch.zeros(2))]
    sgd = torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4)
    ctx = run_context(nn.Linear(2, 2), [], optimizer=sgd, grad_clip=1, mixed_precision="bf16",
                      trainer={"max_epochs": 3, "device": torch.device("cpu")})
    assert ctx["optimizer"] == {"type": "SGD", "lr": 0.1, "weight_decay": 5e-4,
                                "momentum": 0.9, "betas": None}
    assert ctx["grad_clip"] == 1.0 and ctx["mixed_precision"] == "bf16"
    assert ctx["trainer"] == {"max_epochs": 3, "device": "cpu"}
    json.dumps(ctx)
    adam = torch.optim.AdamW(p, lr=3e-4)
    sch = torch.optim.lr_scheduler.OneCycleLR(adam, max_lr=0.01, total_steps=100)
    ctx = run_context(nn.Linear(2, 2), [], optimizer=adam, scheduler=sch)
    assert ctx["optimizer"]["lr"] == 0.01 and ctx["optimizer"]["betas"][1] == 0.999
    assert ctx["schedule"] == {"type": "OneCycleLR", "warmup": True}


def test_warmup_detection():
    from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

    sched = torch.optim.lr_scheduler

    def opt():
        return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)

    def warm(s):
        return schedule_context(s)["warmup"]

    assert warm(sched.LinearLR(opt(), start_factor=0.1, total_iters=10))
    assert not warm(sched.LinearLR(opt(), start_factor=1.0, end_factor=0.1, total_iters=10))
    assert not warm(sched.CosineAnnealingLR(opt(), T_max=10))
    assert warm(get_linear_schedule_with_warmup(opt(), 10, 100))
    assert not warm(get_linear_schedule_with_warmup(opt(), 0, 100))
    assert warm(get_cosine_schedule_with_warmup(opt(), 5, 100))
    assert warm(sched.LambdaLR(opt(), lambda s: min(1.0, (s + 1) / 50)))
    assert not warm(sched.LambdaLR(opt(), lambda s: 0.95 ** s))
    o = opt()
    seq = sched.SequentialLR(o, [sched.LinearLR(o, 0.01, total_iters=5),
                                 sched.CosineAnnealingLR(o, 10)], milestones=[5])
    assert warm(seq)
    assert schedule_context(None) is None


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
