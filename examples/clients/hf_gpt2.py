"""A tiny GPT-2 (``GPT2Config``, no download) in the Hugging Face ``Trainer`` with actscope's
callback: the setup of the Trainer's causal-LM examples, made small.

``GPT2LMHeadModel`` from a 4-block, 64-wide config, trained char-level on docs/*.md (fixed
windows, ``labels = input_ids``: the model shifts them), ``TrainingArguments`` with a linear
schedule (the Trainer's default), ``logging_steps=10``, no checkpoints, nothing reported to other
tools. Added lines: ``# actscope``. The report lands in ``<output_dir>/actscope/``, titled with
the Trainer's ``run_name``.

    python -m examples.clients.hf_gpt2 --out runs/hf-gpt2 [--lr 5e-4] [--steps 200]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
import transformers
from torch.utils.data import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

from actscope.integrations.transformers import ActscopeCallback  # actscope
from examples.clients.data import char_corpus

__all__ = ["CharWindows", "run"]


class CharWindows(Dataset):
    """Consecutive ``block_size`` windows of the character ids, as causal-LM examples."""

    def __init__(self, ids: torch.Tensor, block_size: int) -> None:
        self.ids, self.block_size = ids, block_size

    def __len__(self) -> int:
        return len(self.ids) // self.block_size

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        window = self.ids[i * self.block_size:(i + 1) * self.block_size]
        return {"input_ids": window, "labels": window}


def run(out: str | Path, steps: int = 200, lr: float = 5e-4, n_layer: int = 4,
        n_embd: int = 64, block_size: int = 64, batch_size: int = 12, warmup_steps: int = 0,
        seed: int = 0) -> Path:
    """Train for ``steps`` optimizer steps at peak ``lr``; the report folder."""
    logging.getLogger("transformers").setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    transformers.set_seed(seed)
    ids, vocab_size = char_corpus()
    config = GPT2Config(vocab_size=vocab_size, n_positions=block_size, n_embd=n_embd,
                        n_layer=n_layer, n_head=4, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    args = TrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch_size,
        learning_rate=lr, warmup_steps=warmup_steps, logging_steps=10, save_strategy="no",
        report_to=[], use_cpu=True, seed=seed, disable_tqdm=True, dataloader_num_workers=0)
    callback = ActscopeCallback()  # actscope
    trainer = Trainer(model=model, args=args, train_dataset=CharWindows(ids, block_size),
                      callbacks=[callback])  # actscope
    trainer.train()
    assert callback.report_path is not None
    return callback.report_path.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/hf-gpt2")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=5e-4)
    a = p.parse_args()
    print(run(a.out, a.steps, a.lr))


if __name__ == "__main__":
    main()
