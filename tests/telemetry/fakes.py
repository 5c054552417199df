"""Synthetic telemetry and run folders for the plot, report, compare and browser tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from actscope.report.publish import publish_telemetry
from actscope.telemetry.record import Telemetry


def telemetry(n_layers: int = 3, n: int = 50, bins: int = 40, lo: float = 0.0,
              hi: float = 8.0, overflow: bool = False, channels: int | None = None,
              epochs: int = 2, seed: int = 0, names: list[str] | None = None) -> Telemetry:
    """Random but well-formed telemetry; ``overflow`` adds hist_under/over, ``channels`` adds
    per-channel dead units (layer i has ``channels - i % 3`` channels: NaN padding)."""
    rng = np.random.default_rng(seed)
    L = n_layers
    extra = {}
    if overflow:
        extra["hist_under"] = rng.integers(0, 50, (L, n)).astype(np.int32)
        extra["hist_over"] = rng.integers(0, 50, (L, n)).astype(np.int32)
    if channels:
        n_ch = np.array([max(channels - i % 3, 1) for i in range(L)], np.int64)
        dead = (rng.random((L, epochs, channels)) < 0.3).astype(np.float32)
        for i, c in enumerate(n_ch):
            dead[i, :, c:] = np.nan
        extra.update(channel_dead=dead, channel_epochs=np.arange(epochs, dtype=np.int64),
                     n_channels=n_ch)
    return Telemetry(names=names or [f"{i} conv {8 * i}→{8 * i + 8}" for i in range(L)],
                     iters=np.arange(n, dtype=np.int64),
                     mean=rng.random((L, n), np.float32), std=rng.random((L, n), np.float32),
                     hist=rng.integers(0, 100, (L, n, bins)).astype(np.int32),
                     hist_range=np.tile([lo, hi], (L, 1)).astype(np.float64),
                     dead=rng.random((L, n), np.float32),
                     meta={"sample_size": 256, "every": 1}, **extra)


def run_folder(path: Path, t: Telemetry | None, lr: float = 0.4, epochs: int = 2,
               acc: float = 0.9) -> Path:
    """A finished run folder as `actscope fit` writes it (files only, no model)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(
        {"settings": {"lr": lr, "epochs": epochs, "bs": 64}, "seed": 1, "versions": {}}))
    rows = "".join(f"{e},{1 / (e + 2):.4f},{acc - 0.1 / (e + 1):.4f}\n" for e in range(epochs))
    (path / "metrics.csv").write_text("epoch,valid_loss,valid_accuracy\n" + rows)
    n = len(t.iters) if t is not None else 40
    np.savez(path / "recorder.npz", lrs=np.full((n, 1), lr),
             losses=np.linspace(2, 0.3, n) + 0.05 * np.sin(np.arange(n)))
    if t is not None:
        publish_telemetry(path, t)
    return path
