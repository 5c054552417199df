"""The run report: render_report is pure, write_report writes report.html, files are validated."""

from __future__ import annotations

import base64
import json
import os
import re

import numpy as np
import pytest
import torch
from torch import nn

from actscope.errors import ActscopeError
from actscope.report.figures import save_run_plots
from actscope.report.page import render_report
from actscope.report.page import write_page as write_report
from actscope.report.publish import publish_telemetry
from actscope.runs.files import RunFolderError
from actscope.telemetry.record import Telemetry

PNG = b"\x89PNG\r\n\x1a\n"


def dead_telemetry(n: int = 40) -> Telemetry:
    dead = np.full((2, n), 0.1, np.float32)
    dead[1] = 0.93  # layer 1 is dead all along: one finding
    return Telemetry(names=["0 Sequential", "1 Sequential"], iters=np.arange(n),
                     mean=np.full((2, n), 0.5, np.float32), std=np.ones((2, n), np.float32),
                     hist=np.ones((2, n, 40), np.int32), hist_range=np.tile([0.0, 8.0], (2, 1)),
                     dead=dead, meta={"sample_size": 4096, "every": 1})


def make_run(tmp_path, telemetry: bool = True):
    """A run folder as `actscope fit` writes it (telemetry through publish_telemetry)."""
    run = tmp_path / "run1"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(
        {"settings": {"lr": 0.4, "epochs": 2, "note": "<script>alert(1)</script>"}, "seed": 3}))
    (run / "metrics.csv").write_text("epoch,train_loss,valid_accuracy\n0,0.51234567,0.91\n"
                                     "1,0.3,0.95\n")
    np.savez(run / "recorder.npz", lrs=np.full((40, 1), 0.4), losses=np.linspace(2, 0.3, 40))
    if telemetry:
        publish_telemetry(run, dead_telemetry())
    return run


def images(text: str) -> dict[str, bytes]:
    """alt -> PNG bytes of every inline image."""
    return {alt: base64.b64decode(data) for alt, data in
            re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', text)}


def snapshot(folder) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_report_is_self_contained_with_everything(tmp_path):
    run = make_run(tmp_path)
    save_run_plots(run)
    path = write_report(run)
    assert path == run / "report.html"
    text = path.read_text()
    imgs = images(text)
    assert sorted(imgs) == ["dead_share", "hist_heatmap", "lr_loss", "metrics", "stats"]
    assert all(i[:8] == PNG for i in imgs.values())
    # Nothing to fetch: every src is inline data, no links to stylesheets or scripts elsewhere.
    assert all(s.startswith("data:") for s in re.findall(r'src="([^"]+)"', text))
    assert "<link" not in text and "http" not in text
    assert "layer 1 Sequential: 93% of activations near zero" in text
    assert "data-findings='1'" in text
    assert "<td>0.5123</td>" in text and "<td>0.95</td>" in text  # metrics table
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert" not in text
    assert "4096 fixed sampled positions" in text
    assert sorted(p.name for p in (run / "plots").glob("*.png")) == [
        "dead_share.png", "hist_heatmap.png", "lr_loss.png", "metrics.png", "stats.png"]
    # The saved plots are embedded as they are (drawn once, by save_run_plots).
    assert imgs["stats"] == (run / "plots" / "stats.png").read_bytes()
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_render_report_writes_nothing(tmp_path):
    run = make_run(tmp_path)
    before = snapshot(run)
    text = render_report(run)
    assert snapshot(run) == before and not (run / "plots").exists()
    assert len(images(text)) == 5  # drawn in memory instead


def test_saved_plots_are_never_read_back(tmp_path):
    """The page draws its figures from the data (figures.py draws each once); a PNG in plots/,
    whatever its age, is neither embedded nor rewritten by rendering."""
    run = make_run(tmp_path)
    marker = PNG + b"saved by save_run_plots"
    saved = run / "plots" / "stats.png"
    saved.parent.mkdir()
    saved.write_bytes(marker)
    fresh = images(render_report(run))["stats"]
    assert fresh != marker and fresh[:8] == PNG
    ns = (run / "telemetry.npz").stat().st_mtime_ns - 10**9
    os.utime(saved, ns=(ns, ns))
    assert images(render_report(run))["stats"] == fresh
    assert saved.read_bytes() == marker  # rendering never rewrites plots/


def test_report_without_telemetry_or_metrics(tmp_path):
    run = make_run(tmp_path, telemetry=False)
    (run / "metrics.csv").unlink()
    (run / "RUNNING").touch()
    text = render_report(run)
    assert list(images(text)) == ["lr_loss"]  # the lr/loss plot only
    assert "No telemetry was recorded" in text and "No metrics.csv" in text
    assert "did not finish" in text


def test_report_reads_findings_json_and_never_rediagnoses(tmp_path):
    run = make_run(tmp_path, telemetry=False)
    (run / "findings.json").write_text(json.dumps(["layer 3: something odd"]))
    assert "layer 3: something odd" in render_report(run)
    # The telemetry says layer 1 is 93% dead, but the saved diagnosis is what the report shows.
    dead_telemetry().save(run / "telemetry.npz")
    text = render_report(run)
    assert "layer 3: something odd" in text and "93%" not in text
    (run / "findings.json").write_text("[]")
    assert 'id="no-findings"' in render_report(run)
    (run / "findings.json").unlink()
    assert "no saved diagnosis" in render_report(run)


def test_report_of_a_watch_folder(tmp_path):
    """telemetry.npz + findings.json only: what watch().report() and the callbacks write."""
    publish_telemetry(tmp_path, dead_telemetry())
    save_run_plots(tmp_path)
    text = write_report(tmp_path).read_text()
    assert sorted(images(text)) == ["dead_share", "hist_heatmap", "stats"]
    assert "93% of activations near zero" in text and "No metrics.csv" in text
    assert "No config.json" in text


def test_missing_run_dir_is_a_clear_error(tmp_path):
    with pytest.raises(RunFolderError, match="run folder .* does not exist"):
        write_report(tmp_path / "nope")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a run")
    with pytest.raises(RunFolderError, match="not an actscope run folder"):
        render_report(tmp_path / "other")


DAMAGED = [
    ("config.json", b"{not json"),
    ("config.json", b"[]"),
    ("config.json", b"{}"),
    ("metrics.csv", b"epoch,valid_accuracy\n0,zero\n"),
    ("metrics.csv", b"epoch,valid_accuracy\n0\n"),
    ("metrics.csv", b"\xff\xfe\x00garbage"),
    ("recorder.npz", b""),
    ("recorder.npz", b"PK\x03\x04 truncated"),
    ("telemetry.npz", b""),
    ("telemetry.npz", b"PK\x03\x04 truncated"),
    ("findings.json", b'{"a": 1}'),
    ("findings.json", b"[1, 2]"),
    ("lr_find.npz", b"garbage"),
]


@pytest.mark.parametrize("name,content", DAMAGED, ids=[f"{n}-{i}" for i, (n, _) in
                                                          enumerate(DAMAGED)])
def test_damaged_file_is_one_error_naming_it(tmp_path, name, content):
    run = make_run(tmp_path)
    (run / name).write_bytes(content)
    with pytest.raises(ActscopeError) as info:
        render_report(run)
    message = str(info.value)
    assert name in message and "\n" not in message
    assert not (run / "report.html").exists()


def test_pickled_npz_is_refused_naming_the_file(tmp_path):
    run = make_run(tmp_path)
    np.savez(run / "recorder.npz", lrs=np.array([{"a": 1}], dtype=object), losses=np.ones(1))
    with pytest.raises(ActscopeError, match="recorder.npz"):
        render_report(run)


def conv_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.ReLU()),
                         nn.Sequential(nn.Conv2d(4, 8, 3, 2, 1), nn.ReLU()),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def test_report_from_a_real_fit(tmp_path):
    """Fit with telemetry, publish like the CLI does, and report."""
    from types import SimpleNamespace

    from actscope.callbacks.activation_stats import ActivationStatsCallback
    from actscope.learner import Learner
    from tests.conftest import TensorBatches

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(96, 1, 12, 12, generator=g), torch.randint(0, 3, (96,), generator=g)
    dls = SimpleNamespace(train=TensorBatches(x, y, 16), valid=TensorBatches(x[:32], y[:32], 16))
    cb = ActivationStatsCallback()
    Learner(conv_net(), dls, lr=0.1, cbs=[cb]).fit(1)
    publish_telemetry(tmp_path, cb.result())
    text = write_report(tmp_path).read_text()
    assert {"stats", "hist_heatmap", "dead_share"} <= set(images(text))
    assert "0 conv 1→4" in text
