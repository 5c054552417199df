"""HostStore: bounded records, exact coarsening, spans, resume across a coarsening, state size."""

from __future__ import annotations

import io

import numpy as np
import torch
from torch import nn

from actscope.telemetry.layer_state import LayerState
from actscope.telemetry.records import RecordStore
from actscope.telemetry.reductions import split_histograms
from actscope.telemetry.settings import TelemetrySettings


def _store(L=2, **kw):
    kw = {"sample_size": 64, "chunk": 8, "channels": False, "bins": 8, "max_records": 24,
          "keep_first": 4, **kw}
    st = TelemetrySettings(**kw)
    return RecordStore(L, st), [LayerState(i, nn.Identity()) for i in range(L)]


def _write(store, states, step, xs):
    store.slots.begin(step)
    for st, x in zip(states, xs, strict=True):
        flat = x.reshape(-1)
        idx = torch.arange(store.settings.k) % flat.shape[0]
        store.slots.record(st, x, flat, idx, flat.shape[0])
    store.commit()


def _batches(steps, L=2, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(n, generator=g) * (1 + 0.1 * layer) + 0.3 for layer in range(L)]
            for _ in range(steps)]


def test_coarsened_records_are_exact_over_their_spans():
    store, states = _store()
    ref, ref_states = _store(max_records=4096)  # the same records, never coarsened
    raw = _batches(200)
    for step, xs in enumerate(raw):
        _write(store, states, step, xs)
        _write(ref, ref_states, step, xs)
    t, r = store.result(["a", "b"], {}), ref.result(["a", "b"], {})
    assert r.n_steps.max() == 1
    checked = 0
    assert len(t.iters) <= 24 and t.n_steps.sum() == 200  # bounded, nothing lost
    assert (t.n_steps[:4] == 1).all() and t.n_steps.max() > 1  # first records kept as they were
    assert (t.iter_end - t.iters + 1 == t.n_steps).all()  # contiguous spans
    lo_hi = t.hist_range
    for j in range(len(t.iters)):
        span = range(int(t.iters[j]), int(t.iter_end[j]) + 1)
        for layer in range(2):
            x = torch.cat([raw[s][layer] for s in span]).double()
            np.testing.assert_allclose(t.mean[layer, j], float(x.mean()), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(t.std[layer, j], float(x.std()), rtol=1e-4)
            lo, hi = (torch.tensor([float(v)]) for v in lo_hi[layer, j])
            if (r.hist_range[layer, list(span)] == lo_hi[layer, j]).all():  # one range: exact
                h, u, o = split_histograms(x.float().view(1, 1, -1), lo, hi, 8)
                np.testing.assert_array_equal(t.hist[layer, j], h[0, 0].numpy())
                assert t.hist_under[layer, j] == u and t.hist_over[layer, j] == o
                checked += 1
            assert t.hist[layer, j].sum() + t.hist_under[layer, j] + t.hist_over[layer, j] == \
                64 * len(span)
            share = float((x.abs() < 0.05).double().mean())
            np.testing.assert_allclose(t.dead[layer, j], share, rtol=1e-5)
    assert checked > 20


def test_resume_across_a_coarsening_equals_the_uninterrupted_run():
    raw = _batches(300)
    full, states = _store()
    for step, xs in enumerate(raw):
        _write(full, states, step, xs)
    first, states1 = _store()
    for step, xs in enumerate(raw[:150]):  # 150: mid-chunk, after several coarsenings
        _write(first, states1, step, xs)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    resumed, states2 = _store()
    resumed.load_state_dict(torch.load(buf, weights_only=False))
    for step, xs in enumerate(raw[150:], start=150):
        _write(resumed, states2, step, xs)
    a, b = full.result(["a", "b"], {}), resumed.result(["a", "b"], {})
    assert a.n_steps.max() > 1
    for key in ("iters", "iter_end", "n_steps", "mean", "std", "hist", "hist_range",
                "hist_under", "hist_over", "dead"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)


def test_checkpoint_size_is_bounded_by_the_budget():
    store, states = _store(L=1, sample_size=8, chunk=32, max_records=64, keep_first=4)
    raw = _batches(10_000, L=1, n=8)
    sizes = {}
    for step, xs in enumerate(raw):
        _write(store, states, step, xs)
        if step + 1 in (5_000, 10_000):
            buf = io.BytesIO()
            torch.save(store.state_dict(), buf)
            sizes[step + 1] = buf.tell()
    assert sizes[10_000] < 1.1 * sizes[5_000], sizes
    assert store.host.nbytes < 64 * 1024


def test_a_layer_growing_1_3x_per_step_stays_in_range():
    """Issue 22: >= 90% of each panel's samples in range, for a sane layer and one that grows
    1.3x per step over 200 steps (ranges re-fitted per chunk, early flushes 1, 2, 4, ...)."""
    for budget in (4096, 32):
        store, states = _store(sample_size=256, chunk=128, bins=40, max_records=budget)
        g = torch.Generator().manual_seed(1)
        for step in range(200):
            sane = torch.randn(1024, generator=g)
            grow = torch.randn(1024, generator=g) * 1.3 ** step
            _write(store, states, step, [sane, grow])
        t = store.result(["sane", "grow"], {})
        inside = t.hist.sum(-1).sum(-1) / (t.hist.sum(-1) + t.hist_under + t.hist_over).sum(-1)
        assert (inside >= 0.9).all(), inside
