"""The results of the experiments: norms.csv, the markdown table beside the lesson's figures."""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from typing import Any

from actscope.atomic import atomic_write
from actscope.experiments.norms.plot import plot_norms
from actscope.experiments.norms.table import EXPERIMENTS, NormExperiment

__all__ = ["CSV_FIELDS", "write_results", "summarise", "markdown_table"]

CSV_FIELDS = ["name", "seed", "norm", "bs", "lr", "sched", "epochs", "n_train", "n_valid",
              "valid_accuracy", "valid_loss", "train_loss", "diverged", "seconds", "lesson"]


def write_results(out: Path, rows: list[dict[str, Any]], quick: bool = False) -> None:
    """norms.csv, norms.md and norms.png, each written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(out / "norms.csv") as f:
        f.write(buf.getvalue())
    with atomic_write(out / "norms.md") as f:
        f.write(markdown_table(rows, quick))
    plot_norms(summarise(rows), out / "norms.png")


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per experiment: mean and spread of the validation accuracy over seeds."""
    out = []
    for name in dict.fromkeys(r["name"] for r in rows):
        accs = [r["valid_accuracy"] for r in rows if r["name"] == name]
        spread = statistics.stdev(accs) if len(accs) > 1 else None
        diverged = sum(r["diverged"] for r in rows if r["name"] == name)
        out.append({"name": name, "mean": statistics.fmean(accs), "std": spread,
                    "n": len(accs), "diverged": diverged,
                    "seconds": sum(r["seconds"] for r in rows if r["name"] == name)})
    return out


def _note(exp: NormExperiment, s: dict[str, Any], quick: bool) -> str:
    if quick:
        return "quick mode (<= 50 steps, bs <= 32): not comparable with the lesson"
    if exp.lesson_acc is None:
        if exp.name == "layer":
            return "diverged, as in the lesson" if s["diverged"] else exp.why
        return exp.why
    noise = max(0.01, 2 * (s["std"] or 0.0))  # 1 point, or twice the seed spread
    if abs(s["mean"] - exp.lesson_acc) <= noise:
        return "matches within noise"
    return exp.why


def markdown_table(rows: list[dict[str, Any]], quick: bool = False) -> str:
    """The results as a markdown table: ours beside the lesson's figure, with a note."""
    lines = ["| experiment | ours (valid acc) | seeds | the lesson's figure | why it differs |",
             "|---|---|---|---|---|"]
    for s in summarise(rows):
        exp = EXPERIMENTS[s["name"]]
        ours = f"{100 * s['mean']:.1f}%" + (f" ± {100 * s['std']:.1f}" if s["std"] else "")
        if s["diverged"]:
            ours += f" (diverged in {s['diverged']}/{s['n']})"
        lines.append(f"| {exp.title} | {ours} | {s['n']} | {exp.lesson} | "
                     f"{_note(exp, s, quick)} |")
    return "\n".join(lines) + "\n"
