"""nanoGPT's ``train.py`` loop, made short, on its own ``model.py``, with ``actscope.watch()``.

As upstream (``config/train_shakespeare_char.py`` sizes scaled down): char-level language
modelling, random ``block_size`` windows, AdamW from ``configure_optimizers`` with betas
(0.9, 0.99) and weight decay 0.1, linear warm-up then cosine decay (``get_lr``), gradient
clipping at 1.0. The text is docs/*.md (nanoGPT uses Shakespeare). Added lines: ``# actscope``.

    python -m examples.clients.nanogpt_train --out runs/nanogpt [--lr 1e-3] [--steps 300]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

import actscope  # actscope
from examples.clients.data import char_corpus
from examples.clients.nanogpt_model import GPT, GPTConfig

__all__ = ["run", "get_lr"]


def get_lr(it: int, learning_rate: float, warmup_iters: int, lr_decay_iters: int,
           min_lr: float) -> float:
    """nanoGPT's schedule: linear warm-up, cosine decay down to ``min_lr``, then ``min_lr``."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))  # coeff ranges 0..1
    return min_lr + coeff * (learning_rate - min_lr)


def run(out: str | Path, steps: int = 300, lr: float = 1e-3, n_layer: int = 4,
        n_head: int = 4, n_embd: int = 64, block_size: int = 64, batch_size: int = 12,
        warmup_iters: int = 0, flash: bool = True, seed: int = 1337) -> Path:
    """Train for ``steps`` iterations at peak ``lr``; the report folder (``flash=False``: the
    model's manual softmax(q·kᵀ) attention instead of SDPA)."""
    torch.manual_seed(seed)
    data, vocab_size = char_corpus()
    n = int(0.9 * len(data))
    train_data = data[:n]

    def get_batch() -> tuple[torch.Tensor, torch.Tensor]:
        ix = torch.randint(len(train_data) - block_size, (batch_size,))
        x = torch.stack([train_data[i:i + block_size] for i in ix])
        y = torch.stack([train_data[i + 1:i + 1 + block_size] for i in ix])
        return x, y

    model = GPT(GPTConfig(block_size=block_size, vocab_size=vocab_size, n_layer=n_layer,
                          n_head=n_head, n_embd=n_embd, dropout=0.0, bias=False,
                          flash=flash))
    optimizer = model.configure_optimizers(0.1, lr, (0.9, 0.99), "cpu")
    with actscope.watch(model, optimizer=optimizer, grad_clip=1.0) as w:  # actscope
        X, Y = get_batch()
        for iter_num in range(steps):
            for param_group in optimizer.param_groups:
                param_group["lr"] = get_lr(iter_num, lr, warmup_iters, steps, lr / 10)
            logits, loss = model(X, Y)
            X, Y = get_batch()  # async prefetch in nanoGPT
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            w.step(loss=loss)  # actscope
    return w.report(out)  # actscope


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/nanogpt")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=64)
    p.add_argument("--no-flash", action="store_true", help="the manual attention path")
    a = p.parse_args()
    print(run(a.out, a.steps, a.lr, n_layer=a.n_layer, n_embd=a.n_embd, flash=not a.no_flash))


if __name__ == "__main__":
    main()
