"""The diagnosis signals in a real Hugging Face ``Trainer.train()`` on a tiny GPT-2 built from a
config: gradient norms at ``on_pre_optimizer_step`` (after the Trainer's clipping), update
ratios, attention, output logits, the log history as scalars, the context; and the resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="make test installs "
                                   "actscope[transformers]")

from actscope.integrations.transformers import ActscopeCallback, log_scalars  # noqa: E402
from tests.integrations.common import leftover_hooks  # noqa: E402
from tests.integrations.test_transformers import LAYERS, Tokens, gpt2, train_args  # noqa: E402


class GradSpy(transformers.TrainerCallback):
    def __init__(self) -> None:
        self.norms: list[list[float]] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
        self.norms.append([math.sqrt(sum(p.grad.pow(2).sum().item() for p in b.parameters()))
                           for b in model.transformer.h])


def test_gpt2_signals_scalars_and_context(tmp_path):
    model, cb, spy = gpt2(), ActscopeCallback(report=False, signal_every=1), GradSpy()
    args = train_args(tmp_path, logging_strategy="steps", logging_steps=1,
                      eval_strategy="steps", eval_steps=3, max_grad_norm=0.5)
    transformers.Trainer(model=model, args=args, train_dataset=Tokens(64),
                         eval_dataset=Tokens(8, seed=1), callbacks=[cb, spy]).train()
    t = cb.result()
    assert t.iters.tolist() == list(range(6))
    np.testing.assert_allclose(t.grad_norm.T, spy.norms, rtol=1e-5)  # after the clipping
    assert np.isfinite(t.update_ratio).all() and (t.update_ratio > 0).all()
    assert np.isfinite(t.attn_logit_max).all() and t.attn_logit_max.shape == (LAYERS, 6)
    assert ((t.attn_entropy > 0) & (t.attn_entropy < math.log(16) + 1e-6)).all()
    assert np.isfinite(t.out_lse).all() and (t.out_lse > 0).all()
    assert t.absmax.shape == (LAYERS, 6) and not t.nonfinite.any()
    loss, lr, gn = t.scalar("loss"), t.scalar("lr"), t.scalar("grad_norm")
    assert np.isfinite(loss).all() and np.isfinite(gn).all() and lr[0] == 1e-3
    ev = t.scalar("eval_loss")  # evaluated after steps 3 and 6: records 2 and 5
    assert np.isfinite(ev[[2, 5]]).all() and np.isnan(ev[[0, 1, 3, 4]]).all()
    assert t.scalar("eval_runtime") is None and t.scalar("epoch") is None
    ctx = t.meta["context"]
    assert ctx["optimizer"]["type"] == "AdamW" and ctx["grad_clip"] == 0.5
    assert ctx["schedule"]["type"] == "LambdaLR" and ctx["model"]["is_transformer"]
    assert ctx["trainer"]["trainer"] == "transformers"
    assert leftover_hooks(model) == []


def test_log_history_maps_step_s_to_iteration_s_minus_1():
    hist = [{"loss": 2.0, "learning_rate": 1e-3, "grad_norm": 1.0, "epoch": 0.1, "step": 1},
            {"eval_loss": 1.5, "eval_runtime": 0.2, "epoch": 0.2, "step": 2},
            {"train_runtime": 3.0, "train_loss": 2.0, "step": 2}]
    assert log_scalars(hist) == {0: {"loss": 2.0, "lr": 1e-3, "grad_norm": 1.0},
                                 1: {"eval_loss": 1.5}}


def test_resume_continues_the_signals(tmp_path):
    cb = ActscopeCallback(report=False, signal_every=1)
    args = train_args(tmp_path, save_strategy="steps", save_steps=3, logging_strategy="steps",
                      logging_steps=1)
    transformers.Trainer(model=gpt2(), args=args, train_dataset=Tokens(64), callbacks=[cb]).train()
    full = cb.result()
    cb2, model2 = ActscopeCallback(report=False, signal_every=1), gpt2()
    transformers.Trainer(model=model2, args=args, train_dataset=Tokens(64),
                         callbacks=[cb2]).train(resume_from_checkpoint=str(tmp_path /
                                                                           "checkpoint-3"))
    resumed = cb2.result()
    assert resumed.iters.tolist() == full.iters.tolist()
    for f in ("absmax", "grad_norm", "update_ratio", "attn_logit_max", "attn_entropy",
              "out_lse", "out_absmax"):
        torch.testing.assert_close(getattr(resumed, f)[..., :3], getattr(full, f)[..., :3],
                                   msg=f)
        assert np.isfinite(getattr(resumed, f)).all(), f
    # the log history comes back with the checkpoint: every step's loss is there
    assert resumed.scalar_names == full.scalar_names
    np.testing.assert_allclose(resumed.scalar("loss")[:3], full.scalar("loss")[:3])
    assert np.isfinite(resumed.scalar("loss")).all()
    assert resumed.meta["context"] == full.meta["context"]
    assert leftover_hooks(model2) == []
