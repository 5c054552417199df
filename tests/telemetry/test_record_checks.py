"""Family 4 of issue 23: a well-formed ``telemetry.npz`` whose values cannot be true is refused
on load with one error naming the file and the field; ``compare`` and ``report`` refuse it in
one line and never draw it (telemetry/record_checks.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import numpy as np
import pytest

from actscope.cli import main
from actscope.telemetry.record import Telemetry, TelemetryFileError
from tests.helpers import one_error_line, tree_snapshot
from tests.telemetry.test_record import telemetry


def _set(field: str, fn: Callable[[np.ndarray], None]) -> Callable[[Telemetry], None]:
    def damage(t: Telemetry) -> None:
        a = getattr(t, field).copy()
        fn(a)
        setattr(t, field, a)
    return damage


def _meta(**kw) -> Callable[[Telemetry], None]:
    def damage(t: Telemetry) -> None:
        t.meta = {**t.meta, **kw}
    return damage


def _ran(values) -> Callable[[Telemetry], None]:
    def damage(t: Telemetry) -> None:
        t.ran = np.full(t.mean.shape, values, np.uint8)
    return damage


DAMAGE: dict[str, tuple[Callable[[Telemetry], None], str]] = {
    "NaN hist_range": (_set("hist_range", lambda a: a.__setitem__((1, 0), np.nan)), "hist_range"),
    "inf hist_range": (_set("hist_range", lambda a: a.__setitem__((0, 1), np.inf)), "hist_range"),
    "reversed hist_range": (_set("hist_range", lambda a: a.__setitem__(0, [1.0, -1.0])),
                            "hist_range"),
    "empty hist_range": (_set("hist_range", lambda a: a.__setitem__(1, [0.5, 0.5])),
                         "hist_range"),
    "meta.bins disagrees": (_meta(bins=16), "meta.bins"),
    "meta.bins a string": (_meta(bins="4"), "meta.bins"),
    "meta.every 0": (_meta(every=0), "meta.every"),
    "meta.every a float": (_meta(every=1.5), "meta.every"),
    "meta.sample_size negative": (_meta(sample_size=-3), "meta.sample_size"),
    "meta.dead_threshold NaN": (_meta(dead_threshold=float("nan")), "meta.dead_threshold"),
    "meta.scope a number": (_meta(scope=3), "meta.scope"),
    "meta.forward_order text": (_meta(forward_order=["a"]), "meta.forward_order"),
    "negative counts": (_set("hist", lambda a: a.__setitem__((0, 1, 2), -5)), "hist"),
    "negative underflow": (_set("hist_under", lambda a: a.__setitem__((1, 0), -1)),
                           "hist_under"),
    "negative overflow": (_set("hist_over", lambda a: a.__setitem__((1, 4), -1)), "hist_over"),
    "negative std": (_set("std", lambda a: a.__setitem__((0, 2), -0.5)), "std"),
    "dead share above 1": (_set("dead", lambda a: a.__setitem__((0, 0), 1.5)), "dead"),
    "dead share below 0": (_set("dead", lambda a: a.__setitem__((1, 3), -0.1)), "dead"),
    "iters decrease": (_set("iters", lambda a: a.__setitem__(3, 0)), "iters"),
    "negative iters": (_set("iters", lambda a: a.__setitem__(0, -1)), "iters"),
    "ran is 2": (_ran(2), "ran"),
    "channel_dead 0.5": (_set("channel_dead", lambda a: a.__setitem__((1, 0, 0), 0.5)),
                         "channel_dead"),
    "channel_epochs decrease": (_set("channel_epochs", lambda a: a.__setitem__(slice(None),
                                                                              [1, 0])),
                                "channel_epochs"),
    "negative n_channels": (_set("n_channels", lambda a: a.__setitem__(0, -1)), "n_channels"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_meaningless_value_is_refused_naming_the_field(case, tmp_path):
    t = telemetry()
    damage, field = DAMAGE[case]
    damage(t)
    path = t.save(tmp_path / "telemetry.npz")
    with pytest.raises(TelemetryFileError) as info:
        Telemetry.load(path)
    message = str(info.value)
    assert str(path) in message and f"{field} " in message, message
    assert "\n" not in message


@pytest.mark.parametrize("case", ["equal iters", "NaN statistics where a layer did not run",
                                  "NaN channel padding", "inf std of a blown-up layer"])
def test_what_a_real_recording_holds_is_accepted(case, tmp_path):
    t = telemetry()
    if case == "equal iters":
        t.iters = np.array([0, 1, 1, 2, 3])
    elif case == "NaN statistics where a layer did not run":
        t.ran = np.ones(t.mean.shape, np.uint8)
        t.ran[1, 2] = 0
        t.mean[1, 2] = t.std[1, 2] = t.dead[1, 2] = np.nan
    elif case == "inf std of a blown-up layer":
        t.std[0, 4] = np.inf
    t.meta = {**t.meta, "bins": 4, "dead_bins": None}
    Telemetry.load(t.save(tmp_path / "telemetry.npz"))


@pytest.mark.parametrize("case", ["NaN hist_range", "reversed hist_range", "meta.bins disagrees",
                                  "negative counts"])
@pytest.mark.parametrize("command", ["compare", "report"])
def test_compare_and_report_refuse_to_draw_it(case, command, copy_of, made_runs, tmp_path,
                                              capsys):
    run = copy_of("fit")
    t = Telemetry.load(run / "telemetry.npz")
    if case == "meta.bins disagrees":
        t.meta["bins"] = t.hist.shape[2] + 1
    else:
        DAMAGE[case][0](t)
    t.save(run / "telemetry.npz")
    shutil.rmtree(run / "plots")
    before = tree_snapshot(run)
    argv = (["compare", str(made_runs["fit"]), str(run), "--out", str(tmp_path / "c")]
            if command == "compare" else ["report", str(run)])
    assert main(argv) == 2
    one_error_line(capsys.readouterr().err, "telemetry.npz is not a valid actscope telemetry")
    assert not (tmp_path / "c").exists()
    assert {k: v for k, v in tree_snapshot(run).items() if k != ".lock"} == {
        k: v for k, v in before.items() if k != ".lock"}
