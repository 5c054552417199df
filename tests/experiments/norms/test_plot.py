"""experiments/norms/plot.py: the bar chart is a PNG written atomically."""

from __future__ import annotations

from actscope.experiments.norms.plot import plot_norms


def test_plot_norms_writes_a_png_and_no_temp(tmp_path):
    summary = [{"name": "no_norm", "mean": 0.95, "std": 0.01, "n": 2},
               {"name": "group", "mean": 0.9, "std": None, "n": 1}]  # group: no lesson figure
    plot_norms(summary, tmp_path / "norms.png")
    data = (tmp_path / "norms.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["norms.png"]
