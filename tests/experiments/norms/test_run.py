"""experiments/norms/run.py: the quick mode on real MNIST, the output files, early errors."""

from __future__ import annotations

import csv
import math

import pytest

from actscope.experiments.norms import check_names, run_norms
from actscope.experiments.norms.run import is_diverged


@pytest.mark.mnist
def test_quick_run_writes_sane_results(mnist_dir, tmp_path, one_thread):
    rows = run_norms(tmp_path, names=["running_batch_bs2", "no_norm"], quick=True,
                     data_dir=mnist_dir, log=None)
    assert [r["name"] for r in rows] == ["no_norm", "running_batch_bs2"]  # table order
    for name in ("norms.csv", "norms.md", "norms.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files
    with open(tmp_path / "norms.csv", newline="") as f:
        saved = list(csv.DictReader(f))
    assert [r["name"] for r in saved] == ["no_norm", "running_batch_bs2"]
    no_norm = rows[0]
    assert no_norm["bs"] == 32 and no_norm["n_valid"] == 500 and no_norm["epochs"] == 1
    assert no_norm["valid_accuracy"] > 0.3  # 50 steps on real digits: well above chance (0.1)
    assert rows[1]["bs"] == 2 and rows[1]["n_train"] == 100
    for r in rows:
        assert 0.0 <= r["valid_accuracy"] <= 1.0 and not r["diverged"]
    assert float(saved[0]["valid_accuracy"]) == pytest.approx(no_norm["valid_accuracy"])
    md = (tmp_path / "norms.md").read_text()
    assert "the lesson's figure" in md and "~96.5% (transcript)" in md and "quick mode" in md
    assert (tmp_path / "norms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_names_and_missing_data_fail_before_output(tmp_path):
    with pytest.raises(ValueError, match="valid names: no_norm"):
        check_names(["no_norm", "typo"])
    with pytest.raises(ValueError, match="seeds"):
        run_norms(tmp_path / "x", seeds=())
    with pytest.raises(ValueError):  # DataError is a ValueError: one line and exit 2 in the CLI
        run_norms(tmp_path / "y", names=["no_norm"], data_dir=tmp_path / "no_mnist_here")
    assert not (tmp_path / "y").exists()


def test_is_diverged_means_non_finite_or_far_above_chance():
    assert not is_diverged(0.1) and not is_diverged(math.log(10))
    assert is_diverged(float("nan")) and is_diverged(float("inf")) and is_diverged(1e6)


@pytest.mark.parametrize("kind", ["fit", "lr-find", "watch", "compare"])
def test_another_kind_of_actscope_folder_is_refused_before_the_data(tmp_path, kind):
    from actscope.runs import RunFolderError
    from tests.helpers import tree_snapshot

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".actscope-run").write_text(f'{{"kind": "{kind}"}}\n')
    (folder / "metrics.csv").write_text("epoch\n")
    before = tree_snapshot(folder)
    with pytest.raises(RunFolderError, match="refusing to write the norms table"):
        run_norms(folder, names=["no_norm"], quick=True, data_dir=tmp_path / "no_mnist_here")
    assert tree_snapshot(folder) == before


def test_a_norms_folder_is_marked_and_locked_while_written(mnist_dir, tmp_path, one_thread):
    from actscope.runs import LockedError
    from actscope.runs.lock import RunLock
    from actscope.runs.report_claim import folder_kind

    run_norms(tmp_path / "n", names=["no_norm"], quick=True, data_dir=mnist_dir, log=None)
    assert folder_kind(tmp_path / "n") == "norms"
    with RunLock(tmp_path / "n"), pytest.raises(LockedError):
        run_norms(tmp_path / "n", names=["no_norm"], quick=True, data_dir=mnist_dir, log=None)
