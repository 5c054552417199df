"""The diagnosis signals through ``actscope.watch()``: each field against a direct recomputation,
the optimizer step hooks (given or found), ``every``, attention, switches, no host sync, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim import optimizer as optim_mod

import actscope
from actscope.errors import UsageError
from actscope.telemetry import channels
from tests.integrations.test_watch import batches, mlp
from tests.telemetry.nosync import no_host_sync
from tests.telemetry.test_hooks_hygiene import leftover_hooks
from tests.telemetry.tiny_models import SdpaAttention

NEW = ("absmax", "nonfinite", "grad_norm", "update_ratio", "out_lse", "out_absmax", "scalars")


def own_params(m: nn.Module) -> list[nn.Parameter]:
    return list(m.parameters())


def run(model, w, data, opt, truth=None, every=1):
    """A plain loop; ``truth`` collects per-step direct values of every signal."""
    layers = [model[0], model[1], model[2]]
    outs = {}
    hooks = [m.register_forward_hook(lambda m, a, o, i=i: outs.__setitem__(i, o.detach()))
             for i, m in enumerate(layers)]
    try:
        for i, (xb, yb) in enumerate(data):
            out = model(xb)
            loss = nn.functional.cross_entropy(out, yb)
            loss.backward()
            if truth is not None and i % every == 0:
                truth["absmax"].append([outs[j].abs().max().item() for j in range(3)])
                truth["grad_norm"].append([
                    math.sqrt(sum(p.grad.pow(2).sum().item() for p in own_params(m)))
                    for m in layers])
                before = [[p.detach().clone() for p in own_params(m)] for m in layers]
                truth["out_lse"].append(torch.logsumexp(out.detach(), -1).mean().item())
                truth["out_absmax"].append(out.detach().abs().max().item())
                truth["loss"].append(loss.item())
            opt.step()
            if truth is not None and i % every == 0:
                truth["update_ratio"].append([
                    math.sqrt(sum((p.detach() - b).pow(2).sum().item()
                                  for p, b in zip(own_params(m), bs, strict=True)))
                    / math.sqrt(sum(p.detach().pow(2).sum().item() for p in own_params(m)))
                    for m, bs in zip(layers, before, strict=True)])
            opt.zero_grad()
            w.step(loss=loss.detach(), lr=opt.param_groups[0]["lr"])
    finally:
        for h in hooks:
            h.remove()


def truth_dict():
    return {k: [] for k in ("absmax", "grad_norm", "update_ratio", "out_lse", "out_absmax",
                            "loss")}


@pytest.mark.parametrize("pass_optimizer", [True, False])
def test_every_field_matches_a_direct_recomputation(pass_optimizer):
    model, data = mlp(), batches(5)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    truth = truth_dict()
    with actscope.watch(model, modules=[model[0], model[1], model[2]], signal_every=1,
                        optimizer=opt if pass_optimizer else None) as w:
        run(model, w, data, opt, truth)
    t = w.result()
    assert t.iters.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(t.absmax.T, truth["absmax"], rtol=1e-6)
    assert t.nonfinite.dtype == np.uint8 and not t.nonfinite.any()
    np.testing.assert_allclose(t.grad_norm.T, truth["grad_norm"], rtol=1e-5)
    # the weights here are small enough to be sampled whole: exact
    np.testing.assert_allclose(t.update_ratio.T, truth["update_ratio"], rtol=1e-4)
    np.testing.assert_allclose(t.out_lse, truth["out_lse"], rtol=1e-6)
    np.testing.assert_allclose(t.out_absmax, truth["out_absmax"], rtol=1e-6)
    # the step hook records lr (and, on signal steps, the total gradient norm) first
    assert sorted(t.scalar_names) == ["grad_norm_total", "loss", "lr"]
    np.testing.assert_allclose(t.scalar("loss"), truth["loss"], rtol=1e-6)
    assert t.scalars.dtype == np.float64 and (t.scalar("lr") == 0.05).all()
    ctx = t.meta["context"]
    assert ctx["optimizer"]["type"] == "SGD" and ctx["optimizer"]["momentum"] == 0.9
    assert set(ctx["layers"]) == set(t.names)
    assert leftover_hooks(model) == []


def test_every_n_records_ratios_over_the_recorded_step_only():
    model, data = mlp(), batches(7)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    truth = truth_dict()
    with actscope.watch(model, modules=[model[0], model[1], model[2]], signal_every=1, every=3,
                        optimizer=opt) as w:
        run(model, w, data, opt, truth, every=3)
    t = w.result()
    assert t.iters.tolist() == [0, 3, 6]
    np.testing.assert_allclose(t.update_ratio.T, truth["update_ratio"], rtol=1e-4)
    np.testing.assert_allclose(t.grad_norm.T, truth["grad_norm"], rtol=1e-5)
    np.testing.assert_allclose(t.scalar("loss"), truth["loss"], rtol=1e-6)
    assert t.meta["update_ratio_span"] == "one optimizer step"


def test_global_step_hooks_only_answer_the_watched_models_optimizer():
    model, other = mlp(), nn.Linear(3, 3)
    opt, other_opt = (torch.optim.SGD(model.parameters(), lr=0.1),
                      torch.optim.SGD(other.parameters(), lr=0.1))
    before = len(optim_mod._global_optimizer_pre_hooks)
    w = actscope.watch(model, signal_every=1)
    assert w.acc.context["optimizer"] is None  # not known until it steps
    for xb, yb in batches(2):
        nn.functional.cross_entropy(model(xb), yb).backward()
        other(torch.randn(2, 3)).sum().backward()
        opt.step()
        other_opt.step()
        w.step()
    t = w.result()
    assert w.steps_hooks._ours[opt] is True and w.steps_hooks._ours[other_opt] is False
    assert t.meta["context"]["optimizer"]["type"] == "SGD"
    assert np.isfinite(t.grad_norm).all() and np.isfinite(t.update_ratio).all()
    w.remove()
    assert len(optim_mod._global_optimizer_pre_hooks) == before


def test_a_hand_written_update_reads_gradients_at_step():
    model = mlp()
    with actscope.watch(model, signal_every=1) as w:
        for xb, yb in batches(2):
            nn.functional.cross_entropy(model(xb), yb).backward()
            w.step()  # before the update: the gradients are still there
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.1 * p.grad
                    p.grad = None
    t = w.result()
    assert np.isfinite(t.grad_norm).all() and np.isnan(t.update_ratio).all()


class Blow(nn.Module):
    """Multiplies by ``scale`` from step ``at`` on (a finite 1e21, or inf)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale, self.calls = scale, 0

    def forward(self, x):
        self.calls += 1
        return x * self.scale if self.calls > 2 else x


@pytest.mark.parametrize("scale", [1e21, float("inf")])
def test_absmax_is_exact_and_nonfinite_honest(scale):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), Blow(scale), nn.Linear(8, 2))
    with actscope.watch(model, modules=list(model), signal_every=1) as w:
        for _ in range(4):
            model(torch.randn(3, 4))
            w.step()
    t = w.result()
    assert (t.nonfinite[0] == 0).all() and (t.nonfinite[:, :2] == 0).all()
    if math.isinf(scale):
        assert t.nonfinite[1, 2:].tolist() == [1, 1] and np.isinf(t.absmax[1, 2:]).all()
    else:  # huge but finite: a sum of squares would overflow, max |x| does not
        assert (t.nonfinite[1:] == 0).all() and (t.absmax[1, 2:] > 1e20).all()
        assert np.isfinite(t.absmax).all()


class Block(nn.Module):
    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.ln, self.attn, self.mlp = nn.LayerNorm(d), SdpaAttention(d), nn.Linear(d, d)

    def forward(self, x):
        x = x + self.attn(self.ln(x))
        return x + self.mlp(x)


def tiny_gpt() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(32, 16), Block(), Block(), nn.Linear(16, 32))


def lm_loop(model, w, steps=4, opt=None, start=0):
    opt = opt or torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(start)
    for _ in range(steps):
        ids = torch.randint(0, 32, (4, 12), generator=g)
        logits = model(ids)
        loss = nn.functional.cross_entropy(logits.reshape(-1, 32), ids.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()
        w.step(loss=loss.detach())
    return opt


def test_attention_lands_on_the_watched_block_that_holds_it():
    model = tiny_gpt()
    with actscope.watch(model, modules=list(model), optimizer=None, signal_every=1) as w:
        lm_loop(model, w)
    t = w.result()
    assert np.isnan(t.attn_logit_max[[0, 3]]).all()  # embedding and head: no attention
    assert np.isfinite(t.attn_logit_max[1:3]).all()
    # causal attention over 12 keys: entropy between 0 and log 12
    assert ((t.attn_entropy[1:3] > 0) & (t.attn_entropy[1:3] < math.log(12))).all()
    assert t.meta["context"]["model"]["has_attention"]


def test_each_signal_can_be_switched_off():
    model = tiny_gpt()
    with actscope.watch(model, extremes=False, grad_norms=False, update_ratios=False,
                        attention=False, output_logits=False) as w:
        lm_loop(model, w, steps=2)
    t = w.result()
    for f in ("absmax", "nonfinite", "grad_norm", "update_ratio", "attn_logit_max",
              "attn_entropy", "out_lse", "out_absmax"):
        assert getattr(t, f) is None, f
    assert t.scalar_names == ["loss"]  # scalars are what the loop gives
    with pytest.raises(UsageError, match="extremes must be True or False"):
        actscope.watch(model, extremes="no")


def test_bad_scalars_and_optimizer_are_refused():
    model = mlp()
    with actscope.watch(model) as w:
        model(torch.randn(2, 6))
        with pytest.raises(UsageError, match="1-element tensor"):
            w.step(loss=torch.ones(3))
        with pytest.raises(UsageError, match="number"):
            w.step(acc="high")
    with pytest.raises(UsageError, match="torch.optim.Optimizer"):
        actscope.watch(model, optimizer="adam")


def test_no_host_sync_with_every_signal_on(monkeypatch):
    """Attention, gradient norms, update ratios, output logits, tensor scalars: no sync."""
    monkeypatch.setattr(channels, "can_read_flags", lambda device: False)
    model = tiny_gpt()
    # SGD: Adam's step reads its step counter with .item() on a CPU (torch's, not ours)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    w = actscope.watch(model, modules=list(model), optimizer=opt, chunk=2, signal_every=1)
    with no_host_sync(monkeypatch):
        lm_loop(model, w, steps=5, opt=opt)
        w.end_epoch()
    w.remove()
    t = w.result()
    assert len(t.iters) == 5 and np.isfinite(t.attn_logit_max[1:3]).all()
    assert np.isfinite(t.update_ratio).all() and np.isfinite(t.scalar("loss")).all()


def test_resume_continues_every_new_field_exactly():
    full_model = tiny_gpt()
    with actscope.watch(full_model, modules=list(full_model), chunk=3) as full:
        opt = lm_loop(full_model, full, steps=3)
        lm_loop(full_model, full, steps=3, opt=opt, start=1)
    model = tiny_gpt()
    first = actscope.watch(model, modules=list(model), chunk=3)
    opt = lm_loop(model, first, steps=3)
    state = first.state_dict()
    first.remove()
    second = actscope.watch(model, modules=list(model), chunk=3)
    second.load_state_dict(state)
    lm_loop(model, second, steps=3, opt=opt, start=1)
    second.remove()
    a, b = full.result(), second.result()
    assert b.iters.tolist() == a.iters.tolist() == list(range(6))
    for f in ("absmax", "nonfinite", "grad_norm", "update_ratio", "attn_logit_max",
              "attn_entropy", "out_lse", "out_absmax", "scalars"):
        np.testing.assert_allclose(getattr(b, f), getattr(a, f), rtol=1e-5, err_msg=f)
    # lr and the total gradient norm: the optimizer step hook
    assert b.scalar_names == a.scalar_names == ["lr", "grad_norm_total", "loss"]
    assert b.meta["context"] == a.meta["context"]


def test_autocast_is_noted_in_the_context():
    model = mlp()
    with actscope.watch(model) as w:
        for xb, yb in batches(2):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            w.step(loss=loss)
    t = w.result()
    assert t.meta["context"]["mixed_precision"] == "bf16"
    assert np.isfinite(t.absmax).all() and t.scalar("loss").dtype == np.float64


def test_resume_mid_chunk_keeps_the_unflushed_signals_and_coarsens_alike():
    # the checkpoint lands inside a chunk (slot 1 of 2 unflushed): their absmax, gradient,
    # attention and scalar columns travel in the state; max_records=16 coarsens both runs alike
    kw = dict(chunk=4, max_records=16, keep_first=1)
    full_model = tiny_gpt()
    with actscope.watch(full_model, modules=list(full_model), **kw) as full:
        opt = lm_loop(full_model, full, steps=2)
        lm_loop(full_model, full, steps=20, opt=opt, start=1)
    model = tiny_gpt()
    first = actscope.watch(model, modules=list(model), **kw)
    opt = lm_loop(model, first, steps=2)
    assert first.acc.buf.slots.slot > 0  # mid-chunk: the point of this test
    state = first.state_dict()
    first.remove()
    second = actscope.watch(model, modules=list(model), **kw)
    second.load_state_dict(state)
    lm_loop(model, second, steps=20, opt=opt, start=1)
    second.remove()
    a, b = full.result(), second.result()
    assert len(a.iters) < 22 and a.n_steps.sum() == 22  # coarsened, every batch counted
    np.testing.assert_array_equal(b.iters, a.iters)
    np.testing.assert_array_equal(b.n_steps, a.n_steps)
    for f in ("absmax", "nonfinite", "grad_norm", "update_ratio", "attn_logit_max",
              "attn_entropy", "out_lse", "out_absmax", "scalars", "mean", "hist"):
        np.testing.assert_allclose(getattr(b, f), getattr(a, f), rtol=1e-5, err_msg=f)
    # lr and the total gradient norm: the optimizer step hook
    assert b.scalar_names == a.scalar_names == ["lr", "grad_norm_total", "loss"]
    assert np.isfinite(b.scalar("loss")).all() and np.isfinite(b.absmax).all()
