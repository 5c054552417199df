"""Finding: one diagnosis in plain words, and how a list of them is printed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Finding", "format_findings"]


@dataclass
class Finding:
    """One diagnosis: which layer(s), what, the numbers behind it, and what to try."""

    layer: str
    kind: str  # one of ranking.SEVERITY: "non_finite", "growth", "dead", ... (docs/diagnosis.md)
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    suggestion: str = ""
    first_iter: int | None = None

    def __str__(self) -> str:
        return f"{self.message}; {self.suggestion}" if self.suggestion else self.message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def format_findings(findings: list[Finding]) -> str:
    """The findings as printable lines (or a line saying there are none)."""
    if not findings:
        return "diagnosis: no problems found in the recorded activations"
    return "\n".join(["diagnosis:", *(f"  - {f}" for f in findings)])
