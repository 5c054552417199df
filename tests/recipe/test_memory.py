"""recipe/memory.py: the meta-device estimate grows with the run, and a run that cannot fit is
refused before anything is allocated."""

from __future__ import annotations

import pytest

from actscope.config import FitConfig
from actscope.errors import UsageError
from actscope.recipe import memory
from actscope.recipe.memory import available_bytes, check_memory, estimate_fit_bytes

SHAPE = (1, 28, 28)


def test_the_estimate_grows_with_the_batch_size():
    sizes = [estimate_fit_bytes(FitConfig(bs=bs, nfs=(4, 8)), SHAPE) for bs in (1, 8, 64)]
    assert 0 < sizes[0] < sizes[1] < sizes[2]


def test_the_estimate_grows_with_the_channels_and_adam_costs_more_than_sgd():
    small = estimate_fit_bytes(FitConfig(bs=4, nfs=(4, 8)), SHAPE)
    big = estimate_fit_bytes(FitConfig(bs=4, nfs=(16, 32)), SHAPE)
    adam = estimate_fit_bytes(FitConfig(bs=4, nfs=(4, 8), opt="adam"), SHAPE)
    assert small < big and small < adam


def test_a_huge_model_is_estimated_without_allocating_and_refused():
    cfg = FitConfig(bs=64, nfs=(999999, 999999), device="cpu")
    assert estimate_fit_bytes(cfg, SHAPE) > 2**42
    with pytest.raises(UsageError, match=r"--nfs 999999,999999 at --bs 64 needs about .* GiB"):
        check_memory(cfg, SHAPE)


def test_a_small_run_passes_and_unknown_memory_never_refuses(monkeypatch):
    check_memory(FitConfig(bs=8, nfs=(4, 8), device="cpu"), SHAPE)
    have = available_bytes("cpu")
    assert have is None or (have[0] > 0 and have[1] == "available RAM")
    monkeypatch.setattr(memory, "available_bytes", lambda device: None)
    check_memory(FitConfig(bs=64, nfs=(999999, 999999), device="cpu"), SHAPE)
