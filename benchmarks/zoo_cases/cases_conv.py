"""CNN and ResNet-with-BatchNorm cases on generated 16x16 digit-like images."""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F
from torch import nn

from .base import Case, Setup, Trial, Truth
from .data import cycle, images
from .models import ResNet, small_cnn
from .probes import Probe, nonfinite, outlier_ratio, ratio, rise_and_collapse, std

BS = 32
KSTEP = 10  # the step at which the NaN is injected


def _trial(model: nn.Module, opt: torch.optim.Optimizer, steps: int, check, probes=(),
           track: dict[str, nn.Module] | None = None, **kw) -> Trial:
    x, y = images(BS * 8)
    if track is None:
        track = {str(i): m for i, m in enumerate(model)}
    return Trial(model, opt, cycle(x, y, BS), F.cross_entropy, steps, check, track=track,
                 probes=list(probes), **kw)


def _dead_channel_share(x: torch.Tensor) -> float:
    """Share of channels whose max over the batch and positions is <= 0 (never fired)."""
    return float((x.amax(dim=(0, 2, 3)) <= 0).float().mean())


def cnn_dead_channels() -> Trial:
    model = small_cnn()
    with torch.no_grad():
        model[1][0].bias[:8].fill_(-20.0)  # half of block 1's 16 channels can never fire
    p = Probe(model[1], _dead_channel_share)
    return _trial(model, torch.optim.Adam(model.parameters(), 1e-3), 30,
                  lambda t: Truth({"dead_channels[1]": p.values[-1]}, min(p.values[-10:]) >= 0.5),
                  [p])


def cnn_nan_injected() -> Trial:
    model = small_cnn(bn=True)

    def poison(i: int) -> None:
        if i == KSTEP:  # a corrupted parameter (a bad checkpoint load, say) in block 2's norm
            with torch.no_grad():
                model[2][1].weight[0] = float("nan")

    ps = [Probe(model[i], nonfinite) for i in range(3)]

    def check(t: Trial) -> Truth:
        first_step = next(j for j, v in enumerate(ps[2].values) if v)
        clean = not ps[0].values[KSTEP] and not ps[1].values[KSTEP]
        return Truth({"first_nan_step": first_step, "block": 2}, first_step == KSTEP and clean)

    return _trial(model, torch.optim.SGD(model.parameters(), 0.05, momentum=0.9), 20, check, ps,
                  before_step=poison)


def _median_update(t: Trial, names: list[str]) -> float:
    return statistics.median(r for n in names for r in t.update_ratios[n])


def cnn_oversized_updates() -> Trial:
    model = small_cnn(bn=True)
    return _trial(model, torch.optim.SGD(model.parameters(), 20.0, momentum=0.9), 30,
                  lambda t: Truth({"update_ratio": _median_update(t, ["0", "1", "2"])},
                                  _median_update(t, ["0", "1", "2"]) > 0.05))  # 50x healthy


def cnn_unstable() -> Trial:
    model = small_cnn(chans=(1, 16, 32, 64))
    p = Probe(model[2], std)
    return _trial(model, torch.optim.SGD(model.parameters(), 0.8, momentum=0.9), 40,
                  lambda t: Truth({"collapses[2]": rise_and_collapse(p.values),
                                   "std peak": max(p.values), "std last": p.values[-1]},
                                  rise_and_collapse(p.values) >= 1), [p])


def _res_track(model: ResNet) -> dict[str, nn.Module]:
    return {f"layer{s}.{i}": b for s in (1, 2) for i, b in enumerate(getattr(model, f"layer{s}"))}


def resnet_depth_growth() -> Trial:
    model = ResNet(blocks=6)
    for b in model.layer1:  # branches without BatchNorm and at 2.5x kaiming: the stream grows
        b.bn1, b.bn2 = nn.Identity(), nn.Identity()
        with torch.no_grad():
            b.conv2.weight.mul_(2.5)
    first, last = Probe(model.layer1[0], std), Probe(model.layer1[5], std)
    return _trial(model, torch.optim.SGD(model.parameters(), 1e-6), 20,
                  lambda t: Truth({"std[layer1.5]/std[layer1.0]":
                                   ratio(last.values[-1], first.values[-1])},
                                  last.values[-1] > 10 * first.values[-1]), [first, last],
                  track=_res_track(model))


def resnet_massive_channel() -> Trial:
    model = ResNet()
    with torch.no_grad():
        model.layer1[1].bn2.bias[3] = 2000.0  # one channel ~2000x the typical value
    p = Probe(model.layer1[1], outlier_ratio)
    return _trial(model, torch.optim.SGD(model.parameters(), 1e-3, momentum=0.9), 20,
                  lambda t: Truth({"max/median[layer1.1]": p.values[-1]}, min(p.values) > 1000),
                  [p], track=_res_track(model))


def resnet_stalled() -> Trial:
    model = ResNet()
    return _trial(model, torch.optim.SGD(model.parameters(), 1e-8, momentum=0.9), 20,
                  lambda t: Truth({"update_ratio": _median_update(t, list(_res_track(model)))},
                                  _median_update(t, list(_res_track(model))) < 1e-6),
                  track=_res_track(model))


def _cnn(**kw) -> Setup:
    return Setup(**{"init": "default", "optimizer": "Adam", "lr": 1e-3, "has_conv": True, **kw})


def _res(**kw) -> Setup:
    return _cnn(**{"init": "kaiming", "optimizer": "SGD", "norms": ("BatchNorm2d",), **kw})


LAYERS2 = ("layer1.3", "layer1.4", "layer1.5")
CASES = [
    Case("cnn_dead_channels", "cnn", "conv bias -20 on 8 of block 1's 16 channels",
         frozenset({"dead_channels"}), ("1",), _cnn(), cnn_dead_channels, fast=True),
    Case("cnn_nan_injected", "cnn", f"NaN in block 2's BatchNorm weight at step {KSTEP}",
         frozenset({"non_finite"}), ("2",),
         _cnn(optimizer="SGD", lr=0.05, norms=("BatchNorm2d",)), cnn_nan_injected),
    Case("cnn_oversized_updates", "cnn", "SGD lr 20 with BatchNorm",
         frozenset({"oversized_updates"}), ("0", "1", "2"),
         _cnn(optimizer="SGD", lr=20.0, norms=("BatchNorm2d",)),
         cnn_oversized_updates),
    Case("cnn_unstable", "cnn", "no norm, SGD lr 0.8 momentum 0.9 (rise and collapse)",
         frozenset({"unstable"}), ("0", "1", "2"), _cnn(optimizer="SGD", lr=0.8), cnn_unstable),
    Case("resnet_depth_growth", "resnet",
         "layer1 branches without BatchNorm, conv2 at 2.5x kaiming",
         frozenset({"depth_growth"}), LAYERS2,
         _res(init="large", lr=1e-6, norms=()),  # norms: none in the branches that grow
         resnet_depth_growth, fast=True),
    Case("resnet_massive_channel", "resnet", "BN bias 2000 on one channel of layer1.1",
         frozenset({"massive_activations"}), ("layer1.1", "layer1.2"), _res(),
         resnet_massive_channel),
    Case("resnet_stalled", "resnet", "SGD lr 1e-8", frozenset({"stalled"}),
         ("layer1.0", "layer1.1", "layer1.2", "layer2.0", "layer2.1", "layer2.2"),
         _res(lr=1e-8), resnet_stalled),
]
