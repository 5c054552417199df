"""experiments/norms/results.py: the summary over seeds, the markdown table and the files."""

from __future__ import annotations

import csv

import pytest

from actscope.experiments.norms import EXPERIMENTS, markdown_table
from actscope.experiments.norms.results import CSV_FIELDS, summarise, write_results


def _row(name, seed, acc, diverged=False):
    return {"name": name, "seed": seed, "valid_accuracy": acc, "diverged": diverged,
            "seconds": 1.0}


def test_markdown_notes_compare_with_the_lesson():
    rows = [{"name": "torch_batch", "seed": s, "valid_accuracy": a, "diverged": False,
             "seconds": 1.0} for s, a in ((0, 0.980), (1, 0.982))]
    rows += [{"name": "instance", "seed": 0, "valid_accuracy": 0.6, "diverged": False,
              "seconds": 1.0}]
    md = markdown_table(rows)
    assert "| nn.BatchNorm2d" in md and "98.1% ± 0.1 | 2 | 98.1% | matches within noise |" in md
    assert EXPERIMENTS["instance"].why in md


def test_summarise_mean_spread_and_divergence_per_experiment():
    rows = [_row("batch", 0, 0.9), _row("batch", 1, 0.8, True), _row("layer", 0, 0.1, True)]
    batch, layer = summarise(rows)
    assert batch["name"] == "batch" and batch["mean"] == pytest.approx(0.85)
    assert batch["std"] == pytest.approx(0.0707, abs=1e-4) and batch["n"] == 2
    assert batch["diverged"] == 1 and batch["seconds"] == 2.0
    assert layer["std"] is None


def test_quick_mode_and_divergence_notes():
    md = markdown_table([_row("layer", 0, 0.1, True)])
    assert "diverged, as in the lesson" in md and "(diverged in 1/1)" in md
    assert "quick mode" in markdown_table([_row("batch", 0, 0.97)], quick=True)


def test_write_results_writes_three_files_atomically(tmp_path):
    base = {k: 0 for k in CSV_FIELDS}
    rows = [{**base, **_row("no_norm", 0, 0.95)}, {**base, **_row("no_norm", 1, 0.96)}]
    write_results(tmp_path, rows)
    with open(tmp_path / "norms.csv", newline="") as f:
        saved = list(csv.DictReader(f))
    assert [r["seed"] for r in saved] == ["0", "1"] and list(saved[0]) == CSV_FIELDS
    assert EXPERIMENTS["no_norm"].title in (tmp_path / "norms.md").read_text()
    assert (tmp_path / "norms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))
