"""safe_load.py: checkpoint files are read without running code, and damage is one clear error."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from actscope.safe_load import (
    CheckpointError,
    from_plain,
    load_safetensors_into,
    read_json,
    safe_torch_load,
    to_plain,
)


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_with_a_payload_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state": Payload()}, protocol=2))
    with pytest.raises(CheckpointError, match="refused to load .*could run code"):
        safe_torch_load(path)


def test_bytes_that_are_no_pickle_are_damaged_not_a_payload(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"garbage")  # no zip, no pickle: torch's unpickler trips on its opcodes
    with pytest.raises(CheckpointError, match="the file is damaged") as info:
        safe_torch_load(path)
    assert "could run code" not in str(info.value) and "PyTorch 2.6" not in str(info.value)


def test_tensors_and_plain_containers_load(tmp_path):
    path = tmp_path / "ok.pt"
    torch.save({"w": torch.arange(3), "n": [1, 2.5, "x"]}, path)
    got = safe_torch_load(path)
    assert torch.equal(got["w"], torch.arange(3)) and got["n"] == [1, 2.5, "x"]


def test_a_truncated_file_is_damaged_with_the_fix(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save({"w": torch.zeros(100)}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="the file is damaged.*resume from an older one"):
        safe_torch_load(path)


def test_numpy_round_trips_through_to_plain(tmp_path):
    state = {"a": np.arange(6).reshape(2, 3), "b": [np.float32(1.5), (np.ones(2),)]}
    path = tmp_path / "np.pt"
    torch.save(to_plain(state), path)
    back = from_plain(safe_torch_load(path))
    np.testing.assert_array_equal(back["a"], state["a"])
    assert back["b"][0] == 1.5 and isinstance(back["b"][1], tuple)
    np.testing.assert_array_equal(back["b"][1][0], np.ones(2))


def test_safetensors_load_into_a_matching_model(tmp_path):
    src, dst = nn.Linear(3, 2), nn.Linear(3, 2)
    save_file(src.state_dict(), str(tmp_path / "w.safetensors"))
    load_safetensors_into(dst, tmp_path / "w.safetensors")
    assert torch.equal(src.weight, dst.weight)


def test_safetensors_that_do_not_fit_name_the_problem(tmp_path):
    save_file(nn.Linear(3, 2).state_dict(), str(tmp_path / "w.safetensors"))
    with pytest.raises(CheckpointError, match=r"weight has shape \(2, 3\) in the file, \(4, 3\)"):
        load_safetensors_into(nn.Linear(3, 4), tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="missing"):
        load_safetensors_into(nn.Sequential(nn.Linear(3, 2)), tmp_path / "w.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_safetensors_into(nn.Linear(3, 2), tmp_path / "junk.safetensors")


def test_read_json_errors_name_the_file(tmp_path):
    (tmp_path / "a.json").write_text('{"x": 1}')
    assert read_json(tmp_path / "a.json") == {"x": 1}
    (tmp_path / "b.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="b.json"):
        read_json(tmp_path / "b.json")
