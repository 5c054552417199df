"""Recurrent cases (vanilla tanh RNN, LSTM, GRU) on a sequence task: the sign of a running sum."""

from __future__ import annotations

import math
import statistics

import torch
import torch.nn.functional as F

from .base import Case, Setup, Trial, Truth, loss_fell
from .data import cycle
from .models import SeqNet
from .probes import Probe, saturated_share

N_IN, HIDDEN, LENGTH, BS = 8, 32, 20, 32


def _data(n: int = BS * 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, LENGTH, N_IN, generator=g)
    return x, (x[:, :, 0].sum(1) > 0).long()  # (N, T, F), (N,)


def _trial(model: SeqNet, opt: torch.optim.Optimizer, steps: int, check, probes=(), **kw
           ) -> Trial:
    x, y = _data()
    track = {f"rnns.{i}": r for i, r in enumerate(model.rnns)} | {"head": model.head}
    return Trial(model, opt, cycle(x, y, BS), F.cross_entropy, steps, check, track=track,
                 probes=list(probes), **kw)


def rnn_exploding_grads() -> Trial:
    model = SeqNet(N_IN, HIDDEN, 2, "RNN", depth=2)
    with torch.no_grad():  # recurrent weights in the chaotic regime: gradients explode in time
        for r in model.rnns:
            r.weight_hh_l0.normal_(0, 3 / math.sqrt(HIDDEN))

    def check(t: Trial) -> Truth:
        ratio = statistics.median(a / b for a, b in zip(t.grad_norms["rnns.0"],
                                                         t.grad_norms["head"], strict=True))
        return Truth({"grad[rnns.0]/grad[head]": ratio}, ratio > 100)

    return _trial(model, torch.optim.SGD(model.parameters(), 1e-4), 30, check)


def rnn_saturated_tanh() -> Trial:
    model = SeqNet(N_IN, HIDDEN, 2, "RNN", depth=2)
    with torch.no_grad():
        model.rnns[0].weight_ih_l0.mul_(100.0)  # un-normalised inputs x100: tanh pinned at +-1
    p = Probe(model.rnns[0], saturated_share(-1.0, 1.0))
    return _trial(model, torch.optim.Adam(model.parameters(), 1e-3), 30,
                  lambda t: Truth({"pinned[rnns.0]": p.values[-1]}, min(p.values) > 0.85), [p])


def lstm_oversized_updates() -> Trial:
    model = SeqNet(N_IN, HIDDEN, 2, "LSTM", depth=2)

    def check(t: Trial) -> Truth:
        med = statistics.median(r for n in ("rnns.0", "rnns.1") for r in t.update_ratios[n])
        return Truth({"update_ratio": med}, med > 0.05)  # 50x the healthy 1e-3

    return _trial(model, torch.optim.Adam(model.parameters(), 0.05), 30, check)


def gru_healthy() -> Trial:
    model = SeqNet(N_IN, HIDDEN, 2, "GRU", depth=2)
    return _trial(model, torch.optim.Adam(model.parameters(), 3e-3), 60, lambda t: loss_fell(t))


def _setup(**kw) -> Setup:
    return Setup(**{"init": "default", "optimizer": "Adam", "lr": 1e-3, "activations": ("tanh",),
                    **kw})


CASES = [
    Case("rnn_exploding_grads", "rnn", "vanilla RNN, recurrent weights N(0, 3/sqrt(H))",
         frozenset({"exploding_gradients"}), ("rnns.0", "rnns.1"),
         _setup(init="large", optimizer="SGD", lr=1e-4, cells=("RNN",)), rnn_exploding_grads),
    Case("rnn_saturated_tanh", "rnn", "input weights x100: tanh pinned at +-1",
         frozenset({"saturated"}), ("rnns.0",), _setup(init="large", cells=("RNN",)),
         rnn_saturated_tanh, fast=True),
    Case("lstm_oversized_updates", "rnn", "LSTM with Adam lr 0.05",
         frozenset({"oversized_updates"}), ("rnns.0", "rnns.1"),
         _setup(lr=0.05, activations=("tanh", "sigmoid"), cells=("LSTM",)),
         lstm_oversized_updates),
    Case("gru_healthy", "rnn", "healthy control: GRU, Adam 3e-3", frozenset(), (),
         _setup(lr=3e-3, activations=("tanh", "sigmoid"), cells=("GRU",)), gru_healthy),
]
