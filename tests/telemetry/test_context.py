"""run_context: the JSON run context of CONTRACT.md, from modules, optimizer and scheduler."""

import json

import pytest
import torch
from torch import nn

from actscope.nn.layers import GeneralRelu
from actscope.telemetry.context import run_context, schedule_context


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
                            "recurrent": [], "norms": [],
                            "activations": ["GeneralRelu", "ReLU", "Tanh"],
                            "is_transformer": False, "qk_norm": False, "chain": True,
                            "n_params": sum(p.numel() for p in m.parameters())}


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
    assert ctx["model"]["recurrent"] == ["LSTM"]  # the cells, for advice to fit (advice.py)


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


def test_the_output_layer_is_the_last_weight_or_a_container_ending_in_it():
    class AutoEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
            self.decoder = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 8))

        def forward(self, x):
            return self.decoder(self.encoder(x))

    m = AutoEncoder()
    lay = run_context(m, [m.encoder, m.decoder, m.decoder[2], m])["layers"]
    assert lay["encoder"]["kind"] == "block" and lay["decoder"]["kind"] == "output"
    assert lay["decoder.2"]["kind"] == "output"
    assert lay["model"]["kind"] == "block"  # the whole model is not its own output layer


def test_the_output_layer_is_the_one_forward_returns_whatever_the_registration_order():
    class Regressor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(16, 1)  # registered first, run last
            self.body = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())

        def forward(self, x):
            return self.head(self.body(x)).squeeze(-1)

    m = Regressor()
    lay = run_context(m, [m.head, m.body, m.body[2]])["layers"]
    assert lay["head"]["kind"] == "output"
    assert lay["body"]["kind"] == "block" and lay["body.2"]["kind"] == "linear"


def test_a_trailing_dropout_is_in_the_layer_entry():
    blk = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.7))
    nested = nn.Sequential(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.5)),
                           nn.Dropout(0.5))
    plain = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
    m = nn.Sequential(blk, nested, plain, nn.Linear(8, 2))
    lay = run_context(m, [blk, nested, plain])["layers"]
    assert lay["0"]["dropout"] == pytest.approx(0.7) and lay["0"]["activation"] == "relu"
    assert lay["1"]["dropout"] == pytest.approx(0.75)
    assert "dropout" not in lay["2"]


def test_an_activation_leaf_right_after_the_output_weight_is_the_output():
    m = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4), nn.Sigmoid())
    lay = run_context(m, list(m))["layers"]
    assert lay["3"]["kind"] == "output" and lay["2"]["kind"] == "output"
    assert lay["1"]["kind"] == "activation"


def test_weights_that_start_at_zero_are_marked():
    m = nn.Sequential(nn.Sequential(nn.Linear(8, 8), nn.ReLU()), nn.Linear(8, 4))
    nn.init.zeros_(m[1].weight)
    lay = run_context(m, list(m))["layers"]
    assert lay["1"]["zero_init"] is True and "zero_init" not in lay["0"]
