"""init_cnn (kaiming with each block's leak) and lsuv_init."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from actscope.nn.cnn import cnn, conv_blocks
from actscope.nn.init import init_cnn, lsuv_init
from actscope.nn.layers import GeneralRelu, conv_layer


def _block_rms(model: nn.Module, x: torch.Tensor) -> list[float]:
    """Root mean square of each conv block's output, in order."""
    out = []
    with torch.no_grad():
        for block in conv_blocks(model):
            x = block(x)
            out.append(x.pow(2).mean().sqrt().item())
    return out


def test_kaiming_keeps_the_signal_where_torchs_default_shrinks_it():
    x = torch.randn(256, 1, 28, 28)
    torch.manual_seed(0)
    default = _block_rms(cnn(), x)
    torch.manual_seed(0)
    kaiming = _block_rms(init_cnn(cnn()), x)
    # kaiming fan_in with a = 0: E[relu(conv(x))^2] = E[x^2] = 1 for the first block
    assert 0.8 < kaiming[0] < 1.25, kaiming
    assert default[0] < 0.6, default  # torch's default init (a = sqrt(5)) loses ~60% at once
    # three blocks later the default init has lost an order of magnitude more than kaiming
    assert kaiming[3] > 8 * default[3], (kaiming, default)


@pytest.mark.parametrize("uniform", [False, True])
def test_weight_std_follows_each_blocks_leak(uniform):
    torch.manual_seed(0)
    leaks = [0.0, 0.1, 0.5]
    model = nn.Sequential(*[conv_layer(64, 64, act=functools.partial(GeneralRelu, leak))
                            for leak in leaks])
    model[0].act.leak = None  # None means plain ReLU: a = 0
    init_cnn(model, uniform=uniform)
    fan_in = 64 * 3 * 3
    for block, leak in zip(model, leaks, strict=True):
        expected = math.sqrt(2 / (1 + leak**2)) / math.sqrt(fan_in)
        w = block.conv.weight
        assert abs(w.std().item() / expected - 1) < 0.03, (leak, w.std().item(), expected)
        if uniform:  # kaiming uniform: bounded by gain * sqrt(3 / fan_in)
            bound = expected * math.sqrt(3)
            assert w.abs().max().item() <= bound and w.abs().max().item() > 0.99 * bound
        torch.testing.assert_close(block.conv.bias, torch.zeros(64), rtol=0, atol=0)


def test_torch_activations_are_recognised_and_linear_layers_keep_their_init():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(64, 64, 3), nn.LeakyReLU(0.3), nn.Conv2d(64, 64, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4, 3))
    linear_before = model[5].weight.detach().clone()
    init_cnn(model)
    fan_in = 64 * 9
    assert abs(model[0].weight.std().item() * math.sqrt(fan_in / (2 / 1.09)) - 1) < 0.03
    assert abs(model[2].weight.std().item() * math.sqrt(fan_in / 2) - 1) < 0.03
    torch.testing.assert_close(model[5].weight, linear_before, rtol=0, atol=0)


def _measure_blocks(model: nn.Module, xb: torch.Tensor) -> list[tuple[float, float]]:
    """Each block's output (mean, std) on xb, measured independently of lsuv_init."""
    stats, handles = [], []
    for block in conv_blocks(model):
        handles.append(block.register_forward_hook(
            lambda m, i, o: stats.append((o.mean().item(), o.std().item()))))
    try:
        with torch.no_grad():
            model(xb)
    finally:
        for h in handles:
            h.remove()
    return stats


@pytest.mark.parametrize("norm", ["none", "batch", "group", "running_batch"])
def test_lsuv_gives_every_block_mean_0_std_1(norm):
    if norm == "running_batch":
        pytest.importorskip("actscope.nn.running_batchnorm")
    torch.manual_seed(0)
    xb = torch.randn(32, 1, 28, 28)
    model = init_cnn(cnn(nfs=(8, 16, 32), norm=norm, act=functools.partial(GeneralRelu, 0.1)))
    before = _measure_blocks(model, xb)
    assert any(abs(m) > 0.1 or abs(s - 1) > 0.1 for m, s in before)  # there is work to do
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    result = lsuv_init(model, xb)
    for key, value in model.named_buffers():  # running stats untouched
        torch.testing.assert_close(value, buffers[key], rtol=0, atol=0, msg=key)
    assert len(result) == 3
    for (mean, std), (m2, s2) in zip(result, _measure_blocks(model, xb), strict=True):
        assert abs(mean) <= 1e-3 and abs(std - 1) <= 1e-3
        assert abs(m2) <= 1e-3 and abs(s2 - 1) <= 1e-3  # what a fresh forward pass sees
    assert all(not b._forward_hooks for b in conv_blocks(model))  # hooks removed


def test_lsuv_result_survives_a_state_dict_round_trip():
    torch.manual_seed(0)
    xb = torch.randn(32, 1, 28, 28)
    model = cnn(nfs=(8, 16))
    lsuv_init(model, xb)
    assert all(b.act.sub is not None for b in conv_blocks(model))  # the mean is fixed via sub
    fresh = cnn(nfs=(8, 16))
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(xb), model(xb))


def test_lsuv_accepts_explicit_modules_and_removes_hooks_on_error():
    torch.manual_seed(0)
    model = cnn(nfs=(8, 16))
    first = conv_blocks(model)[0]
    assert len(lsuv_init(model, torch.randn(16, 1, 28, 28), modules=[first])) == 1
    with pytest.raises(ValueError, match="mean nan"):
        lsuv_init(model, torch.full((4, 1, 28, 28), float("nan")))
    assert all(not b._forward_hooks for b in conv_blocks(model))
    with pytest.raises(ValueError, match="no conv blocks"):
        lsuv_init(nn.Sequential(nn.Linear(3, 2)), torch.randn(4, 3))
