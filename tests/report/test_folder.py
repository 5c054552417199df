"""Reports of watch() and the trainer callbacks go into folders actscope does not own.

They are drawn from the recording alone (a trainer's metrics.csv or a model's config.json in the
folder are neither read nor touched), and a file that is not actscope's is never replaced: the
call fails first, naming it, and writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import actscope
from actscope.errors import UsageError
from actscope.telemetry.record import Telemetry


@pytest.fixture(scope="module")
def watched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(),
                          nn.Linear(12, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with actscope.watch(model) as w:
        for _ in range(4):
            model(torch.randn(16, 6)).pow(2).mean().backward()
            opt.step()
            opt.zero_grad()
            w.step()
    return w


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_trainers_files_are_neither_read_nor_touched(watched, tmp_path: Path) -> None:
    """A Lightning CSVLogger's metrics.csv and a Hugging Face config.json (not actscope's
    formats) stay byte for byte; the report shows the telemetry."""
    foreign = {"metrics.csv": b"epoch,step,train_loss\n0,9,0.5\n",
               "config.json": json.dumps({"model_type": "gpt2", "n_layer": 2}).encode(),
               "hparams.yaml": b"lr: 0.1\n"}
    for name, data in foreign.items():
        (tmp_path / name).write_bytes(data)
    watched.report(tmp_path)
    for name, data in foreign.items():
        assert (tmp_path / name).read_bytes() == data
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "stats" in html and "gpt2" not in html and "train_loss" not in html
    assert Telemetry.load(tmp_path / "telemetry.npz").n_layers == watched.result().n_layers
    drawn = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {"dead_share.png", "hist_heatmap.png", "stats.png"} <= drawn
    assert drawn <= {"channel_dead.png", "dead_share.png", "hist_heatmap.png", "stats.png",
                     "signals.png", "scalars.png"}


def test_a_second_report_replaces_the_first(watched, tmp_path: Path) -> None:
    watched.report(tmp_path)
    # actscope writes atomically, so an empty telemetry.npz is someone else's: refused
    (tmp_path / "telemetry.npz").write_bytes(b"")
    with pytest.raises(UsageError, match="telemetry.npz exists and was not written by actscope"):
        watched.report(tmp_path)
    (tmp_path / "telemetry.npz").unlink()
    watched.report(tmp_path)  # report.html (and the plots) are actscope's: replaced
    before = (tmp_path / "report.html").stat().st_mtime_ns
    watched.report(tmp_path)
    assert (tmp_path / "report.html").stat().st_mtime_ns >= before
    assert Telemetry.load(tmp_path / "telemetry.npz").n_layers == watched.result().n_layers


@pytest.mark.parametrize("name, data", [
    ("report.html", b"<html><body>my notes</body></html>"),
    ("findings.json", b'{"my": "results"}'),
    ("telemetry.npz", b"PK\x03\x04 not ours"),
    ("plots/stats.png", b"\x89PNG\r\n\x1a\n my own plot"),
], ids=["report.html", "findings.json", "telemetry.npz", "plots/stats.png"])
def test_a_foreign_file_is_never_replaced(watched, tmp_path: Path, name: str,
                                           data: bytes) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match=f"{name} exists and was not written by actscope"):
        watched.report(tmp_path)
    assert snapshot(tmp_path) == before  # nothing written, nothing replaced


def test_a_folder_path_that_is_a_file(watched, tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.write_text("a file")
    with pytest.raises(UsageError, match="is a file"):
        watched.report(target)
    assert target.read_text() == "a file"


def test_the_cli_report_command_reads_a_watch_folder(watched, tmp_path: Path) -> None:
    from actscope.cli import main

    watched.report(tmp_path)
    (tmp_path / "report.html").unlink()
    assert main(["report", str(tmp_path)]) == 0
    assert "actscope report: " in (tmp_path / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("setup, says", [
    (lambda d: (d / "plots").write_text("my notes"), "plots exists and was not written"),
    (lambda d: (d / "findings.json").write_text('["my own notes"]'),
     "findings.json exists and was not written"),
])
def test_a_user_file_where_the_report_writes_stops_it_before_anything_is_written(
        watched, tmp_path, setup, says):
    folder = tmp_path / "out"
    folder.mkdir()
    setup(folder)
    before = snapshot(folder)
    with pytest.raises(UsageError, match=says):
        watched.report(folder)
    assert snapshot(folder) == before and sorted(p.name for p in folder.iterdir()) == \
        sorted(before)


def test_a_parent_that_is_a_file_is_a_usage_error(watched, tmp_path):
    (tmp_path / "notes").write_text("x")
    with pytest.raises(UsageError, match="is a file; pass a path under a folder"):
        watched.report(tmp_path / "notes" / "run")


def test_a_plot_the_report_does_not_draw_is_left_alone(watched, tmp_path):
    folder = tmp_path / "out"
    (folder / "plots").mkdir(parents=True)
    (folder / "plots" / "metrics.png").write_bytes(b"mine")  # watch() draws no metrics plot
    watched.report(folder)
    assert (folder / "plots" / "metrics.png").read_bytes() == b"mine"
    assert (folder / "report.html").is_file()
