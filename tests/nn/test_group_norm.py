"""nn/group_norm.py: torch's GroupNorm with a default group count and a clear shape error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actscope.nn.group_norm import GroupNorm, default_num_groups


@pytest.mark.parametrize("c, groups", [(1, 1), (4, 1), (8, 2), (16, 4), (64, 16), (128, 32),
                                       (256, 32), (12, 3), (7, 1)])
def test_default_num_groups(c, groups):
    assert default_num_groups(c) == groups


def test_matches_torch_for_the_same_groups():
    torch.manual_seed(0)
    ours, ref = GroupNorm(4, 16), nn.GroupNorm(4, 16)
    with torch.no_grad():
        ours.weight.normal_()
        ours.bias.normal_()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 16, 5, 5)
    torch.testing.assert_close(ours(x), ref(x))


def test_none_picks_the_default():
    assert GroupNorm(None, 64).num_groups == 16


def test_bad_group_counts_are_refused():
    for bad in (0, 3, True, -2):
        with pytest.raises(ValueError, match="num_groups must be a positive divisor of "
                                             "num_channels=16"):
            GroupNorm(bad, 16)
    with pytest.raises(ValueError, match="num_features must be a positive"):
        GroupNorm(None, 0)


def test_a_wrong_input_names_the_layer_and_shape():
    with pytest.raises(ValueError, match=r"GroupNorm\(8\) expected .* got shape \(2, 4, 3\)"):
        GroupNorm(2, 8)(torch.zeros(2, 4, 3))
