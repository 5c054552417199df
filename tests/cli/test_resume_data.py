"""``fit --resume`` refuses data that is not the data the run started on.

``--data`` may change on resume (the files may move), but a resume on other data would not end
where the run would: config.json records a digest of the loaded train/valid tensors and the
resume compares it before training. Generated IDX files (no real MNIST needed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from actscope.cli import main
from actscope.data.idx import write_idx
from actscope.runs import RUNNING
from tests.helpers import one_error_line, tree_snapshot

N_TRAIN = 10_060  # MNIST's split keeps the last 10,000 for validation: 60 train images


def _fake_mnist(folder: Path, invert_first: bool = False) -> Path:
    """Four uncompressed IDX files of random digits; ``invert_first`` changes one image."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for kind, n in (("train", N_TRAIN), ("t10k", 20)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        if invert_first and kind == "train":
            images[0] = 255 - images[0]
        write_idx(folder / f"{kind}-images-idx3-ubyte", images)
        write_idx(folder / f"{kind}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10)
    return folder


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> tuple[Path, Path]:
    """A finished run on generated data made interrupted again (its RUNNING marker back)."""
    root = tmp_path_factory.mktemp("resume_data")
    data = _fake_mnist(root / "data")
    run = root / "run"
    assert main(["fit", "--data", str(data), "--limit", "50", "--epochs", "1", "--nfs", "4,8",
                 "--bs", "16", "--no-telemetry", "--no-progress", "--out", str(run)]) == 0
    return run, data


def _copy_interrupted(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    (dst / RUNNING).touch()
    return dst


def test_config_records_the_data_digest(interrupted: tuple[Path, Path]) -> None:
    cfg = json.loads((interrupted[0] / "config.json").read_text())
    assert cfg["data"].startswith("sha256:") and len(cfg["data"]) == len("sha256:") + 64


def test_resume_on_other_data_is_refused(interrupted: tuple[Path, Path], tmp_path: Path,
                                         capsys) -> None:
    run = _copy_interrupted(interrupted[0], tmp_path / "run")
    other = _fake_mnist(tmp_path / "other", invert_first=True)  # one training image differs
    before = tree_snapshot(run)
    assert main(["fit", "--resume", str(run), "--data", str(other), "--no-progress"]) == 2
    line = one_error_line(capsys.readouterr().err, "not the data this run started on")
    assert str(other) in line and "--data" in line
    after = tree_snapshot(run)
    before.pop(".actscope-run"), after.pop(".actscope-run")  # the marker notes the attempt
    assert after == before


def test_resume_on_the_same_data_moved_is_accepted(interrupted: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    run = _copy_interrupted(interrupted[0], tmp_path / "run")
    moved = shutil.copytree(interrupted[1], tmp_path / "moved")
    assert main(["fit", "--resume", str(run), "--data", str(moved), "--no-progress"]) == 0
    assert not (run / RUNNING).exists()


def test_a_run_from_before_the_digest_still_resumes(interrupted: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    run = _copy_interrupted(interrupted[0], tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text())
    del cfg["data"]
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["fit", "--resume", str(run), "--data", str(interrupted[1]),
                 "--no-progress"]) == 0


def test_a_digest_that_is_not_a_string_is_a_damaged_config(tmp_path: Path) -> None:
    from actscope.runs import RunFileError, read_config

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"settings": {}, "seed": 0, "data": 5}))
    with pytest.raises(RunFileError, match="'data' must be the data's digest"):
        read_config(path)


def test_a_checkpoint_copied_from_another_run_is_refused(interrupted: tuple[Path, Path],
                                                         tmp_path: Path, capsys) -> None:
    data = interrupted[1]
    other = tmp_path / "other"
    assert main(["fit", "--data", str(data), "--limit", "50", "--epochs", "1", "--nfs", "4,8",
                 "--bs", "16", "--seed", "7", "--no-telemetry", "--no-progress",
                 "--out", str(other)]) == 0
    run = _copy_interrupted(interrupted[0], tmp_path / "run")
    shutil.rmtree(run / "checkpoints")
    shutil.copytree(other / "checkpoints", run / "checkpoints")
    assert main(["fit", "--resume", str(run), "--data", str(data), "--no-progress"]) == 2
    one_error_line(capsys.readouterr().err, "was saved by another run")
