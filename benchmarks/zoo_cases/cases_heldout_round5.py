"""Held-out cases (round 5, written as an adversary): architectures and mechanisms the earlier
rounds lack (sequence models: cases_heldout_round5_seq.py). Controls: a MobileNet (depthwise
convs, ReLU6), a ConvTranspose autoencoder, a LeakyReLU layer run in its negative regime (leaky,
not dead), ReLU blocks ending in Dropout(0.7) (85% zeros in training, none dead), a linear probe
(only the head in the optimizer), a zero-initialised head, an MNIST autoencoder whose tanh
decoder sits at -1 on the background, PyTorch's VAE example (a summed loss), a CNN under CPU bf16
autocast. Pathologies: ReLU6 pinned at 0 and 6, ELU at Adam lr 1, growth through a 1-D conv
stack, exploding gradients through a tanh one, NaN from a log in the middle of the model."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Case, Setup, Trial, Truth, loss_fell
from .data import blobs, cycle, images, mnist_images
from .models import mlp, small_cnn
from .models_round5 import (
    VAE,
    ConvAE,
    LogFeatures,
    conv1d_net,
    lecun_,
    mobilenet,
    vae_loss,
)
from .probes import (
    Probe,
    nonfinite,
    saturated_share,
    std,
    zero_share,
)

DIM, CLASSES, BS = 32, 4, 64


def _track(model: nn.Module) -> dict[str, nn.Module]:
    return {str(i): m for i, m in enumerate(model)} if isinstance(model, nn.Sequential) else {}


def _mlp_trial(model: nn.Module, opt, steps: int, check, probes=(), **kw) -> Trial:
    x, y = blobs(BS * 8, DIM, CLASSES)
    return Trial(model, opt, cycle(x, y, BS), F.cross_entropy, steps, check,
                 track=_track(model), probes=list(probes), **kw)


def _img_trial(model: nn.Module, opt, steps: int, check, probes=(), loss=F.cross_entropy,
               **kw) -> Trial:
    x, y = images(32 * 8)
    return Trial(model, opt, cycle(x, x if loss is F.mse_loss else y, 32), loss, steps, check,
                 track=_track(model), probes=list(probes), **kw)


# ---- controls ------------------------------------------------------------------------------
def mobilenet_healthy() -> Trial:
    model = mobilenet(CLASSES)
    return _img_trial(model, torch.optim.Adam(model.parameters(), 3e-3), 40,
                      lambda t: loss_fell(t))


def conv_ae_healthy() -> Trial:
    model = ConvAE()
    return _img_trial(model, torch.optim.Adam(model.parameters(), 2e-3), 40,
                      lambda t: loss_fell(t), loss=F.mse_loss)


def leaky_negative_healthy() -> Trial:
    model = mlp([DIM, 64, 64, 64], lambda: nn.LeakyReLU(0.1), CLASSES)
    with torch.no_grad():  # block 0 runs in its negative (leaky) regime: slope 0.1, not dead
        model[0][0].bias.fill_(-4.0)
    p = Probe(model[0], lambda x: float((x < 0).float().mean()))

    def check(t: Trial) -> Truth:
        lf = loss_fell(t)
        return Truth({**lf.values, "negative[0]": p.values[-1]}, lf.holds and p.values[-1] > 0.9)

    return _mlp_trial(model, torch.optim.Adam(model.parameters(), 1e-3), 40, check, [p])


def dropout_healthy() -> Trial:
    model = nn.Sequential(*[nn.Sequential(nn.Linear(a, 256), nn.ReLU(), nn.Dropout(0.7))
                            for a in (DIM, 256, 256)], nn.Linear(256, CLASSES))
    p = Probe(model[1], zero_share)  # ~85% zeros in training: Dropout's, not dead units

    def check(t: Trial) -> Truth:
        lf = loss_fell(t)
        return Truth({**lf.values, "zero_share[1]": p.values[-1]},
                     lf.holds and p.values[-1] > 0.8)

    return _mlp_trial(model, torch.optim.Adam(model.parameters(), 1e-3), 40, check, [p])


def linear_probe_healthy() -> Trial:
    model = mlp([DIM, 64, 64], nn.ReLU, CLASSES)
    # only the head is trained; the backbone keeps requires_grad, so its .grad accumulates
    # (the optimizer never zeroes it) and its weights never move: by design, not stalled
    return _mlp_trial(model, torch.optim.Adam(model[-1].parameters(), 1e-2), 40,
                      lambda t: loss_fell(t))


def zero_head_healthy() -> Trial:
    model = mlp([DIM, 64, 64], nn.ReLU, CLASSES)
    nn.init.zeros_(model[-1].weight)  # a zero-initialised head: its weights grow from 0, so
    nn.init.zeros_(model[-1].bias)  # ||dW|| / ||W|| is 1, 0.5, 0.33... whatever the lr
    return _mlp_trial(model, torch.optim.Adam(model.parameters(), 3e-4), 60,
                      lambda t: loss_fell(t))


def mnist_ae_tanh_healthy() -> Trial:
    x = mnist_images(1024) * 2 - 1  # in [-1, 1]: ~80% of the pixels are -1 (background)
    model = nn.Sequential(nn.Sequential(nn.Linear(784, 128), nn.ReLU()), nn.Linear(128, 32),
                          nn.Sequential(nn.Linear(32, 128), nn.ReLU()),
                          nn.Sequential(nn.Linear(128, 784), nn.Tanh()))  # a linear code
    p = Probe(model[3], saturated_share(-1.0, 1.0))  # the decoder fits the background at -1

    def check(t: Trial) -> Truth:
        lf = loss_fell(t, 0.5)
        return Truth({**lf.values, "pinned[3]": p.values[-1]}, lf.holds and p.values[-1] > 0.6)

    return Trial(model, torch.optim.Adam(model.parameters(), 3e-3), cycle(x, x, 64), F.mse_loss,
                 300, check, track=_track(model), probes=[p])


def vae_sum_healthy() -> Trial:
    x = mnist_images(1024)
    model = VAE()
    return Trial(model, torch.optim.Adam(model.parameters(), 1e-3), cycle(x, x, 128), vae_loss,
                 40, lambda t: loss_fell(t, 0.5))


class _AutocastTrial(Trial):
    """A trial whose steps run under CPU bf16 autocast, as a user's loop wraps them."""

    def train_step(self, i: int) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return super().train_step(i)


def cnn_bf16_healthy() -> Trial:
    model = small_cnn((1, 16, 32, 32), CLASSES, bn=True)
    x, y = images(32 * 8)
    return _AutocastTrial(model, torch.optim.Adam(model.parameters(), 3e-3), cycle(x, y, 32),
                          F.cross_entropy, 40, lambda t: loss_fell(t), track=_track(model))


# ---- pathologies ---------------------------------------------------------------------------
def relu6_saturated() -> Trial:
    model = mlp([DIM, 64, 64, 64], nn.ReLU6, CLASSES)
    lecun_(model, 30.0)  # pre-activations ~30x unit scale: ReLU6 outputs pinned at 0 or 6
    at6 = [Probe(model[i], lambda x: float((x >= 5.94).float().mean())) for i in range(3)]
    pinned = Probe(model[1], saturated_share(0.0, 6.0))

    def check(t: Trial) -> Truth:
        top = min(p.values[-1] for p in at6)
        return Truth({"at_6 min": top, "pinned[1]": pinned.values[-1]},
                     top > 0.3 and pinned.values[-1] > 0.9)

    return _mlp_trial(model, torch.optim.Adam(model.parameters(), 1e-3), 30, check,
                      [*at6, pinned])


def elu_adam_lr1() -> Trial:
    model = mlp([DIM, 64, 64, 64], nn.ELU, CLASSES)

    def check(t: Trial) -> Truth:
        peak = max(max(t.update_ratios[n][:8]) for n in ("0", "1", "2"))
        return Truth({"update_ratio peak": peak}, peak > 0.3)

    return _mlp_trial(model, torch.optim.Adam(model.parameters(), 1.0), 30, check)


def _waves(n: int, length: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, T) noisy sine waves, one frequency per class."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    t = torch.arange(length, dtype=torch.float32)
    phase = torch.rand(n, 1, generator=g) * 6.28
    x = torch.sin((y[:, None] + 1) * 0.2 * t + phase) + 0.3 * torch.randn(n, length, generator=g)
    return x[:, None, :], y


def conv1d_depth_growth() -> Trial:
    model = conv1d_net(16, 10, nn.ReLU, CLASSES)
    lecun_(model, 1.7 * math.sqrt(2))  # no norm, 1.7x kaiming: the scale grows 1.7x a layer
    x, y = _waves(32 * 8)
    ps = [Probe(model[i], std) for i in (0, 9)]

    def check(t: Trial) -> Truth:
        r = ps[1].values[-1] / ps[0].values[-1]
        return Truth({"std[9]/std[0]": r}, r > 20)

    return Trial(model, torch.optim.SGD(model.parameters(), 1e-4), cycle(x, y, 32),
                 F.cross_entropy, 30, check, track=_track(model), probes=ps)


def conv1d_tanh_exploding() -> Trial:
    model = conv1d_net(16, 16, nn.Tanh, CLASSES, k=3)
    lecun_(model, 5.0)  # tanh in its chaotic regime: gradients grow layer by layer going back
    x, y = _waves(32 * 8)

    def check(t: Trial) -> Truth:
        first = sorted(t.grad_norms["0"])[len(t.grad_norms["0"]) // 2]
        last = sorted(t.grad_norms["15"])[len(t.grad_norms["15"]) // 2]
        return Truth({"grad[0]/grad[15]": first / last}, first > 100 * last)

    return Trial(model, torch.optim.SGD(model.parameters(), 1e-4), cycle(x, y, 32),
                 F.cross_entropy, 30, check, track=_track(model))


KNAN = 15


def nan_log_middle() -> Trial:
    model = nn.Sequential(nn.Sequential(nn.Linear(DIM, 64), nn.ReLU()), LogFeatures(64, 64),
                          nn.Sequential(nn.Linear(64, 64), nn.ReLU()), nn.Linear(64, CLASSES))
    with torch.no_grad():
        model[1].lin.bias.fill_(20.0)  # log(x) well defined at first ...
    ps = [Probe(model[i], nonfinite) for i in range(3)]

    def poison(i: int) -> None:
        if i == KNAN:  # ... until a shifted input scale turns some of its inputs negative
            with torch.no_grad():
                model[1].lin.bias.sub_(40.0)

    def check(t: Trial) -> Truth:
        first = [next((k for k, v in enumerate(p.values) if v), -1) for p in ps]
        return Truth({f"first NaN step [{i}]": v for i, v in enumerate(first)},
                     first[1] == KNAN and first[0] in (-1, KNAN + 1) and first[2] == KNAN)

    return _mlp_trial(model, torch.optim.SGD(model.parameters(), 1e-2), 25, check, ps,
                      before_step=poison)


def _setup(**kw) -> Setup:
    return Setup(**{"init": "default", "optimizer": "Adam", "lr": 1e-3, **kw})


CASES = [
    Case("r5_mobilenet_relu6_healthy", "cnn", "healthy control: depthwise-separable convs, "
         "BatchNorm, ReLU6, Adam 3e-3", frozenset(), (),
         _setup(lr=3e-3, has_conv=True, activations=("relu6",), norms=("BatchNorm2d",)),
         mobilenet_healthy),
    Case("r5_conv_ae_healthy", "cnn", "healthy control: conv encoder, ConvTranspose decoder, "
         "sigmoid output, MSE, Adam 2e-3", frozenset(), (),
         _setup(lr=2e-3, has_conv=True, activations=("relu", "sigmoid")), conv_ae_healthy),
    Case("r5_leaky_negative_healthy", "mlp", "healthy control: LeakyReLU(0.1) block 0 with "
         "bias -4 (all negative: leaky, not dead)", frozenset(), (),
         _setup(activations=("leaky_relu",)), leaky_negative_healthy),
    Case("r5_dropout_healthy", "mlp", "healthy control: (Linear, ReLU, Dropout(0.7)) blocks: "
         "85% zeros in training, none dead", frozenset(), (), _setup(), dropout_healthy),
    Case("r5_linear_probe_healthy", "mlp", "healthy control: only the head in the optimizer "
         "(a linear probe; the backbone's grads accumulate)", frozenset(), (), _setup(lr=1e-2),
         linear_probe_healthy),
    Case("r5_zero_head_healthy", "mlp", "healthy control: MLP with a zero-initialised head, "
         "Adam 3e-4", frozenset(), (), _setup(lr=3e-4), zero_head_healthy),
    Case("r5_mnist_ae_tanh_healthy", "mlp", "healthy control: MNIST autoencoder, tanh decoder "
         "fitting a background of -1 (its output pinned there by design)", frozenset(), (),
         _setup(lr=3e-3, activations=("relu", "tanh")), mnist_ae_tanh_healthy),
    Case("r5_vae_sum_healthy", "mlp", "healthy control: pytorch/examples' VAE, its loss summed "
         "over the batch (~70,000; gradient norms in the thousands)", frozenset(), (),
         _setup(activations=("relu", "sigmoid")), vae_sum_healthy),
    Case("r5_cnn_bf16_healthy", "cnn", "healthy control: conv-BN-ReLU under CPU bf16 autocast",
         frozenset(), (), _setup(lr=3e-3, has_conv=True, norms=("BatchNorm2d",)),
         cnn_bf16_healthy),
    Case("r5_relu6_saturated", "mlp", "ReLU6 MLP at 30x lecun init: outputs pinned at 0 or 6",
         frozenset({"saturated"}), ("0", "1", "2"),
         _setup(init="large", activations=("relu6",)), relu6_saturated),
    Case("r5_elu_adam_lr1", "mlp", "ELU MLP, Adam lr 1.0",
         frozenset({"oversized_updates", "growth"}), ("0", "1", "2"),
         _setup(lr=1.0, activations=("elu",)), elu_adam_lr1),
    Case("r5_conv1d_depth_growth", "cnn", "10 Conv1d-ReLU blocks at 1.7x kaiming, no norm",
         frozenset({"depth_growth"}), tuple(str(i) for i in range(4, 10)),
         _setup(init="large", optimizer="SGD", lr=1e-4, has_conv=True),
         conv1d_depth_growth),
    Case("r5_conv1d_tanh_exploding", "cnn", "16 Conv1d-tanh blocks at 5x lecun init (chaotic)",
         frozenset({"exploding_gradients"}), ("0", "1", "2", "3"),
         _setup(init="large", optimizer="SGD", lr=1e-4, has_conv=True, activations=("tanh",)),
         conv1d_tanh_exploding),
    Case("r5_nan_log_middle", "mlp", f"log(linear(x)) in block 1; its bias -40 at step {KNAN}",
         frozenset({"non_finite"}), ("1",),
         _setup(optimizer="SGD", lr=1e-2), nan_log_middle),
]
