"""checkpoints.py: save -> verify -> read round trip, and every kind of damage refused."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from actscope.checkpoints import (
    CheckpointError,
    check_checkpoint_folder,
    checkpoint_seq,
    find_latest_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    meta_checksum,
    prune_checkpoints,
    read_checkpoint,
    remove_stale_checkpoint_temps,
    save_checkpoint,
    verify_checkpoint,
)

POSITION = {"epoch": 1, "iter": 3, "train_iter": 7, "n_epochs": 2}


def _save(root, seq=0, model=None):
    model = model or nn.Linear(3, 2)
    state = {"opt": None, "rng": {"torch": torch.get_rng_state()}, "callbacks": {"x": 1}}
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return save_checkpoint(root, seq, weights, state, POSITION)


def test_round_trip_gives_back_weights_state_and_position(tmp_path):
    src = nn.Linear(3, 2)
    ckpt = _save(tmp_path / "checkpoints", 5, src)
    assert ckpt.name == "ckpt-000005" and checkpoint_seq(ckpt) == 5
    got = read_checkpoint(ckpt)
    assert {k: got.meta[k] for k in POSITION} == POSITION and got.meta["seq"] == 5
    assert got.state["callbacks"] == {"x": 1}
    dst = nn.Linear(3, 2)
    got.load_weights_into(dst)
    assert torch.equal(dst.weight, src.weight) and torch.equal(dst.bias, src.bias)
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_an_edited_meta_fails_its_checksum(tmp_path):
    ckpt = _save(tmp_path)
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["checksum"] == meta_checksum(meta)
    meta["epoch"] = 2
    (ckpt / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        verify_checkpoint(ckpt)


def test_a_changed_weights_file_is_refused_and_older_ones_named(tmp_path):
    _save(tmp_path, 0)
    ckpt = _save(tmp_path, 1)
    data = bytearray((ckpt / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (ckpt / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model.safetensors does not match.*ckpt-000000"):
        read_checkpoint(ckpt)


def test_missing_meta_and_missing_folder(tmp_path):
    ckpt = _save(tmp_path)
    (ckpt / "meta.json").unlink()
    with pytest.raises(CheckpointError, match="has no meta.json"):
        verify_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="does not exist"):
        verify_checkpoint(tmp_path / "ckpt-000009")


def test_listing_is_numeric_and_latest_is_found_from_the_run_folder(tmp_path):
    root = tmp_path / "checkpoints"
    for seq in (2, 10, 1):
        _save(root, seq)
    (root / "notes.txt").write_text("x")
    assert [p.name for p in list_checkpoints(root)] == ["ckpt-000001", "ckpt-000002",
                                                        "ckpt-000010"]
    assert find_latest_checkpoint(tmp_path).name == "ckpt-000010"
    assert latest_checkpoint(root).name == "ckpt-000010"
    assert find_latest_checkpoint(tmp_path / "empty") is None
    with pytest.raises(CheckpointError, match="does not exist"):
        latest_checkpoint(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        latest_checkpoint(tmp_path / "empty")


def test_prune_keeps_the_newest(tmp_path):
    for seq in range(4):
        _save(tmp_path, seq)
    prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in tmp_path.iterdir()] and sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-000002", "ckpt-000003"]


def test_a_file_named_like_a_checkpoint_is_refused_and_kept(tmp_path):
    (tmp_path / "ckpt-000001").write_text("mine")
    (tmp_path / ".tmp-ckpt-000000-1").mkdir()
    with pytest.raises(CheckpointError, match="is a file, not a checkpoint"):
        remove_stale_checkpoint_temps(tmp_path)
    assert (tmp_path / "ckpt-000001").read_text() == "mine"
    assert (tmp_path / ".tmp-ckpt-000000-1").is_dir()  # nothing deleted on refusal


def test_stale_save_temps_are_removed(tmp_path):
    (tmp_path / ".tmp-ckpt-000000-1").mkdir()
    check_checkpoint_folder(tmp_path)
    assert [p.name for p in remove_stale_checkpoint_temps(tmp_path)] == [".tmp-ckpt-000000-1"]
    assert not any(tmp_path.iterdir())


def test_checkpoint_seq_refuses_other_names(tmp_path):
    with pytest.raises(CheckpointError, match="not named like a checkpoint"):
        checkpoint_seq(tmp_path / "ckpt-1")


def test_the_last_damaged_checkpoint_says_resume_starts_over(tmp_path):
    from actscope.checkpoints import CKPT_SUBDIR, verify_checkpoint
    from actscope.safe_load import CheckpointError

    ckpt = tmp_path / CKPT_SUBDIR / "ckpt-000009"
    ckpt.mkdir(parents=True)  # no meta.json: an incomplete checkpoint, and the only one
    with pytest.raises(CheckpointError, match="none left: --resume then starts the run over"):
        verify_checkpoint(ckpt)
