"""RunningBatchNorm against a float64 recomputation of the lesson's algorithm, and its contract."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn
from torch.func import functional_call

from actscope.nn.running_batchnorm import RunningBatchNorm


def lesson_reference(batches, momentum=0.1, eps=1e-5, weight=None, bias=None):
    """The lesson's RunningBatchNorm in float64: EW sums, sums of squares and counts (lerp).

    Returns the training outputs of every batch and the final (mean, var) used in eval.
    """
    c = batches[0].shape[1]
    sums = torch.zeros(c, dtype=torch.float64)
    sqrs = torch.zeros(c, dtype=torch.float64)
    count = torch.zeros((), dtype=torch.float64)
    seen = 0
    outs = []
    for x in batches:
        x = x.double()
        dims = [0, *range(2, x.dim())]
        bs = x.shape[0]
        mom1 = 1 - (1 - momentum) / math.sqrt(max(bs - 1, 1))
        sums = torch.lerp(sums, x.sum(dims), mom1)
        sqrs = torch.lerp(sqrs, (x * x).sum(dims), mom1)
        count = torch.lerp(count, torch.tensor(x.numel() / c, dtype=torch.float64), mom1)
        seen += bs
        mean = sums / count
        var = sqrs / count - mean * mean
        if seen < 20:
            var = var.clamp_min(0.01)
        outs.append(_normalise(x, mean, var, eps, weight, bias))
    return outs, mean, var


def _normalise(x, mean, var, eps, weight=None, bias=None):
    shape = (1, -1) + (1,) * (x.dim() - 2)
    y = (x - mean.view(shape)) / (var.view(shape) + eps).sqrt()
    if weight is not None:
        y = y * weight.double().view(shape) + bias.double().view(shape)
    return y


def _batches(shape_tail, sizes, seed=0, loc=0.0, scale=1.0, c=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(bs, c, *shape_tail, generator=g) * scale + loc for bs in sizes]


@pytest.mark.parametrize("tail", [(), (7,), (5, 6), (3, 4, 2)])
def test_matches_lesson_reference_1d_2d_3d(tail):
    batches = _batches(tail, sizes=[2, 1, 5, 16, 3, 2])
    layer = RunningBatchNorm(3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        layer.bias.copy_(torch.tensor([0.0, -1.0, 0.3]))
    outs, mean, var = lesson_reference(batches, weight=layer.weight, bias=layer.bias)
    for x, ref in zip(batches, outs, strict=True):
        torch.testing.assert_close(layer(x).double(), ref, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(layer.running_mean.double(), mean, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(layer.running_var.double(), var, atol=1e-6, rtol=1e-5)
    assert layer.samples_seen.item() == sum(x.shape[0] for x in batches)
    layer.eval()
    x = batches[0]
    ref = _normalise(x.double(), mean, var, 1e-5, layer.weight, layer.bias)
    torch.testing.assert_close(layer(x).double(), ref, atol=2e-5, rtol=1e-4)


def test_stable_when_mean_dwarfs_std():
    # mean 1e4, std 1: E[x²]-E[x]² in float32 loses every digit of the variance.
    batches = _batches((6, 6), sizes=[8, 8, 2, 8], seed=1, loc=1e4, scale=1.0)
    layer = RunningBatchNorm(3)
    outs, mean, var = lesson_reference(batches)  # float64: the truth
    for x, ref in zip(batches, outs, strict=True):
        torch.testing.assert_close(layer(x).double(), ref, atol=2e-3, rtol=0)
    assert torch.allclose(layer.running_var.double(), var, rtol=1e-3)
    # The lesson's float32 formula is far off on the same data: the test is not vacuous.
    x = torch.cat(batches)
    naive_var = (x * x).mean((0, 2, 3)) - x.mean((0, 2, 3)) ** 2
    true_var = x.double().var((0, 2, 3), correction=0)
    assert (naive_var.double() - true_var).abs().max() > 0.1


def test_batch_size_one_and_two_train_and_stay_finite():
    layer = RunningBatchNorm(4, momentum=0.1)
    assert layer.batch_weight(1) == pytest.approx(0.1)  # the lesson's formula: 1 - 0.9/0 = -inf
    assert layer.batch_weight(2) == pytest.approx(0.1)
    assert layer.batch_weight(65) == pytest.approx(1 - 0.9 / 8)
    for bs in (1, 2, 1, 1, 2):
        x = torch.randn(bs, 4, requires_grad=True)  # 1d: a single value per channel at bs 1
        y = layer(x)
        y.sum().backward()
        assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert layer.samples_seen.item() == 7
    assert torch.isfinite(layer.running_var).all() and (layer.running_var >= 0).all()


def test_warmup_clamp_then_release():
    layer = RunningBatchNorm(2)
    x = torch.full((2, 2, 3, 3), 5.0) + torch.randn(2, 2, 3, 3) * 1e-3  # variance ~1e-6
    y = layer(x)
    # Clamped to 0.01 while fewer than 20 samples are seen: outputs stay O(0.1), not O(1e3).
    assert y.abs().max() < 0.1
    for _ in range(10):
        y = layer(x)
    assert layer.samples_seen.item() == 22
    assert y.abs().max() > 0.2  # released: the tiny true variance now normalises


def test_state_dict_round_trip_keeps_counters():
    a = RunningBatchNorm(3)
    for x in _batches((4, 4), sizes=[2, 2, 2]):
        a(x)
    keys = set(a.state_dict())
    assert {"weight", "bias", "running_mean", "running_var", "count", "samples_seen"} <= keys
    b = RunningBatchNorm(3)
    b.load_state_dict(a.state_dict())
    x = _batches((4, 4), sizes=[2], seed=5)[0]
    torch.testing.assert_close(a(x), b(x))  # same warm-up state: no re-entry into the clamp
    assert b.samples_seen.item() == 8


def test_eval_uses_running_stats_and_does_not_update():
    layer = RunningBatchNorm(3)
    for x in _batches((4, 4), sizes=[8, 8, 8]):
        layer(x)
    layer.eval()
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    x = _batches((4, 4), sizes=[4], seed=9, loc=3.0)[0]
    y1, y2 = layer(x), layer(x[:1])
    torch.testing.assert_close(y1[:1], y2)  # per-sample: independent of the batch in eval
    for k, v in layer.state_dict().items():
        assert torch.equal(v, before[k]), k
    layer.train()
    assert not torch.allclose(layer(x), y1)  # training merges the batch in


def test_reset_repr_affine_and_errors():
    layer = RunningBatchNorm(5, eps=1e-3, momentum=0.2)
    layer(torch.randn(4, 5, 3))
    layer.reset_running_stats()
    assert layer.samples_seen.item() == 0 and layer.count.item() == 0
    assert torch.equal(layer.running_var, torch.ones(5))
    assert "5, eps=0.001, momentum=0.2" in repr(layer)
    plain = RunningBatchNorm(5, affine=False)
    assert plain.weight is None and list(plain.parameters()) == []
    plain(torch.randn(3, 5))
    with pytest.raises(ValueError, match="2D-5D"):
        layer(torch.randn(5))
    with pytest.raises(ValueError, match="num_features"):
        layer(torch.randn(2, 4, 3))
    with pytest.raises(ValueError, match="momentum"):
        RunningBatchNorm(5, momentum=0.0)


def _stateless(layer: RunningBatchNorm):
    """forward as a pure function of (x, weight, bias): the buffers are copied per call."""
    buffers = {k: v.clone() for k, v in layer.named_buffers()}

    def fn(x, weight, bias):
        state = {"weight": weight, "bias": bias, **{k: v.clone() for k, v in buffers.items()}}
        return functional_call(layer, state, (x,))
    return fn


@pytest.mark.parametrize("stats_grad", [True, False])
@pytest.mark.parametrize("shape", [(3, 2), (2, 2, 3, 3), (1, 2, 2, 2, 2)])
def test_gradcheck_float64(stats_grad, shape):
    layer = RunningBatchNorm(2, stats_grad=stats_grad).double()
    layer(torch.randn(shape, dtype=torch.float64) * 2 + 1)  # some history in the buffers
    layer(torch.randn(shape, dtype=torch.float64))
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    w = torch.tensor([1.5, 0.7], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.1, -0.2], dtype=torch.float64, requires_grad=True)
    if stats_grad:  # without it the stats' gradient is cut on purpose: train mode is not checkable
        assert torch.autograd.gradcheck(_stateless(layer), (x, w, b))
    layer.eval()
    assert torch.autograd.gradcheck(_stateless(layer), (x, w, b))


def test_stats_grad_matches_autograd_through_lesson_formula():
    # stats_grad=True must equal autograd through the lesson's ops (the current batch's share of
    # the sums keeps its gradient); stats_grad=False must equal treating the stats as constants.
    torch.manual_seed(0)
    hist = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    grads = {}
    for stats_grad in (True, False):
        layer = RunningBatchNorm(3, stats_grad=stats_grad).double()
        layer(hist)
        layer(hist[:2])
        (layer(x) * g).sum().backward()
        grads[stats_grad] = x.grad.clone()
        x.grad = None
    for stats_grad in (True, False):
        xx = x.detach().clone().requires_grad_(True)
        # With stats_grad the batch enters the reference's sums with its gradient; without, the
        # statistics are computed from a detached copy and only the normalisation is differentiated.
        _, mean, var = lesson_reference([hist, hist[:2], xx if stats_grad else xx.detach()])
        (_normalise(xx, mean, var, 1e-5) * g).sum().backward()
        torch.testing.assert_close(grads[stats_grad], xx.grad)
    assert not torch.allclose(grads[True], grads[False])


def test_no_graph_breaks_under_dynamo():
    # fullgraph=True fails on any graph break, e.g. a host sync such as `if samples_seen < 20`.
    compile_ok = hasattr(torch, "compile")
    if not compile_ok:
        pytest.skip("torch.compile is not available in this torch build")
    layer = RunningBatchNorm(4)
    ref = RunningBatchNorm(4)
    compiled = torch.compile(layer, backend="eager", fullgraph=True)
    for bs in (2, 2, 3):
        x = torch.randn(bs, 4, 3, 3, requires_grad=True)
        torch.testing.assert_close(compiled(x), ref(x))
    torch.testing.assert_close(layer.running_var, ref.running_var)
    assert layer.samples_seen.item() == 7


@pytest.mark.slow  # the first torch.compile in a process imports dynamo: several seconds
def test_compiled_forward_and_backward_match_eager():
    """The compiled graphs (AOTAutograd traces our autograd Functions' forward and backward)
    give eager's outputs and statistics.

    Runs in every ``make test`` with the ``aot_eager`` backend: the same tracing and
    functionalisation inductor starts from, without its C++ code generation (which took 30-110 s
    on a busy 2-core box). ACTSCOPE_SLOW=1 runs it with inductor as well.
    """
    backend = "inductor" if os.environ.get("ACTSCOPE_SLOW") else "aot_eager"
    layer, ref = RunningBatchNorm(8), RunningBatchNorm(8)
    compiled = torch.compile(layer, fullgraph=True, backend=backend)
    for _ in range(2):
        x = torch.randn(4, 8, 5, 5, requires_grad=True)
        y = compiled(x)
        y.square().sum().backward()
        torch.testing.assert_close(y, ref(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.running_var, ref.running_var, atol=1e-6, rtol=1e-5)


def test_trains_a_small_net_at_batch_size_two():
    torch.manual_seed(0)
    y = torch.randint(0, 2, (200,))
    x = torch.randn(200, 6) + y[:, None] * 2.0 - 1.0
    model = nn.Sequential(nn.Linear(6, 16, bias=False), RunningBatchNorm(16), nn.ReLU(),
                          nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for i in range(0, 200, 2):
        loss = nn.functional.cross_entropy(model(x[i:i + 2]), y[i:i + 2])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.85


def test_shares_the_affine_base_with_the_other_norms():
    from actscope.nn.affine import AffineNorm
    from actscope.nn.norms import BatchNorm, InstanceNorm, LayerNorm

    assert all(issubclass(c, AffineNorm) for c in (BatchNorm, LayerNorm, InstanceNorm,
                                                    RunningBatchNorm))
    assert "_affine" not in vars(RunningBatchNorm) and "weight" not in vars(RunningBatchNorm)
    plain = RunningBatchNorm(3, affine=False)
    assert plain.weight is None and plain.bias is None and "affine=False" in repr(plain)
    with pytest.raises(ValueError, match="eps must be > 0"):
        RunningBatchNorm(3, eps=0.0)
