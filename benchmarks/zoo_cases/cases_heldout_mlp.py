"""Held-out cases (round 3, written as an adversary): MLPs and a conv net with mechanisms the zoo
the diagnosis was built on lacks: GELU/SiLU and Hardtanh activations, one layer scaled by 1e-4
in an otherwise kaiming net, Adam at lr 1.0, weight decay that shrinks every weight, and
BatchNorm left in eval mode by mistake under an init that relied on it."""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F
from torch import nn

from .base import Case, Setup, Trial, Truth, loss_fell
from .data import blobs, cycle, images
from .models import init_linear, mlp
from .probes import Probe, ratio, saturated_share, std

DIM, CLASSES, BS = 32, 4, 64


def _trial(model: nn.Sequential, opt: torch.optim.Optimizer, steps: int, check, probes=(),
           **kw) -> Trial:
    x, y = blobs(BS * 8, DIM, CLASSES)
    track = {str(i): m for i, m in enumerate(model)}
    return Trial(model, opt, cycle(x, y, BS), F.cross_entropy, steps, check, track=track,
                 probes=list(probes), **kw)


def gelu_adam_lr1() -> Trial:
    model = mlp([DIM, 64, 64, 64], nn.GELU, CLASSES)  # torch's default init

    def check(t: Trial) -> Truth:
        peak = max(max(t.update_ratios[n][:8]) for n in ("0", "1", "2"))
        return Truth({"update_ratio peak": peak}, peak > 0.3)

    return _trial(model, torch.optim.Adam(model.parameters(), 1.0), 30, check)


def gelu_healthy() -> Trial:
    model = mlp([DIM, 64, 64, 64], nn.GELU, CLASSES)
    return _trial(model, torch.optim.Adam(model.parameters(), 1e-3), 40, lambda t: loss_fell(t))


def silu_healthy() -> Trial:
    model = mlp([DIM, 128, 128, 128, 128], nn.SiLU, CLASSES)
    with torch.no_grad():  # a negative bias: many SiLU outputs near zero (not dead: not ReLU)
        for blk in model[:-1]:
            blk[0].bias.fill_(-1.0)
    return _trial(model, torch.optim.Adam(model.parameters(), 1e-3), 40,
                  lambda t: loss_fell(t))


def tiny_layer() -> Trial:
    model = mlp([DIM] + [64] * 6, nn.ReLU, CLASSES)
    init_linear(model, 1.0)  # kaiming everywhere ...
    with torch.no_grad():  # ... but one frozen layer loaded at 1e-4 of its scale (a unit bug in
        model[2][0].weight.mul_(1e-4)  # a checkpoint conversion); trained, SGD would repair it
    model[2].requires_grad_(False)  # within ~8 steps, and then nothing would be wrong at the end
    ps = [Probe(model[i], std) for i in (1, 2, 5)]

    def check(t: Trial) -> Truth:
        r0 = ratio(ps[1].values[0], ps[0].values[0])
        r1 = ratio(ps[1].values[-1], ps[0].values[-1])
        return Truth({"std[2]/std[1] first": r0, "last": r1, "std[5] last": ps[2].values[-1]},
                     r0 < 1e-2 and r1 < 1e-2 and ps[2].values[-1] < 0.1)

    params = [p for p in model.parameters() if p.requires_grad]
    return _trial(model, torch.optim.SGD(params, 1e-2), 30, check, ps)


def weight_decay_collapse() -> Trial:
    model = mlp([DIM, 64, 64, 64], nn.ReLU, CLASSES)
    init_linear(model, 1.0)
    p = Probe(model[2], std)

    def check(t: Trial) -> Truth:
        first, last = statistics.median(p.values[:5]), statistics.median(p.values[-5:])
        return Truth({"std[2] first": first, "std[2] last": last}, last < 0.05 * first)

    opt = torch.optim.SGD(model.parameters(), 0.1, weight_decay=0.5)
    return _trial(model, opt, 80, check, [p])


def hardtanh_saturated() -> Trial:
    model = mlp([DIM, 64, 64, 64], nn.Hardtanh, CLASSES)
    init_linear(model, 10.0, "xavier")  # pre-activations ~10x the unit range: clipped at +-1
    p = Probe(model[1], saturated_share(-1.0, 1.0))
    return _trial(model, torch.optim.Adam(model.parameters(), 1e-3), 30,
                  lambda t: Truth({"pinned[1]": p.values[-1]}, min(p.values) > 0.7), [p])


CHANS = (1, 16, 16, 16, 16, 16)


def _bn_cnn(gain: float) -> nn.Sequential:
    """Five stride-1 conv-BN-ReLU blocks, pooling and a head; conv weights at ``gain`` x kaiming."""
    blocks = [nn.Sequential(nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b),
                            nn.ReLU()) for a, b in zip(CHANS, CHANS[1:], strict=False)]
    model = nn.Sequential(*blocks, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                                 nn.Linear(CHANS[-1], CLASSES)))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            m.weight.data.mul_(gain)
    return model


def _bn_eval(model: nn.Module) -> None:
    """The mistake: BatchNorm put in eval mode (frozen running stats) before training."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def _cnn_trial(model: nn.Sequential, opt, steps: int, check, probes=()) -> Trial:
    x, y = images(32 * 8)
    track = {str(i): m for i, m in enumerate(model)}
    return Trial(model, opt, cycle(x, y, 32), F.cross_entropy, steps, check, track=track,
                 probes=list(probes), before_step=lambda i: _bn_eval(model))


def cnn_bn_eval_growth() -> Trial:
    model = _bn_cnn(3.0)  # an init that BatchNorm in train mode would have absorbed
    ps = [Probe(model[i], std) for i in (0, 4)]

    def check(t: Trial) -> Truth:
        r = ratio(ps[1].values[0], ps[0].values[0])
        return Truth({"std[4]/std[0]": r}, r > 20)

    return _cnn_trial(model, torch.optim.SGD(model.parameters(), 1e-6), 20, check, ps)


def cnn_bn_eval_healthy() -> Trial:
    model = _bn_cnn(1.0)  # frozen BatchNorm (as when fine-tuning) with a sound init
    return _cnn_trial(model, torch.optim.Adam(model.parameters(), 1e-3), 40,
                      lambda t: loss_fell(t))


def _setup(**kw) -> Setup:
    return Setup(**{"init": "default", "optimizer": "Adam", "lr": 1e-3, **kw})


CASES = [
    Case("heldout_gelu_adam_lr1", "mlp", "GELU MLP, Adam lr 1.0",
         frozenset({"oversized_updates"}), ("0", "1", "2", "3"),
         _setup(lr=1.0, activations=("gelu",)), gelu_adam_lr1),
    Case("heldout_gelu_healthy", "mlp", "healthy control: GELU MLP, Adam 1e-3", frozenset(), (),
         _setup(activations=("gelu",)), gelu_healthy),
    Case("heldout_silu_healthy", "mlp", "healthy control: SiLU MLP with bias -1 (many outputs "
         "near zero), Adam 1e-3", frozenset(), (),
         _setup(activations=("silu",)), silu_healthy),
    Case("heldout_tiny_layer", "mlp", "kaiming MLP; block 2 frozen with its weights x1e-4",
         frozenset({"vanishing"}), ("2", "3", "4", "5"),
         _setup(init="custom", optimizer="SGD", lr=1e-2), tiny_layer),
    Case("heldout_weight_decay", "mlp", "SGD lr 0.1 with weight_decay 0.5: every weight shrinks",
         frozenset({"vanishing", "shrinking"}), ("1", "2"),
         _setup(init="kaiming", optimizer="SGD", lr=0.1), weight_decay_collapse, fast=True),
    Case("heldout_hardtanh_saturated", "mlp", "Hardtanh MLP at 10x xavier init",
         frozenset({"saturated"}), ("0", "1", "2"),
         _setup(init="large", activations=("hardtanh",)), hardtanh_saturated),
    Case("heldout_cnn_bn_eval", "cnn", "BatchNorm left in eval mode, conv init 3x kaiming",
         frozenset({"depth_growth"}), ("2", "3", "4"),
         _setup(init="large", optimizer="SGD", lr=1e-6, has_conv=True, norms=("BatchNorm2d",)),
         cnn_bn_eval_growth),
    Case("heldout_cnn_bn_eval_healthy", "cnn", "healthy control: frozen BatchNorm, kaiming, "
         "Adam 1e-3", frozenset(), (),
         _setup(init="kaiming", has_conv=True, norms=("BatchNorm2d",)), cnn_bn_eval_healthy),
]
