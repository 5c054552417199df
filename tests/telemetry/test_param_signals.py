"""ParamSignals: per-layer gradient norms and update/weight ratios against direct recomputation."""

import math

import pytest
import torch
from torch import nn

from actscope.telemetry.param_signals import ParamSignals, assign_params
from tests.telemetry.nosync import no_host_sync


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def norm_of(tensors) -> float:
    return math.sqrt(sum(float(t.detach().double().square().sum()) for t in tensors))


def test_grad_norms_match_direct_norms_and_nan_without_grads():
    model = mlp()
    layers = [model[0], model[1], model[2], model[4]]  # model[1] (ReLU) has no parameters
    sig = ParamSignals(layers)
    assert sig.grad_norms().isnan().all()  # before any backward: no grads
    model(torch.randn(5, 6)).sum().backward()
    got = sig.grad_norms()
    assert got.dtype == torch.float32 and got.shape == (4,)
    for j, m in zip((0, 2, 3), (model[0], model[2], model[4]), strict=True):
        assert got[j].item() == pytest.approx(norm_of(p.grad for p in m.parameters()), rel=1e-5)
    assert got[1].isnan()


def test_deepest_watched_module_owns_a_parameter_and_shared_params_count_once():
    model = mlp()
    block = nn.Sequential(model[0], model[1], model[2])
    pairs = assign_params([block, model[2]])  # model[2] is watched inside the watched block
    owners = {id(p): i for p, i in pairs}
    assert owners[id(model[2].weight)] == 1 and owners[id(model[0].weight)] == 0
    assert len(pairs) == 4  # each parameter once

    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = emb.weight  # tied: one parameter reached from two watched layers
    sig = ParamSignals([emb, head])
    head(emb(torch.tensor([1, 2]))).sum().backward()
    got = sig.grad_norms()
    assert got[0].item() == pytest.approx(emb.weight.grad.norm().item(), rel=1e-5)
    assert got[1].isnan()  # counted once, in the first layer


def test_frozen_and_sparse_grads_are_nan():
    model = mlp()
    for p in model[0].parameters():
        p.requires_grad_(False)
    emb = nn.Embedding(10, 4, sparse=True)
    sig = ParamSignals([model[0], model[2], emb])
    model(torch.randn(3, 6)).sum().backward()
    emb(torch.tensor([1, 3])).sum().backward()
    got = sig.grad_norms()
    assert got[0].isnan() and not got[1].isnan() and got[2].isnan()


def test_update_ratio_exact_for_small_params_and_sampled_for_large():
    model = mlp()
    sig = ParamSignals([model[0], model[2], model[1]], sample=4096)
    assert sig.update_ratios().isnan().all()  # first call: nothing to compare with
    before = [p.detach().clone() for p in model[0].parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(5, 6)).sum().backward()
    opt.step()
    got = sig.update_ratios()
    after = list(model[0].parameters())
    want = norm_of(a - b for a, b in zip(after, before, strict=True)) / norm_of(after)
    assert got[0].item() == pytest.approx(want, rel=1e-5)
    assert got[1].item() > 0 and got[2].isnan()  # ReLU: no parameters

    big = nn.Linear(200, 200)  # 40,000 weights > sample
    sig = ParamSignals([big], sample=1000)
    sig.update_ratios()
    with torch.no_grad():
        big.weight.mul_(1.01)
        big.bias.mul_(1.01)
    assert sig.update_ratios()[0].item() == pytest.approx(0.01 / 1.01, rel=1e-4)


def test_no_host_sync_per_step(monkeypatch):
    model = mlp()
    sig = ParamSignals(list(model), sample=16)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(5, 6)).sum().backward()
    sig.update_ratios()
    out = []
    with no_host_sync(monkeypatch):
        for _ in range(3):
            opt.zero_grad()
            model(torch.randn(5, 6)).sum().backward()
            out.append(sig.grad_norms())
            opt.step()
            out.append(sig.update_ratios())
    assert all(t.shape == (5,) for t in out)
    assert not out[-1][0].isnan() and out[-1][1].isnan()


def test_half_precision_grads_and_huge_norms_do_not_overflow():
    lin = nn.Linear(4, 4)
    sig = ParamSignals([lin])
    # Each parameter's squared norm (~2.2e38) fits float32, their sum (~4.4e38) does not.
    lin.weight.grad = torch.full((4, 4), 3.7e18)
    lin.bias.grad = torch.full((4,), 7.4e18)
    want = math.sqrt(16 * 3.7e18**2 + 4 * 7.4e18**2)
    assert sig.grad_norms()[0].item() == pytest.approx(want, rel=1e-5)
    lin16 = nn.Linear(4, 4).half()
    sig = ParamSignals([lin16])
    lin16.weight.grad = torch.ones(4, 4, dtype=torch.half)
    lin16.bias.grad = torch.ones(4, dtype=torch.half)
    assert sig.grad_norms()[0].item() == pytest.approx(math.sqrt(20), rel=1e-3)


def test_the_sample_is_fixed_and_seeded():
    big = nn.Linear(300, 300, bias=False)
    sig = ParamSignals([big], sample=500, seed=3)
    idx = sig._idx[0]
    assert torch.equal(idx, ParamSignals([big], sample=500, seed=3)._idx[0])
    outside = torch.ones(big.weight.numel(), dtype=torch.bool)
    outside[idx] = False
    sig.update_ratios()
    with torch.no_grad():
        big.weight.view(-1)[outside] += 1.0  # only elements the sample does not read
    assert sig.update_ratios()[0].item() == 0.0
    with torch.no_grad():
        big.weight.view(-1)[idx[:10]] += 1.0
    assert sig.update_ratios()[0].item() > 0.0


def test_a_huge_layer_does_not_swamp_the_ratio_of_a_small_one():
    """Per-parameter sums are exact per segment: 1e15-sized weights before 1e-3-sized ones."""
    a, b = nn.Linear(8, 8), nn.Linear(8, 8)
    with torch.no_grad():
        a.weight.fill_(1e15)
        b.weight.normal_(0, 1e-3)
    ps = ParamSignals([a, b])
    ps.update_ratios()
    with torch.no_grad():
        b.weight.mul_(1.01)
    r = ps.update_ratios()
    wb = b.weight.detach().double()
    bias = b.bias.detach().double()
    want = (wb / 1.01 * 0.01).norm() / torch.cat([wb.reshape(-1), bias]).norm()
    assert r[0].item() == 0.0
    assert r[1].item() == pytest.approx(want.item(), rel=1e-4)
