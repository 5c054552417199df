"""The GPU check: no host sync per batch, and what telemetry costs on the device (issue 11 §5).

On CUDA (under 5 minutes on one GPU):

1. ``sync``: a telemetry fit (``Learner`` + ``ActivationStatsCallback``) and an ``actscope.watch``
   loop run every batch after the first under ``torch.cuda.set_sync_debug_mode("error")``, so any
   host sync on the per-batch path (``.item()``, ``.cpu()``, a data-dependent shape) raises. More
   batches than one flush chunk run, so the flushes are covered too; the read-back at the end of
   the run (``result()``) is outside, as it is once per run by design. Every diagnosis signal
   is on (defaults): max |x|, gradient norms and update ratios (the ``watch`` loop passes its
   optimizer; its step hooks read them), output logits, the loss as a device scalar
   (``w.step(loss=loss)``), and attention (a second ``watch`` loop on a small causal
   transformer whose attention calls ``F.scaled_dot_product_attention``).
2. ``fp32``: plain loop vs ``Learner`` vs ``Learner`` + telemetry, at bs 64 and 512, on the
   lesson's CNN, with the data held on the device (batches are slices: no loader, no copies).
3. ``bf16``: the same under ``torch.autocast(dtype=torch.bfloat16)``.

Times are wall clock with ``torch.cuda.synchronize()`` around each timed epoch; each figure is the
median over alternating rounds (the variants' order rotates every round). Without CUDA (a laptop,
CI) the sync check is skipped with a message and the comparisons run on the CPU, shorter, timed
by process CPU time. ``--quick`` makes the CPU part a few seconds (the test suite runs it).
Ends with one line of ``key=value`` pairs, e.g.
``device=cuda sync=ok ... fp32_telemetry_vs_learner_bs64=1.03 ... bf16_...``.

    python benchmarks/gpu_check.py [--quick] [--rounds 5] [--batches 300]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import torch
import torch.nn.functional as F

import actscope
from actscope.callback import Callback
from actscope.callbacks.activation_stats import ActivationStatsCallback
from actscope.learner import Learner
from actscope.nn.cnn import cnn

VARIANTS = ("plain", "learner", "telemetry")


class Slices:
    """``n`` batches of ``bs`` rows, sliced from tensors already on the device."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, bs: int, n: int) -> None:
        self.x, self.y, self.bs, self.n = x, y, bs, min(n, len(x) // bs)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(self.n):
            yield self.x[i * self.bs:(i + 1) * self.bs], self.y[i * self.bs:(i + 1) * self.bs]


class SyncGuard(Callback):
    """Turns CUDA's sync debug mode to "error" from training batch 1 to the end of the epoch."""

    order = 100  # after every other callback's after_batch, so all of them are covered

    def before_batch(self, learn: Learner) -> None:
        if learn.training and learn.iter == 1:
            torch.cuda.set_sync_debug_mode("error")

    def after_batch(self, learn: Learner) -> None:
        if learn.training and learn.iter == learn.n_iter - 1:
            torch.cuda.set_sync_debug_mode("default")


def precision(dev: str, bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(dev, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def plain_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, dl: Slices, dev: str,
                bf16: bool, w: actscope.Watch | None = None, guard: bool = False) -> None:
    for i, (xb, yb) in enumerate(dl):
        if guard and i == 1:
            torch.cuda.set_sync_debug_mode("error")
        with precision(dev, bf16):
            loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if w is not None:
            w.step(loss=loss.detach())  # a device scalar, read back with the rest
    if guard:
        torch.cuda.set_sync_debug_mode("default")


class _Attn(torch.nn.Module):
    """A causal self-attention block through ``F.scaled_dot_product_attention``."""

    def __init__(self, d: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.ln, self.qkv = torch.nn.LayerNorm(d), torch.nn.Linear(d, 3 * d)
        self.proj, self.heads = torch.nn.Linear(d, d), heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2)
                   for z in self.qkv(self.ln(x)).split(d, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return x + self.proj(y.transpose(1, 2).reshape(b, t, d))


def attention_sync(batches: int) -> None:
    """A small causal LM in a ``watch`` loop, every signal on, syncs forbidden from batch 1."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(128, 64), _Attn(), _Attn(),
                                torch.nn.Linear(64, 128)).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(0, 128, (batches, 16, 32), device="cuda")
    with actscope.watch(model, modules=list(model), optimizer=opt) as w:
        for i in range(batches):
            if i == 1:
                torch.cuda.set_sync_debug_mode("error")
            logits = model(ids[i])
            loss = F.cross_entropy(logits.reshape(-1, 128), ids[i].reshape(-1))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            w.step(loss=loss.detach())
        torch.cuda.set_sync_debug_mode("default")
    t = w.result()
    assert t.attn_logit_max is not None and t.update_ratio is not None


def check_sync(x: torch.Tensor, y: torch.Tensor, batches: int) -> str:
    """'ok', or the first line of the error a host sync raised on the per-batch path."""
    dl = Slices(x, y, 64, batches)
    try:
        torch.manual_seed(0)
        learn = Learner(cnn().cuda(), SimpleNamespace(train=dl, valid=None), lr=0.1,
                        cbs=[ActivationStatsCallback(), SyncGuard()])
        learn.fit(1)
        learn.cbs[0].result()
        model = cnn().cuda()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with actscope.watch(model, optimizer=opt) as w:
            plain_epoch(model, opt, dl, "cuda", False, w, guard=True)
        t = w.result()
        assert t.grad_norm is not None and t.update_ratio is not None and t.out_lse is not None
        attention_sync(batches)
    except RuntimeError as e:
        return "SYNC:" + str(e).splitlines()[0].replace(" ", "_")[:120]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return "ok"


def epoch_seconds(variant: str, x: torch.Tensor, y: torch.Tensor, bs: int, batches: int,
                  dev: str, bf16: bool) -> float:
    """One timed epoch (after a warm-up epoch) of a fresh ``cnn()``."""
    torch.manual_seed(0)
    model = cnn().to(dev)
    dl = Slices(x, y, bs, batches)
    timer: Callable[[], float] = time.perf_counter if dev == "cuda" else time.process_time

    def sync() -> None:
        if dev == "cuda":
            torch.cuda.synchronize()

    if variant == "plain":
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        run = lambda: plain_epoch(model, opt, dl, dev, bf16)  # noqa: E731
    else:
        cbs = [ActivationStatsCallback()] if variant == "telemetry" else []
        learn = Learner(model, SimpleNamespace(train=dl, valid=None), lr=0.1, cbs=cbs)

        def run() -> None:
            with precision(dev, bf16):
                learn.fit(1)  # telemetry: includes the read-back at the fit's end

    run()  # warm-up: kernels, allocator, sample indices
    sync()
    start = timer()
    run()
    sync()
    return timer() - start


def compare(x: torch.Tensor, y: torch.Tensor, dev: str, bf16: bool, rounds: int, batches: int,
            tag: str, sizes: tuple[int, ...] = (64, 512)) -> dict[str, str]:
    """Median epoch times of the three variants at each batch size, and their ratios."""
    out: dict[str, str] = {}
    for bs in sizes:
        n = batches if bs == 64 else max(batches // 8, 2)
        times: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for r in range(rounds):
            order = VARIANTS[r % 3:] + VARIANTS[:r % 3]  # rotate who goes first
            for v in order:
                times[v].append(epoch_seconds(v, x, y, bs, n, dev, bf16))
        med = {v: statistics.median(ts) for v, ts in times.items()}
        print(f"{tag} bs={bs} batches={n} " + " ".join(
            f"{v}={med[v] * 1000 / n:.3f}ms/batch" for v in VARIANTS), flush=True)
        out[f"{tag}_plain_ms_bs{bs}"] = f"{med['plain'] * 1000 / n:.3f}"
        out[f"{tag}_learner_vs_plain_bs{bs}"] = f"{med['learner'] / med['plain']:.3f}"
        out[f"{tag}_telemetry_vs_learner_bs{bs}"] = f"{med['telemetry'] / med['learner']:.3f}"
    return out


def main(argv: list[str] | None = None) -> dict[str, str]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds (CPU smoke run)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--batches", type=int, default=None, help="batches per epoch at bs 64")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    rounds = args.rounds or (1 if args.quick else 5 if cuda else 3)
    batches = args.batches or (4 if args.quick else 300 if cuda else 40)
    g = torch.Generator().manual_seed(0)
    # The cost does not depend on pixel values: MNIST-shaped random data, held on the device.
    n = max(64 * batches, 512 * max(batches // 8, 2))
    x = torch.randn(n, 1, 28, 28, generator=g).to(dev)
    y = torch.randint(0, 10, (n,), generator=g).to(dev)
    result = {"device": torch.cuda.get_device_name(0).replace(" ", "_") if cuda else "cpu",
              "torch": torch.__version__}
    print(f"device={result['device']} torch={torch.__version__} rounds={rounds} "
          f"batches={batches}", flush=True)
    if cuda:
        result["sync"] = check_sync(x, y, max(batches, 300))
        print(f"sync check (set_sync_debug_mode('error'), {max(batches, 300)} batches): "
              f"{result['sync']}", flush=True)
    else:
        result["sync"] = "skipped"
        print("no CUDA device: skipping the CUDA parts (the host-sync check under "
              "set_sync_debug_mode('error'), CUDA timings); running the comparisons on the CPU",
              flush=True)
    result.update(compare(x, y, dev, False, rounds, batches, "fp32"))
    if cuda and torch.cuda.is_bf16_supported():
        result.update(compare(x, y, dev, True, rounds, batches, "bf16"))
    else:
        # bf16 convolutions on a CPU are emulated (measured here: 10 s a batch at bs 512) and say
        # nothing about a GPU: two batches at bs 64 only prove the path runs under autocast.
        result.update(compare(x, y, dev, True, 1, 2, "bf16", sizes=(64,)))
    print(" ".join(f"{k}={v}" for k, v in result.items()))
    return result


if __name__ == "__main__":
    main()
