"""Healthy controls (MLP, CNN, ResNet-BN, the Lightning README autoencoder): any finding on one
is a false alarm. Their ground truth is that the loss falls. The recurrent, transformer and
Hugging Face controls live beside their pathologies (gru_healthy, gpt_healthy, hf_*_healthy)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Case, Setup, Trial, loss_fell
from .cases_conv import BS as CONV_BS
from .cases_mlp import BS, CLASSES, DIM
from .data import blobs, cycle, images, mnist_images
from .models import ResNet, init_linear, mlp, small_cnn


def mlp_healthy() -> Trial:
    model = mlp([DIM, 64, 64], nn.ReLU, CLASSES)
    init_linear(model, 1.0)
    x, y = blobs(BS * 8, DIM, CLASSES)
    return Trial(model, torch.optim.Adam(model.parameters(), 1e-3), cycle(x, y, BS),
                 F.cross_entropy, 40, lambda t: loss_fell(t))


def cnn_healthy() -> Trial:
    model = small_cnn(bn=True)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    x, y = images(CONV_BS * 8)
    return Trial(model, torch.optim.Adam(model.parameters(), 3e-3), cycle(x, y, CONV_BS),
                 F.cross_entropy, 40, lambda t: loss_fell(t))


def resnet_healthy() -> Trial:
    model = ResNet()
    x, y = images(CONV_BS * 8)
    return Trial(model, torch.optim.SGD(model.parameters(), 0.05, momentum=0.9),
                 cycle(x, y, CONV_BS), F.cross_entropy, 30, lambda t: loss_fell(t))


class LitAutoEncoderModel(nn.Module):
    """The Lightning README's autoencoder: 784 -> 64 -> 3 -> 64 -> 784, ReLU, MSE."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(28 * 28, 64), nn.ReLU(), nn.Linear(64, 3))
        self.decoder = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 28 * 28))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def autoencoder_bs1() -> Trial:
    model = LitAutoEncoderModel()
    x = mnist_images(600)  # real MNIST when found, else generated digit-like images
    return Trial(model, torch.optim.Adam(model.parameters(), 1e-3), cycle(x, x, 1),
                 F.mse_loss, 300, lambda t: loss_fell(t, window=30))


def _setup(**kw) -> Setup:
    return Setup(**{"init": "kaiming", "optimizer": "Adam", "lr": 1e-3, **kw})


CASES = [
    Case("mlp_healthy", "mlp", "healthy control: kaiming, Adam 1e-3", frozenset(), (),
         _setup(), mlp_healthy),
    Case("cnn_healthy", "cnn", "healthy control: kaiming + BatchNorm, Adam 3e-3", frozenset(),
         (), _setup(lr=3e-3, has_conv=True, norms=("BatchNorm2d",)), cnn_healthy),
    Case("resnet_healthy", "resnet", "healthy control: ResNet-BN, SGD 0.05 momentum 0.9",
         frozenset(), (), _setup(optimizer="SGD", lr=0.05, has_conv=True,
                                 norms=("BatchNorm2d",)), resnet_healthy),
    Case("autoencoder_bs1", "mlp", "healthy control: the Lightning README autoencoder at "
         "batch size 1 (3-number code)", frozenset(), (), _setup(init="default"),
         autoencoder_bs1, fast=True),
]
