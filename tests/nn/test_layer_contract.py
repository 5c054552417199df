"""One contract for every registered normalization layer: a drop-in torch.nn citizen.

state_dict round trip, repr, reset_parameters/reset_running_stats, train vs eval, 1d/2d/3d
inputs, clear errors for a wrong rank, and all tensor state in parameters or buffers.
RunningBatchNorm is included when its module can be imported; its train/eval check is its own
(it normalises with running statistics in training too).
"""

from __future__ import annotations

import copy
import importlib.util
import io

import pytest
import torch
from torch import nn

from actscope.nn.norms import make_norm

C = 6
# registry name -> input ranks it supports ((N, C), (N, C, L), (N, C, H, W), (N, C, D, H, W))
RANKS = {"batch": (2, 3, 4, 5), "torch_batch": (4,), "layer": (2, 3, 4, 5),
         "instance": (3, 4, 5), "group": (2, 3, 4, 5)}
if importlib.util.find_spec("actscope.nn.running_batchnorm") is not None:
    RANKS["running_batch"] = (2, 3, 4, 5)
USES_BATCH_STATS = {"batch", "torch_batch"}  # train normalises by the batch, eval by running stats
STATELESS = {"layer", "instance", "group"}  # same function in train and eval
BOUNDED_RANK = {"torch_batch", "running_batch"}  # the others accept any (N, C, *) rank >= min
CASES = [(name, rank) for name, ranks in RANKS.items() for rank in ranks]
SIZES = {2: (8, C), 3: (4, C, 5), 4: (3, C, 4, 5), 5: (2, C, 3, 3, 4)}




def _input(rank: int, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(SIZES[rank], generator=g, dtype=dtype) * 3 + 2


def _trained(name: str, rank: int) -> nn.Module:
    """A layer after a few training steps, with non-default weight and bias."""
    layer = make_norm(name, C)
    for step in range(3):
        layer(_input(rank, seed=step + 10))
    with torch.no_grad():
        layer.weight.mul_(1.5).add_(0.1)
        layer.bias.add_(0.7)
    return layer


def _assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("name,rank", CASES)
def test_shape_dtype_and_float64(name, rank):
    x = _input(rank)
    layer = make_norm(name, C)
    out = layer(x)
    assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()
    out64 = make_norm(name, C).double()(_input(rank, dtype=torch.float64))
    assert out64.dtype == torch.float64


@pytest.mark.parametrize("name,rank", CASES)
def test_state_dict_round_trip(name, rank):
    trained = _trained(name, rank)
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    fresh = make_norm(name, C)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    _assert_same_state(trained, fresh)
    x = _input(rank, seed=99)
    for mode in ("eval", "train"):  # eval first: train mode updates the running statistics
        getattr(trained, mode)()
        getattr(fresh, mode)()
        torch.testing.assert_close(trained(x), fresh(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", list(RANKS))
def test_repr_names_the_class_and_channels(name):
    layer = make_norm(name, C)
    text = repr(layer)
    assert text.startswith(type(layer).__name__ + "(")
    assert str(C) in layer.extra_repr() and "eps=" in layer.extra_repr()


@pytest.mark.parametrize("name,rank", [(n, RANKS[n][-1]) for n in RANKS])
def test_reset_parameters_restores_a_fresh_layer(name, rank):
    layer, fresh = _trained(name, rank), make_norm(name, C)
    layer.reset_parameters()
    _assert_same_state(layer, fresh)
    torch.testing.assert_close(layer.weight, torch.ones(C), rtol=0, atol=0)
    torch.testing.assert_close(layer.bias, torch.zeros(C), rtol=0, atol=0)


@pytest.mark.parametrize("name,rank", [(n, RANKS[n][-1]) for n in RANKS if n not in STATELESS])
def test_reset_running_stats_keeps_the_parameters(name, rank):
    layer, fresh = _trained(name, rank), make_norm(name, C)
    weight = layer.weight.detach().clone()
    assert any(not torch.equal(b, fresh.get_buffer(k)) for k, b in layer.named_buffers())
    layer.reset_running_stats()
    for key, buf in layer.named_buffers():
        torch.testing.assert_close(buf, fresh.get_buffer(key), rtol=0, atol=0, msg=key)
    torch.testing.assert_close(layer.weight.detach(), weight, rtol=0, atol=0)


@pytest.mark.parametrize("name,rank", CASES)
def test_eval_neither_changes_state_nor_depends_on_the_batch(name, rank):
    layer = _trained(name, rank).eval()
    before = copy.deepcopy(layer.state_dict())
    x = _input(rank, seed=5)
    out = layer(x)
    for key, value in layer.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0, msg=key)
    # in eval each sample is normalised on its own: the first sample alone gives the same rows
    torch.testing.assert_close(layer(x[:1]), out[:1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,rank", CASES)
def test_train_and_eval_behaviour(name, rank):
    layer = _trained(name, rank)
    x = _input(rank, seed=7)
    before = copy.deepcopy(layer).eval()
    train_out = layer.train()(x)
    eval_out = layer.eval()(x)
    if name in USES_BATCH_STATS:
        assert not torch.allclose(train_out, eval_out, atol=1e-3)
        # training output is normalised by this batch: per-channel mean ~ bias
        dims = [0, *range(2, rank)]
        torch.testing.assert_close(train_out.mean(dims), layer.bias.detach(), atol=1e-4,
                                   rtol=1e-4)
    elif name in STATELESS:
        torch.testing.assert_close(train_out, eval_out, rtol=0, atol=0)
    else:  # running_batch: training updates the statistics it normalises with, so they differ
        # training first merged x into the running statistics, then normalised with them ...
        assert any(not torch.equal(b, before.get_buffer(k)) for k, b in layer.named_buffers())
        view = [1, C] + [1] * (rank - 2)
        mean, var = layer.running_mean.view(view), layer.running_var.view(view)
        expected = ((x - mean) / torch.sqrt(var + layer.eps) * layer.weight.view(view)
                    + layer.bias.view(view))
        torch.testing.assert_close(train_out, expected, rtol=1e-5, atol=1e-5)
        # ... so eval now (the updated statistics) gives the same, and eval before did not
        torch.testing.assert_close(eval_out, train_out, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(before(x), train_out, atol=1e-4)
        # and the next training step on the same batch moves the statistics again
        assert not torch.allclose(layer.train()(x), train_out, atol=1e-5)


@pytest.mark.parametrize("name", list(RANKS))
def test_wrong_rank_is_a_value_error_that_says_what_was_expected(name):
    ranks = RANKS[name]
    bad = list(range(1, min(ranks)))  # too few dims: no channel axis, or no positions
    if name in BOUNDED_RANK:
        bad.append(max(ranks) + 1)
    for rank in bad:
        x = torch.randn(*([C] * rank))
        with pytest.raises(ValueError, match="(?i)expect"):
            make_norm(name, C)(x)


@pytest.mark.parametrize("name", [n for n in RANKS if n != "torch_batch"])
def test_wrong_channel_count_is_a_value_error(name):
    rank = RANKS[name][-1]
    shape = list(SIZES[rank])
    shape[1] = C + 1
    with pytest.raises(ValueError, match=str(C)):
        make_norm(name, C)(torch.randn(shape))


@pytest.mark.parametrize("name", list(RANKS))
def test_all_tensor_state_is_a_parameter_or_buffer(name):
    layer = make_norm(name, C)
    plain = [k for k, v in vars(layer).items() if isinstance(v, torch.Tensor)]
    assert plain == [], f"tensors outside state_dict: {plain}"
    assert {n for n, _ in layer.named_parameters()} == {"weight", "bias"}


@pytest.mark.parametrize("name,rank", [(n, RANKS[n][-1]) for n in RANKS])
def test_deepcopy_is_independent(name, rank):
    layer = _trained(name, rank)
    clone = copy.deepcopy(layer)
    layer(_input(rank, seed=3))
    with torch.no_grad():
        layer.weight.add_(1)
    assert not torch.equal(layer.weight, clone.weight)
