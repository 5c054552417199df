"""The zoo's scorer on hand-made findings: named, wrong layer, wrong kind, false alarm, advice."""

from __future__ import annotations

from actscope import Finding  # the top-level name: stable when modules move
from benchmarks.zoo_cases import Case, Setup, layer_matches, score, wrong_advice
from benchmarks.zoo_cases.score import score_case

RELU = Setup(init="kaiming", optimizer="Adam", lr=1e-3)


def _case(expected=("dead",), layers=("1",), setup=RELU, name="c") -> Case:
    return Case(name, "mlp", "test", frozenset(expected), layers, setup, build=lambda: None)


def _f(layer: str, kind: str = "dead", suggestion: str = "") -> Finding:
    return Finding(layer=layer, kind=kind, message="m", suggestion=suggestion)


def test_a_finding_of_an_expected_kind_on_an_expected_layer_names_the_case():
    assert score_case(_case(), [_f("1 Sequential")]).named is True
    # one of several joined layers, or a module inside the expected one, counts
    assert score_case(_case(), [_f("0 Sequential, 1 Sequential")]).named is True
    assert score_case(_case(layers=("blocks.1",)), [_f("blocks.1.attn Attention")]).named
    # any of the expected kinds counts
    assert score_case(_case(expected=("growth", "oversized_updates")),
                      [_f("1 Sequential", "oversized_updates")]).named


def test_the_wrong_layer_or_the_wrong_kind_does_not_name_it():
    assert score_case(_case(), [_f("2 Sequential")]).named is False
    assert score_case(_case(), [_f("10 Sequential")]).named is False  # "10" is not inside "1"
    assert score_case(_case(), [_f("1 Sequential", "vanishing")]).named is False
    assert score_case(_case(layers=("blocks.1",)), [_f("model TinyGPT")]).named is False
    assert score_case(_case(), []).named is False


def test_layer_matching_rules():
    assert layer_matches("anything", None)  # a model-level signal: any layer
    assert layer_matches("transformer.h.2 GPT2Block", ("transformer.h.2",))
    assert not layer_matches("transformer.h.2 GPT2Block", ("transformer.h.2.attn",))
    assert not layer_matches("transformer.h.20 GPT2Block", ("transformer.h.2",))


def test_any_finding_on_a_control_is_a_false_alarm():
    control = _case(expected=(), layers=())
    s = score_case(control, [_f("encoder Sequential", "unstable"), _f("x Y", "vanishing")])
    assert s.named is None and s.false_alarms == 2
    assert score_case(control, []).false_alarms == 0
    # a finding on a pathology case is never a false alarm, named or not
    assert score_case(_case(), [_f("2 Sequential", "unstable")]).false_alarms == 0


def test_advice_that_contradicts_the_setup_is_wrong():
    assert wrong_advice(_f("1 L", "growth", suggestion="use kaiming init"), RELU)
    assert not wrong_advice(_f("1 L", "growth", suggestion="use kaiming init"),
                            Setup(init="small", optimizer="SGD", lr=0.1))
    assert wrong_advice(_f("1 L", "growth", suggestion="try init_cnn"), RELU)
    assert not wrong_advice(_f("1 L", "growth", suggestion="try init_cnn"),
                            Setup(init="default", optimizer="SGD", lr=0.1, has_conv=True))
    clipped = Setup(init="custom", optimizer="AdamW", lr=3e-3, warmup=True, grad_clip=1.0,
                    has_attention=True, activations=("gelu",), norms=("LayerNorm",))
    for text in ("add gradient clipping", "use clip_grad_norm_", "add a warm-up",
                 "try GeneralRelu(leak=0.1)", "add LayerNorm"):
        assert wrong_advice(_f("b B", "growth", suggestion=text), clipped), text
        if "Norm" not in text:  # the same advice fits a run without clipping or warm-up
            assert not wrong_advice(_f("b B", "growth", suggestion=text), RELU), text
    assert not wrong_advice(_f("b B", "growth", suggestion="add QK-norm or a z-loss"), clipped)
    assert wrong_advice(_f("1 L", "growth", suggestion="add QK-norm"), RELU)
    tanh = Setup(init="default", optimizer="SGD", lr=0.1, activations=("tanh",))
    assert wrong_advice(_f("1 L", "growth", suggestion="try a leaky ReLU"), tanh)
    assert not wrong_advice(_f("1 L", "growth", suggestion="try a leaky ReLU"), RELU)
    tiny = Setup(init="kaiming", optimizer="Adam", lr=1e-9)
    assert wrong_advice(_f("1 L", "growth", suggestion="lower the learning rate"), tiny)
    assert not wrong_advice(_f("1 L", "growth", suggestion="raise the learning rate"), tiny)
    assert not wrong_advice(_f("1 L", "growth", suggestion=""), RELU)


def test_dead_units_in_a_model_without_zero_floored_activations_are_wrong_advice():
    tanh = Setup(init="default", optimizer="SGD", lr=0.1, activations=("tanh",))
    assert wrong_advice(_f("rnns.0 RNN", "dead"), tanh)
    assert wrong_advice(_f("rnns.0 RNN", "dead_channels"), tanh)
    assert not wrong_advice(_f("rnns.0 RNN", "saturated"), tanh)
    assert not wrong_advice(_f("1 L", "dead"), RELU)
    sigmoid = Setup(init="default", optimizer="SGD", lr=0.1, activations=("sigmoid",))
    assert not wrong_advice(_f("1 L", "dead"), sigmoid)


def test_the_zoo_line_counts_named_false_alarms_and_wrong_advice():
    dead = _case(name="dead")
    growth = _case(expected=("growth",), layers=("2",), name="growth")
    control = _case(expected=(), layers=(), name="ok")
    s = score([(dead, [_f("1 Sequential", suggestion="use kaiming init or init_cnn")]),
               (growth, [_f("1 Sequential", "growth")]),
               (control, [_f("0 Sequential", "unstable", "lower the learning rate")])])
    assert (s.n_named, s.n_pathologies, s.false_alarms, s.wrong_advice) == (1, 2, 1, 1)
    assert s.line() == "named=1/2 false_alarms=1 wrong_advice=1"


def test_proposing_an_lstm_or_gru_to_a_gru_model_is_wrong_advice():
    gru = Setup(init="default", optimizer="SGD", lr=1e-4, activations=("tanh",), cells=("GRU",))
    swap = "what to try: an LSTM or GRU instead of a vanilla RNN"
    assert wrong_advice(_f("gru GRU", "exploding_gradients", swap), gru)
    rnn = Setup(init="default", optimizer="SGD", lr=1e-4, activations=("tanh",), cells=("RNN",))
    assert not wrong_advice(_f("rnns.0 RNN", "exploding_gradients", swap), rnn)
