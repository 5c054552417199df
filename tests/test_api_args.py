"""Family 5 of issue 23: the API's argument checks. A str where a list of runs is expected is one
run (never its characters); a module outside the watched model is named at watch() time; one
folder given twice is refused; different folders with one name get distinct labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from torch import nn

import actscope
from actscope.cli import main
from actscope.errors import UsageError
from actscope.report.compare.data import load_runs
from actscope.runs.labels import run_labels
from tests.helpers import one_error_line


@pytest.mark.parametrize("as_", [str, Path])
def test_compare_takes_one_path_as_one_run(made_runs, tmp_path, as_):
    page = actscope.compare(as_(made_runs["fit"]), out=tmp_path / "c")
    assert page.is_file() and "A: fit" in page.read_text()


def test_compare_of_a_missing_str_names_the_whole_path(tmp_path):
    with pytest.raises(ActscopeErrorLike, match=r"\bpa\b"):
        actscope.compare("pa", out=tmp_path / "c")
    assert not (tmp_path / "c").exists()


ActscopeErrorLike = actscope.ActscopeError if hasattr(actscope, "ActscopeError") else Exception


@pytest.mark.parametrize("runs", [b"pa", 3, [3], [b"pa"], [None]],
                         ids=["bytes", "int", "list of int", "list of bytes", "list of None"])
def test_compare_refuses_what_is_not_paths(runs, tmp_path):
    with pytest.raises(UsageError, match="must be"):
        actscope.compare(runs, out=tmp_path / "c")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("out", [b"c", 3, None, ""])
def test_compare_refuses_an_out_that_is_not_a_path(made_runs, out):
    with pytest.raises(UsageError):
        actscope.compare([made_runs["fit"]], out=out)


@pytest.mark.parametrize("second", ["{}/", "{}/.", "{}/../fit-copy", "./{}"])
def test_one_folder_twice_is_refused(copy_of, tmp_path, monkeypatch, capsys, second):
    run = copy_of("fit")
    monkeypatch.chdir(run.parent)
    assert main(["compare", run.name, second.format(run.name), "--out", "c"]) == 2
    one_error_line(capsys.readouterr().err, "is given twice")


def test_same_named_folders_get_distinct_labels(made_runs, tmp_path):
    paths = []
    for parent in ("x/a", "y/a", "z"):
        dest = tmp_path / parent / "run"
        shutil.copytree(made_runs["fit"], dest, ignore=shutil.ignore_patterns(".lock"))
        paths.append(dest)
    labels = [label for label, _ in load_runs(paths)]
    assert labels == ["A: x/a/run", "B: y/a/run", "C: z/run"]


@pytest.mark.parametrize(("paths", "want"), [
    (["/r/a", "/r/b"], ["a", "b"]),
    (["/x/a/run", "/y/a/run"], ["x/a/run", "y/a/run"]),
    (["/x/run", "/y/run", "/y/z/run"], ["x/run", "y/run", "z/run"]),
    (["/p/q/r/run", "/s/q/r/run"], ["p/q/r/run", "s/q/r/run"]),
])
def test_run_labels_are_the_shortest_distinct_tails(paths, want):
    assert run_labels([Path(p) for p in paths]) == want


# ---- watch(modules=...) ------------------------------------------------------------------
def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.ModuleList([nn.Linear(8, 2)]))


OUTSIDE = {
    "list with a foreign module": lambda m, o: [m[0], o],
    "a foreign module alone": lambda m, o: o,
    "dict of modules": lambda m, o: {"a": o},
    "a ModuleList not in the model": lambda m, o: nn.ModuleList([o]),
    "tuple": lambda m, o: (m[0], o),
}


@pytest.mark.parametrize("case", list(OUTSIDE))
def test_watch_names_a_module_outside_the_model(case):
    model, other = _model(), nn.Linear(3, 3)
    with pytest.raises(UsageError, match=r"modules\[\d\] \(Linear.*not part of the watched model"):
        actscope.watch(model, modules=OUTSIDE[case](model, other))
    assert not model._forward_hooks and not other._forward_hooks  # nothing was hooked


@pytest.mark.parametrize("spec", [lambda m: [m[0]], lambda m: m[2], lambda m: m[2][0],
                                  lambda m: nn.Linear, lambda m: "0|1", lambda m: None],
                         ids=["list", "a ModuleList", "inside it", "a type", "a regex",
                              "default"])
def test_watch_accepts_the_models_own_modules(spec):
    model = _model()
    w = actscope.watch(model, modules=spec(model))
    w.remove()


# ---- Learner(cbs=...) / fit(cbs=...) -----------------------------------------------------
@pytest.mark.parametrize("where", ["Learner", "fit", "add_cbs"])
def test_one_callback_alone_is_a_list_of_one(where, make_synth_learner):
    from actscope.callbacks.metrics import MetricsCallback

    cb = MetricsCallback()
    if where == "Learner":
        learn = make_synth_learner(cbs=cb)
    else:
        learn = make_synth_learner()
        if where == "add_cbs":
            learn.add_cbs(cb)
    learn.fit(1, cbs=cb if where == "fit" else ())
    assert cb.history and len(cb.history) == 1


@pytest.mark.parametrize(("cbs", "match"), [("metrics", "must be a Callback"),
                                             (3, "must be a Callback"),
                                             (None, "must be a Callback")])
def test_what_is_not_callbacks_is_named(cbs, match, make_synth_learner):
    with pytest.raises(TypeError, match=match):
        make_synth_learner().add_cbs(cbs)


def test_a_callback_class_alone_says_to_make_an_instance(make_synth_learner):
    from actscope.callbacks.metrics import MetricsCallback

    with pytest.raises(TypeError, match="not the class"):
        make_synth_learner().add_cbs(MetricsCallback)
