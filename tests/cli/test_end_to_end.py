"""End to end: `actscope fit` on a real MNIST subset, the run folder, seeds, report, lr-find.

Subprocesses run torch on one intra-op thread: on a busy 2-core box two OpenMP threads wait on
each other and an epoch takes 20x longer, while the numbers are the same.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from actscope.cli import main
from actscope.config import FitConfig
from actscope.recipe import make_dataloaders, make_model
from actscope.runs import METRICS_COLUMNS, RunFolder

pytestmark = pytest.mark.mnist

QUICK = ["--limit", "2000", "--epochs", "1", "--bs", "64", "--seed", "1", "--no-progress"]
MIN_ACCURACY = 0.80  # 32 steps on 2,000 images reach ~0.86; an untrained model is at ~0.10


def fit_cli(mnist_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "actscope", "fit", "--data", str(mnist_dir),
                           "--out", str(out), *QUICK, *extra],
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    from tests.conftest import find_mnist_dir

    mnist_dir = find_mnist_dir()
    if mnist_dir is None:
        pytest.skip("real MNIST files not found: set ACTSCOPE_MNIST_DIR")
    out = tmp_path_factory.mktemp("e2e") / "run1"
    return out, fit_cli(mnist_dir, out)




def test_fit_succeeds_and_prints_table(quick_run):
    out, res = quick_run
    assert res.returncode == 0, res.stderr[-2000:]
    assert "valid_acc" in res.stdout and f"run folder: {out}" in res.stdout
    assert "Traceback" not in res.stderr
    assert not (out / "RUNNING").exists()
    assert "did not finish" not in (out / "report.html").read_text(encoding="utf-8")


def test_run_folder_contents(quick_run):
    out, _ = quick_run
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "metrics.csv", "model.safetensors", "recorder.npz", "telemetry.npz",
            "report.html", "plots"} <= names
    # no temp files: the only dot-files are the run marker and the lock file (docs/reliability.md)
    assert "RUNNING" not in names
    assert not [n for n in names if n.startswith(".") and n not in (".actscope-run", ".lock")]
    assert {"stats.png", "hist_heatmap.png", "dead_share.png", "lr_loss.png"} <= {
        p.name for p in (out / "plots").iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 1 and config["settings"]["limit"] == 2000
    assert set(config["versions"]) == {"python", "torch", "numpy", "actscope"}
    assert set(FitConfig().to_dict()) <= set(config["settings"])  # every setting is recorded
    with np.load(out / "recorder.npz") as z:
        assert z["losses"].shape == (32,) and z["lrs"].shape == (32, 1)  # 2000/64 -> 32 steps
        assert z["lrs"][:, 0].argmax() not in (0, 31)  # one-cycle: warm-up, then anneal


def test_accuracy_and_saved_weights_reproduce_it(quick_run, one_thread):
    out, _ = quick_run
    run = RunFolder(out)
    rows = run.read_metrics_csv()
    assert list(rows[0]) == list(METRICS_COLUMNS) and len(rows) == 1
    assert rows[0]["valid_accuracy"] > MIN_ACCURACY
    assert rows[0]["train_loss"] < 2.0  # below chance level (ln 10 = 2.30)
    # The saved weights, loaded into a fresh model, give the logged validation accuracy.
    cfg = FitConfig.from_dict(run.read_json("config.json")["settings"])
    model = make_model(cfg)
    model.load_state_dict(run.load_weights())
    model.eval()
    dls = make_dataloaders(cfg)
    correct = total = 0
    with torch.no_grad():
        for xb, yb in dls.valid:
            correct += int((model(xb).argmax(1) == yb).sum())
            total += len(yb)
    assert total == 400 and correct / total == pytest.approx(rows[0]["valid_accuracy"], abs=1e-6)


def test_same_seed_identical_metrics(quick_run, tmp_path):
    out, _ = quick_run
    mnist_dir = Path(json.loads((out / "config.json").read_text())["settings"]["data"])
    res = fit_cli(mnist_dir, tmp_path / "run2")
    assert res.returncode == 0, res.stderr[-2000:]
    first = RunFolder(out).read_metrics_csv()
    second = RunFolder(tmp_path / "run2").read_metrics_csv()
    for a, b in zip(first, second, strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == \
               {k: v for k, v in b.items() if k != "seconds"}
    w1, w2 = RunFolder(out).load_weights(), RunFolder(tmp_path / "run2").load_weights()
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_report_rebuilds_plots_and_html(quick_run, tmp_path, capsys):
    out, _ = quick_run
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "metrics.csv", "telemetry.npz", "recorder.npz"):
        (copy / name).write_bytes((out / name).read_bytes())
    assert main(["report", str(copy)]) == 0
    assert "report:" in capsys.readouterr().out
    html = (copy / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4  # self-contained: the plots are embedded
    with (copy / "metrics.csv").open(newline="") as f:
        first = next(csv.DictReader(f))
    # The metrics table: its header, and epoch 0's validation accuracy as the report formats it.
    assert "<th>valid_accuracy</th>" in html
    assert f"<td>{float(first['valid_accuracy']):.4g}</td>" in html
    assert len(list((copy / "plots").glob("*.png"))) >= 4


def test_failed_fit_leaves_no_folder(tmp_path, monkeypatch, one_thread):
    from actscope.learner import Learner

    def boom(self, *args, **kwargs):
        raise RuntimeError("simulated failure during training")

    monkeypatch.setattr(Learner, "fit", boom)
    with pytest.raises(RuntimeError, match="simulated"):
        main(["fit", "--dataset", "digits", "--epochs", "1", "--no-progress",
              "--out", str(tmp_path / "r")])
    assert list(tmp_path.iterdir()) == []


def test_digits_offline_dataset(tmp_path, one_thread, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "digits"
    assert main(["fit", "--dataset", "digits", "--epochs", "4", "--bs", "32", "--lr", "0.4",
                 "--no-progress", "--no-telemetry", "--out", str(out)]) == 0
    rows = RunFolder(out).read_metrics_csv()
    assert len(rows) == 4 and rows[-1]["valid_accuracy"] > 0.85
    assert not (out / "telemetry.npz").exists() and (out / "plots" / "lr_loss.png").exists()


def test_lr_find_writes_plot_and_suggests(mnist_dir, tmp_path, one_thread, capsys):
    out = tmp_path / "lrf"
    assert main(["lr-find", "--data", str(mnist_dir), "--limit", "2000", "--bs", "64",
                 "--num-it", "40", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "suggested lr:" in printed
    assert (out / "lr_find.png").stat().st_size > 1000
    with np.load(out / "lr_find.npz") as z:
        assert 1e-7 <= float(z["suggestion"]) <= 10 and 5 <= len(z["lrs"]) <= 40
        assert np.all(np.diff(z["lrs"]) > 0)  # an exponential sweep upwards


def test_init_lsuv_option(mnist_dir, tmp_path, one_thread, capsys):
    out = tmp_path / "lsuv"
    code = main(["fit", "--data", str(mnist_dir), "--out", str(out), *QUICK, "--init", "lsuv",
                 "--no-telemetry"])
    assert code == 0, capsys.readouterr().err
    run = RunFolder(out)
    assert run.read_json("config.json")["settings"]["init"] == "lsuv"
    # 32 steps: ~0.75 here (kaiming alone ~0.86 with this BatchNorm net); chance is 0.10
    assert run.read_metrics_csv()[0]["valid_accuracy"] > 0.5


def test_bad_init_is_a_one_line_error(tmp_path, capsys):
    assert main(["fit", "--init", "orthogonal", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--init" in err[0] and not (tmp_path / "x").exists()
