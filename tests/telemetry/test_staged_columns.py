"""StagedColumns: the staged layers' column maxima, batched, with a plan kept across batches."""

from __future__ import annotations

import torch
from torch import nn

from actscope.telemetry.layer_state import LayerState
from actscope.telemetry.staged_columns import StagedColumns
from actscope.telemetry.staging import StagedOutputs


def setup(n_layers: int, shape: tuple[int, ...], keep: int, chunk: int = 3):
    """A stage of ``n_layers`` rows holding outputs of ``shape``, and per-layer slot columns."""
    staged = StagedOutputs(n_layers, k=8)
    n = torch.Size(shape).numel()
    stage = staged.stage_for(n, torch.arange(8) % n)
    stage.buf.copy_(torch.randn(n_layers, n))
    cols = [torch.full((chunk, *shape[keep:]), float("-inf")) for _ in range(n_layers)]
    views = [(None, None, None, c.unbind(0)) for c in cols]
    states = [LayerState(layer=i, module=nn.Identity(), keep=keep) for i in range(n_layers)]
    return stage, cols, views, states


def want(stage, layer: int, shape: tuple[int, ...], keep: int) -> torch.Tensor:
    return stage.buf[layer].view(shape).amax(tuple(range(keep)))


def test_every_pending_layers_column_max_lands_in_its_slot_and_the_plan_is_kept():
    shape, keep = (4, 3, 5), 2  # (N, T, F): features in the last dim
    stage, cols, views, states = setup(6, shape, keep)
    sc, layout = StagedColumns(), object()
    pending = {i: (stage, torch.Size(shape), states[i]) for i in (0, 2, 3, 5)}  # most: every row
    sc.reduce(pending, views, 1, 6, layout)
    for i in range(6):
        if i in pending:
            assert torch.equal(cols[i][1], want(stage, i, shape, keep))
        assert (cols[i][0] == float("-inf")).all()  # other slots untouched
    assert all((cols[i][1] == float("-inf")).all() for i in (1, 4))  # not pending: untouched
    groups = sc.groups
    stage.buf.copy_(torch.randn_like(stage.buf))  # the next batch: same layers, new values
    sc.reduce(dict(pending), views, 2, 6, layout)
    assert sc.groups is groups  # the same pending entries: the plan is reused
    for i in pending:
        assert torch.equal(cols[i][2], want(stage, i, shape, keep))


def test_a_few_pending_layers_are_gathered_and_a_change_rebuilds_the_plan():
    shape, keep = (2, 4, 3, 3), 1  # (N, C, H, W): one column max is C*H*W positions
    stage, cols, views, states = setup(8, shape, keep)
    sc, layout = StagedColumns(), object()
    pending = {6: (stage, torch.Size(shape), states[6]), 1: (stage, torch.Size(shape), states[1])}
    sc.reduce(pending, views, 0, 8, layout)
    assert sc.groups[0].index is not None  # 2 of 8: gathered, not the whole stage
    for i in (1, 6):
        assert torch.equal(cols[i][0], want(stage, i, shape, keep))
    groups = sc.groups
    sc.reduce({1: pending[1]}, views, 1, 8, layout)  # another set of layers: a new plan
    assert sc.groups is not groups and torch.equal(cols[1][1], want(stage, 1, shape, keep))
    groups = sc.groups
    sc.reduce({1: pending[1]}, views, 2, 8, object())  # device memory dropped: a new plan
    assert sc.groups is not groups
