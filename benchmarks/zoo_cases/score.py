"""How the zoo scores a diagnosis: named pathologies, false alarms, advice that contradicts a run.

- NAMED: a pathology case is named when some finding has a kind in the case's expected set and
  a layer in its expected layers. A finding's kinds are its ``kind`` and the kinds merged into
  it (``evidence["also"]``: the diagnosis merges related findings on the same layers).
  ``Finding.layer`` may join several names with ", "; each is
  ``"<qualified name> <label>"`` (``"blocks.2 Block"``). A name matches an expected qualified
  name when it is that module or a module inside it (``blocks.2.attn`` is inside ``blocks.2``),
  never an enclosing one (the root ``model`` names nothing). No adjacency tolerance: where a
  pathology spans depth (growth through depth, exploding gradients), the case's expected layers
  already list every layer where its ground truth holds. ``layers=None`` marks a model-level
  signal (output-logit divergence): any layer counts.
- FALSE ALARM: every finding on a healthy control.
- WRONG ADVICE: every finding whose suggestion proposes what the run already has or what cannot
  apply to it, read with CONTRACT's advice vocabulary (see ``ADVICE_RULES``), and every
  dead-unit finding on a model with no zero-floored activation (tanh, GELU: ReLU advice there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from actscope import Finding  # the top-level name: stable when modules move

from .base import Case, Setup

__all__ = ["ADVICE_RULES", "CaseScore", "Score", "layer_matches", "named", "score",
           "score_case", "wrong_advice", "ZERO_FLOORED", "kinds_of"]

RELU_FAMILY = {"relu", "leaky_relu", "relu6", "generalrelu", "prelu", "rrelu"}


def _has(text: str, *words: str) -> bool:
    return any(w in text for w in words)


# (reason, predicate(suggestion in lower case, setup)): each a contradiction with the run.
ADVICE_RULES: list[tuple[str, Callable[[str, Setup], bool]]] = [
    ("proposes kaiming init; the run already uses it",
     lambda s, u: "kaiming" in s and u.init == "kaiming"),
    ("proposes xavier init; the run already uses it",
     lambda s, u: "xavier" in s and u.init == "xavier"),
    ("proposes init_cnn; the model has no conv layer",
     lambda s, u: "init_cnn" in s and not u.has_conv),
    ("proposes gradient clipping; the run already clips",
     lambda s, u: _has(s, "gradient clipping", "clip_grad_norm", "clip gradients",
                       "clip the gradients") and u.grad_clip is not None),
    ("proposes warm-up; the schedule already warms up",
     lambda s, u: _has(s, "warm-up", "warmup", "warm it up", "warm up") and u.warmup),
    ("proposes ReLU-family advice; the model has no ReLU-family activation",
     lambda s, u: _has(s, "generalrelu", "leaky relu", "leaky_relu", "leakyrelu")
     and not RELU_FAMILY & set(u.activations)),
    ("proposes a lower learning rate; it is already <= 1e-6",
     lambda s, u: _has(s, "lower the learning rate", "lower learning rate", "lower lr",
                       "reduce the learning rate", "lower the lr") and u.lr <= 1e-6),
    ("proposes a higher learning rate; it is already >= 1",
     lambda s, u: _has(s, "raise the learning rate", "increase the learning rate",
                       "higher learning rate") and u.lr >= 1.0),
    ("proposes QK-norm or z-loss; the model has no attention",
     lambda s, u: _has(s, "qk-norm", "qk norm", "z-loss") and not u.has_attention),
    ("proposes QK-norm; the attention already normalises queries and keys",
     lambda s, u: _has(s, "qk-norm", "qk norm") and u.qk_norm),
    ("proposes an LSTM or GRU; the model has no vanilla RNN",
     lambda s, u: "lstm or gru" in s and bool(u.cells) and "RNN" not in u.cells),
    ("proposes BatchNorm; the model already has it",
     lambda s, u: "batchnorm" in s and any(n.startswith("BatchNorm") for n in u.norms)),
    ("proposes LayerNorm; the model already has it",
     lambda s, u: "layernorm" in s and "LayerNorm" in u.norms),
]


# Activations whose output has a floor at 0, where "dead units" means something.
ZERO_FLOORED = RELU_FAMILY | {"sigmoid", "softplus", "hardsigmoid"}


def wrong_advice(finding: Finding, setup: Setup) -> list[str]:
    """The reasons ``finding`` contradicts ``setup`` (empty: none): its suggestion, read with
    ``ADVICE_RULES``, or a dead-unit diagnosis (and its advice) where no output is zero-floored."""
    s = finding.suggestion.lower()
    reasons = [reason for reason, bad in ADVICE_RULES if bad(s, setup)]
    if finding.kind in ("dead", "dead_channels") and not ZERO_FLOORED & set(setup.activations):
        reasons.append("calls units dead in a model without zero-floored activations")
    return reasons


def _qualified(name: str) -> str:
    return name.strip().split(" ", 1)[0]


def layer_matches(finding_layer: str, expected: tuple[str, ...] | None) -> bool:
    """Whether any layer of ``finding_layer`` is (inside) one of the ``expected`` modules."""
    if expected is None:
        return True
    for name in finding_layer.split(", "):
        q = _qualified(name)
        if any(q == e or q.startswith(e + ".") for e in expected):
            return True
    return False


def kinds_of(finding: Finding) -> set[str]:
    """The kinds a finding names: its own, and those merged into it (``evidence["also"]``:
    related findings on the same layers are one finding, CONTRACT.md)."""
    also = finding.evidence.get("also") if isinstance(finding.evidence, dict) else None
    return {finding.kind, *(also if isinstance(also, list) else [])}


def named(case: Case, findings: list[Finding]) -> bool:
    """Whether some finding names the case's pathology in the right layer."""
    return any(kinds_of(f) & case.expected and layer_matches(f.layer, case.layers)
               for f in findings)


@dataclass
class CaseScore:
    """One case's outcome."""

    name: str
    named: bool | None  # None for a control
    false_alarms: int
    wrong_advice: list[str] = field(default_factory=list)  # "kind: reason", one per finding


def score_case(case: Case, findings: list[Finding]) -> CaseScore:
    """Score one case's findings."""
    wrong = []
    for f in findings:
        reasons = wrong_advice(f, case.setup)
        if reasons:
            wrong.append(f"{f.kind}: {'; '.join(reasons)}")
    return CaseScore(case.name, None if case.control else named(case, findings),
                     len(findings) if case.control else 0, wrong)


@dataclass
class Score:
    """The zoo's totals."""

    cases: list[CaseScore]

    @property
    def n_named(self) -> int:
        """Pathology cases named in the right layer."""
        return sum(1 for c in self.cases if c.named)

    @property
    def n_pathologies(self) -> int:
        """Pathology cases scored."""
        return sum(1 for c in self.cases if c.named is not None)

    @property
    def false_alarms(self) -> int:
        """Findings on healthy controls."""
        return sum(c.false_alarms for c in self.cases)

    @property
    def wrong_advice(self) -> int:
        """Findings whose suggestion contradicts their run's setup."""
        return sum(len(c.wrong_advice) for c in self.cases)

    def line(self) -> str:
        """``named=<n>/<m> false_alarms=<k> wrong_advice=<j>``."""
        return (f"named={self.n_named}/{self.n_pathologies} false_alarms={self.false_alarms} "
                f"wrong_advice={self.wrong_advice}")


def score(results: list[tuple[Case, list[Finding]]]) -> Score:
    """Score every (case, findings) pair."""
    return Score([score_case(case, findings) for case, findings in results])
