"""watch() records the lr each optimizer step uses: a hand-written schedule shows in it, and the
diagnosis reads a warm-up from it (diagnosis/observed.py)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import actscope
from actscope.diagnosis.observed import observed_warmup
from tests.integrations.test_watch import batches, mlp


def _get_lr(it: int) -> float:
    return 1e-2 * min(1.0, (it + 1) / 4)  # nanoGPT's linear warm-up, by hand


def test_a_hand_written_warmup_is_recorded_and_seen():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    with actscope.watch(model, optimizer=opt) as w:
        for it, (xb, yb) in enumerate(batches(8)):
            for g in opt.param_groups:
                g["lr"] = _get_lr(it)
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
            opt.zero_grad()
            w.step()
    t = w.result()
    np.testing.assert_allclose(t.scalar("lr"), [_get_lr(i) for i in range(8)], rtol=1e-6)
    assert observed_warmup(t)
    assert t.meta["context"]["schedule"] is None  # the context alone could not see it


def test_the_users_own_lr_scalar_wins():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    with actscope.watch(model, optimizer=opt) as w:
        for xb, yb in batches(3):
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
            opt.zero_grad()
            w.step(lr=0.5)
    np.testing.assert_allclose(w.result().scalar("lr"), [0.5, 0.5, 0.5])


def test_a_linear_probe_backbone_is_marked_untrained_given_or_found():
    for given in (True, False):
        model = mlp()
        head = list(model)[-1]
        opt = torch.optim.SGD(head.parameters(), lr=1e-2)  # only the head trains
        with actscope.watch(model, optimizer=opt if given else None) as w:
            for xb, yb in batches(3):
                nn.functional.cross_entropy(model(xb), yb).backward()
                opt.step()
                opt.zero_grad()
                w.step()
        lay = w.result().meta["context"]["layers"]
        marks = {n: e.get("trained") for n, e in lay.items()}
        assert marks[w.names[0]] is False, (given, marks)
        assert marks[w.names[-1]] is None, (given, marks)  # the head: held
