"""run_facts.py: the model facts (QK-norm, a plain chain) and the layers no optimizer trains."""

from __future__ import annotations

import torch
from torch import nn

from actscope.telemetry.context import run_context
from actscope.telemetry.run_facts import model_facts


class _Attn(nn.Module):
    """An attention module with a norm on queries and keys (or, as BERT's, on its output)."""

    def __init__(self, qk: bool) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        if qk:
            self.q_norm, self.k_norm = nn.LayerNorm(4), nn.LayerNorm(4)
        else:
            self.out_norm = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, -1)
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)


class _Res(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = _Attn(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attn(x)


def test_qk_norm_and_plain_chain_facts():
    facts = model_facts(_Res())
    assert facts["has_attention"] and facts["qk_norm"] and not facts["chain"]
    bert_like = nn.Sequential(_Attn(False))
    facts = model_facts(bert_like)
    assert facts["has_attention"] and not facts["qk_norm"]
    chain = nn.Sequential(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), nn.Conv1d(4, 4, 3))
    assert model_facts(chain)["chain"]


def test_layers_the_optimizer_does_not_hold_are_marked_untrained():
    m = nn.Sequential(nn.Sequential(nn.Linear(8, 8), nn.ReLU()), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(m[2].parameters(), 0.1)  # a linear probe: only the head trains
    lay = run_context(m, list(m), optimizer=opt)["layers"]
    assert lay["0"]["trained"] is False
    assert "trained" not in lay["1"] and "trained" not in lay["2"]  # no parameters; held
    assert "trained" not in run_context(m, list(m))["layers"]["0"]  # no optimizer: unknown


def test_untrained_marks_read_every_optimizer_and_skip_optimizers_of_copies():
    g, d = nn.Sequential(nn.Linear(4, 4), nn.ReLU()), nn.Sequential(nn.Linear(4, 1))
    gan = nn.Sequential(g, d)
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    lay = run_context(gan, list(gan), optimizer=opt_g, optimizers=[opt_g, opt_d])["layers"]
    assert "trained" not in lay["0"] and "trained" not in lay["1"]
    assert run_context(gan, list(gan), optimizer=opt_g)["layers"]["1"]["trained"] is False
    # an optimizer over copies of the weights (DeepSpeed, fp32 master weights): nothing marked
    copies = torch.optim.SGD([nn.Parameter(p.detach().clone()) for p in gan.parameters()], 0.1)
    lay = run_context(gan, list(gan), optimizer=copies)["layers"]
    assert all("trained" not in e for e in lay.values())
