"""Hook / Hooks: registration, container indexing, and removal in every way the issue lists."""

from __future__ import annotations

import gc

import pytest
import torch
from torch import nn

from actscope.events import CancelFitException
from actscope.telemetry.hooks import Hook, Hooks, child_blocks, modules_by_name, modules_by_type
from tests.conftest import synth_learner


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.ReLU()),
                         nn.Sequential(nn.Conv2d(4, 8, 3, 2, 1), nn.ReLU()),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))


def counter(calls: list):
    def fn(hook, module, inp, out):
        calls.append((type(module).__name__, tuple(out.shape)))
    return fn


def n_hooks(m: nn.Module) -> int:
    return len(m._forward_hooks) + len(m._backward_hooks)


def test_forward_hook_sees_output_and_removes_once():
    net, calls = small_net(), []
    h = Hook(net[0], counter(calls))
    net(torch.randn(2, 1, 8, 8))
    assert calls == [("Sequential", (2, 4, 4, 4))]
    h.remove()
    h.remove()  # idempotent
    net(torch.randn(2, 1, 8, 8))
    assert len(calls) == 1 and n_hooks(net[0]) == 0 and "removed" in repr(h)


def test_backward_hook_gets_output_grad():
    net, grads = small_net(), []
    with Hook(net[4], lambda h, m, gi, go: grads.append(go[0].shape), kind="backward"):
        net(torch.randn(3, 1, 8, 8)).sum().backward()
    assert grads == [torch.Size([3, 2])]
    assert n_hooks(net[4]) == 0


def test_bad_kind_and_module_are_clear_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        Hook(nn.ReLU(), lambda *a: None, kind="sideways")
    with pytest.raises(TypeError, match="nn.Module"):
        Hook("not a module", lambda *a: None)


def test_no_double_registration():
    net, calls = small_net(), []
    fn = counter(calls)
    h1, h2 = Hook(net[0], fn), Hook(net[0], fn)
    assert h2.duplicate and not h1.duplicate and "duplicate" in repr(h2)
    net(torch.randn(1, 1, 8, 8))
    assert len(calls) == 1
    h2.remove()  # removing the duplicate leaves the real one
    net(torch.randn(1, 1, 8, 8))
    assert len(calls) == 2
    h1.remove()
    h3 = Hook(net[0], fn)  # after removal the function can be registered again
    assert not h3.duplicate
    h3.remove()


def test_hooks_container_indexing_and_repr():
    net = small_net()
    mods = [nn.ReLU() for _ in range(12)]
    hooks = Hooks(mods, lambda *a: None)
    assert len(hooks) == 12 and isinstance(hooks[3], Hook)
    assert [h.module for h in hooks[2:5]] == mods[2:5]
    assert [h.module for h in hooks[[0, 11]]] == [mods[0], mods[11]]
    mask = [i % 3 == 0 for i in range(12)]
    assert [h.module for h in hooks[mask]] == mods[::3]
    with pytest.raises(IndexError, match="boolean mask"):
        hooks[[True, False]]
    text = repr(hooks)
    assert text.startswith("Hooks(12 items") and text.count("Hook(ReLU") == 10 and "2 more" in text
    assert [h.module for h in hooks] == mods
    del hooks[0]
    assert len(hooks) == 11 and n_hooks(mods[0]) == 0
    hooks.remove()
    assert all(n_hooks(m) == 0 for m in mods)
    assert Hooks(net.children(), lambda *a: None)[0].module is net[0]


def test_with_block_removes_even_on_error():
    net = small_net()
    with pytest.raises(RuntimeError), Hooks(list(net.children())[:2], lambda *a: None):
        assert n_hooks(net[0]) == 1
        raise RuntimeError("boom")
    assert n_hooks(net[0]) == n_hooks(net[1]) == 0


def test_garbage_collection_removes():
    net = small_net()
    Hook(net[0], lambda *a: None)  # dropped at once
    gc.collect()
    assert n_hooks(net[0]) == 0




def test_removed_when_fit_is_cancelled_or_raises():
    from actscope.callback import Callback

    class Owner(Callback):
        def __init__(self, exc):
            self.exc = exc

        def before_fit(self, learn):
            self.hooks = Hooks([learn.model[0]], lambda *a: None)

        def after_batch(self, learn):
            raise self.exc

        def after_fit(self, learn):
            self.hooks.remove()

    for exc in (CancelFitException(), ValueError("bad batch")):
        cb = Owner(exc)
        learn = synth_learner(cbs=[cb])
        if isinstance(exc, ValueError):  # a real error propagates; a cancel ends the fit quietly
            with pytest.raises(ValueError, match="bad batch"):
                learn.fit(1)
        else:
            learn.fit(1)
        assert n_hooks(learn.model[0]) == 0


def test_module_pickers():
    net = small_net()
    assert modules_by_type(net, nn.Conv2d) == [net[0][0], net[1][0]]
    assert modules_by_name(net, r"\d\.1") == [net[0][1], net[1][1]]
    assert child_blocks(net) == [net[0], net[1], net[4]]
    with pytest.raises(ValueError, match="at least one type"):
        modules_by_type(net)


def test_same_bound_method_twice_is_a_duplicate():
    class Counter:
        def __init__(self):
            self.n = 0

        def fn(self, hook, module, inp, out):
            self.n += 1

    net, a, b = small_net(), Counter(), Counter()
    hooks = [Hook(net[0], a.fn), Hook(net[0], a.fn), Hook(net[0], b.fn)]
    assert [h.duplicate for h in hooks] == [False, True, False]
    net(torch.randn(1, 1, 8, 8))
    assert (a.n, b.n) == (1, 1)
    for h in hooks:
        h.remove()
