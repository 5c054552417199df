"""GeneralRelu, Lambda and conv_layer."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load, save
from torch import nn

from actscope.nn.layers import GeneralRelu, Lambda, conv_layer
from actscope.nn.norms import BatchNorm, GroupNorm, NormError


@pytest.mark.parametrize("leak,sub,maxv", [(None, None, None), (0.1, 0.4, 6.0), (0.2, None, None),
                                           (None, 0.5, None), (0.0, None, 1.0)])
def test_general_relu_matches_its_formula(leak, sub, maxv):
    x = torch.linspace(-10, 10, 101)
    expected = torch.where(x > 0, x, x * (leak or 0.0))
    if sub is not None:
        expected = expected - sub
    if maxv is not None:
        expected = expected.clamp(max=maxv)
    torch.testing.assert_close(GeneralRelu(leak, sub, maxv)(x), expected)


def test_general_relu_default_is_relu_and_repr_shows_its_arguments():
    x = torch.randn(50)
    torch.testing.assert_close(GeneralRelu()(x), F.relu(x))
    assert repr(GeneralRelu(0.1, 0.4, 6)) == "GeneralRelu(leak=0.1, sub=0.4, maxv=6.0)"


@pytest.mark.parametrize("kwargs,match", [({"leak": -0.1}, "leak must be >= 0"),
                                          ({"sub": float("nan")}, "sub must be a finite number"),
                                          ({"maxv": "6"}, "maxv must be a finite number")])
def test_general_relu_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GeneralRelu(**kwargs)


def test_general_relu_gradcheck_float64():
    # keep inputs away from the kinks at 0 and at maxv, where the derivative jumps
    x = torch.tensor([-3.0, -1.2, -0.4, 0.3, 1.1, 2.5, 5.5, 9.0], dtype=torch.float64)
    x.requires_grad_()
    assert torch.autograd.gradcheck(GeneralRelu(0.1, 0.4, 6.0), (x,))


def test_general_relu_settings_survive_state_dict_and_safetensors():
    act = GeneralRelu(0.1)
    act.sub = 0.37  # as lsuv_init sets it
    restored = GeneralRelu()
    restored.load_state_dict(load(save(act.state_dict())))  # the run folder's weight format
    assert (restored.leak, restored.sub, restored.maxv) == (0.1, 0.37, None)
    x = torch.randn(20)
    torch.testing.assert_close(restored(x), act(x))


def test_lambda_wraps_a_function_in_a_sequential():
    flat = nn.Sequential(Lambda(lambda x: x.view(-1, 1, 28, 28)), nn.Conv2d(1, 2, 3))
    assert flat(torch.randn(4, 784)).shape == (4, 2, 26, 26)
    assert "flatten" in repr(Lambda(torch.flatten))
    with pytest.raises(TypeError, match="callable"):
        Lambda(3)


def test_conv_layer_without_norm_has_a_conv_bias_and_relu():
    block = conv_layer(3, 8)
    assert list(dict(block.named_children())) == ["conv", "act"]
    assert block.conv.bias is not None
    assert block.conv.kernel_size == (3, 3) and block.conv.stride == (2, 2)
    assert block.conv.padding == (1, 1)
    assert isinstance(block.act, GeneralRelu) and block.act.leak is None
    out = block(torch.randn(2, 3, 28, 28))
    assert out.shape == (2, 8, 14, 14) and (out >= 0).all()


@pytest.mark.parametrize("norm,cls", [("batch", BatchNorm), ("group", GroupNorm),
                                      ("torch_batch", nn.BatchNorm2d)])
def test_conv_layer_with_norm_drops_the_conv_bias(norm, cls):
    block = conv_layer(3, 8, norm=norm)
    assert list(dict(block.named_children())) == ["conv", "norm", "act"]
    assert block.conv.bias is None
    assert isinstance(block.norm, cls) and block.norm.weight.shape == (8,)


@pytest.mark.parametrize("ks", [1, 3, 5, 7])
def test_conv_layer_padding_keeps_the_size_at_stride_1(ks):
    assert conv_layer(2, 4, ks=ks, stride=1)(torch.randn(1, 2, 9, 9)).shape == (1, 4, 9, 9)


def test_conv_layer_act_factory_and_module_instances():
    block = conv_layer(1, 4, act=functools.partial(GeneralRelu, 0.1, 0.4))
    assert (block.act.leak, block.act.sub) == (0.1, 0.4)
    shared = nn.LeakyReLU(0.2)
    a, b = conv_layer(1, 4, act=shared), conv_layer(4, 4, act=shared)
    assert isinstance(a.act, nn.LeakyReLU) and a.act is not b.act and a.act is not shared
    assert isinstance(conv_layer(1, 4, act=nn.Tanh).act, nn.Tanh)
    with pytest.raises(TypeError, match="must return an nn.Module"):
        conv_layer(1, 4, act=lambda: 3)


@pytest.mark.parametrize("kwargs", [{"ni": 0}, {"nf": -2}, {"ks": 2.0}, {"stride": True}])
def test_conv_layer_rejects_bad_sizes(kwargs):
    args = {"ni": 1, "nf": 4, **kwargs}
    with pytest.raises(ValueError, match="must be a positive int"):
        conv_layer(**args)


def test_conv_layer_unknown_norm_lists_the_valid_names():
    with pytest.raises(NormError, match="valid names: 'batch'"):
        conv_layer(1, 4, norm="bn")
