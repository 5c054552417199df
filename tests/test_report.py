"""write_report: a self-contained report.html from whatever the run folder holds."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from actscope.telemetry.activation_stats import Telemetry
from actscope.telemetry.report import render_report, write_report


def dead_telemetry(n: int = 40) -> Telemetry:
    dead = np.full((2, n), 0.1, np.float32)
    dead[1] = 0.93  # layer 1 is dead all along: one finding
    return Telemetry(names=["0 Sequential", "1 Sequential"], iters=np.arange(n),
                     mean=np.full((2, n), 0.5, np.float32), std=np.ones((2, n), np.float32),
                     hist=np.ones((2, n, 40), np.int32), hist_range=np.tile([0.0, 8.0], (2, 1)),
                     dead=dead, meta={"sample_size": 4096, "every": 1})


def make_run(tmp_path, telemetry: bool = True):
    run = tmp_path / "run1"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(
        {"settings": {"lr": 0.4, "epochs": 2, "note": "<script>alert(1)</script>"}, "seed": 3}))
    (run / "metrics.csv").write_text("epoch,train_loss,valid_accuracy\n0,0.51234567,0.91\n"
                                     "1,0.3,0.95\n")
    np.savez(run / "recorder.npz", lrs=np.full((40, 1), 0.4), losses=np.linspace(2, 0.3, 40))
    if telemetry:
        dead_telemetry().save(run / "telemetry.npz")
    return run


def images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


def test_report_is_self_contained_with_everything(tmp_path):
    run = make_run(tmp_path)
    path = write_report(run)
    assert path == run / "report.html"
    text = path.read_text()
    imgs = images(text)
    assert len(imgs) == 4 and all(i[:8] == b"\x89PNG\r\n\x1a\n" for i in imgs)
    # Nothing to fetch: every src is inline data, no links to stylesheets or scripts elsewhere.
    assert all(s.startswith("data:") for s in re.findall(r'src="([^"]+)"', text))
    assert "<link" not in text and "http" not in text
    assert "layer 1 Sequential: 93% of activations near zero" in text
    assert "data-findings='1'" in text
    assert "<td>0.5123</td>" in text and "<td>0.95</td>" in text  # metrics table
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert" not in text
    assert "4096 fixed sampled positions" in text
    assert sorted(p.name for p in (run / "plots").glob("*.png")) == [
        "dead_share.png", "hist_heatmap.png", "lr_loss.png", "stats.png"]
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_report_without_telemetry_or_metrics(tmp_path):
    run = make_run(tmp_path, telemetry=False)
    (run / "metrics.csv").unlink()
    (run / "RUNNING").touch()
    text = render_report(run)
    assert len(images(text)) == 1  # the lr/loss plot only
    assert "No telemetry was recorded" in text and "No metrics.csv" in text
    assert "did not finish" in text


def test_report_healthy_run_and_findings_json_fallback(tmp_path):
    run = make_run(tmp_path, telemetry=False)
    (run / "findings.json").write_text(json.dumps(["layer 3: something odd"]))
    assert "layer 3: something odd" in render_report(run)
    t = dead_telemetry()
    t.dead[:] = 0.1
    t.save(run / "telemetry.npz")
    assert 'id="no-findings"' in render_report(run)


def test_missing_run_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run folder .* does not exist"):
        write_report(tmp_path / "nope")


def test_report_from_a_real_fit(tmp_path):
    """Fit with telemetry, save like the CLI does, and report."""
    from actscope.learner import Learner
    from actscope.telemetry.activation_stats import ActivationStatsCallback
    from tests.test_activation_stats import conv_net, image_dls

    cb = ActivationStatsCallback()
    Learner(conv_net(), image_dls(), lr=0.1, cbs=[cb]).fit(1)
    cb.result().save(tmp_path / "telemetry.npz")
    text = write_report(tmp_path).read_text()
    assert len(images(text)) == 3 and "0 conv 1→4" in text
