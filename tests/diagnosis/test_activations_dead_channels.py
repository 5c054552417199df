"""Dead units per channel: known dead channels are found per epoch and named by the diagnosis."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import actscope
from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.diagnosis import diagnose
from actscope.learner import Learner
from tests.callbacks.test_activation_stats import image_dls

DEAD_CONV = [1, 5, 6]  # of 8 channels
DEAD_LIN = [0, 3]  # of 10 features


def dead_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU()),
                        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
                                      nn.ReLU()),
                        nn.Linear(10, 3))
    with torch.no_grad():
        net[0][0].bias[DEAD_CONV] = -1e4  # these channels are <= 0 for every input: ReLU -> 0
        net[1][2].bias.fill_(1.0)  # the others clearly fire
        net[1][2].bias[DEAD_LIN] = -1e4
    for p in net.parameters():
        p.requires_grad_(False)  # lr 0 in effect: the dead stay dead, the live stay live
    net[2].weight.requires_grad_(True)
    return net


def expected(n: int, dead: list[int], width: int) -> np.ndarray:
    row = np.full(width, np.nan, np.float32)
    row[:n] = 0.0
    row[dead] = 1.0
    return row


def test_learner_records_dead_channels_per_epoch_and_diagnosis_names_them():
    cb = ActivationStatsCallback(modules=lambda m: [m[0], m[1]])
    Learner(dead_net(), image_dls(), lr=0.1, cbs=[cb]).fit(2)
    t = cb.result()
    assert t.channel_epochs.tolist() == [0, 1]
    assert t.n_channels.tolist() == [8, 10]
    assert t.channel_dead.shape == (2, 2, 10)
    for e in range(2):
        np.testing.assert_array_equal(t.channel_dead[0, e], expected(8, DEAD_CONV, 10))
        np.testing.assert_array_equal(t.channel_dead[1, e], expected(10, DEAD_LIN, 10))
    msgs = [str(f) for f in diagnose(t) if f.kind == "dead_channels"]
    assert msgs[0].startswith("layer 0 conv 1→8: 3 of 8 channels never activated in epoch 1 "
                              "(dead units): channels 1, 5, 6")
    assert "2 of 10 channels" in msgs[1] and "channels 0, 3" in msgs[1]


def test_watch_without_end_epoch_gives_one_epoch_and_a_healthy_net_no_finding():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))
    with actscope.watch(net, modules=[net[0]]) as w:
        for _ in range(3):
            net(torch.randn(64, 4))
    t = w.result()
    assert t.channel_epochs.tolist() == [0] and t.n_channels.tolist() == [6]
    assert (t.channel_dead == 0).all()  # 64 Gaussian inputs: every unit is positive somewhere
    assert not [f for f in diagnose(t) if f.kind == "dead_channels"]


def test_a_channel_that_fires_once_in_an_epoch_is_alive():
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(3))
        net[0].bias.zero_()
    w = actscope.watch(net, modules=[net[1]])
    x = -torch.ones(8, 3)
    net(x)
    x[5, 2] = 2.0  # channel 2 fires once, in the second batch of epoch 0
    net(x)
    w.end_epoch()
    net(-torch.ones(8, 3))
    w.remove()
    t = w.result()
    np.testing.assert_array_equal(t.channel_dead[0], [[1, 1, 0], [1, 1, 1]])


def test_channels_of_an_element_wise_module_on_image_maps_are_dim_1():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.abs()
            x[:, :8] = -x[:, :8]  # channels 0-7 never fire
            return self.act(x)

    m = Net()
    with actscope.watch(m, modules=[m.act]) as w:
        for _ in range(3):
            m(torch.randn(4, 16, 5, 5))
    t = w.result()
    assert t.n_channels.tolist() == [16]
    assert t.channel_dead[0, 0].tolist() == [1.0] * 8 + [0.0] * 8


def test_channel_dim_rules():
    from actscope.telemetry.modules import channel_dim

    assert channel_dim(nn.BatchNorm2d(3), 4) == 1 and channel_dim(nn.MaxPool1d(2), 3) == 1
    assert channel_dim(nn.Sequential(nn.Linear(3, 3), nn.GELU()), 4) == 3  # (N, H, W, C)
    assert channel_dim(nn.GELU(), 3) == 2 and channel_dim(nn.GELU(), 2) == 1
    assert channel_dim(nn.GELU(), 1) is None
