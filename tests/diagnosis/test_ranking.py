"""ranking.py: most serious first; related findings on the same layers merged into one."""

from __future__ import annotations

import numpy as np

from actscope.diagnosis import Finding, diagnose
from actscope.diagnosis.ranking import merge, rank
from tests.diagnosis.synth import kinds, tel


def _f(kind: str, layer: str, first: int | None = None) -> Finding:
    return Finding(layer=layer, kind=kind, message=f"{kind} msg", evidence={"k": kind},
                   first_iter=first)


def test_rank_most_serious_first():
    found = [_f("dead", "a"), _f("stalled", "b"), _f("exploding_gradients", "c"),
             _f("non_finite", "d"), _f("growth", "e")]
    assert kinds(rank(found)) == ["non_finite", "exploding_gradients", "growth", "stalled",
                                  "dead"]


def test_merge_related_on_overlapping_layers_keeps_both():
    found = [_f("growth", "blocks.1, blocks.2", 12), _f("attention_logits", "blocks.2", 20),
             _f("stalled", "blocks.2")]
    merged = merge(found)
    assert kinds(merged) == ["attention_logits", "stalled"]
    top = merged[0]
    assert top.evidence["also"] == ["growth"] and top.evidence["merged"]["growth"] == {
        "k": "growth"}
    assert top.layer == "blocks.2, blocks.1" and top.first_iter == 12
    # unrelated or disjoint: kept apart
    assert kinds(merge([_f("growth", "a"), _f("attention_logits", "b")])) == [
        "attention_logits", "growth"]


def test_diagnose_merges_growth_into_attention_logits():
    std = np.ones((4, 30), np.float32)
    std[2, 10:] = 40.0
    lg = np.full((4, 30), 0.3)
    lg[2, 10:] = 200.0
    (f,) = diagnose(tel(n=30, std=std, attn_logit_max=lg))
    assert f.kind == "attention_logits" and f.evidence["also"] == ["growth"]


def test_diagnose_reads_the_context_from_meta_or_the_argument_and_keeps_the_old_call():
    from actscope.diagnosis import Thresholds

    dead = np.full((4, 40), 0.1, np.float32)
    dead[1] = 0.95
    tanh = {"layers": {f"blocks.{i} Block": {"activation": "tanh", "zero_floored": False}
                       for i in range(4)}}
    assert kinds(diagnose(tel(n=40, dead=dead))) == ["dead"]  # no context: judged
    assert diagnose(tel(n=40, dead=dead, context=tanh)) == []  # meta["context"]
    assert diagnose(tel(n=40, dead=dead), context=tanh) == []  # the argument
    assert diagnose(tel(n=40, dead=dead), Thresholds(dead_share=0.99)) == []  # old positional
