"""make_model: the lesson's CNN from a FitConfig, initialised as the config says."""

from __future__ import annotations

import pytest
import torch

from actscope.config import FitConfig
from actscope.errors import UsageError
from actscope.nn.layers import GeneralRelu
from actscope.recipe.model import make_model


def test_shape_activation_and_lsuv_needs_a_batch():
    cfg = FitConfig(init="lsuv")
    torch.manual_seed(0)
    model = make_model(cfg, init=False)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert any(isinstance(m, GeneralRelu) for m in model.modules())
    with pytest.raises(UsageError, match="needs a batch of training inputs"):
        make_model(cfg)
    make_model(cfg, xb=torch.randn(8, 1, 28, 28))  # calibrated on the batch: no error
