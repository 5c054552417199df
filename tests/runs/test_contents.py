"""runs/contents.py: what RunContents writes, its readers read back (atomically, validated)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from actscope.runs.contents import METRICS_COLUMNS, RunContents, library_versions
from actscope.runs.files import RunFileError


class Folder(RunContents):
    def __init__(self, path):
        self.path = path


def test_config_round_trip_records_seed_and_versions(tmp_path):
    run = Folder(tmp_path)
    run.write_config({"bs": 8, "nfs": (1, 2)}, seed=7)
    cfg = run.read_config()
    assert cfg["settings"] == {"bs": 8, "nfs": [1, 2]} and cfg["seed"] == 7
    assert cfg["versions"] == library_versions()
    assert set(library_versions()) == {"python", "torch", "numpy", "actscope"}


def test_metrics_round_trip_at_full_precision_with_blanks(tmp_path):
    run = Folder(tmp_path)
    rows = [{"epoch": 0, "train_loss": 0.1 + 0.2, "valid_loss": 1.0},
            {"epoch": 1, "train_loss": 0.5}]
    run.write_metrics_csv(rows)
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert header == ",".join(METRICS_COLUMNS)
    back = run.read_metrics()
    assert back[0]["train_loss"] == 0.1 + 0.2 and back[0]["epoch"] == 0
    assert np.isnan(back[1]["valid_loss"]) and np.isnan(back[0]["seconds"])


def test_weights_round_trip_and_damage(tmp_path):
    run = Folder(tmp_path)
    model = nn.Linear(2, 3)
    run.save_weights(model)
    back = run.load_weights()
    assert torch.equal(back["weight"], model.weight.detach())
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(RunFileError, match="model.safetensors is damaged: not a safetensors"):
        run.load_weights()


def test_npz_json_and_findings_round_trip(tmp_path):
    run = Folder(tmp_path)
    run.write_npz("recorder.npz", lrs=[0.1, 0.2], losses=[2.0, 1.0])
    np.testing.assert_array_equal(run.read_recorder()["losses"], [2.0, 1.0])
    run.write_json("findings.json", ["dead units"])
    assert run.read_findings() == ["dead units"]
    assert run.file("x.txt") == tmp_path / "x.txt"
    assert not list(tmp_path.glob(".*.tmp"))
