"""Shared pieces of the integration tests: the hook census and the report checks."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from actscope.telemetry.record import Telemetry

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def leftover_hooks(model: nn.Module) -> list[str]:
    """Every forward/backward hook still registered on ``model``'s modules, as 'module.kind'."""
    return [f"{name or 'root'}.{d}" for name, m in model.named_modules()
            for d in HOOK_DICTS if getattr(m, d, None)]


def check_report(folder: Path, names: list[str]) -> Telemetry:
    """The report folder holds the four outputs, report.html names every layer; its telemetry."""
    assert (folder / "report.html").is_file(), sorted(p.name for p in folder.iterdir())
    findings = json.loads((folder / "findings.json").read_text())
    assert isinstance(findings, list) and all(isinstance(f, str) for f in findings)
    assert sorted((folder / "plots").glob("*.png")), "no plots written"
    html = (folder / "report.html").read_text()
    for name in names:
        # the report escapes names (e.g. '→'); the module path part is plain ASCII
        assert name.split()[0] in html, f"report.html does not mention layer {name!r}"
    t = Telemetry.load(folder / "telemetry.npz")
    assert t.names == names
    return t
