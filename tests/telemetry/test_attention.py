"""AttentionProbe: max pre-softmax logit and entropy, checked against a direct recomputation."""

import math

import pytest
import torch
from torch import nn

from actscope.telemetry.attention import AttentionProbe, attention_slots
from tests.telemetry.nosync import no_host_sync
from tests.telemetry.tiny_models import SdpaAttention, SoftmaxAttn, bert, gpt2, llama

ROWS = 16


def modes_active() -> int:
    return torch._C._len_torch_function_stack()


def stats(logits: torch.Tensor) -> tuple[float, float]:
    """Direct: max logit and mean entropy over every ceil(T/ROWS)-th query row."""
    step = math.ceil(logits.shape[-2] / ROWS)
    z = logits[..., ::step, :].double()
    p = z.softmax(-1)
    ent = -(torch.where(p > 0, p * p.log(), torch.zeros_like(p))).sum(-1)
    return z.max().item(), ent.mean().item()


def causal(z: torch.Tensor) -> torch.Tensor:
    t, s = z.shape[-2:]
    return z.masked_fill(torch.ones(t, s, dtype=torch.bool).triu(1), float("-inf"))


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_gpt2_matches_logits_from_its_own_q_and_k(impl):
    model = gpt2(impl)
    seen = []
    model.transformer.h[1].attn.c_attn.register_forward_hook(lambda m, a, o: seen.append(o))
    mods, slots = attention_slots(model, list(model.transformer.h))
    assert [type(m).__name__ for m in mods] == ["GPT2Attention"] * 2 and slots == [0, 1]
    ids = torch.randint(0, 64, (2, 40))
    with AttentionProbe(mods, slots, n_slots=2, rows=ROWS) as probe:
        model(ids)
        mx, ent = probe.read()
    q, k, _ = seen[0].split(32, dim=-1)
    q, k = (z.view(2, 40, 4, 8).transpose(1, 2) for z in (q, k))
    want_max, want_ent = stats(causal(q @ k.transpose(-2, -1) / math.sqrt(8)))
    assert mx[1].item() == pytest.approx(want_max, rel=1e-5)
    assert ent[1].item() == pytest.approx(want_ent, rel=1e-5)
    assert modes_active() == 0


def test_eager_entropy_matches_output_attentions_and_sdpa():
    ids = torch.randint(0, 64, (2, 33))
    got = {}
    for impl in ("eager", "sdpa"):
        model = gpt2(impl).eval()  # no dropout on the returned probabilities
        mods, _ = attention_slots(model, [model])
        with AttentionProbe(mods, rows=ROWS) as probe:
            out = model(ids, output_attentions=impl == "eager")
            got[impl] = probe.read()
        if impl == "eager":
            for j, probs in enumerate(out.attentions):
                p = probs[..., ::math.ceil(33 / ROWS), :].double()
                want = -(torch.where(p > 0, p * p.log(), 0 * p)).sum(-1).mean().item()
                assert got[impl][1][j].item() == pytest.approx(want, rel=1e-5)
    for a, b in zip(got["eager"], got["sdpa"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("make", [bert, llama])
def test_bert_and_llama_eager_and_sdpa_agree(make):
    ids = torch.randint(0, 64, (2, 24))
    mask = torch.ones(2, 24, dtype=torch.long)
    mask[1, 18:] = 0  # padding: masked keys take no part
    res = []
    for impl in ("eager", "sdpa"):
        model = make(impl)
        mods, _ = attention_slots(model, [model])
        assert len(mods) == 2
        with AttentionProbe(mods) as probe:
            model(ids, attention_mask=mask)
            res.append(probe.read())
    for a, b in zip(*res, strict=True):
        assert a.isfinite().all()
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_user_sdpa_and_softmax_modules_match_direct_recomputation():
    torch.manual_seed(1)
    x = torch.randn(3, 37, 16)
    sdpa = SdpaAttention()
    q, k, _ = sdpa.qkv(x).split(16, dim=-1)
    q, k = (z.view(3, 37, 2, 8).transpose(1, 2) for z in (q, k))
    want = stats(causal(q @ k.transpose(-2, -1) / math.sqrt(8)))
    with AttentionProbe([sdpa]) as probe:
        sdpa(x)
        mx, ent = probe.read()
    assert (mx.item(), ent.item()) == pytest.approx(want, rel=1e-5)

    soft = SoftmaxAttn()
    want = stats(soft.q(x) @ soft.k(x).transpose(-2, -1) / 4.0)
    with AttentionProbe([soft]) as probe:
        soft(x)
        mx, ent = probe.read()
    assert (mx.item(), ent.item()) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_with_masks(batch_first):
    torch.manual_seed(2)
    mha = nn.MultiheadAttention(16, 4, batch_first=batch_first)
    x = torch.randn(2, 20, 16)
    kpm = torch.zeros(2, 20, dtype=torch.bool)
    kpm[1, 15:] = True
    am = torch.ones(20, 20, dtype=torch.bool).triu(1)  # True = not allowed (MHA's convention)
    xin = x if batch_first else x.transpose(0, 1)
    with AttentionProbe([mha]) as probe:
        _, probs = mha(xin, xin, xin, key_padding_mask=kpm, attn_mask=am,
                       average_attn_weights=False)
        mx, ent = probe.read()
    w = mha.in_proj_weight
    b = mha.in_proj_bias
    q = (x @ w[:16].T + b[:16]).view(2, 20, 4, 4).transpose(1, 2)
    k = (x @ w[16:32].T + b[16:32]).view(2, 20, 4, 4).transpose(1, 2)
    z = (q @ k.transpose(-2, -1) / 2.0).masked_fill(am, float("-inf"))
    z = z.masked_fill(kpm[:, None, None, :], float("-inf"))
    assert (mx.item(), ent.item()) == pytest.approx(stats(z), rel=1e-5)
    assert ent.item() == pytest.approx(stats(probs.log())[1], rel=1e-4)


def test_exceptions_nesting_disable_and_remove():
    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    class OuterAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.boom = SoftmaxAttn(), Boom()

        def forward(self, x, fail=False):
            y = self.inner(x)
            return self.boom(y) if fail else y

    outer = OuterAttention()
    probe = AttentionProbe([outer, outer.inner], slots=[0, 1])
    x = torch.randn(2, 9, 16)
    with pytest.raises(RuntimeError, match="boom"):
        outer(x, fail=True)
    assert modes_active() == 0 and probe._stack == []
    outer(x)
    mx, _ = probe.read()
    assert mx[0].isnan() and mx[1].isfinite()  # the innermost running module takes the call
    probe.enabled = False
    outer(x)
    assert probe.read()[0].isnan().all()
    probe.remove()
    probe.remove()
    outer(x)
    assert not probe._max and modes_active() == 0


def test_softmax_outside_attention_and_on_other_dims_is_ignored():
    class Head(nn.Module):
        def forward(self, x):
            return x.softmax(-1)

    class MyAttention(nn.Module):
        def forward(self, x):
            return torch.softmax(x, dim=1) + torch.softmax(x[0], dim=-1).sum()  # neither counts

    torch.randn(2, 3, 4).softmax(-1)
    attn, head = MyAttention(), Head()
    probe = AttentionProbe([attn])
    head(torch.randn(2, 3, 4))
    attn(torch.randn(2, 3, 4))
    assert probe.read()[0].isnan().all()


def test_no_host_sync(monkeypatch):
    model = gpt2("sdpa")
    mods, slots = attention_slots(model, list(model.transformer.h))
    ids = torch.randint(0, 64, (2, 20))
    with AttentionProbe(mods, slots, 2) as probe:
        with no_host_sync(monkeypatch):
            model(ids).logits.sum().backward()
            mx, ent = probe.read()
    assert mx.isfinite().all() and ent.isfinite().all()


def test_slots_must_fit():
    from actscope.errors import UsageError

    with pytest.raises(UsageError, match="slot in 0..0"):
        AttentionProbe([SoftmaxAttn(), SoftmaxAttn()], slots=[0, 1], n_slots=1)


def test_multihead_attention_fast_path_and_transformer_encoder_in_eval():
    """In eval under no_grad MHA may take torch's fused path; under the mode it does not."""
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 2,
                                enable_nested_tensor=False).eval()
    mods, slots = attention_slots(enc, list(enc.layers))
    assert [type(m).__name__ for m in mods] == ["MultiheadAttention"] * 2 and slots == [0, 1]
    with AttentionProbe(mods, slots, 2) as probe, torch.no_grad():
        enc(torch.randn(2, 10, 16))
        mx, ent = probe.read()
    assert mx.isfinite().all() and (ent > 0).all()
