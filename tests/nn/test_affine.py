"""nn/affine.py: the shared shape checks and per-channel affine part of the norm layers."""

from __future__ import annotations

import pytest
import torch

from actscope.nn.affine import AffineNorm, broadcast_channels, check_features, check_input


class Scale(AffineNorm):
    def __init__(self, c: int, affine: bool = True) -> None:
        super().__init__(c, 1e-5, affine)
        self.reset_parameters()

    def forward(self, x):
        return self._affine(x)


def test_broadcast_channels_lines_up_with_dim_one():
    t = torch.tensor([1.0, 2.0, 3.0])
    for shape in [(2, 3), (2, 3, 4), (2, 3, 4, 5)]:
        x = torch.ones(shape)
        b = broadcast_channels(t, x)
        assert b.shape == (1, 3) + (1,) * (len(shape) - 2)
        assert torch.equal((x * b)[0, :, ...].reshape(3, -1)[:, 0], t)


def test_check_input_names_layer_shape_and_rank():
    check_input(torch.zeros(2, 3, 4, 4), 3, "BatchNorm")
    want = r"BatchNorm\(3\) expected .* C=3, got shape \(2, 4\) \(2D\)"
    with pytest.raises(ValueError, match=want):
        check_input(torch.zeros(2, 4), 3, "BatchNorm")
    with pytest.raises(ValueError, match=r"\(1D\)"):
        check_input(torch.zeros(3), 3, "X")
    with pytest.raises(ValueError, match=r"got shape \(2, 3\)"):
        check_input(torch.zeros(2, 3), 3, "InstanceNorm", min_dim=3)


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "3"])
def test_check_features_wants_a_positive_int(bad):
    with pytest.raises(ValueError, match=rf"L: num_features must be a positive .* got {bad!r}"):
        check_features(bad, "L")


def test_the_affine_part_is_the_identity_after_reset_and_applies_per_channel():
    layer = Scale(3)
    x = torch.randn(2, 3, 4)
    assert torch.equal(layer(x), x)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
        layer.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    want = x * torch.tensor([1.0, 2.0, 3.0])[:, None] + torch.tensor([0.0, 1.0, -1.0])[:, None]
    torch.testing.assert_close(layer(x), want)


def test_without_affine_there_are_no_parameters():
    layer = Scale(3, affine=False)
    assert layer.weight is None and list(layer.parameters()) == []
    x = torch.randn(2, 3)
    assert layer(x) is x


def test_repr_and_eps_check():
    assert repr(Scale(4)) == "Scale(4, eps=1e-05, affine=True)"
    with pytest.raises(ValueError, match="Scale: eps must be > 0, got 0"):
        AffineNorm.__init__(Scale.__new__(Scale), 3, 0.0, True)
