"""Issue 10's families as one table-driven battery: each row is one way to lose data, fail a
resume or read a bad file, and what must happen instead (docs/reliability.md).

Families: §1 overwrite only what actscope made, §2 one writer per run folder, §3 resume a run
killed before its first checkpoint, §4 stale temp files and a run killed before its report,
§6 resume gaps (early stop, torchmetrics, meta.json checksum), §7 refused checkpoints, §9 run
files validated against a schema. In-process and on tiny synthetic learners; the cases that need
a real second process or the CLI are in tests/runs/test_lock.py and tests/test_resume_kill.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from actscope.callback import Callback
from actscope.callbacks.checkpoint import CheckpointCallback
from actscope.checkpoints import CheckpointError, latest_checkpoint, meta_checksum
from actscope.runs import (
    MARKER,
    LockedError,
    RunFileError,
    RunFolder,
    RunFolderError,
    read_config,
    read_findings,
    read_lr_find,
    read_metrics,
    read_recorder,
)
from tests.callbacks.test_checkpoint import KillAt, LossSumCallback, make_learner, weights


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for folders, the target for links)."""
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = (str(p.readlink()).encode() if p.is_symlink()
                    else None if p.is_dir() else p.read_bytes())
    return out


def one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text and text.strip(), repr(text)
    return text


# ---- §1 --overwrite replaces only what actscope made ---------------------------------------
def _foreign_app(p: Path) -> None:
    (p / "config.json").write_text('{"app": "mine"}')
    (p / "data.db").write_bytes(b"precious")


def _foreign_metrics(p: Path) -> None:
    (p / "metrics.csv").write_text("epoch,loss\n0,1.0\n")


def _looks_like_v01_run(p: Path) -> None:  # every v0.1 file, but no marker
    for name in ("config.json", "metrics.csv", "model.safetensors", "RUNNING"):
        (p / name).write_text("x")
    (p / "checkpoints" / "ckpt-000000").mkdir(parents=True)


def _marker_is_a_folder(p: Path) -> None:
    (p / MARKER).mkdir()
    (p / "thesis.tex").write_text("precious")


def _only_hidden_files(p: Path) -> None:
    (p / ".git").mkdir()
    (p / ".git" / "HEAD").write_text("ref: refs/heads/main\n")


def _user_symlink(p: Path) -> None:
    (p / "link").symlink_to(p.parent)


FOREIGN = {"app folder with config.json": _foreign_app, "metrics.csv only": _foreign_metrics,
           "all v0.1 run files, no marker": _looks_like_v01_run,
           "marker name is a folder": _marker_is_a_folder, "a git checkout": _only_hidden_files,
           "a symlink": _user_symlink}


@pytest.mark.parametrize("make", FOREIGN.values(), ids=FOREIGN.keys())
def test_overwrite_refuses_what_actscope_did_not_make(tmp_path: Path, make: Callable) -> None:
    target = tmp_path / "proj"
    target.mkdir()
    make(target)
    before = snapshot(tmp_path)
    with pytest.raises(RunFolderError, match="not an actscope run folder") as err:
        RunFolder.create(target, overwrite=True)
    assert "nothing was touched" in one_line(err.value)
    assert snapshot(tmp_path) == before  # not one file touched, not even a lock file made


def _run_with_files(p: Path) -> None:
    run = RunFolder.create(p, overwrite=True)  # p exists, empty
    run.write_json("config.json", {"settings": {}})
    (p / "checkpoints" / "ckpt-000000").mkdir(parents=True)
    (p / "escape").symlink_to(p.parent / "outside")  # a link is removed, never followed
    run.finish()
    run.release()


REPLACEABLE = {"an actscope run": _run_with_files, "an empty folder": lambda p: None,
               "only a lock file left": lambda p: (p / ".lock").write_text("")}


@pytest.mark.parametrize("make", REPLACEABLE.values(), ids=REPLACEABLE.keys())
def test_overwrite_replaces_an_actscope_run_or_empty_folder(tmp_path: Path, make) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep.txt").write_text("not in the run")
    target = tmp_path / "run"
    target.mkdir()
    make(target)
    with RunFolder.create(target, overwrite=True) as run:
        assert sorted(p.name for p in target.iterdir()) == [MARKER, ".lock", "RUNNING"]
        assert run.marker["kind"] == "fit" and run.marker["finished"] is None
    assert (tmp_path / "outside" / "keep.txt").read_text() == "not in the run"


@pytest.mark.parametrize("overwrite", [False, True])
def test_create_refuses_a_file_and_an_existing_run_without_overwrite(tmp_path, overwrite):
    (tmp_path / "f").write_text("a file")
    with pytest.raises(RunFolderError, match="not a folder"):
        RunFolder.create(tmp_path / "f", overwrite=overwrite)
    RunFolder.create(tmp_path / "r").release()
    if not overwrite:
        with pytest.raises(RunFolderError, match="already exists"):
            RunFolder.create(tmp_path / "r")
    assert (tmp_path / "f").read_text() == "a file"


# ---- §2 one writer at a time (in one process: two locks on one folder conflict) ------------
OPENERS = {"create --overwrite": lambda p: RunFolder.create(p, overwrite=True),
           "open_for_resume": RunFolder.open_for_resume,
           "create resume=True": lambda p: RunFolder.create(p, resume=True)}


@pytest.mark.parametrize("second", OPENERS.values(), ids=OPENERS.keys())
@pytest.mark.parametrize("first", ["create", "open_for_resume"])
def test_second_writer_is_refused_and_changes_nothing(tmp_path: Path, first: str, second) -> None:
    path = tmp_path / "live"
    run = RunFolder.create(path)
    run.write_json("config.json", {"settings": {}})
    if first == "open_for_resume":
        run.release()
        run = RunFolder.open_for_resume(path)
    before = snapshot(path)
    with pytest.raises(LockedError, match="being written by another live process") as err:
        second(path)
    assert isinstance(err.value, RunFolderError) and one_line(err.value)
    assert snapshot(path) == before
    assert RunFolder.open(path).state == "running"
    run.release()
    assert RunFolder.open(path).state == "interrupted"
    second(path).release()  # free now


# ---- §3 killed before the first checkpoint: resume starts over, identically ---------------
STARTS = {"no checkpoints folder": lambda root: None,
          "empty checkpoints folder": lambda root: root.mkdir(),
          "only a killed save's temp folder":
              lambda root: (root / ".tmp-ckpt-000000-999").mkdir(parents=True)}


@pytest.mark.parametrize("prepare", STARTS.values(), ids=STARTS.keys())
def test_resume_without_checkpoint_starts_over_identically(tmp_path: Path, prepare) -> None:
    ref_sums = LossSumCallback()
    ref = make_learner(cbs=[ref_sums])
    ref.fit(2)
    path = tmp_path / "run"
    run = RunFolder.create(path)
    run.write_json("config.json", {"settings": {}})
    run.release()  # "killed" before any checkpoint: marker, RUNNING, config.json only
    prepare(path / "checkpoints")
    with RunFolder.open_for_resume(path) as again:
        assert again.checkpoint is None
        sums, ckpt = LossSumCallback(), CheckpointCallback(path)
        learn = make_learner(cbs=[sums, ckpt])
        learn.fit(2, resume=path)
    assert ckpt.started_over and ckpt.resumed_from is None
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in weights(ref).items())
    assert [r["train_loss"] for r in sums.history] == [r["train_loss"] for r in ref_sums.history]
    assert not list((path / "checkpoints").glob(".tmp-*"))


def test_resume_of_a_folder_that_is_no_run_still_fails(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    learn = make_learner(cbs=[CheckpointCallback(tmp_path / "x")])
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        learn.fit(1, resume=tmp_path / "x")  # no marker: a typo must not start a fresh run


@pytest.mark.parametrize("path, match", [("", "no run folder given"), ("nope", "does not exist"),
                                         ("plain", "not an actscope run folder"),
                                         ("noconfig", "no config.json"),
                                         ("badconfig", "config.json is damaged")])
def test_open_for_resume_refuses_in_one_line(tmp_path: Path, path: str, match: str) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.json").write_text('{"settings": {}}')  # no marker, no RUNNING
    RunFolder.create(tmp_path / "noconfig").release()
    RunFolder.create(tmp_path / "badconfig").release()
    (tmp_path / "badconfig" / "config.json").write_text("[]")
    target = tmp_path / path if path else ""
    with pytest.raises(RunFolderError, match=match) as err:
        RunFolder.open_for_resume(target)
    one_line(err.value)
    assert not RunFolder(tmp_path / "noconfig").locked_by_other()  # a refusal frees the lock


def test_a_v01_run_is_adopted_by_resume(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text('{"settings": {}, "seed": 0}')
    (old / "RUNNING").touch()
    with RunFolder.open_for_resume(old) as run:
        assert run.marker["adopted"] and run.marker["created"] is None
        assert run.state == "interrupted"  # RUNNING, and the only writer is this one
    assert (old / MARKER).is_file() and RunFolder.open(old).state == "interrupted"


# ---- §4 stale temp files, and a run killed before its report ------------------------------
STALE = [".model.safetensors.k2j4_x9a.tmp", ".recorder.npz.abcdefgh.tmp",
         ".telemetry.npz.0123abcd.tmp", ".config.json.zz__zz11.tmp", ".metrics.csv.a1b2c3d4.tmp",
         "plots/.stats.png.qwertyui.tmp"]
NOT_OURS = [".notes.tmp", "model.safetensors.abcdefgh.tmp", ".x.ABCDEFGH.tmp", "keep.tmp"]


@pytest.mark.parametrize("when", ["open_for_resume", "finish"])
def test_stale_temp_files_are_removed_and_nothing_else(tmp_path: Path, when: str) -> None:
    path = tmp_path / "run"
    run = RunFolder.create(path)
    run.write_json("config.json", {"settings": {}})
    (path / "plots").mkdir()
    for name in STALE + NOT_OURS:
        (path / name).write_bytes(b"half a file")
    if when == "open_for_resume":
        run.release()
        run = RunFolder.open_for_resume(path)
    else:
        run.finish()
    run.release()
    left = {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}
    assert not left & set(STALE)
    assert set(NOT_OURS) <= left  # only names atomic_write makes are ever deleted


def test_stale_temps_of_a_live_writer_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "run"
    live = RunFolder.create(path)
    (path / STALE[0]).write_bytes(b"being written")
    assert RunFolder.open(path).remove_stale_temps() == []
    assert (path / STALE[0]).exists()
    live.release()
    assert RunFolder.open(path).remove_stale_temps() == [path / STALE[0]]


def _finished(path: Path, report: bool, kind: str = "fit") -> RunFolder:
    run = RunFolder.create(path, kind=kind)
    run.write_json("config.json", {"settings": {}})
    run.finish()
    if report:
        (path / "report.html").write_text("<html></html>")
    return run


@pytest.mark.parametrize("setup, state", [
    (lambda p: RunFolder.create(p), "running"),  # lock still held by the object below
    (lambda p: RunFolder.create(p).release(), "interrupted"),
    (lambda p: _finished(p, report=False).release(), "unreported"),
    (lambda p: _finished(p, report=True).release(), "complete"),
    (lambda p: _finished(p, report=False, kind="lr-find").release(), "complete"),
], ids=["live", "killed", "killed-before-report", "finished", "lr-find-finished"])
def test_state_is_visible(tmp_path: Path, setup, state: str) -> None:
    held = setup(tmp_path / "run")
    folder = RunFolder.open(tmp_path / "run")
    assert folder.state == state
    assert (folder.marker["finished"] is None) == (state in ("running", "interrupted"))
    if held is not None:
        held.release()


def test_resume_of_an_unreported_run_reopens_it(tmp_path: Path) -> None:
    _finished(tmp_path / "run", report=False).release()
    with RunFolder.open_for_resume(tmp_path / "run") as run:
        assert run.marker["finished"] is None and not run.complete  # RUNNING until it finishes
        run.finish()
    assert RunFolder.open(tmp_path / "run").state == "unreported"


# ---- §6 resume gaps ----------------------------------------------------------------------
class CountBatches(Callback):
    order = 100

    def __init__(self) -> None:
        self.n = 0

    def after_batch(self, learn) -> None:
        self.n += learn.training


def _early_stopper(**kw):
    from actscope.callbacks.guards import EarlyStoppingCallback
    from actscope.callbacks.metrics import MetricsCallback

    # min_delta 1e9: only the first epoch "improves", so it stops at epoch `patience`
    return [MetricsCallback(), EarlyStoppingCallback(monitor="valid_loss", min_delta=1e9, **kw)]


@pytest.mark.parametrize("kw, every", [({"patience": 1}, None), ({"patience": 2}, 3),
                                       ({"patience": 1, "restore_best": True}, None)],
                         ids=["patience1", "patience2-mid-epoch-saves", "restore-best"])
def test_early_stopped_epoch_is_checkpointed(tmp_path: Path, kw: dict, every) -> None:
    ref = make_learner(cbs=_early_stopper(**kw))
    ref.fit(6)
    stop = kw["patience"]
    assert len(ref.cbs[0].history) == stop + 1  # epochs 0..stop trained, then it stopped
    learn = make_learner(cbs=[*_early_stopper(**kw), CheckpointCallback(tmp_path, every)])
    learn.fit(6)
    meta = json.loads((latest_checkpoint(tmp_path) / "meta.json").read_text())
    assert meta["stopped"] is True and meta["epoch"] == stop + 1
    counter = CountBatches()
    again = make_learner(seed=5, cbs=[*_early_stopper(**kw), CheckpointCallback(tmp_path, every),
                                      counter])
    again.fit(6, resume=tmp_path)
    assert counter.n == 0  # the stopped epoch is not replayed, nothing more is trained
    assert len(again.cbs[0].history) == stop + 1
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in weights(ref).items())


class VetoAfterEpoch(Callback):
    """A guard that refuses every checkpoint from epoch ``epoch`` on."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def check_checkpointable(self, learn) -> None:
        from actscope.events import CancelFitException

        if learn.epoch >= self.epoch:
            raise CancelFitException("not finite")


def test_a_vetoed_stop_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    learn = make_learner(cbs=[*_early_stopper(patience=1), VetoAfterEpoch(1),
                              CheckpointCallback(tmp_path)])
    learn.fit(6)  # stops at epoch 1; its save is vetoed, which must not escape the fit
    meta = json.loads((latest_checkpoint(tmp_path) / "meta.json").read_text())
    assert (meta["epoch"], meta["stopped"]) == (1, False)


@pytest.mark.parametrize("kill_step", [3, 10])  # mid-epoch 0, mid-epoch 1
def test_torchmetrics_partial_epoch_survives(tmp_path: Path, kill_step: int) -> None:
    tm = pytest.importorskip("torchmetrics")
    from actscope.callbacks.metrics import MetricsCallback

    def metrics():
        return MetricsCallback(tm.classification.MulticlassAccuracy(num_classes=3),
                               tm.classification.MulticlassF1Score(num_classes=3,
                                                                   average="macro"))

    ref = make_learner(cbs=[metrics()])
    ref.fit(2)
    crashed = make_learner(cbs=[metrics(), CheckpointCallback(tmp_path, every_n_batches=1)])
    with pytest.raises(KeyboardInterrupt):
        crashed.fit(2, cbs=[KillAt(kill_step)])
    resumed = make_learner(seed=9, cbs=[metrics(), CheckpointCallback(tmp_path, 1)])
    resumed.fit(2, resume=tmp_path)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in ref.cbs[0].history]
    assert [{k: v for k, v in r.items() if k != "seconds"}
            for r in resumed.cbs[0].history] == strip


def _edit_meta(ckpt: Path, change: Callable[[dict], None], reseal: bool) -> None:
    meta = json.loads((ckpt / "meta.json").read_text())
    change(meta)
    if reseal and "checksum" in meta:
        meta["checksum"] = meta_checksum(meta)
    (ckpt / "meta.json").write_text(json.dumps(meta))


META_EDITS = {
    "epoch -5 by hand": (lambda m: m.update(epoch=-5), False, "checksum"),
    "epoch 1 by hand": (lambda m: m.update(epoch=1), False, "checksum"),
    "epoch -5 resealed": (lambda m: m.update(epoch=-5), True, "'epoch' is -5"),
    "epoch past the end": (lambda m: m.update(epoch=99), True, "epoch 99 of"),
    "iter a string": (lambda m: m.update(iter="3"), True, "'iter' is '3'"),
    "train_iter a bool": (lambda m: m.update(train_iter=True), True, "'train_iter'"),
    "n_epochs 0": (lambda m: m.update(n_epochs=0), True, "'n_epochs' is 0"),
    "seq of another folder": (lambda m: m.update(seq=7), True, "seq 7"),
    "checksum removed": (lambda m: m.pop("checksum"), False, "checksum"),
    "unknown format": (lambda m: m.update(format=9), True, "format"),
    "files entry missing": (lambda m: m["files"].pop("state.pt"), True, "SHA-256 of state.pt"),
    "sha not hex": (lambda m: m["files"]["model.safetensors"].update(sha256="zz"), True,
                    "SHA-256 of model.safetensors"),
}


@pytest.mark.parametrize("change, reseal, match", META_EDITS.values(), ids=META_EDITS.keys())
def test_edited_meta_json_is_refused(tmp_path: Path, change, reseal: bool, match: str) -> None:
    make_learner(cbs=[CheckpointCallback(tmp_path)]).fit(2)
    _edit_meta(latest_checkpoint(tmp_path), change, reseal)
    counter = CountBatches()
    with pytest.raises(CheckpointError, match=match) as err:
        make_learner(cbs=[CheckpointCallback(tmp_path), counter]).fit(2, resume=tmp_path)
    assert "meta.json" in one_line(err.value) and "ckpt-000000" in str(err.value)  # the older
    assert counter.n == 0


# ---- §7 every refused or damaged checkpoint: its own one-line CheckpointError --------------
def _flip_last_byte(name: str) -> Callable[[Path], None]:
    def damage(ckpt: Path) -> None:
        data = bytearray((ckpt / name).read_bytes())
        data[-1] ^= 0xFF
        (ckpt / name).write_bytes(bytes(data))
    return damage


def _resealed(name: str, data: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """Replace ``name`` and forge meta.json to match: only the file's own check can refuse it."""
    def damage(ckpt: Path) -> None:
        new = data((ckpt / name).read_bytes())
        (ckpt / name).write_bytes(new)
        _edit_meta(ckpt, lambda m: m["files"].update(
            {name: {"bytes": len(new), "sha256": hashlib.sha256(new).hexdigest()}}), True)
    return damage


class Payload:
    """Unpickling this would create the marker file: code execution on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _newer(ckpt: Path, fill: Callable[[Path], None]) -> None:
    newer = ckpt.parent / "ckpt-000099"
    newer.mkdir()
    fill(newer)


PWNED = Path("/tmp/actscope-battery-pwned")
DAMAGE = {
    "model sha mismatch": (_flip_last_byte("model.safetensors"),
                           "model.safetensors does not match the size/SHA-256"),
    "state sha mismatch": (_flip_last_byte("state.pt"), "state.pt does not match"),
    "truncated safetensors": (_resealed("model.safetensors", lambda b: b[:len(b) // 2]),
                              "not a valid safetensors file"),
    "empty safetensors": (_resealed("model.safetensors", lambda b: b""),
                          "not a valid safetensors file"),
    "truncated state.pt": (_resealed("state.pt", lambda b: b[:100]), "cannot read .*state.pt"),
    "crafted pickle in state.pt": (_resealed("state.pt", lambda b: pickle.dumps(Payload(PWNED))),
                                   "refused to load|cannot read"),
    "payload in torch zip": (_resealed("state.pt", lambda b: _torch_bytes({"x": Payload(PWNED)})),
                             "refused to load .* could run code"),
    "state.pt of another shape": (_resealed("state.pt", lambda b: _torch_bytes({"x": 1})),
                                  "state.pt does not hold opt/rng/callbacks"),
    "garbage meta.json": (lambda c: (c / "meta.json").write_bytes(b"\x00\xffnot json"),
                          "meta.json is not valid JSON"),
    "empty meta.json": (lambda c: (c / "meta.json").write_text(""), "meta.json is not valid JSON"),
    "meta.json a list": (lambda c: (c / "meta.json").write_text("[1, 2]"),
                         "not actscope checkpoint metadata"),
    "missing state.pt": (lambda c: (c / "state.pt").unlink(), "state.pt is missing"),
    "empty newer folder": (lambda c: _newer(c, lambda n: None), "ckpt-000099 is damaged: it has "
                                                                "no meta.json"),
    "newer folder with only meta.json": (
        lambda c: _newer(c, lambda n: shutil.copy(c / "meta.json", n / "meta.json")),
        "ckpt-000099 is damaged"),
    "callback state of another shape": (
        _resealed("state.pt", lambda b: _torch_bytes({**torch.load(io.BytesIO(b)),
                                                      "callbacks": {"LossSumCallback": {}}})),
        "state of LossSumCallback .* does not fit"),
}


@pytest.mark.parametrize("damage, match", DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_checkpoint_is_refused_in_one_line(tmp_path: Path, damage, match: str) -> None:
    PWNED.unlink(missing_ok=True)
    make_learner(cbs=[LossSumCallback(), CheckpointCallback(tmp_path)]).fit(2)
    damage(latest_checkpoint(tmp_path))
    counter = CountBatches()
    learn = make_learner(cbs=[LossSumCallback(), CheckpointCallback(tmp_path), counter])
    with pytest.raises(CheckpointError, match=match) as err:
        learn.fit(2, resume=tmp_path)
    text = one_line(err.value)
    assert "ckpt-000000" in text or "the run that saved it" in text  # says what to do instead
    assert counter.n == 0 and not PWNED.exists()  # nothing trained, no payload ran


@pytest.mark.parametrize("change, match", [
    (lambda m: m.__setitem__(0, nn.Linear(6, 17)), "does not fit this model: missing|has shape"),
    (lambda m: m.append(nn.Linear(3, 3)), "does not fit this model"),
    (lambda m: m.__setitem__(3, nn.Linear(16, 4)), r"3.weight has shape \(3, 16\)"),
], ids=["wider layer", "extra layer", "other classes"])
def test_changed_model_is_refused(tmp_path: Path, change, match: str) -> None:
    make_learner(cbs=[CheckpointCallback(tmp_path)]).fit(1)
    learn = make_learner(cbs=[CheckpointCallback(tmp_path)])
    change(learn.model)
    learn.opt = None  # rebuilt for the changed model by fit
    with pytest.raises(CheckpointError, match=match) as err:
        learn.fit(1, resume=tmp_path)
    one_line(err.value)


def test_other_optimizer_is_refused(tmp_path: Path) -> None:
    make_learner(cbs=[CheckpointCallback(tmp_path)]).fit(1)
    learn = make_learner(cbs=[CheckpointCallback(tmp_path)])
    learn.opt_func = lambda params, lr: torch.optim.Adam([*params][:1], lr=lr)
    with pytest.raises(CheckpointError, match="optimizer state .* does not fit") as err:
        learn.fit(1, resume=tmp_path)
    one_line(err.value)


# ---- §9 every file read from a run folder is validated ------------------------------------
def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


GOOD_REC = _npz(lrs=np.ones((4, 1)), losses=np.arange(4.0), mom=np.ones((4, 1)))
BAD_FILES = {
    "config {}": ("config.json", b"{}", read_config, "'settings' must be a JSON object"),
    "config []": ("config.json", b"[]", read_config, "expected a JSON object, found list"),
    "config a string": ("config.json", b'"x"', read_config, "expected a JSON object"),
    "config settings a list": ("config.json", b'{"settings": []}', read_config, "'settings'"),
    "config seed a string": ("config.json", b'{"settings": {}, "seed": "3"}', read_config,
                             "'seed' must be an integer"),
    "config versions a list": ("config.json", b'{"settings": {}, "versions": [1]}', read_config,
                               "'versions'"),
    "config truncated": ("config.json", b'{"settings": {"lr"', read_config, "not valid UTF-8 JSON"),
    "config not utf-8": ("config.json", b"\xff\xfe\x00", read_config, "not valid UTF-8 JSON"),
    "config empty": ("config.json", b"", read_config, "not valid UTF-8 JSON"),
    "metrics empty": ("metrics.csv", b"", read_metrics, "no header row"),
    "metrics no epoch column": ("metrics.csv", b"loss\n1.0\n", read_metrics, "'epoch'"),
    "metrics repeated column": ("metrics.csv", b"epoch,a,a\n0,1,2\n", read_metrics, "once"),
    "metrics short row": ("metrics.csv", b"epoch,loss\n0\n", read_metrics, "line 2 has 1 fields"),
    "metrics not a number": ("metrics.csv", b"epoch,loss\n0,abc\n", read_metrics, "not a number"),
    "metrics epoch skips": ("metrics.csv", b"epoch,loss\n0,1\n2,1\n", read_metrics,
                            "epoch '2', expected 1"),
    "metrics epoch fractional": ("metrics.csv", b"epoch,loss\n0.5,1\n", read_metrics, "epoch"),
    "metrics binary": ("metrics.csv", b"\xff\x00\xfe", read_metrics, "not a readable CSV"),
    "recorder empty": ("recorder.npz", b"", read_recorder, "not a readable .npz"),
    "recorder truncated": ("recorder.npz", GOOD_REC[:60], read_recorder, "not a readable .npz"),
    "recorder pickled object array": ("recorder.npz", _npz(lrs=np.array([{"a": 1}], dtype=object),
                                                           losses=np.ones(1)),
                                      read_recorder, "not a readable .npz"),
    "recorder a raw pickle": ("recorder.npz", pickle.dumps({"lrs": [1.0]}), read_recorder,
                              "not a readable .npz"),
    "recorder a .npy": ("recorder.npz", _npy(np.ones(3)), read_recorder, "not an .npz archive"),
    "recorder missing losses": ("recorder.npz", _npz(lrs=np.ones(3)), read_recorder,
                                r"missing arrays \['losses'\]"),
    "recorder lengths differ": ("recorder.npz", _npz(lrs=np.ones(3), losses=np.ones(4)),
                                read_recorder, "expected 4 rows"),
    "recorder strings": ("recorder.npz", _npz(lrs=np.array(["a"]), losses=np.ones(1)),
                         read_recorder, "array 'lrs' has shape"),
    "recorder losses 2-d": ("recorder.npz", _npz(lrs=np.ones(2), losses=np.ones((2, 2))),
                            read_recorder, "array 'losses'"),
    "lr_find missing lrs": ("lr_find.npz", _npz(losses=np.ones(3)), read_lr_find, "missing"),
    "lr_find suggestion a vector": ("lr_find.npz", _npz(lrs=np.ones(3), losses=np.ones(3),
                                                        suggestion=np.ones(3)),
                                    read_lr_find, "'suggestion' must be one number"),
    "lr_find lengths differ": ("lr_find.npz", _npz(lrs=np.ones(3), losses=np.ones(3),
                                                   raw_losses=np.ones(2)),
                               read_lr_find, "'raw_losses' has shape"),
    "findings an object": ("findings.json", b"{}", read_findings, "list of strings"),
    "findings numbers": ("findings.json", b"[1, 2]", read_findings, "list of strings"),
    "findings garbage": ("findings.json", b"nope", read_findings, "not valid UTF-8 JSON"),
}


@pytest.mark.parametrize("name, data, reader, match", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_run_file_is_one_line_naming_it(tmp_path: Path, name, data, reader, match) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(RunFileError, match=match) as err:
        reader(tmp_path / name)
    assert str(tmp_path / name) in one_line(err.value)
    assert isinstance(err.value, RunFolderError)


def test_settings_are_checked_against_the_file(tmp_path: Path) -> None:
    from actscope.config import FitConfig

    path = tmp_path / "config.json"
    full = FitConfig().to_dict()
    for change, match in [({"bs": "x"}, "bad settings"), ({"nope": 1}, "unknown settings"),
                          ({"nfs": 3}, "must be a list"), ({"lr": -1.0}, "--lr")]:
        path.write_text(json.dumps({"settings": {**full, **change}}))
        with pytest.raises(RunFileError, match=match) as err:
            read_config(path, FitConfig.from_dict)
        assert str(path) in one_line(err.value)
    path.write_text(json.dumps({"settings": FitConfig(seed=4).to_dict(), "seed": 4}))
    assert read_config(path, FitConfig.from_dict)["config"] == FitConfig(seed=4)


def test_good_files_read_back(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    run.write_metrics_csv([{"epoch": 0, "train_loss": 0.5}, {"epoch": 1, "train_loss": 0.25}])
    run.write_npz("recorder.npz", lrs=np.ones((4, 1)), losses=np.arange(4.0), mom=np.ones((4, 1)))
    run.write_npz("lr_find.npz", lrs=np.ones(3), losses=np.ones(3), suggestion=np.float64(0.1),
                  suggestion_steep=np.float64(np.nan))
    run.write_json("findings.json", ["layer 2 is dead"])
    assert [r["train_loss"] for r in run.read_metrics()] == [0.5, 0.25]
    assert run.read_recorder()["losses"].tolist() == [0.0, 1.0, 2.0, 3.0]
    lrf = run.read_lr_find()
    assert lrf["suggestion"] == 0.1 and lrf["suggestion_steep"] is None
    assert run.read_findings() == ["layer 2 is dead"]
    run.release()
