"""A module run more than once in a batch (an RNN cell per time step, a shared block) is
recorded over all its runs: mean, std (so the element count) and max |x| of every output
together, on each path (staged small outputs, deferred CPU outputs, reduced in the hook)."""

import numpy as np
import pytest
import torch
from torch import nn

from actscope.telemetry.accumulator import TelemetryAccumulator


class CellLoop(nn.Module):
    """``cell`` applied ``steps`` times per forward, as an RNN cell is per time step."""

    def __init__(self, width: int, steps: int) -> None:
        super().__init__()
        self.cell, self.head, self.steps = nn.Linear(width, width), nn.Linear(width, 1), steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for _ in range(self.steps):
            h = torch.tanh(self.cell(h) + x)
        return self.head(h)


@pytest.mark.parametrize("rows,defer,block", [
    (4, True, None), (512, True, None), (512, False, None),
    (4, True, 3 * 4 * 32),  # 3 kept runs per block: 6 later runs fill two blocks
    (4, True, 4 * 32),  # a block of one run: each later run reduced at once
], ids=["staged", "deferred", "in-hook", "two-blocks", "no-block"])
def test_every_run_of_a_repeated_module_is_in_its_record(rows, defer, block, monkeypatch):
    if block is not None:
        monkeypatch.setattr("actscope.telemetry.repeat_runs.BLOCK_ELEMS", block)
    torch.manual_seed(0)
    net = CellLoop(32, steps=7)
    acc = TelemetryAccumulator(sample_size=64, chunk=4, grads=True)
    acc.min_staged = 0  # one small layer: keep it staged (staging.py)
    acc.attach(net, [net.cell])
    outs: list[torch.Tensor] = []
    net.cell.register_forward_hook(lambda m, i, o: outs.append(o.detach().clone()))
    grads: list[torch.Tensor] = []
    net.cell.register_full_backward_hook(lambda m, gi, go: grads.append(go[0].clone()))
    if not defer:
        for h in acc.hooks:
            h.state.defer = False  # the hook reduces it (as on a GPU)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    want = []
    for step in range(6):
        outs.clear()
        grads.clear()
        acc.begin_batch(step)
        net(torch.randn(rows, 32)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        acc.end_batch()
        both = torch.cat([o.flatten() for o in outs]).double()
        g = torch.cat([x.flatten() for x in grads]).double()
        want.append((both.mean().item(), both.std(unbiased=False).item(),
                     both.abs().max().item(), g.mean().item()))
    t = acc.result()
    mean, std, absmax, gmean = (np.array(c) for c in zip(*want, strict=True))
    np.testing.assert_allclose(t.mean[0], mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(t.std[0], std, rtol=1e-3)
    np.testing.assert_allclose(t.absmax[0], absmax, rtol=1e-6)
    np.testing.assert_allclose(t.grad_mean[0], gmean, rtol=1e-3, atol=1e-9)

