"""Family 1 of issue 23: every report writer takes the run lock and writes only a folder of its
own kind (``runs/report_claim.py``); a refusal is one line and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from actscope.cli import main
from actscope.integrations.recording import StepRecorder
from actscope.runs import MARKER, LockedError, RunFolderError, RunLock
from actscope.runs.report_claim import claim_report_folder, folder_kind
from tests.battery import DIGITS, watch_report
from tests.helpers import tree_snapshot


def _recorder_report(out: Path) -> Path:
    """What the Lightning and Hugging Face callbacks do at the end of fit."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    rec = StepRecorder("ActscopeCallback")
    rec.attach(model)
    for step in range(3):
        rec.begin(step)
        model(torch.randn(8, 4)).sum().backward()
        rec.end()
    rec.remove()
    return rec.report(out)


def _check_target(out: Path) -> None:
    StepRecorder("ActscopeCallback").check_report_target(out)  # Lightning/HF at fit start


def _cli(argv: list[str]) -> Callable[[Path], None]:
    def run(folder: Path) -> None:
        code = main([a.replace("{}", str(folder)) for a in argv])
        if code != 0:
            raise RunFolderError(f"exit {code}")
    return run


WRITERS: dict[str, Callable[[Path], object]] = {
    "watch.report": watch_report,
    "callback.report": _recorder_report,
    "callback start check": _check_target,
    "actscope report": _cli(["report", "{}"]),
    "compare --out": None,  # filled in by the test: needs a run to compare
    "fit --overwrite": _cli(["fit", *DIGITS, "--out", "{}", "--overwrite"]),
}

# (folder kind, writer) pairs that must be refused, nothing changed
REFUSED = [
    ("fit", "watch.report"), ("fit", "callback.report"), ("fit", "callback start check"),
    ("fit", "compare --out"), ("lrf", "watch.report"), ("lrf", "callback.report"),
    ("lrf", "compare --out"), ("watch", "fit --overwrite"), ("watch", "compare --out"),
    ("compare", "watch.report"), ("compare", "actscope report"), ("compare", "fit --overwrite"),
    ("v01", "watch.report"), ("v01", "compare --out"),
]


def _folder(kind: str, copy_of, tmp_path: Path, made_runs) -> Path:
    if kind in ("fit", "lrf", "watch"):
        return copy_of(kind)
    path = tmp_path / kind
    if kind == "compare":
        assert main(["compare", str(made_runs["fit"]), "--out", str(path)]) == 0
    else:  # an unmarked (v0.1) training run: config.json, recorder.npz, metrics.csv
        path.mkdir()
        for name in ("config.json", "recorder.npz", "metrics.csv"):
            (path / name).write_bytes((made_runs["fit"] / name).read_bytes())
    return path


def _writer(name: str, made_runs) -> Callable[[Path], object]:
    return WRITERS[name] or _cli(["compare", str(made_runs["fit"]), "--out", "{}"])


@pytest.mark.parametrize(("kind", "writer"), REFUSED, ids=[f"{w} into {k}" for k, w in REFUSED])
def test_a_folder_of_another_kind_is_refused_untouched(kind, writer, copy_of, tmp_path,
                                                        made_runs, capsys) -> None:
    folder = _folder(kind, copy_of, tmp_path, made_runs)
    before = tree_snapshot(folder)
    with pytest.raises(RunFolderError):
        _writer(writer, made_runs)(folder)
    err = capsys.readouterr().err
    if writer in ("actscope report", "compare --out", "fit --overwrite"):
        assert err.count("\n") == 1 and "Traceback" not in err, err
    assert tree_snapshot(folder) == before


LIVE = ["watch.report", "callback.report", "actscope report", "compare --out"]


@pytest.mark.parametrize("writer", LIVE)
def test_a_live_locked_folder_is_refused(writer, copy_of, made_runs, capsys) -> None:
    folder = copy_of("watch")  # a folder every one of these writers may write when idle
    if writer == "compare --out":
        folder = folder.parent / "cmp"
        assert main(["compare", str(made_runs["fit"]), "--out", str(folder)]) == 0
    with RunLock(folder):  # another writer holds it (flock: per open file, even in-process)
        before = tree_snapshot(folder)
        with pytest.raises((LockedError, RunFolderError)):
            _writer(writer, made_runs)(folder)
        assert tree_snapshot(folder) == before
    assert "live process" in capsys.readouterr().err or writer in ("watch.report",
                                                                   "callback.report")


def test_a_live_fit_refuses_a_watch_report(made_runs, tmp_path) -> None:
    from actscope.runs import RunFolder

    with RunFolder.create(tmp_path / "live") as run:  # fit's state while it trains
        before = tree_snapshot(run.path)
        with pytest.raises(RunFolderError):
            watch_report(run.path)
        assert tree_snapshot(run.path) == before


@pytest.mark.parametrize("writer", ["watch.report", "callback.report"])
def test_a_watch_folder_is_marked_and_written_again(writer, tmp_path) -> None:
    out = tmp_path / "logs" / "version_0"
    WRITERS[writer](out)
    assert folder_kind(out) == "watch"
    assert json.loads((out / MARKER).read_text())["kind"] == "watch"
    WRITERS[writer](out)  # a second report to the same folder: fine
    WRITERS["watch.report"](out)
    assert (out / "report.html").is_file()


def test_a_users_folder_is_marked_once_and_its_files_kept(tmp_path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "hparams.yaml").write_text("lr: 1\n")
    watch_report(out)
    assert (out / "hparams.yaml").read_text() == "lr: 1\n" and folder_kind(out) == "watch"
    assert main(["fit", *DIGITS, "--out", str(out), "--overwrite"]) == 2
    assert (out / "hparams.yaml").is_file()


@pytest.mark.parametrize("kind", ["fit", "lrf", "watch"])
def test_actscope_report_rebuilds_each_kind_it_owns(kind, copy_of) -> None:
    folder = copy_of(kind)
    assert main(["report", str(folder)]) == 0


def test_the_claim_takes_the_lock_while_the_block_runs(tmp_path) -> None:
    out = tmp_path / "w"
    with claim_report_folder(out, "watch"):
        with pytest.raises(LockedError):
            RunLock(out).acquire()
    RunLock(out).acquire().release()  # freed after


def test_an_unknown_writer_is_a_bug(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown report writer"):
        with claim_report_folder(tmp_path, "plot"):
            pass


USER_FOLDERS = {
    "a Lightning log dir": {"hparams.yaml": "lr: 1\n", "metrics.csv": "step,loss\n0,1\n",
                            "checkpoints/epoch=0-step=4.ckpt": "x"},
    "a Hugging Face output_dir": {"config.json": "{}", "checkpoint-500/trainer_state.json": "{}"},
    "an empty folder": {},
    "a folder of notes": {"notes.txt": "mine"},
}


@pytest.mark.parametrize("case", list(USER_FOLDERS))
def test_a_watch_report_goes_into_a_trainers_folder(case, tmp_path):
    out = tmp_path / "logs"
    out.mkdir()
    for name, text in USER_FOLDERS[case].items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    watch_report(out)
    assert (out / "report.html").is_file() and folder_kind(out) == "watch"
    for name, text in USER_FOLDERS[case].items():
        assert (out / name).read_text() == text  # nothing of theirs touched


def test_an_unmarked_run_with_actscope_checkpoints_is_refused(copy_of, tmp_path):
    run = copy_of("fit")
    (run / MARKER).unlink()
    for name in ("recorder.npz",):
        (run / name).unlink()
    assert folder_kind(run) == "unmarked run"
    with pytest.raises(RunFolderError, match="without a marker"):
        watch_report(run)


@pytest.mark.parametrize("writer", ["watch", "compare", "norms"])
@pytest.mark.parametrize("kind", ["fit", "lr-find"])
@pytest.mark.parametrize("depth", ["plots", "a/b"])
def test_a_new_folder_inside_a_run_is_refused(tmp_path: Path, writer: str, kind: str,
                                              depth: str) -> None:
    run = tmp_path / "run"
    (run / "plots").mkdir(parents=True)
    (run / MARKER).write_text(json.dumps({"kind": kind}))
    before = tree_snapshot(run)
    with pytest.raises(RunFolderError, match="is inside .*pass a folder outside it"):
        with claim_report_folder(run / depth, writer):
            pass
    assert tree_snapshot(run) == before


def test_a_folder_beside_a_run_or_inside_a_watch_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / MARKER).write_text(json.dumps({"kind": "fit"}))
    (tmp_path / "lightning").mkdir()
    (tmp_path / "lightning" / MARKER).write_text(json.dumps({"kind": "watch"}))
    for target in (tmp_path / "beside", tmp_path / "lightning" / "version_0"):
        with claim_report_folder(target, "compare") as path:
            assert path == target
