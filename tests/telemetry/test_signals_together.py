"""The new signals side by side in a plain training loop, as the front ends will call them."""

import torch

from actscope.telemetry.attention import AttentionProbe, attention_slots
from actscope.telemetry.extremes import absmax_and_nonfinite
from actscope.telemetry.output_logits import output_logit_stats
from actscope.telemetry.param_signals import ParamSignals
from tests.telemetry.nosync import no_host_sync
from tests.telemetry.tiny_models import gpt2


def run(lr: float, steps: int, monkeypatch) -> dict[str, torch.Tensor]:
    model = gpt2("sdpa")
    blocks = list(model.transformer.h)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sig = ParamSignals(blocks)
    mods, slots = attention_slots(model, blocks)
    probe = AttentionProbe(mods, slots, len(blocks))
    absmax = []
    for b in blocks:
        b.register_forward_hook(lambda m, a, o: absmax.append(absmax_and_nonfinite(o[0])[0]))
    ids = torch.randint(0, 64, (4, 32))
    rec: dict[str, list] = {"grad": [], "ratio": [], "attn": [], "lse": []}
    sig.update_ratios()  # the weights before the first step
    for _ in range(steps):
        with no_host_sync(monkeypatch):  # forward (probe, hooks), backward and our reads
            out = model(ids, labels=ids)
            rec["lse"].append(output_logit_stats(out)[0])
            out.loss.backward()
            rec["grad"].append(sig.grad_norms())
        opt.step()  # Adam on a CPU reads its step count with .item(): not ours
        opt.zero_grad()
        with no_host_sync(monkeypatch):
            rec["ratio"].append(sig.update_ratios())
            rec["attn"].append(probe.read()[0])
    probe.remove()
    return {k: torch.stack(v) for k, v in rec.items()} | {"absmax": torch.stack(absmax)}


def test_signals_track_the_learning_rate_without_host_sync(monkeypatch):
    low, high = run(1e-5, 4, monkeypatch), run(0.05, 4, monkeypatch)
    for r in (low, high):
        assert r["grad"].shape == (4, 2) and r["ratio"].shape == (4, 2)
        assert r["attn"].shape == (4, 2) and r["lse"].shape == (4,)
    # Adam moves each weight by ~lr: ratio ~1e-4 at lr 1e-5, ~0.2-0.6 at lr 0.05
    assert (low["ratio"] < 1e-3).all() and (high["ratio"][0] > 100 * low["ratio"][0]).all()
    assert high["attn"][-1].max() > 10 * low["attn"][-1].max()  # q·k grows at a high lr
