"""BatchTransformCallback."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from actscope.callbacks.transform import BatchTransformCallback
from actscope.learner import Learner
from tests.conftest import TensorBatches
from tests.helpers import Spy


def test_batch_transform_reshapes_flat_inputs():
    torch.manual_seed(0)
    x, y = torch.randn(20, 16), torch.randint(0, 3, (20,))
    dls = SimpleNamespace(train=TensorBatches(x, y, 5), valid=None)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))
    spy = Spy()
    learn = Learner(model, dls, cbs=[BatchTransformCallback(lambda t: t.view(-1, 1, 4, 4)), spy])
    learn.fit(1)
    assert [s[3].shape for s in spy.seen] == [torch.Size([5, 1, 4, 4])] * 4
    with pytest.raises(ValueError):
        BatchTransformCallback()
