"""actscope's zoo: induced-pathology runs and healthy controls, with plain-hook ground truth.

Not product code (it lives outside ``src/actscope``). Importable without installing anything:
- from ``benchmarks/zoo.py``, which puts the repository root on ``sys.path``;
- from the tests, whose rootdir (the repository root) pytest puts on ``sys.path``;
- from anywhere else with the repository root on ``PYTHONPATH``:
  ``from benchmarks.zoo_cases import CASES, run_case, score``.
The repository root, never ``benchmarks/`` itself, must be on the path: ``benchmarks/`` holds
scripts named ``transformers.py`` and ``lightning.py`` that would shadow those packages.
"""

from __future__ import annotations

from . import (
    cases_conv,
    cases_gpt,
    cases_heldout_mlp,
    cases_heldout_round5,
    cases_heldout_round5_seq,
    cases_heldout_seq,
    cases_hf,
    cases_mlp,
    cases_rnn,
    controls,
)
from .base import Case, Setup, Trial, Truth
from .harness import CaseResult, run_case, train_only
from .score import Score, layer_matches, score, wrong_advice

__all__ = ["CASES", "Case", "CaseResult", "Score", "Setup", "Trial", "Truth", "by_name",
           "layer_matches", "run_case", "score", "train_only", "wrong_advice"]

CASES: list[Case] = [*cases_mlp.CASES, *cases_conv.CASES, *cases_rnn.CASES, *cases_gpt.CASES,
                     *cases_hf.CASES, *controls.CASES,
                     # held out: written after the rules, to test them (docs/zoo.md)
                     *cases_heldout_seq.CASES, *cases_heldout_mlp.CASES,
                     *cases_heldout_round5.CASES, *cases_heldout_round5_seq.CASES]


def by_name(names: list[str]) -> list[Case]:
    """The cases named (in the given order); KeyError naming the unknown ones."""
    known = {c.name: c for c in CASES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown zoo case(s): {', '.join(unknown)}; see benchmarks/zoo.py --list")
    return [known[n] for n in names]
