"""The normalization layers against torch's own (outputs, gradients, running stats) + registry."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from actscope.nn.norms import (
    NORMS,
    BatchNorm,
    GroupNorm,
    InstanceNorm,
    LayerNorm,
    NormError,
    default_num_groups,
    make_norm,
)

TORCH_BN = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}
SHAPES = [(16, 6), (8, 6, 10), (4, 6, 5, 7), (2, 6, 3, 4, 5)]


def _randomise_affine(*mods: nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    w, b = torch.rand(mods[0].weight.shape, generator=g) + 0.5, torch.randn(
        mods[0].bias.shape, generator=g)
    with torch.no_grad():
        for m in mods:
            m.weight.copy_(w)
            m.bias.copy_(b)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}D")
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batchnorm_matches_torch_train_eval_and_running_stats(shape, momentum):
    torch.manual_seed(0)
    ours, ref = BatchNorm(6, momentum=momentum), TORCH_BN[len(shape)](6, momentum=momentum)
    _randomise_affine(ours, ref)
    for step in range(5):  # several steps: the running stats accumulate
        x = torch.randn(shape) * (step + 1) + 3 * step  # a different mean/std each step
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.running_mean, ref.running_mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.running_var, ref.running_var, atol=1e-5, rtol=1e-5)
    assert ours.num_batches_tracked.item() == ref.num_batches_tracked.item() == 5
    ours.eval()
    ref.eval()
    x = torch.randn(shape) * 4 + 2
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def test_batchnorm_gradients_match_torch():
    torch.manual_seed(0)
    ours, ref = BatchNorm(5), nn.BatchNorm2d(5)
    _randomise_affine(ours, ref)
    x = torch.randn(4, 5, 6, 6) * 2 + 1
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn_like(x)
    (ours(xa) * upstream).sum().backward()
    (ref(xb) * upstream).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad, atol=1e-4, rtol=1e-4)


def test_batchnorm_momentum_is_torchs_convention():
    bn = BatchNorm(3, momentum=0.2)
    x = torch.randn(10, 3, 4) + torch.tensor([1.0, -2.0, 5.0])[None, :, None]
    bn(x)
    batch_mean = x.mean(dim=(0, 2))
    batch_var = x.var(dim=(0, 2), unbiased=True)
    # running = (1 - m) * running + m * batch, from running_mean 0 and running_var 1
    torch.testing.assert_close(bn.running_mean, 0.2 * batch_mean)
    torch.testing.assert_close(bn.running_var, 0.8 + 0.2 * batch_var)


def test_batchnorm_affine_false_has_no_parameters_and_still_matches():
    ours, ref = BatchNorm(4, affine=False), nn.BatchNorm2d(4, affine=False)
    assert ours.weight is None and ours.bias is None and not list(ours.parameters())
    x = torch.randn(3, 4, 5, 5)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def test_batchnorm_one_value_per_channel_in_training_is_a_clear_error():
    bn = BatchNorm(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(torch.randn(1, 3))
    bn.eval()
    assert bn(torch.randn(1, 3)).shape == (1, 3)  # eval uses the running stats: fine


@pytest.mark.parametrize("shape", SHAPES[1:], ids=lambda s: f"{len(s)}D")
def test_layernorm_normalises_each_sample_over_c_and_positions(shape):
    torch.manual_seed(0)
    ln = LayerNorm(6)
    ref = nn.GroupNorm(1, 6)
    _randomise_affine(ln, ref)
    x = torch.randn(shape) * 3 + 7
    torch.testing.assert_close(ln(x), ref(x), atol=1e-5, rtol=1e-5)
    plain = LayerNorm(6)(x)
    flat = plain.flatten(1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(shape[0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.var(1, unbiased=False), torch.ones(shape[0]), atol=1e-3,
                               rtol=0)


@pytest.mark.parametrize("shape", SHAPES[1:], ids=lambda s: f"{len(s)}D")
def test_instancenorm_matches_torch_instancenorm(shape):
    torch.manual_seed(0)
    ref_cls = {3: nn.InstanceNorm1d, 4: nn.InstanceNorm2d, 5: nn.InstanceNorm3d}[len(shape)]
    ours, ref = InstanceNorm(6), ref_cls(6, affine=True)
    _randomise_affine(ours, ref)
    x = torch.randn(shape) * 2 - 4
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def test_instancenorm_rejects_input_without_positions():
    with pytest.raises(ValueError, match=r"InstanceNorm\(6\) expected input of shape \(N, C, L\)"):
        InstanceNorm(6)(torch.randn(4, 6))


@pytest.mark.parametrize("channels,groups", [(1, 1), (3, 1), (8, 2), (16, 4), (32, 8), (64, 16),
                                             (128, 32), (256, 32), (12, 3), (7, 1)])
def test_default_num_groups(channels, groups):
    assert default_num_groups(channels) == groups
    assert channels % groups == 0


def test_groupnorm_is_torchs_with_a_default_group_count():
    torch.manual_seed(0)
    gn = GroupNorm(None, 16)  # torch's order: (num_groups, num_channels)
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 4 and gn.num_channels == 16
    ref = nn.GroupNorm(4, 16)
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(gn(x), ref(x))
    assert GroupNorm(8, 16).num_groups == 8
    assert GroupNorm(num_groups=8, num_channels=16).num_channels == 16
    with pytest.raises(ValueError, match="positive divisor of num_channels=16"):
        GroupNorm(5, 16)


@pytest.mark.parametrize("cls", [BatchNorm, LayerNorm, InstanceNorm, GroupNorm])
def test_gradcheck_float64(cls):
    """Input, weight and bias gradients against finite differences (training mode)."""
    torch.manual_seed(0)
    layer = (GroupNorm(None, 4) if cls is GroupNorm else cls(4)).double()
    x = (torch.randn(3, 4, 3, 2, dtype=torch.float64) * 2 + 1).requires_grad_()
    weight = (torch.rand(4, dtype=torch.float64) + 0.5).requires_grad_()
    bias = torch.randn(4, dtype=torch.float64).requires_grad_()

    def fn(inp, w, b):
        return torch.func.functional_call(layer, {"weight": w, "bias": b}, (inp,))

    assert torch.autograd.gradcheck(fn, (x, weight, bias), eps=1e-6, atol=1e-5)
    if cls is not GroupNorm:  # ours are plain autograd ops: second derivatives work too
        small = x.detach()[:2, :, :2, :2].clone().requires_grad_()
        assert torch.autograd.gradgradcheck(fn, (small, weight, bias), eps=1e-6, atol=1e-4)


@pytest.mark.parametrize("name,cls", [("batch", BatchNorm), ("torch_batch", nn.BatchNorm2d),
                                      ("layer", LayerNorm), ("instance", InstanceNorm),
                                      ("group", GroupNorm)])
def test_make_norm_builds_each_registered_layer(name, cls):
    layer = make_norm(name, 8)
    assert type(layer) is cls
    assert layer.weight.shape == (8,)
    assert make_norm(name, 8) is not layer  # a fresh layer every call


def test_make_norm_none_and_running_batch():
    assert make_norm("none", 8) is None and make_norm(None, 8) is None
    rbn_module = pytest.importorskip("actscope.nn.running_batchnorm")
    assert isinstance(make_norm("running_batch", 8), rbn_module.RunningBatchNorm)


def test_make_norm_unknown_name_lists_the_valid_ones():
    with pytest.raises(NormError) as err:
        make_norm("batchnorm", 8)
    assert isinstance(err.value, ValueError)
    for name in [*NORMS, "none"]:
        assert repr(name) in str(err.value)
    with pytest.raises(ValueError, match="positive channel count"):
        make_norm("batch", 0)


@pytest.mark.parametrize("cls", [BatchNorm, LayerNorm, InstanceNorm])
def test_bad_constructor_arguments_are_clear_errors(cls):
    with pytest.raises(ValueError, match="num_features must be a positive channel count"):
        cls(0)
    with pytest.raises(ValueError, match="eps must be > 0"):
        cls(4, eps=0.0)


def test_batchnorm_stays_accurate_when_the_mean_dwarfs_the_std():
    """|mean| >> std: E[x^2] - E[x]^2 would lose every digit in float32; ours must not."""
    torch.manual_seed(0)
    x = torch.randn(32, 4, 6, 6) + 1e4  # float32, mean 1e4, std 1
    bn = BatchNorm(4)
    out = bn(x)
    x64 = x.double()
    mean = x64.mean(dim=(0, 2, 3), keepdim=True)
    var = x64.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    expected = (x64 - mean) / torch.sqrt(var + 1e-5)
    torch.testing.assert_close(out.double(), expected, atol=2e-3, rtol=0)
    torch.testing.assert_close(bn.running_var.double(),
                               0.9 + 0.1 * x64.var(dim=(0, 2, 3), unbiased=True), atol=1e-4,
                               rtol=1e-4)


@settings(max_examples=25, deadline=None)
@given(rank=st.integers(2, 5), n=st.integers(2, 5), c=st.integers(1, 4), size=st.integers(1, 4),
       momentum=st.sampled_from([0.0, 0.1, 0.9, 1.0]), shift=st.floats(-100, 100),
       scale=st.floats(0.01, 100), seed=st.integers(0, 2**16))
def test_batchnorm_matches_torch_on_any_shape(rank, n, c, size, momentum, shift, scale, seed):
    """Property: any (N, C, *) shape, momentum, mean and scale gives torch's outputs and stats."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, *([size] * (rank - 2)), generator=g) * scale + shift
    ours, ref = BatchNorm(c, momentum=momentum), TORCH_BN[rank](c, momentum=momentum)
    tol = 1e-5 * max(1.0, abs(shift) / scale)  # float32 rounding of x itself, relative to std
    torch.testing.assert_close(ours(x), ref(x), atol=tol, rtol=1e-4)
    torch.testing.assert_close(ours.running_mean, ref.running_mean, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(ours.running_var, ref.running_var, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}D")
def test_batchnorm_cumulative_average_matches_torch_in_float64(shape):
    """momentum=None: the k-th batch has weight 1/k, computed in float64 (it was float32)."""
    ours = BatchNorm(6, momentum=None).double()
    ref = TORCH_BN[len(shape)](6, momentum=None).double()
    g = torch.Generator().manual_seed(3)
    for _ in range(7):
        x = torch.randn(shape, generator=g, dtype=torch.float64) * 2.5 + 1.0
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-13, atol=1e-13)
    for name in ("running_mean", "running_var"):
        theirs = getattr(ref, name)
        rel = ((getattr(ours, name) - theirs).abs() / theirs.abs()).max().item()
        assert rel < 1e-15, f"{name} differs from torch's by {rel:.1e} (relative)"
    assert ours.num_batches_tracked.item() == ref.num_batches_tracked.item() == 7


def test_layernorm_is_what_its_docstring_says():
    """Over each sample's (C, *) values, per-channel affine; not nn.LayerNorm(C); not the lesson."""
    torch.manual_seed(0)
    x = torch.randn(4, 6, 5, 7, dtype=torch.float64) * 3 + 2
    ln = LayerNorm(6).double()
    _randomise_affine(ln)
    # nn.LayerNorm over (C, H, W), without its elementwise affine, then our per-channel affine
    plain = nn.functional.layer_norm(x, x.shape[1:], eps=ln.eps)
    expected = plain * ln.weight.view(1, -1, 1, 1) + ln.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(ln(x), expected)
    assert not torch.allclose(LayerNorm(6).double()(x), nn.LayerNorm(7).double()(x))  # W only
    # the lesson's version: unbiased variance, scalar mult/add (here 1 and 0)
    m, v = x.mean((1, 2, 3), keepdim=True), x.var((1, 2, 3), keepdim=True)
    lesson = (x - m) / (v + 1e-5).sqrt()
    assert not torch.allclose(LayerNorm(6).double()(x), lesson, rtol=0, atol=1e-6)
    n = 6 * 5 * 7  # the two differ exactly by the variance's factor n / (n - 1)
    torch.testing.assert_close(LayerNorm(6, eps=1e-12).double()(x),
                               (x - m) / (v * (n - 1) / n + 1e-12).sqrt())
