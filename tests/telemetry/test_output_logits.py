"""output_logit_stats: mean log-sum-exp and max |logit| of a model's output, or None."""

import pytest
import torch

from actscope.telemetry.output_logits import find_logits, output_logit_stats
from tests.telemetry.nosync import no_host_sync


def test_tensor_logits_match_direct_computation():
    z = torch.randn(4, 7, 11) * 5
    lse, mx = output_logit_stats(z)
    assert lse.item() == pytest.approx(torch.logsumexp(z, -1).mean().item(), rel=1e-6)
    assert mx.item() == z.abs().max().item()


def test_containers_hf_output_dict_and_tuple():
    from transformers.modeling_outputs import CausalLMOutput

    z = torch.randn(2, 3, 5)
    hf = CausalLMOutput(loss=torch.tensor(1.0), logits=z)
    for out in (hf, {"logits": z, "loss": 1}, (z, torch.tensor(0.5)), [z]):
        assert find_logits(out) is z
    assert output_logit_stats(hf)[1].item() == z.abs().max().item()


@pytest.mark.parametrize("out", [
    torch.randn(8, 1),                 # regression head: one output per row
    torch.randn(8),                    # 1-D
    torch.tensor(2.0),                 # a scalar loss
    torch.randint(0, 5, (4, 6)),       # token ids
    torch.empty(0, 5),                 # nothing
    {"loss": torch.tensor(1.0)},      # no logits key
    "text", None, (1, 2),
])
def test_not_logits_is_none(out):
    assert find_logits(out) is None and output_logit_stats(out) is None


def test_half_logits_are_reduced_in_float32_without_sync(monkeypatch):
    z = (torch.randn(3, 50) * 30).to(torch.bfloat16)
    with no_host_sync(monkeypatch):
        lse, mx = output_logit_stats(z)
    assert lse.dtype == torch.float32
    assert lse.item() == pytest.approx(torch.logsumexp(z.float(), -1).mean().item(), rel=1e-6)
