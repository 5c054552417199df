"""Default modules for any architecture, explicit specs, names, tuple/dict/half outputs."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import actscope
from actscope.errors import UsageError
from actscope.nn.cnn import cnn
from actscope.telemetry.modules import default_modules, layer_names, pick_tensor, spread


class Block(nn.Module):
    """A transformer-like block returning a tuple (hidden, attention weights), like HF layers."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.ff = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.norm(x + torch.relu(self.ff(x)))
        return h, torch.softmax(h @ h.transpose(1, 2), dim=-1)


class TinyTransformer(nn.Module):
    def __init__(self, n_blocks: int = 3, d: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, d)
        self.blocks = nn.ModuleList(Block(d) for _ in range(n_blocks))
        self.heads = nn.ModuleList([nn.Linear(d, 20)])  # a smaller ModuleList: not chosen
        self.out = nn.Linear(d, 20)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens)
        for b in self.blocks:
            h, _ = b(h)
        return self.out(h)


class ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv(x))


def resnet_like() -> nn.Module:
    return nn.Sequential(OrderedDict(
        stem=nn.Conv2d(1, 4, 3, padding=1),
        layer1=nn.Sequential(ResBlock(4), ResBlock(4)),
        layer2=nn.Sequential(ResBlock(4), ResBlock(4), ResBlock(4)),
        pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(4, 2)))


def test_default_is_the_largest_module_list_of_blocks():
    model = TinyTransformer()
    mods = default_modules(model)
    assert mods == list(model.blocks)
    assert layer_names(model, mods) == ["blocks.0 Block", "blocks.1 Block", "blocks.2 Block"]


class Sublayers(nn.Module):
    """A block with an inner list of unlike sub-layers (T5's ``block.N.layer``)."""

    def __init__(self, d: int, n: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList([nn.Linear(d, d), nn.LayerNorm(d), nn.ReLU()][:n])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.layer:
            x = m(x)
        return x


class Experts(nn.Module):
    """A block with an inner list of like members (a mixture of experts)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.experts = nn.ModuleList([nn.Linear(d, d) for _ in range(8)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(e(x) for e in self.experts)


def test_default_is_every_outer_stack_of_blocks_not_a_blocks_inner_list():
    d = 4
    enc_dec = nn.Module()
    enc_dec.encoder = nn.ModuleList([Sublayers(d, 2) for _ in range(2)])
    enc_dec.decoder = nn.ModuleList([Sublayers(d, 3) for _ in range(2)])
    # a tiny encoder-decoder: each decoder block's 3 sub-layers outnumber the 2 blocks
    assert default_modules(enc_dec) == [*enc_dec.encoder, *enc_dec.decoder]
    moe = nn.Module()
    moe.layers = nn.ModuleList([Experts(d) for _ in range(2)])
    moe.heads = nn.ModuleList([nn.Linear(d, 1), nn.Linear(d, 1)])
    assert default_modules(moe) == [*moe.layers, *moe.heads]  # not 8 experts of one block
    deep = nn.Module()
    deep.blocks = nn.ModuleList([Experts(d) for _ in range(12)])
    deep.heads = nn.ModuleList([nn.Linear(d, 1), nn.Linear(d, 1)])
    assert default_modules(deep) == list(deep.blocks)  # a short list beside a deep stack: not


def test_default_resnet_stages_and_cnn_and_children():
    model = resnet_like()
    mods = default_modules(model)
    assert mods == [*model.layer1, *model.layer2]
    assert layer_names(model, mods)[0] == "layer1.0 conv 4→4"
    c = cnn()
    assert all(any(isinstance(m, nn.Conv2d) for m in b.children()) for b in default_modules(c))
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert default_modules(mlp) == [mlp[0], mlp[2]]


def test_at_most_32_spread_evenly():
    model = TinyTransformer(n_blocks=100, d=4)
    mods = default_modules(model)
    assert len(mods) == 32 and mods[0] is model.blocks[0] and mods[-1] is model.blocks[99]
    idx = [list(model.blocks).index(m) for m in mods]
    gaps = np.diff(idx)
    assert gaps.min() >= 3 and gaps.max() <= 4  # 99 / 31 = 3.2: even through the depth
    assert spread(list(range(5)), 32) == list(range(5))


def test_explicit_specs_type_pattern_function_list():
    model = TinyTransformer()
    assert len(actscope.watch(model, modules=nn.LayerNorm).names) == 3
    w = actscope.watch(model, modules=r"blocks\.[02]\.ff")
    assert w.names == ["blocks.0.ff Linear", "blocks.2.ff Linear"]
    w.remove()
    w = actscope.watch(model, modules=lambda m: [m.out])
    assert w.names == ["out Linear"]
    w.remove()
    assert actscope.watch(model, modules=[model.embed]).names == ["embed Embedding"]


def test_tuple_outputs_record_the_first_tensor_or_the_named_one():
    model = TinyTransformer()
    tokens = torch.randint(0, 20, (4, 6))
    with actscope.watch(model) as w:
        model(tokens)
    with actscope.watch(model, output=1) as w1:  # the attention weights: rows sum to 1
        model(tokens)
    t, t1 = w.result(), w1.result()
    assert t.mean.shape == (3, 1) and abs(float(t.mean[0, 0])) < 0.1  # LayerNorm'ed hidden
    np.testing.assert_allclose(t1.mean[:, 0], 1 / 6, rtol=1e-4)  # softmax over 6 positions
    # a transformer block's channels are its last dim (features), not the sequence position
    assert t.n_channels.tolist() == [8, 8, 8] and t1.n_channels.tolist() == [6, 6, 6]


def test_pick_tensor_dicts_and_model_outputs():
    a, b = torch.zeros(1), torch.ones(1)
    assert pick_tensor({"loss": None, "hidden": a, "attn": b}) is a
    assert pick_tensor({"hidden": a, "attn": b}, "attn") is b
    assert pick_tensor((None, a, b)) is a and pick_tensor([a, b], 1) is b
    assert pick_tensor((a,), 5) is None and pick_tensor("text") is None


def test_half_and_bfloat16_outputs():
    for dtype in (torch.float16, torch.bfloat16):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)).to(dtype)
        x = torch.randn(64, 4).to(dtype)
        with actscope.watch(model) as w:
            out0 = model[0](x)
            model(x)
        t = w.result()
        assert t.mean[0, 0] == pytest.approx(out0.float().mean().item(), rel=1e-3, abs=1e-3)
        assert np.isfinite(t.std).all()


@pytest.mark.parametrize("spec, says", [
    (3, "modules= got 3 (int), not modules"),
    (2.5, "modules= got 2.5 (float), not modules"),
    (b"0", "(bytes), not modules"),
    ([3], "must name nn.Module objects, got int"),
    ("[", "not a valid regular expression"),
    (lambda model: 5, "(model) returned 5 (int), not modules"),
    (lambda model: [], "found no modules to watch"),
])
def test_a_bad_modules_spec_is_a_usage_error_naming_the_accepted_forms(spec, says):
    model = TinyTransformer()
    with pytest.raises(UsageError) as err:
        actscope.watch(model, modules=spec)
    assert says in str(err.value)
    if "not a valid" not in says:
        assert "a list of the model's modules, a module type" in str(err.value)
    assert not any(m._forward_hooks for m in model.modules())  # nothing was attached


def test_containers_stand_for_their_members_and_repeats_are_watched_once():
    model = TinyTransformer()
    b = model.blocks
    specs = (b, {"first": b[0], "rest": b[1]}, [b[0], b[0], b[1]], [nn.ModuleList([b[0], b[1]])])
    for spec in specs:
        w = actscope.watch(model, modules=spec)
        try:
            model.train()(torch.randint(0, 20, (2, 5)))
            w.step()
            assert len(w.result().names) == (3 if spec is b else 2), spec
            assert sum(len(m._forward_hooks) for m in model.modules()
                       if m is not model) == len(w.result().names)  # the model: the watch's own
        finally:
            w.remove()


def test_names_say_which_module_is_the_model_and_which_is_not_in_it():
    from actscope.telemetry.modules import layer_names

    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    names = layer_names(m, [m[2], nn.Linear(2, 2), m])
    assert names[0].startswith("2 ") and names[1].startswith("outside.1 ")
    assert names[2].startswith("model ")
