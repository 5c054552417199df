"""What do the new signals (issue 21) cost? Each measured on its own, as a ratio to the same work
without it: median over alternating pairs (which goes first alternates too), 1 thread.

- ``attn``: a small GPT-2 (4 layers, d=128, T=128, bs 8) forward+backward with the AttentionProbe
  on every attention module, vs without (``--impl eager|sdpa``);
- ``params``: that model's training step (forward, backward, AdamW step) plus ``grad_norms()``
  after backward and ``update_ratios()`` after the step, vs the plain step;
- ``extremes`` and ``logits``: the same step plus ``absmax_and_nonfinite`` on every block output /
  ``output_logit_stats`` on the logits.

``--clock cpu`` (default) times process CPU time: on a shared 2-core machine the wall clock is
noise. ``--forward-only`` times ``model(ids)`` under ``no_grad`` instead of a training step.
Ends with one line ``attn=<r> params=<r> extremes=<r> logits=<r> clock=<c> impl=<i>``.

    python benchmarks/signals.py [--pairs 15] [--impl sdpa] [--clock wall] [--device cuda]
                                 [--only attn,params]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# benchmarks/ holds a transformers.py: keep this folder off sys.path or it shadows the library.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import torch  # noqa: E402

from actscope.telemetry.attention import AttentionProbe, attention_slots  # noqa: E402
from actscope.telemetry.extremes import absmax_and_nonfinite  # noqa: E402
from actscope.telemetry.output_logits import output_logit_stats  # noqa: E402
from actscope.telemetry.param_signals import ParamSignals  # noqa: E402


def build(impl: str, device: str):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=4, n_embd=128, n_head=4, vocab_size=512, n_positions=128,
                     bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel._from_config(cfg, attn_implementation=impl).to(device)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--impl", default="sdpa")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--forward-only", action="store_true", help="time model(ids) alone")
    ap.add_argument("--only", default="attn,params,extremes,logits", help="comma-separated")
    a = ap.parse_args()
    torch.set_num_threads(1)
    clock = time.process_time if a.clock == "cpu" else time.perf_counter
    model = build(a.impl, a.device)
    blocks = list(model.transformer.h)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, 512, (8, 128), device=a.device)
    mods, slots = attention_slots(model, blocks)
    probe = AttentionProbe(mods, slots, len(blocks))
    sig = ParamSignals(blocks)
    keep: list = []
    on = {"extremes": False}

    def extremes_hook(module, args, output) -> None:
        if on["extremes"]:  # the hook stays registered: the baseline pays its empty call too
            keep.append(absmax_and_nonfinite(output[0]))

    for b in blocks:
        b.register_forward_hook(extremes_hook)

    def step(attn=False, params=False, extremes=False, logits=False) -> None:
        probe.enabled, on["extremes"] = attn, extremes
        if a.forward_only:
            with torch.no_grad():
                out = model(ids)
            keep.append(probe.read() if attn else None)
            keep.clear()
            return
        out = model(ids)
        if logits:
            keep.append(output_logit_stats(out))
        out.logits.float().logsumexp(-1).mean().backward()
        if params:
            keep.append(sig.grad_norms())
        opt.step()
        opt.zero_grad(set_to_none=True)
        if params:
            keep.append(sig.update_ratios())
        if attn:
            keep.append(probe.read())
        keep.clear()

    def timed(**kw) -> float:
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = clock()
        for _ in range(a.reps):
            step(**kw)
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        return clock() - t0

    results = {}
    for name in a.only.split(","):
        kw = {name: True}
        timed(**kw), timed()  # warm-up
        ratios = []
        for i in range(a.pairs):
            if i % 2:
                base, with_ = timed(), timed(**kw)
            else:
                with_, base = timed(**kw), timed()
            ratios.append(with_ / base)
        results[name] = statistics.median(ratios)
        q = statistics.quantiles(ratios, n=4)
        print(f"{name}: median {results[name]:.3f}  quartiles {q[0]:.3f}..{q[2]:.3f}")
    print(" ".join(f"{k}={v:.3f}" for k, v in results.items()) + f" clock={a.clock} impl={a.impl}"
          + (" forward_only" if a.forward_only else ""))


if __name__ == "__main__":
    main()
