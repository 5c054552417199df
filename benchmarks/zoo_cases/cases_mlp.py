"""MLP cases: each pathology induced by a different mechanism on 32-d Gaussian clusters."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Case, Setup, Trial, Truth
from .data import blobs, cycle
from .models import init_linear, mlp
from .probes import Probe, absmax, nonfinite, ratio, saturated_share, std, zero_share

DIM, CLASSES, BS = 32, 4, 64


def _trial(model: nn.Sequential, opt: torch.optim.Optimizer, steps: int, check, probes=(),
           **kw) -> Trial:
    x, y = blobs(BS * 8, DIM, CLASSES)
    track = {str(i): m for i, m in enumerate(model)}
    return Trial(model, opt, cycle(x, y, BS), F.cross_entropy, steps, check, track=track,
                 probes=list(probes), **kw)


def dead_relu() -> Trial:
    model = mlp([DIM, 64, 64, 64], nn.ReLU, CLASSES)
    init_linear(model, 1.0)
    with torch.no_grad():
        model[1][0].bias.fill_(-12.0)  # block 1's pre-activations sit far below zero
    p = Probe(model[1], zero_share)
    return _trial(model, torch.optim.Adam(model.parameters(), 1e-3), 40,
                  lambda t: Truth({"zero_share[1]": p.values[-1]}, min(p.values[-10:]) > 0.95),
                  [p])


def vanishing_init() -> Trial:
    model = mlp([DIM, 64, 64, 64, 64, 64], nn.ReLU, CLASSES)
    init_linear(model, 0.05)  # 1/20 of kaiming per layer: the signal shrinks ~20x per block
    ps = [Probe(model[i], std) for i in range(5)]
    return _trial(model, torch.optim.SGD(model.parameters(), 1e-2), 30,
                  lambda t: Truth({"std[4]/std[0]": ratio(ps[4].values[0], ps[0].values[0])},
                                  ps[4].values[0] < 1e-3 * ps[0].values[0]), ps)


def depth_growth() -> Trial:
    model = mlp([DIM] + [64] * 8, nn.ReLU, CLASSES)
    init_linear(model, 2.0)  # twice kaiming: ~2x per block, ~128x over 8 blocks
    ps = [Probe(model[i], std) for i in range(8)]
    return _trial(model, torch.optim.SGD(model.parameters(), 1e-6), 30,
                  lambda t: Truth({"std[7]/std[0]": ratio(ps[7].values[-1], ps[0].values[-1])},
                                  ps[7].values[-1] > 100 * ps[0].values[-1]), ps)


def _grad_ratio(t: Trial, first: str, last: str) -> float:
    g0, g1 = t.grad_norms[first], t.grad_norms[last]
    return sum(a / b for a, b in zip(g0, g1, strict=True)) / len(g0)


def exploding_grads() -> Trial:
    model = mlp([DIM] + [64] * 12, nn.Tanh, CLASSES)
    init_linear(model, 6.0, "lecun")  # the chaotic regime of deep tanh nets: gradients explode
    return _trial(model, torch.optim.SGD(model.parameters(), 1e-5), 30,
                  lambda t: Truth({"grad[0]/grad[11]": _grad_ratio(t, "0", "11")},
                                  _grad_ratio(t, "0", "11") > 100))


def vanishing_grads() -> Trial:
    model = mlp([DIM] + [64] * 12, nn.Sigmoid, CLASSES)  # torch's default init, deep sigmoid
    return _trial(model, torch.optim.SGD(model.parameters(), 0.1), 30,
                  lambda t: Truth({"grad[0]/grad[11]": _grad_ratio(t, "0", "11")},
                                  _grad_ratio(t, "0", "11") < 1e-4))


def stalled() -> Trial:
    model = mlp([DIM, 64, 64], nn.ReLU, CLASSES)
    init_linear(model, 1.0)
    return _trial(model, torch.optim.Adam(model.parameters(), 1e-9), 30,
                  lambda t: Truth({"update_ratio[1]": t.update_ratios["1"][-1]},
                                  max(t.update_ratios["1"]) < 1e-6))


def saturated_sigmoid() -> Trial:
    model = mlp([DIM, 64, 64], nn.Sigmoid, CLASSES)
    init_linear(model, 12.0, "xavier")  # pre-activations of std ~12*|x|: sigmoid pinned at 0/1
    p = Probe(model[0], saturated_share(0.0, 1.0))
    return _trial(model, torch.optim.Adam(model.parameters(), 1e-3), 30,
                  lambda t: Truth({"pinned[0]": p.values[-1]}, min(p.values) > 0.7), [p])


def growth_high_lr() -> Trial:
    model = mlp([DIM, 64, 64, 64], nn.ReLU, CLASSES)
    init_linear(model, 1.0)
    p = Probe(model[2], std)
    return _trial(model, torch.optim.Adam(model.parameters(), 0.3), 40,
                  lambda t: Truth({"std[2] first": p.values[0], "std[2] last": p.values[-1]},
                                  p.values[-1] > 10 * p.values[0]
                                  and p.values[-1] > 0.3 * max(p.values)), [p])


KSTEP = 12  # the step at which the weights blow up


def nonfinite_overflow() -> Trial:
    model = mlp([DIM] + [64] * 7, nn.ReLU, CLASSES)
    init_linear(model, 1.0)

    def blow_up(i: int) -> None:
        if i == KSTEP:  # a corrupted update: every Linear x1e7, so block k's output ~1e7^(k+1)
            with torch.no_grad():
                for m in model.modules():
                    if isinstance(m, nn.Linear):
                        m.weight.mul_(1e7)

    nf = [Probe(model[i], nonfinite) for i in range(7)]
    mx = Probe(model[2], absmax)

    def check(t: Trial) -> Truth:
        first = next(i for i in range(7) if nf[i].values[KSTEP])
        clean_before = not any(v for p in nf for v in p.values[:KSTEP])
        big = mx.values[KSTEP]
        return Truth({"first_inf_block": first, "step": KSTEP, "absmax[2]": big},
                     clean_before and first == 5 and 1e19 < big < float("inf"))

    return _trial(model, torch.optim.SGD(model.parameters(), 1e-2), 20, check, nf + [mx],
                  before_step=blow_up)


def _setup(**kw) -> Setup:
    return Setup(**{"init": "kaiming", "optimizer": "Adam", "lr": 1e-3, **kw})


CASES = [
    Case("mlp_dead_relu", "mlp", "bias -12 on block 1", frozenset({"dead"}), ("1",),
         _setup(), dead_relu),
    Case("mlp_vanishing_init", "mlp", "init at 1/20 of kaiming", frozenset({"vanishing"}),
         ("2", "3", "4"), _setup(init="small", optimizer="SGD", lr=1e-2), vanishing_init),
    Case("mlp_depth_growth", "mlp", "init at 2x kaiming, 8 blocks", frozenset({"depth_growth"}),
         ("5", "6", "7"), _setup(init="large", optimizer="SGD", lr=1e-6), depth_growth),
    Case("mlp_exploding_grads", "mlp", "12 tanh blocks at 6x lecun init (chaotic regime)",
         frozenset({"exploding_gradients"}), ("0", "1", "2"),
         _setup(init="large", optimizer="SGD", lr=1e-5, activations=("tanh",)), exploding_grads),
    Case("mlp_vanishing_grads", "mlp", "12 sigmoid blocks, default init",
         frozenset({"vanishing_gradients"}), ("0", "1", "2"),
         _setup(init="default", optimizer="SGD", lr=0.1, activations=("sigmoid",)),
         vanishing_grads),
    Case("mlp_stalled", "mlp", "Adam lr 1e-9", frozenset({"stalled"}), ("0", "1", "2"),
         _setup(lr=1e-9), stalled),
    Case("mlp_saturated_sigmoid", "mlp", "sigmoid at 12x xavier init", frozenset({"saturated"}),
         ("0",), _setup(init="large", activations=("sigmoid",)), saturated_sigmoid),
    Case("mlp_growth_high_lr", "mlp", "Adam lr 0.3", frozenset({"growth", "oversized_updates"}),
         ("1", "2", "3"), _setup(lr=0.3), growth_high_lr),
    Case("mlp_nonfinite_overflow", "mlp", "weights x1e7 at step 12: block 2 max ~1e21, "
         "first inf in block 5", frozenset({"non_finite"}), ("5",),
         _setup(optimizer="SGD", lr=1e-2), nonfinite_overflow, fast=True),
]
