"""Ranking and merging: the most serious finding first, related findings on one layer as one.

Severity (``SEVERITY``, most serious first): a non-finite value ends training; divergence and
exploding gradients come next; then the scale problems, the dead and the slow. Related findings
(one family of causes, ``RELATED``) whose layers overlap merge into the most serious of them:
its ``kind`` stays, the others' kinds go to ``evidence["also"]``, their evidence to
``evidence["merged"]``, their layers join its layer list, and the earliest ``first_iter`` wins.
"""

from __future__ import annotations

from actscope.diagnosis.finding import Finding

__all__ = ["SEVERITY", "RELATED", "rank", "merge", "rank_and_merge"]

SEVERITY = ("non_finite", "logit_divergence", "exploding_gradients", "attention_logits",
            "attention_entropy", "growth", "oversized_updates", "unstable", "depth_growth",
            "massive_activations", "saturated", "vanishing_gradients", "vanishing", "shrinking",
            "stalled", "dead", "dead_channels")

# Kinds that describe one mechanism seen from several signals: too-large steps that grow the
# activations and sharpen attention; depth growth with the gradients it explodes and the
# outliers it makes; a signal that shrinks or saturates, whose gradients vanish and whose
# weights stop moving; dead units; a layer whose whole scale shrank during training, whose
# outputs are then all "near zero" (below the absolute dead threshold) without any unit dying;
# a scale that rose and collapsed (unstable) has also shrunk.
RELATED = (
    frozenset({"attention_logits", "attention_entropy", "growth", "oversized_updates",
               "unstable"}),
    frozenset({"depth_growth", "exploding_gradients", "massive_activations"}),
    frozenset({"saturated", "vanishing_gradients", "vanishing", "shrinking", "stalled"}),
    frozenset({"dead", "dead_channels"}),
    frozenset({"shrinking", "dead", "dead_channels"}),
    frozenset({"unstable", "shrinking"}),
)


def _severity(kind: str) -> int:
    return SEVERITY.index(kind) if kind in SEVERITY else len(SEVERITY)


def rank(findings: list[Finding]) -> list[Finding]:
    """Most serious first; ties keep their order."""
    return sorted(findings, key=lambda f: _severity(f.kind))


def _layers(f: Finding) -> list[str]:
    return [n for n in f.layer.split(", ") if n]


def _related(a: str, b: str) -> bool:
    return any(a in g and b in g for g in RELATED)


def merge(findings: list[Finding]) -> list[Finding]:
    """Fold each finding into an earlier (more serious) related one on overlapping layers."""
    out: list[Finding] = []
    for f in rank(findings):
        host = next((h for h in out if _related(h.kind, f.kind)
                     and set(_layers(h)) & set(_layers(f))), None)
        if host is None:
            out.append(f)
            continue
        also = host.evidence.setdefault("also", [])
        if f.kind not in also and f.kind != host.kind:
            also.append(f.kind)
        host.evidence.setdefault("merged", {})[f.kind] = f.evidence
        host.layer = ", ".join(dict.fromkeys(_layers(host) + _layers(f)))
        host.message += f"; also {f.message}"
        if f.first_iter is not None and (host.first_iter is None
                                         or f.first_iter < host.first_iter):
            host.first_iter = f.first_iter
    return out


def rank_and_merge(findings: list[Finding]) -> list[Finding]:
    """Ranked, then merged (the order stays most serious first)."""
    return merge(findings)
