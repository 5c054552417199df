"""LayerState: declared per-layer state, carried by the accumulator's hooks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actscope.telemetry.accumulator import TelemetryAccumulator
from actscope.telemetry.layer_state import LayerState


def test_fields_are_declared_no_ad_hoc_attributes():
    st = LayerState(layer=3, module=nn.ReLU())
    assert (st.layer, st.ordered, st.idx, st.idx_n, st.chan_ndim, st.n_chan, st.keep,
            st.red_dims) == (3, False, None, -1, -1, 0, 1, ())
    with pytest.raises(AttributeError):
        st.something_else = 1  # slots: nothing can be added from outside


def test_attach_gives_each_hook_its_state_and_the_first_forward_fills_it():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    acc = TelemetryAccumulator(sample_size=16, grads=True)
    acc.attach(model, [model[0], model[1]])
    states = [h.state for h in acc.hooks]
    assert [s.layer for s in states] == [0, 1] and states[0].module is model[0]
    assert [h.state for h in acc.grad_hooks] == states  # one state per layer, shared
    acc.begin_batch(0)
    model(torch.randn(2, 1, 6, 6))
    acc.end_batch()
    st = states[0]
    assert st.ordered and st.idx_n == 2 * 4 * 4 * 4 and st.idx.shape == (16,)
    assert (st.chan_ndim, st.n_chan, st.keep, st.red_dims) == (4, 4, 1, (0,))
    acc.remove()
