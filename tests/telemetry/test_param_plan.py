"""param_plan: per-layer layouts (padded tables and flat runs) against float64 recomputation."""

import math

import pytest
import torch
from torch import nn

from actscope.telemetry import param_plan
from actscope.telemetry.param_signals import ParamSignals, assign_params
from actscope.telemetry.signal_slots import LAYER_FIELDS, SignalSlots
from tests.telemetry.nosync import no_host_sync


@pytest.fixture(params=["padded", "flat"])
def layout(request, monkeypatch):
    """Run a test with each layout forced (the flat one is used when padding would waste)."""
    monkeypatch.setattr(param_plan, "_padded", lambda *a: request.param == "padded")
    return request.param


def model_and_layers():
    """Several params per layer, a nested watched layer, a layer without params, tied params."""
    torch.manual_seed(0)
    emb = nn.Embedding(12, 6)
    block = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Linear(8, 8))
    head = nn.Linear(6, 12, bias=False)
    head.weight = emb.weight  # tied: counted once, in emb
    act = nn.ReLU()
    layers = [block, emb, block[2], act, head]  # block[2] watched inside the watched block
    return emb, block, head, layers


def run(emb, block, head, tokens):
    h = emb(tokens)  # (N, 6)
    return (block(h).sum() + head(h).square().sum())


def reference_norms(layers, values) -> list[float]:
    """sqrt of the float64 sum of squares of each layer's owned tensors (NaN if none)."""
    owned = {i: [] for i in range(len(layers))}
    for p, i in assign_params(layers):
        v = values(p)
        if v is not None:
            owned[i].append(v)
    return [math.sqrt(sum(float(t.double().square().sum()) for t in ts)) if ts else math.nan
            for i, ts in owned.items()]


def close(got: torch.Tensor, want: list[float], rel: float = 1e-6) -> None:
    for g, w in zip(got.tolist(), want, strict=True):
        assert (math.isnan(g) and math.isnan(w)) or g == pytest.approx(w, rel=rel), (got, want)


def test_grad_norms_per_layer_match_float64_reference(layout):
    emb, block, head, layers = model_and_layers()
    sig = ParamSignals(layers)
    run(emb, block, head, torch.tensor([1, 2, 5])).backward()
    got = sig.grad_norms()
    close(got, reference_norms(layers, lambda p: p.grad))
    assert got[3].isnan() and got[4].isnan()  # ReLU: no params; head: its weight is emb's
    assert sig._grad_plans and all(
        pl.padded == (layout == "padded") for pl in sig._grad_plans.values())


def test_frozen_layer_and_sparse_grad_read_nan_and_the_rest_stays_exact(layout):
    emb, block, head, layers = model_and_layers()
    for p in block[0].parameters():
        p.requires_grad_(False)  # frozen part of the block: the block keeps its LayerNorm
    block[2].requires_grad_(False)
    sig = ParamSignals(layers)
    run(emb, block, head, torch.tensor([3])).backward()
    got = sig.grad_norms()
    close(got, reference_norms(layers, lambda p: p.grad))
    assert got[2].isnan() and not got[0].isnan()

    sparse = nn.Embedding(10, 4, sparse=True)
    dense = nn.Linear(4, 2)
    sig = ParamSignals([nn.Sequential(sparse, dense), dense, sparse])
    dense(sparse(torch.tensor([1, 3]))).sum().backward()
    got = sig.grad_norms()
    assert got[0].isnan() and got[2].isnan()  # owns a sparse grad: NaN, not a partial norm
    assert got[1].item() == pytest.approx(
        math.sqrt(sum(float(p.grad.double().square().sum()) for p in dense.parameters())))


def test_padding_is_chosen_only_where_it_wastes_little():
    assert param_plan._padded(2, 5, 10)  # the lesson CNN's grads: weight + bias per layer
    assert not param_plan._padded(12, 6, 17)  # one block of 12 params among 5 single ones
    wide = nn.Sequential(*[nn.Linear(64, 64) for _ in range(4)])
    sig = ParamSignals([wide] + [nn.LayerNorm(4) for _ in range(6)], sample=100_000)
    sig.update_ratios()
    assert not sig._plan.padded  # 16,640 elements vs 8 each: runs, not a 7 x 16,640 table


def test_a_new_pattern_of_grads_gets_its_own_plan():
    emb, block, head, layers = model_and_layers()
    sig = ParamSignals(layers)
    run(emb, block, head, torch.tensor([1])).backward()
    sig.grad_norms()
    block[0].weight.grad = None  # e.g. a set_to_none zero_grad of part of the model
    got = sig.grad_norms()
    close(got, reference_norms(layers, lambda p: p.grad))
    assert len(sig._grad_plans) == 2


def test_update_ratios_match_float64_reference_on_the_sample(layout):
    emb, block, head, layers = model_and_layers()
    big = nn.Linear(40, 30)  # 1,200 weights > the sample of 100
    layers = layers + [big]
    sig = ParamSignals(layers, sample=100)
    pairs = assign_params(layers)
    idx = {id(p): i for (p, _), i in zip(pairs, sig._idx, strict=True)}

    def sample(p):
        flat = p.detach().reshape(-1).double()
        return flat if idx[id(p)] is None else flat[idx[id(p)]]

    sig.snapshot()
    before = {id(p): sample(p) for p, _ in pairs}
    with torch.no_grad():
        for k, (p, _) in enumerate(pairs):
            p.add_(torch.randn_like(p) * 0.01 * (k + 1))
    got = sig.update_ratios()
    change = reference_norms(layers, lambda p: sample(p) - before[id(p)])
    weights = reference_norms(layers, sample)
    close(got, [c / w for c, w in zip(change, weights, strict=True)], rel=1e-5)
    assert got[3].isnan() and got[4].isnan()  # no params of their own
    assert sig._plan.padded == (layout == "padded")


def test_ratio_spans_the_snapshot_and_flips_rows_without_copies(layout):
    lin = nn.Linear(3, 3)
    sig = ParamSignals([lin])
    for k in range(3):
        sig.snapshot()
        with torch.no_grad():
            lin.weight.mul_(1.5)
            lin.bias.mul_(1.5)
        assert sig.update_ratios()[0].item() == pytest.approx(0.5 / 1.5, rel=1e-6), k
    assert sig.update_ratios()[0].item() == 0.0  # nothing changed since the last ratio


def test_a_dtype_change_restarts_the_sample_and_half_params_are_sampled():
    lin = nn.Linear(80, 80)
    sig = ParamSignals([lin], sample=500)
    sig.snapshot()
    lin.half()  # a conversion is no optimizer update
    assert sig.update_ratios()[0].isnan()
    with torch.no_grad():
        lin.weight.mul_(2)
        lin.bias.mul_(2)
    assert sig.update_ratios()[0].item() == pytest.approx(0.5, rel=1e-3)


def test_channels_last_weights_are_read_right():
    conv_small, conv_big = nn.Conv2d(2, 3, 3), nn.Conv2d(16, 16, 3)  # 54 and 2,304 weights
    net = nn.Sequential(conv_small, conv_big).to(memory_format=torch.channels_last)
    assert not conv_big.weight.is_contiguous()
    sig = ParamSignals(list(net), sample=1000)
    sig.snapshot()
    with torch.no_grad():
        conv_small.weight.mul_(3)
        conv_big.weight.mul_(3)
    got = sig.update_ratios()
    w, b = conv_small.weight.double(), conv_small.bias.double()
    want = (w * 2 / 3).norm() / torch.cat([w.reshape(-1), b]).norm()
    assert got[0].item() == pytest.approx(want.item(), rel=1e-5)
    assert 0.5 < got[1].item() < 2 / 3


def test_no_params_at_all_read_nan():
    sig = ParamSignals([nn.ReLU(), nn.Identity()])
    assert sig.grad_norms().isnan().all() and sig.update_ratios().isnan().all()


def test_out_writes_into_the_record_slot_without_a_host_sync(monkeypatch):
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    layers = list(model)
    sig = ParamSignals(layers)
    slots = SignalSlots(len(layers), chunk=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(5, 4)).sum().backward()
    sig.grad_norms(out=slots.layer_out("grad_norm", 0, torch.device("cpu")))
    with no_host_sync(monkeypatch):
        for slot in (1, 2):
            opt.zero_grad()
            model(torch.randn(5, 4)).sum().backward()
            g = slots.layer_out("grad_norm", slot, torch.device("cpu"))
            assert sig.grad_norms(out=g) is g
            sig.snapshot()
            opt.step()
            sig.update_ratios(out=slots.layer_out("update_ratio", slot, torch.device("cpu")))
    col = slots.layer[:, :, 2 + LAYER_FIELDS.index("grad_norm")]
    torch.testing.assert_close(col[:, 2], sig.grad_norms(), equal_nan=True, rtol=0, atol=0)
    assert col[1, 0].isnan() and not col[0, 0].isnan()
    ratio = slots.layer[:, :, 2 + LAYER_FIELDS.index("update_ratio")]
    assert ratio[:, 0].isnan().all() and not ratio[0, 1].isnan() and ratio[1, 2].isnan()


@pytest.mark.filterwarnings("ignore:Using backward")
def test_outside_no_grad_nothing_records_a_graph():
    """Grads of a create_graph backward require grad; parameters always do: no graph kept."""
    lin = nn.Linear(3, 2)
    sig = ParamSignals([lin])
    lin(torch.randn(4, 3)).square().sum().backward(create_graph=True)
    assert lin.weight.grad.requires_grad
    assert not sig.grad_norms().requires_grad
    sig.snapshot()
    assert not sig.update_ratios().requires_grad and not sig._plan.buf.requires_grad
    lin.weight.grad = lin.bias.grad = None  # break the create_graph cycle


def test_a_replaced_param_data_is_read_not_the_kept_view():
    big = nn.Linear(100, 100, bias=False)
    sig = ParamSignals([big], sample=500)
    sig.snapshot()
    sig.update_ratios()  # the flat view of the weight is kept now
    sig.snapshot()
    with torch.no_grad():
        big.weight.data = big.weight.data * 2  # new storage: the old view is stale
    assert sig.update_ratios()[0].item() == pytest.approx(0.5, rel=1e-6)


def test_no_layers_gives_empty_results():
    sig = ParamSignals([])
    assert sig.grad_norms().shape == (0,) and sig.update_ratios().shape == (0,)
