"""watch() in the loops people actually write: skipped layers, inference mode, copies of the
model, partly frozen models, peeking mid-loop, typos. Each case was a bug found by probing."""

from __future__ import annotations

import copy
import io
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import actscope
from actscope.diagnosis import diagnose
from actscope.errors import UsageError


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def hooks_on(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


class LayerDrop(nn.Module):
    """Block 1 is skipped on every second forward (stochastic depth, LayerDrop)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        for j, b in enumerate(self.blocks):
            if not (j == 1 and self.calls % 2 == 0):
                x = b(x)
        return x


def test_a_layer_skipped_in_a_batch_is_no_record_not_a_non_finite_one(tmp_path):
    m = LayerDrop()
    with actscope.watch(m) as w:
        for _ in range(4):
            m(torch.randn(6, 4))
    t = w.result()
    assert t.ran.tolist() == [[1, 1, 1, 1], [1, 0, 1, 0], [1, 1, 1, 1]]
    assert np.isnan(t.mean[1, 1]) and not any(f.kind == "non_finite" for f in diagnose(t))
    w.report(tmp_path / "r")
    u = actscope.Telemetry.load(tmp_path / "r" / "telemetry.npz")
    np.testing.assert_array_equal(u.ran, t.ran)
    assert not any("non-finite" in f for f in json.loads((tmp_path / "r" / "findings.json")
                                                            .read_text()))


def test_a_real_nan_is_still_found_and_blamed_on_the_first_layer_in_forward_order():
    class Net(nn.Module):  # registered head-first, run body-first
        def __init__(self) -> None:
            super().__init__()
            self.head, self.body = nn.Linear(4, 2), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x))

    m = Net()
    with actscope.watch(m) as w:
        for i in range(3):
            if i == 2:
                with torch.no_grad():
                    m.body.weight.fill_(float("nan"))
            m(torch.randn(6, 4))
    found = [f for f in diagnose(w.result()) if f.kind == "non_finite"]
    assert len(found) == 1 and found[0].layer.startswith("body") and found[0].first_iter == 2


def test_forwards_under_inference_mode_are_not_recorded_and_break_nothing():
    m = mlp()
    with actscope.watch(m) as w:
        with torch.inference_mode():
            m(torch.randn(5, 4))  # e.g. recalibrating BatchNorm in train mode
        for _ in range(3):
            m(torch.randn(5, 4))
        with torch.inference_mode():
            m(torch.randn(5, 4))
            w.result()  # a read inside inference mode makes no inference tensors either
        m(torch.randn(5, 4))
    t = w.result()
    assert t.iters.tolist() == [0, 1, 2, 3] and np.isfinite(t.mean).all()


def test_a_copy_of_a_watched_model_is_not_watched_and_the_model_pickles():
    m = mlp()
    with actscope.watch(m) as w:
        m(torch.randn(5, 4))
        w.step()
        ema = copy.deepcopy(m)
        ema(torch.randn(5, 4) * 100)  # the copy's forward must not enter the record
        w.step()
        torch.save(m, io.BytesIO())
        buf = io.BytesIO()
        torch.save(m, buf)
    assert w.result().iters.tolist() == [0]
    assert hooks_on(ema) == 0 and hooks_on(m) == 0
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    loaded(torch.randn(2, 4))
    assert hooks_on(loaded) == 0


def test_a_partly_frozen_model_records_its_training_parts():
    m = mlp()
    m.eval()
    m[2].train()  # fine-tune only the head
    with actscope.watch(m) as w:
        for _ in range(5):
            m(torch.randn(5, 4)).sum().backward()
    t = w.result()
    assert t.iters.tolist() == [0, 1, 2, 3, 4]
    assert t.ran[0].sum() == 0 and t.ran[1].sum() == 5  # m[0] is in eval mode: no record


def test_submodules_called_directly_record_one_batch_and_say_to_call_step():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc, self.head = nn.Linear(4, 4), nn.Linear(4, 2)

    m = Net()
    with actscope.watch(m, modules=[m.enc, m.head]) as w:
        for _ in range(3):
            m.head(m.enc(torch.randn(5, 4)))
        with pytest.warns(UserWarning, match=r"call w.step\(\)"):
            t = w.result()
    assert t.iters.tolist() == [0]
    with actscope.watch(m, modules=[m.enc, m.head]) as w:
        for _ in range(3):
            m.head(m.enc(torch.randn(5, 4)))
            w.step()
        assert w.result().iters.tolist() == [0, 1, 2]


def test_nothing_recorded_says_why():
    m = mlp()
    with actscope.watch(m) as w:
        m.eval()(torch.randn(5, 4))
    with pytest.raises(UsageError, match="no watched module ran a forward in training mode"):
        w.result()


class DictBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> dict:
        return {"hidden_states": self.lin(x), "aux": None}


def test_an_output_key_that_is_not_there_is_named_with_the_keys():
    m = nn.Sequential(DictBlock())
    with actscope.watch(m, modules=[m[0]], output="hidden") as w:
        m(torch.randn(5, 4))
        with pytest.raises(UsageError, match=r"no tensor at output='hidden' \(keys: "
                                             r"hidden_states, aux\)"):
            w.result()
    with actscope.watch(m, modules=[m[0]], output="hidden_states") as w:
        m(torch.randn(5, 4))
        assert np.isfinite(w.result().mean).all()


def test_a_layer_that_never_gives_a_tensor_is_named_in_a_warning():
    class NoneBlock(nn.Module):
        def forward(self, x: torch.Tensor) -> None:
            return None

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), NoneBlock()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.b(x)
            return self.a(x)

    m = Net()
    with actscope.watch(m, modules=[m.a, m.b]) as w:
        m(torch.randn(5, 4))
        with pytest.warns(UserWarning, match="returned NoneType, which holds no tensor"):
            w.result()


def test_an_eval_mode_backward_does_not_overwrite_the_gradient_record():
    m = mlp()
    with actscope.watch(m, grads=True) as w:
        for _ in range(3):
            m.train()
            m(torch.randn(5, 4)).sum().backward()
            m.eval()
            (m(torch.randn(5, 4)) * -7).sum().backward()
    m.train()
    t = w.result()
    np.testing.assert_allclose(t.grad_mean[1], [1.0, 1.0, 1.0])


@pytest.mark.parametrize("peek", ["result", "state_dict"])
def test_reading_before_step_does_not_skip_step_numbers(peek):
    m = mlp()
    with actscope.watch(m) as w:
        for _ in range(4):
            m(torch.randn(5, 4))
            getattr(w, peek)()
            w.step()
    assert w.result().iters.tolist() == [0, 1, 2, 3]


def test_reentering_a_removed_watch_is_an_error():
    m = mlp()
    w = actscope.watch(m)
    with w:
        m(torch.randn(5, 4))
    with pytest.raises(UsageError, match="start a new one"):
        with w:
            pass
    assert hooks_on(m) == 0


@pytest.mark.parametrize("kwargs, says", [
    ({"module": [0]}, "did you mean modules=?"),
    ({"training_only": False}, "unknown telemetry setting training_only="),
    ({"bin": 10}, "did you mean bins=?"),
])
def test_an_unknown_setting_is_a_usage_error(kwargs, says):
    m = mlp()
    with pytest.raises(UsageError, match=says.replace("(", r"\(").replace(")", r"\)")
                       .replace("?", r"\?")):
        actscope.watch(m, **kwargs)
    assert hooks_on(m) == 0


def test_the_open_epoch_is_labelled_by_the_watch_epoch():
    m = mlp()
    with actscope.watch(m) as w:
        w.end_epoch()
        w.end_epoch()
        m(torch.randn(5, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert w.result().channel_epochs.tolist() == [2]


def test_the_trainer_callbacks_name_an_unknown_setting_too():
    from actscope.integrations.recording import StepRecorder

    with pytest.raises(UsageError, match=r"did you mean dead_threshold=\?"):
        StepRecorder("ActscopeCallback", dead_treshold=0.1)


@pytest.mark.parametrize("kwargs, says", [
    ({"bins": 10.5}, "bins must be an int >= 2, got 10.5"),
    ({"bins": "40"}, "bins must be an int >= 2, got '40'"),
    ({"sample_size": 2.5}, "sample_size must be an int >= 1"),
    ({"chunk": True}, "chunk must be an int >= 1"),
    ({"dead_bins": 1.5}, "dead_bins must be an int >= 1"),
    ({"dead_threshold": "x"}, "dead_threshold must be a finite number > 0"),
    ({"dead_threshold": float("nan")}, "dead_threshold must be a finite number > 0"),
    ({"hist_range": 5}, "hist_range must be (lo, hi)"),
    ({"hist_range": (0,)}, "hist_range must be (lo, hi)"),
    ({"hist_range": (1, 0)}, "hist_range must be (lo, hi)"),
    ({"every": 0}, "every must be an int >= 1"),
])
def test_a_setting_of_the_wrong_type_fails_when_made_not_mid_training(kwargs, says):
    from actscope.integrations.recording import StepRecorder

    with pytest.raises(UsageError) as err:
        StepRecorder("ActscopeCallback", **kwargs)
    assert says in str(err.value)
    m = mlp()
    with pytest.raises(UsageError):
        actscope.watch(m, **kwargs)
    assert hooks_on(m) == 0


def test_a_validation_pass_with_autograd_on_is_not_a_batch():
    m = mlp()
    with actscope.watch(m, modules=[m[0]], every=2) as w:
        for _ in range(6):
            m.train()
            m(torch.randn(5, 4)).sum().backward()
            m.eval()
            m(torch.randn(5, 4)).sum()  # validation, autograd left on
    m.train()
    assert w.result().iters.tolist() == [0, 2, 4]


def test_a_validation_forward_after_a_read_does_not_count_an_extra_batch():
    m = mlp()
    with actscope.watch(m, modules=[m[0]]) as w:
        for batch in range(5):
            m(torch.randn(5, 4)).sum().backward()
            if batch == 2:
                w.result()
                m.eval()
                with torch.no_grad():
                    m(torch.randn(5, 4))
                m.train()
            w.step()
    assert w.result().iters.tolist() == [0, 1, 2, 3, 4]


def test_the_dead_share_of_a_layer_that_did_not_run_is_nan_not_zero():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.a, self.b = nn.Linear(4, 8), nn.Sequential(nn.Linear(8, 8), nn.ReLU())
            self.calls = 0
            with torch.no_grad():
                self.b[0].bias.fill_(-100.0)  # 100% dead whenever it runs

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            h = self.a(x)
            return self.b(h) if self.calls % 2 else h

    m = Net()
    with actscope.watch(m, modules=[m.a, m.b]) as w:
        for _ in range(10):
            m(torch.randn(5, 4))
            w.step()
    t = w.result()
    assert t.dead[1, ::2].tolist() == [1.0] * 5 and np.isnan(t.dead[1, 1::2]).all()
    assert "dead" in [f.kind for f in diagnose(t)]


def test_on_off_settings_must_be_bools_and_numpy_numbers_are_fine():
    m = mlp()
    with pytest.raises(UsageError, match="channels must be True or False, got 'false'"):
        actscope.watch(m, channels="false")
    with actscope.watch(m, every=np.int64(2), dead_threshold=np.float32(0.1),
                        bins=np.int32(20)) as w:
        for _ in range(4):
            m(torch.randn(5, 4))
    t = w.result()
    assert t.iters.tolist() == [0, 2] and t.hist.shape[2] == 20
    assert json.dumps(t.meta)  # numpy settings stored as plain numbers


def test_a_watch_cannot_be_copied_or_pickled():
    import pickle

    m = mlp()
    with actscope.watch(m) as w:
        with pytest.raises(UsageError, match="save w.state_dict"):
            copy.deepcopy(w)
        with pytest.raises(UsageError, match="save w.state_dict"):
            pickle.dumps(w)


def test_a_layer_skipped_in_the_first_batch_takes_its_range_from_its_first_run():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 8)
            self.calls = 0
            with torch.no_grad():
                self.b.weight.mul_(50)  # b's outputs span about ±100, far beyond [-1, 1]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            h = self.a(x)
            return self.b(h) if self.calls > 1 else h

    m = Net()
    with actscope.watch(m, modules=[m.a, m.b], chunk=2) as w:  # flushed before the checkpoint
        for _ in range(4):
            m(torch.randn(64, 4))
            w.step()
        state = w.state_dict()
    t = w.result()
    assert t.ran[1].tolist() == [0, 1, 1, 1]
    assert (t.hist_range[1, 1:, 1] > 10).all()  # not the [-1, 1] of a layer with no samples
    in_range = t.hist[1, 1:].sum(axis=1)
    assert (in_range >= 0.99 * t.meta["sample_size"]).all()
    assert state["acc"]["ladder"][0][1] > 10  # the range state travels with the checkpoint


def test_step_after_the_with_block_warns_once_and_records_nothing():
    model = mlp()
    with actscope.watch(model) as w:
        model(torch.randn(4, 4)).sum().backward()
        w.step(loss=1.0)
    n = len(w.result().iters)
    with pytest.warns(UserWarning, match="after the watch was removed"):
        w.step(loss=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w.step(loss=3.0)  # said once
    assert len(w.result().iters) == n
