"""dist.py: one process is rank 0 of 1 with every collective a no-op; torchrun's variables read."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actscope.dist import (
    TORCHRUN_VARS,
    DistEnv,
    all_reduce_max_,
    all_reduce_sum_,
    collective_device,
    get_rank,
    get_world_size,
    is_main_process,
    sync_buffers,
    unwrap_model,
)


@pytest.fixture
def no_torchrun(monkeypatch):
    for v in TORCHRUN_VARS:
        monkeypatch.delenv(v, raising=False)
    return monkeypatch


def test_one_process_is_rank_0_of_1(no_torchrun):
    assert (get_rank(), get_world_size(), is_main_process()) == (0, 1, True)
    assert DistEnv.from_env() is None
    assert collective_device() == torch.device("cpu")


def test_rank_comes_from_torchrun_without_a_group(no_torchrun):
    no_torchrun.setenv("RANK", "3")
    assert get_rank() == 3 and not is_main_process()


def test_dist_env_reads_torchrun_variables(no_torchrun):
    for k, v in {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "h",
                 "MASTER_PORT": "1"}.items():
        no_torchrun.setenv(k, v)
    assert DistEnv.from_env() == DistEnv(rank=1, world_size=4, local_rank=1)
    no_torchrun.delenv("MASTER_PORT")
    with pytest.raises(RuntimeError, match="RANK is set but MASTER_PORT is not.*torchrun"):
        DistEnv.from_env()


def test_collectives_are_no_ops_in_place(no_torchrun):
    t = torch.tensor([1.0, 5.0])
    assert all_reduce_sum_(t) is t and all_reduce_max_(t) is t
    assert t.tolist() == [1.0, 5.0]
    bn = nn.BatchNorm1d(2)
    bn.running_mean.fill_(3.0)
    sync_buffers(bn)
    assert bn.running_mean.tolist() == [3.0, 3.0]


def test_unwrap_model_takes_off_nested_wrappers():
    inner = nn.Linear(2, 2)
    assert unwrap_model(inner) is inner
    assert unwrap_model(nn.DataParallel(nn.DataParallel(inner))) is inner

    class Compiled(nn.Module):  # torch.compile's OptimizedModule keeps the model as _orig_mod
        def __init__(self, m):
            super().__init__()
            self._orig_mod = m

    assert unwrap_model(Compiled(nn.DataParallel(inner))) is inner
